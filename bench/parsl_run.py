"""One measurement of bench/parsl.sh: a Parsl workflow of trivial apps on
one executor, timed from parsl.load (HTEX's worker pool start, or vine's
worker start and pool tasks, included) to the last result.

    parsl_run.py htex|vine APPS CHAIN [STATE]

prints one line: executor, apps, wall seconds for APPS independent apps
(submitted at once), seconds per app, and seconds per hop of a chain of
CHAIN apps each taking the one before as argument (after the apps)."""

import os
import subprocess
import sys
import time

import parsl
from parsl import python_app
from parsl.config import Config


@python_app
def inc(x):
    return x + 1


def main():
    kind, apps, chain = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    worker = None
    t0 = time.monotonic()
    if kind == "htex":
        from parsl.executors import HighThroughputExecutor
        from parsl.providers import LocalProvider
        ex = HighThroughputExecutor(label="htex", max_workers_per_node=2, address="127.0.0.1",
                                    provider=LocalProvider(init_blocks=1, max_blocks=1))
    else:
        from vine_parsl import VineExecutor
        state = sys.argv[4]
        ex = VineExecutor(label="vine", state=state)
        worker = subprocess.Popen(["vine-worker", "-s", state, "-n", "2", "-i", "600"],
                                  stderr=subprocess.DEVNULL)
    run_dir = os.path.join(os.environ.get("BENCH_WORK", "."), "runinfo")
    with parsl.load(Config(executors=[ex], run_dir=run_dir)):
        futs = [inc(i) for i in range(apps)]
        assert sum(f.result() for f in futs) == apps * (apps + 1) // 2
        t1 = time.monotonic()
        x = inc(0)
        x.result()
        t2 = time.monotonic()
        for _ in range(chain):
            x = inc(x)
        assert x.result() == chain + 1
        t3 = time.monotonic()
    if worker is not None:
        worker.terminate()
        worker.wait()
    wall = t1 - t0
    print("%s %d %.3f %.5f %.4f" % (kind, apps, wall, wall / apps, (t3 - t2) / max(chain, 1)))


if __name__ == "__main__":
    main()
