"""A workflow for the bats test of the state over ssh://: STATE (an ssh://
URL) and the number of apps on the command line; prints the nodes the apps
ran on, one per line, sorted."""

import os
import sys

import parsl
from parsl import python_app
from parsl.config import Config
from vine_parsl import VineExecutor


@python_app
def node_of(i):
    import os
    import time
    time.sleep(1)   # long enough that every node's pool gets some
    return os.environ["VINE_NODE"]


state, n = sys.argv[1], int(sys.argv[2])
ex = VineExecutor(state=state, address="127.0.0.1", status_interval=0.5)
with parsl.load(Config(executors=[ex], run_dir=os.path.join(os.getcwd(), "runinfo"))):
    nodes = sorted({f.result(120) for f in [node_of(i) for i in range(n)]})
print("\n".join(nodes))
