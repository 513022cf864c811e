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
meta.json may also hold "cwd": the directory the call runs in (the
workflow's, as under Parsl's HighThroughputExecutor).

vine_runner.py --pool HOST:PORT[,HOST:PORT...] KEYFILE NAME IDLE - a warm pool: one
long-lived interpreter (a vine task that holds its cores) that connects
back to the executor and runs the calls it is sent one after another, so
no call pays an interpreter start or an import twice.  The connection:

  the first address that answers and holds the key is used; both sides
  prove they hold the 32-byte key in KEYFILE (written by the
  executor, mode 0600) before anything is unpickled:
    executor -> pool   b"VPL1" + nonce_e (32 bytes)
    pool -> executor   HMAC-SHA256(key, b"pool" + nonce_e) + nonce_p (32)
    executor -> pool   HMAC-SHA256(key, b"executor" + nonce_p)
  then frames: a 4-byte big-endian length and a pickle (protocol 4) of
    pool -> executor   ("hello", NAME, $VINE_TASK_ID, $VINE_NODE, pid)
    executor -> pool   ("call", ID, SERIALIZER, PYTHON_PATH, CWD, TIMEOUT, BLOB)
                       BLOB as call.bin; TIMEOUT seconds or None
    pool -> executor   ("result", ID, RESULT) RESULT as the result file's bytes
                       ("timeout", ID) the call ran past TIMEOUT: the pool
                       exits (a Python call cannot be stopped from outside)
    executor -> pool   ("exit",)
  The pool exits 0 on ("exit",), when the connection closes (a call still
  running is abandoned: the executor has gone or cancelled it), or after
  IDLE seconds without a call.
