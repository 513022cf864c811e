"""Functions the executor tests ship to tasks.  They travel by reference
(pickle), so the runner finds this module through python_path."""

import os
import signal
import sys
import time


def add(a, b=0):
    return a + b


def where():
    return {"task": os.environ.get("VINE_TASK_ID"), "cores": os.environ.get("VINE_CORES"),
            "node": os.environ.get("VINE_NODE"), "env": os.environ.get("VINE_ENV"),
            "prefix": sys.prefix,
            "executable": sys.executable}


def boom(msg):
    raise ValueError(msg)


class NeedsTwo(Exception):
    """An exception that pickles but does not unpickle (two required
    arguments, args holds one): the client gets a VineRemoteError."""

    def __init__(self, a, b):
        super().__init__("%s/%s" % (a, b))


def raise_needs_two():
    raise NeedsTwo("x", "y")


def kill_self():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def sleep(seconds):
    time.sleep(seconds)
    return seconds


def unpicklable_result():
    return lambda: 1


def exit_with(code):
    sys.exit(code)


def import_file(name):
    import importlib
    return importlib.import_module(name).__file__


def kill_once(marker):
    """Killed on the first attempt, returns on the next (for retries)."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        kill_self()
    return "attempt 2"


def remote_only_object(dirpath):
    """An object of a class that exists only where the task ran."""
    with open(os.path.join(dirpath, "remote_only_mod.py"), "w") as f:
        f.write("class Thing:\n    pass\n")
    sys.path.insert(0, dirpath)
    import remote_only_mod
    return remote_only_mod.Thing()
