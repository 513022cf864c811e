"""Test harness: a state, a work directory, a worker to run the tasks, and
wrappers in front of the vine programs found on PATH (the real ones, or the
fake ones the bats file puts first) that log each run and can be told to fail.
"""

import logging
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
WRAPPED = ("vine-submit", "vine-status", "vine-collect")

# the failures the tests cause on purpose are logged; keep the output clean
logging.getLogger("parsl.executors.vine_parsl").addHandler(logging.NullHandler())

WRAPPER = """#!/bin/sh
# log the run, fail on demand, else run the real program
echo "$*" >>"{log}"
if [ -e "{fail}" ]; then echo "{name}: failing on purpose" >&2; exit 1; fi
exec "{real}" "$@"
"""



def worker_argv(state, node, cores, idle):
    """vine-worker once the state opens: only vine-submit makes one (a file
    it has only begun is not a state yet), and a test may start its worker
    before the executor's first submission; a job script starts workers
    after vine-submit.  The wait is bounded (60 s)."""
    return ["sh", "-c", 'i=0; until vine-status -s "$1" >/dev/null 2>&1 || [ $i -ge 600 ]; do '
            'sleep 0.1; i=$((i + 1)); done; exec vine-worker -s "$@"', "sh", state, "-N", node,
            "-n", str(cores), "-i", str(idle)]


def start_worker(state, node, cores, idle, stdout, stderr):
    """A vine-worker (worker_argv) on state.  It gets this environment
    without PYTHONPATH, as on a node: tasks inherit it, and find modules
    through what the executor sends."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.Popen(worker_argv(state, node, cores, idle),
                            stdout=stdout, stderr=stderr, env=env)


def stop_worker(w, timeout=20):
    """SIGTERM, then SIGKILL if it has not ended within timeout seconds."""
    if w.poll() is None:
        w.send_signal(signal.SIGTERM)
        try:
            w.wait(timeout)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()


class VineTestCase(unittest.TestCase):
    poll = 0.1

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vine-parsl-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.state = os.path.join(self.tmp, "vine.db")
        self.work = os.path.join(self.tmp, "work")
        self.wrap = os.path.join(self.tmp, "wrap")
        os.mkdir(self.wrap)
        for name in WRAPPED:
            real = shutil.which(name)
            if real is None:
                self.fail("%s is not on PATH" % name)
            p = os.path.join(self.wrap, name)
            with open(p, "w") as f:
                f.write(WRAPPER.format(log=self.log_path(name), fail=self.fail_path(name),
                                       name=name, real=real))
            os.chmod(p, os.stat(p).st_mode | stat.S_IXUSR)
        self.old_path = os.environ["PATH"]
        os.environ["PATH"] = self.wrap + os.pathsep + self.old_path
        self.addCleanup(os.environ.__setitem__, "PATH", self.old_path)
        self.workers = []
        self.executors = []

    def tearDown(self):
        for ex in self.executors:
            ex.shutdown()
        for w in self.workers:
            stop_worker(w, 10)

    def log_path(self, name):
        return os.path.join(self.tmp, name + ".log")

    def fail_path(self, name):
        return os.path.join(self.tmp, name + ".fail")

    def runs(self, name):
        """The argument lists of each run of a wrapped program so far."""
        try:
            with open(self.log_path(name)) as f:
                return [line.split() for line in f.read().splitlines()]
        except FileNotFoundError:
            return []

    def make_failing(self, name, on=True):
        if on:
            open(self.fail_path(name), "w").close()
        elif os.path.exists(self.fail_path(name)):
            os.unlink(self.fail_path(name))

    def executor(self, **kw):
        from vine_parsl import VineExecutor
        args = dict(state=self.state, work_dir=self.work, serializer="pickle", mode="cold",
                    python_path=[HERE], poll_interval=self.poll, collect_interval=2.0,
                    batch_window=0.05)
        args.update(kw)
        ex = VineExecutor(**args)
        self.executors.append(ex)
        return ex

    def worker(self, idle=3, node="testnode", cores=2, state=None):
        with open(os.path.join(self.tmp, "worker.out"), "ab") as out, \
                open(os.path.join(self.tmp, "worker.err"), "ab") as err:
            w = start_worker(state or self.state, node, cores, idle, out, err)
        self.workers.append(w)
        return w

    def wait_submitted(self, futures, timeout=20):
        """Wait until every future has its vine task id."""
        end = time.monotonic() + timeout
        while not all(hasattr(f, "vine_task_id") for f in futures):
            if time.monotonic() > end:
                self.fail("calls were not submitted within %s s" % timeout)
            time.sleep(0.02)

    def worker_log(self):
        with open(os.path.join(self.tmp, "worker.err"), errors="replace") as f:
            return f.read()