"""

import json
import os
import pickle
import struct
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
    if meta.get("cwd"):
        os.chdir(meta["cwd"])
    return func, tuple(args), dict(kwargs), meta


def decode_call(blob, loads):
    """(func, args, kwargs) from the bytes of call.bin."""
    parts = pickle.loads(blob)
    if not (isinstance(parts, tuple) and len(parts) == 3):
        raise ValueError("a call has 3 parts")
    func, args, kwargs = (loads(p) for p in parts)
    if not callable(func):
        raise TypeError("the shipped function is a %s, not callable" % type(func).__name__)
    return func, tuple(args), dict(kwargs)


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


def portable(value, dumps, loads):
    """Parsl hands an app's exception back as a RemoteExceptionWrapper
    value; one holding an exception that pickles but does not unpickle would
    fail where the workflow reads it, with a message about the unpickling.
    Such a wrapper gets a RuntimeError naming the exception and its message
    instead."""
    if loads is None or type(value).__name__ != "RemoteExceptionWrapper" \
            or not hasattr(value, "e_value"):
        return value
    try:
        loads(dumps(value))
        return value
    except Exception as why:
        e = value.e_value
        try:
            message = str(e)
        except Exception:
            message = "<str() failed>"
        value.e_value = RuntimeError("%s: %s (the exception could not be rebuilt where the "
                                     "workflow runs: %s)" % (qualified_name(type(e)),
                                                             message, why))
        value.e_type = RuntimeError
        value.cause = None
        return value


def run_call(func, args, kwargs, dumps, loads=None):
    """Run the call and return the result dict (without task/node)."""
    try:
        value = portable(func(*args, **kwargs), dumps, loads)
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


# --- the warm pool ---------------------------------------------------------

POOL_MAGIC = b"VPL1"
NONCE = 32
FRAME_MAX = 1 << 31


def hmac_of(key, label, nonce):
    import hashlib
    import hmac
    return hmac.new(key, label + nonce, hashlib.sha256).digest()


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError("the connection closed")
        buf += chunk
    return bytes(buf)


def send_frame(sock, obj):
    data = pickle.dumps(obj, protocol=PROTOCOL)
    sock.sendall(struct.pack(">I", len(data)) + data)


def recv_frame(sock):
    (n,) = struct.unpack(">I", recv_exact(sock, 4))
    if n > FRAME_MAX:
        raise ValueError("a frame of %d bytes" % n)
    return pickle.loads(recv_exact(sock, n))


def pool_connect(addresses, key, name):
    """Connect to the first of the comma-separated HOST:PORTs that answers
    and holds the key; returns the socket."""
    why = None
    for address in addresses.split(","):
        try:
            return pool_connect_one(address, key, name)
        except (OSError, EOFError, ValueError) as exc:
            why = exc
    raise why


def pool_connect_one(address, key, name):
    import hmac
    import socket
    host, _, port = address.rpartition(":")
    sock = socket.create_connection((host.strip("[]"), int(port)), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = recv_exact(sock, len(POOL_MAGIC) + NONCE)
    if head[:len(POOL_MAGIC)] != POOL_MAGIC:
        raise ValueError("%s is not a vine_parsl executor" % address)
    mine = os.urandom(NONCE)
    sock.sendall(hmac_of(key, b"pool", head[len(POOL_MAGIC):]) + mine)
    if not hmac.compare_digest(recv_exact(sock, 32), hmac_of(key, b"executor", mine)):
        raise ValueError("%s does not hold the key" % address)
    sock.settimeout(None)
    send_frame(sock, ("hello", name, os.environ.get("VINE_TASK_ID", ""),
                      os.environ.get("VINE_NODE", ""), os.getpid()))
    return sock


def pool_main(address, keyfile, name, idle):
    import queue
    import threading
    with open(keyfile, "rb") as f:
        key = f.read()
    try:
        sock = pool_connect(address, key, name)
    except (OSError, EOFError, ValueError) as exc:
        # the executor has gone (a pool task that started late): nothing to do
        print("vine_runner: pool %s: cannot connect to %s: %s" % (name, address, exc),
              file=sys.stderr)
        return EXIT_OK
    inbox = queue.Queue()
    send_lock = threading.Lock()

    def reader():
        # a closed connection ends the pool at once, even inside a call:
        # that is how a running call is cancelled
        try:
            while True:
                msg = recv_frame(sock)
                if msg[0] == "exit":
                    break
                inbox.put(msg)
        except Exception:
            pass
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_OK)

    threading.Thread(target=reader, daemon=True).start()
    codecs = {}
    while True:
        try:
            msg = inbox.get(timeout=idle)
        except queue.Empty:
            return EXIT_OK
        _, cid, ser, python_path, cwd, timeout, blob = msg
        for d in reversed(python_path or []):
            if d not in sys.path:
                sys.path.insert(0, d)
        watchdog = None
        if timeout:
            def expire(cid=cid):
                with send_lock:
                    try:
                        send_frame(sock, ("timeout", cid))
                    except OSError:
                        pass
                os._exit(EXIT_OK)
            watchdog = threading.Timer(timeout, expire)
            watchdog.daemon = True
            watchdog.start()
        try:
            if ser not in codecs:
                codecs[ser] = serializer(ser)
            dumps, loads = codecs[ser]
            if cwd:
                os.chdir(cwd)
            func, args, kwargs = decode_call(blob, loads)
        except Exception as exc:
            import traceback
            dumps = codecs.get(ser, serializer("pickle"))[0]
            result = exception_result(dumps, exc, traceback.format_exc())
            result["load_error"] = True
        else:
            result = run_call(func, args, kwargs, dumps, loads)
        if watchdog is not None:
            watchdog.cancel()
        result["version"] = FORMAT
        result["task"] = os.environ.get("VINE_TASK_ID", "")
        result["node"] = os.environ.get("VINE_NODE", "")
        data = pickle.dumps(result, protocol=PROTOCOL)
        with send_lock:
            send_frame(sock, ("result", cid, data))


def main(argv):
    # run as a script, this file's directory heads sys.path: drop it, or
    # vine_parsl's own modules (errors, codec, ...) would shadow the task's
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        del sys.path[0]
    if len(argv) == 6 and argv[1] == "--pool":
        return pool_main(argv[2], argv[3], argv[4], float(argv[5]))
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        out = sys.stdout if len(argv) == 2 else sys.stderr
        print("usage: vine_runner.py CALLDIR", file=out)
        return EXIT_OK if len(argv) == 2 else EXIT_USAGE
    calldir = argv[1]
    try:
        func, args, kwargs, meta = load_call(calldir)
        dumps, loads = serializer(meta["serializer"])
    except Exception as exc:
        print("vine_runner: cannot load the call in '%s': %s: %s"
              % (calldir, qualified_name(type(exc)), exc), file=sys.stderr)
        import traceback
        traceback.print_exc()
        return EXIT_LOAD
    result = run_call(func, args, kwargs, dumps, loads)
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
