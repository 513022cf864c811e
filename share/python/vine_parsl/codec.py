"""Client side of the call/result format that vine_runner.py defines."""

import importlib.util
import json
import os
import pickle

from . import vine_runner as fmt
from .errors import RemoteTraceback, VineRemoteError

SERIALIZERS = ("pickle", "cloudpickle", "parsl")


def choose_serializer(name):
    """Resolve "auto" (Parsl's serializer when Parsl is importable, else
    pickle) and check that the chosen one is importable here."""
    if name == "auto":
        return "parsl" if importable("parsl.serialize") else "pickle"
    if name not in SERIALIZERS:
        raise ValueError("serializer must be one of auto, %s; not %r"
                         % (", ".join(SERIALIZERS), name))
    fmt.serializer(name)  # raises ImportError if it is not installed here
    return name


def importable(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def call_blob(func, args, kwargs, serializer):
    """The bytes of one call (call.bin, or what a warm pool is sent).
    Errors (an object that does not serialize) raise here, in the
    submitting thread."""
    dumps, _ = fmt.serializer(serializer)
    return pickle.dumps((dumps(func), dumps(tuple(args)), dumps(dict(kwargs))),
                        protocol=fmt.PROTOCOL)


def write_call(calldir, blob, serializer, python_path=(), cwd=None):
    """Write one call (call_blob's bytes) into a new directory calldir."""
    meta = {"vine_parsl_call": fmt.FORMAT, "serializer": serializer,
            "python_path": list(python_path)}
    if cwd:
        meta["cwd"] = cwd
    os.makedirs(calldir)
    # no fsync: a call only matters while this process lives, and thousands
    # of fsyncs on a shared file system would slow every submit
    fmt.write_atomic(calldir, fmt.CALL_NAME, blob, sync=False)
    fmt.write_atomic(calldir, fmt.META_NAME, json.dumps(meta).encode("utf-8"), sync=False)


class Result:
    """A decoded result file: ok and value, or ok False and exception (the
    remote exception itself when it could be rebuilt, with the remote
    traceback as __cause__ and as .remote_traceback)."""

    def __init__(self, ok, value=None, exception=None, task="", node=""):
        self.ok = ok
        self.value = value
        self.exception = exception
        self.task = task
        self.node = node


def read_result(path, serializer):
    """Decode a result file.  Raises ValueError if the file is not one."""
    with open(path, "rb") as f:
        data = f.read()
    return decode_result(data, serializer, path)


def decode_result(data, serializer, path="a result"):
    """Decode a result's bytes (a result file's, or a warm pool's)."""
    try:
        env = pickle.loads(data)
    except Exception as e:
        raise ValueError("'%s' is not a vine_parsl result: %s" % (path, e)) from None
    if not isinstance(env, dict) or env.get("version") != fmt.FORMAT:
        raise ValueError("'%s' is not a vine_parsl result of format %d" % (path, fmt.FORMAT))
    _, loads = fmt.serializer(serializer)
    task, node = env.get("task", ""), env.get("node", "")
    if env.get("ok"):
        # a value that does not deserialize here is an error of this call
        try:
            value = loads(env["value"])
        except Exception as e:
            where = " (vine task %s)" % task if task else ""
            err = VineRemoteError(type(e).__name__, "the result%s could not be "
                                  "deserialized here: %s" % (where, e), "")
            return Result(False, exception=err, task=task, node=node)
        return Result(True, value=value, task=task, node=node)
    return Result(False, exception=rebuild_exception(env, loads), task=task, node=node)


def rebuild_exception(env, loads):
    tb = env.get("traceback") or ""
    exc = None
    if env.get("exc") is not None:
        try:
            exc = loads(env["exc"])
        except Exception:
            exc = None  # e.g. its class is not importable here
    if not isinstance(exc, BaseException):
        exc = VineRemoteError(env.get("exc_type", "?"), env.get("exc_message", ""), tb)
    where = []
    if env.get("task"):
        where.append("vine task %s" % env["task"])
    if env.get("node"):
        where.append("node %s" % env["node"])
    text = tb if not where else "(%s)\n%s" % (", ".join(where), tb)
    try:
        exc.__cause__ = RemoteTraceback(text)
        exc.remote_traceback = tb
    except (AttributeError, TypeError):
        pass  # an exception type that refuses new attributes keeps its own
    return exc
