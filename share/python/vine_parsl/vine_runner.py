#!/usr/bin/env python3
"""vine_runner.py CALLDIR - run one Python call shipped by vine_parsl.

This file is both the task-side program and the one place that defines the
on-disk format of a call and of its result, so the client (vine_parsl) and
the task can never disagree.  It runs standalone with any python3 >= 3.8
(the one first on PATH inside the task's environment) and imports nothing
from vine_parsl.

A call directory holds two files, written by the client before the task is
submitted:

  meta.json   {"vine_parsl_call": 1, "serializer": NAME, "python_path": [DIR...]}
  call.bin    pickle (protocol 4) of a 3-tuple of bytes:
              (dumps(func), dumps(args), dumps(kwargs)) with NAME's dumps

The runner prepends python_path to sys.path, loads the call, runs it and
writes RESULT_NAME atomically (temporary file, fsync, rename) into
$VINE_OUTDIR when it is set (vine ships it back beside the state), else into
CALLDIR.  The result is a pickle (protocol 4) of a dict of plain values:

  version   1
  ok        True: "value" holds dumps(return value)
            False: the call raised; "exc" holds dumps(exception) or None when
            it could not be serialized, "exc_type" its qualified class name,
            "exc_message" str(exception), "traceback" the formatted traceback
  task      $VINE_TASK_ID, node  $VINE_NODE (or "")

Exit status: 0 a result was written (a raised exception is a result too);
2 usage; 3 the call could not be loaded; 4 the result could not be written.
Anything else (a signal, a crash of the interpreter) leaves no result.
"""

import json
import os
import pickle
import sys

FORMAT = 1
META_NAME = "meta.json"
CALL_NAME = "call.bin"
RESULT_NAME = "vine_parsl.result"
PROTOCOL = 4  # readable by every python3 a task environment may hold

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_LOAD = 3
EXIT_WRITE = 4


def serializer(name):
    """Return (dumps, loads) for a serializer name.

    pickle: the standard library; functions travel by reference, so they
            must be importable by module name in the task.
    cloudpickle: functions (also lambdas and those defined in __main__)
            travel by value; the task needs cloudpickle installed.
    parsl:  Parsl's own serialize/deserialize (dill for code); the task
            needs parsl installed.
    """
    if name == "pickle":
        return (lambda obj: pickle.dumps(obj, protocol=PROTOCOL)), pickle.loads
    if name == "cloudpickle":
        import cloudpickle
        return (lambda obj: cloudpickle.dumps(obj, protocol=PROTOCOL)), pickle.loads
    if name == "parsl":
        from parsl.serialize import deserialize, serialize
        return serialize, deserialize
    raise ValueError("unknown serializer %r" % (name,))


def write_atomic(directory, name, data, sync=True):
    """Publish data as directory/name: temp file, fsync, rename, fsync dir.
    Without sync only the rename: readers never see a partial file, but a
    crash of the host may lose it.  (No tempfile module: it costs a task
    start-up more than this needs.)"""
    tmp = os.path.join(directory, ".%s.%d" % (name, os.getpid()))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL, 0o644)
    except FileExistsError:  # left by a killed process that had our pid
        os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, os.path.join(directory, name))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if not sync:
        return
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the rename stands
    finally:
        os.close(dfd)


def load_call(calldir):
    """Return (func, args, kwargs, meta) from a call directory."""
    with open(os.path.join(calldir, META_NAME), "rb") as f:
        meta = json.loads(f.read().decode("utf-8"))
    if not isinstance(meta, dict) or meta.get("vine_parsl_call") != FORMAT:
        raise ValueError("%s: not a vine_parsl call of format %d"
                         % (os.path.join(calldir, META_NAME), FORMAT))
    for d in reversed(meta.get("python_path") or []):
        if d not in sys.path:
            sys.path.insert(0, d)
    _, loads = serializer(meta.get("serializer"))
    with open(os.path.join(calldir, CALL_NAME), "rb") as f:
        parts = pickle.loads(f.read())
    if not (isinstance(parts, tuple) and len(parts) == 3):
        raise ValueError("%s: expected 3 parts" % os.path.join(calldir, CALL_NAME))
    func, args, kwargs = (loads(p) for p in parts)
    if not callable(func):
        raise TypeError("the shipped function is a %s, not callable" % type(func).__name__)
    return func, tuple(args), dict(kwargs), meta


def qualified_name(cls):
    mod = getattr(cls, "__module__", None)
    name = getattr(cls, "__qualname__", cls.__name__)
    return name if mod in (None, "builtins") else mod + "." + name


def exception_result(dumps, exc, tb_text):
    try:
        blob = dumps(exc)
    except Exception:  # e.g. an attribute that cannot be pickled
        blob = None
    try:
        message = str(exc)
    except Exception:
        message = "<str() failed>"
    return {"ok": False, "exc": blob, "exc_type": qualified_name(type(exc)),
            "exc_message": message, "traceback": tb_text}


def run_call(func, args, kwargs, dumps):
    """Run the call and return the result dict (without task/node)."""
    try:
        value = func(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit from the function is a result too
        import traceback
        return exception_result(dumps, exc, traceback.format_exc())
    try:
        return {"ok": True, "value": dumps(value)}
    except Exception as exc:
        # the function worked but its value cannot travel: say so remotely
        import traceback
        err = TypeError("the return value (a %s) could not be serialized: %s"
                        % (qualified_name(type(value)), exc))
        return exception_result(dumps, err, traceback.format_exc())


def main(argv):
    # run as a script, this file's directory heads sys.path: drop it, or
    # vine_parsl's own modules (errors, codec, ...) would shadow the task's
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        del sys.path[0]
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        out = sys.stdout if len(argv) == 2 else sys.stderr
        print("usage: vine_runner.py CALLDIR", file=out)
        return EXIT_OK if len(argv) == 2 else EXIT_USAGE
    calldir = argv[1]
    try:
        func, args, kwargs, meta = load_call(calldir)
        dumps, _ = serializer(meta["serializer"])
    except Exception as exc:
        print("vine_runner: cannot load the call in '%s': %s: %s"
              % (calldir, qualified_name(type(exc)), exc), file=sys.stderr)
        import traceback
        traceback.print_exc()
        return EXIT_LOAD
    result = run_call(func, args, kwargs, dumps)
    result["version"] = FORMAT
    result["task"] = os.environ.get("VINE_TASK_ID", "")
    result["node"] = os.environ.get("VINE_NODE", "")
    outdir = os.environ.get("VINE_OUTDIR") or calldir
    try:
        write_atomic(outdir, RESULT_NAME, pickle.dumps(result, protocol=PROTOCOL))
    except Exception as exc:
        print("vine_runner: cannot write the result into '%s': %s"
              % (outdir, exc), file=sys.stderr)
        return EXIT_WRITE
    if not result["ok"]:
        # keep the traceback in the task's stderr too, for vine-collect users
        sys.stderr.write(result["traceback"])
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv))
