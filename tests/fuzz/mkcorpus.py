#!/usr/bin/env python3
"""mkcorpus.py - write the seed corpora of the fuzz harnesses.

    python3 tests/fuzz/mkcorpus.py [OUTDIR]      (default: tests/fuzz/corpus)

One directory per harness (NAME without "fuzz-"), small files named for
what they hold.  Archives are built with tests/tools/mkvarchive.py, an
independent writer of the vine format.  The output is deterministic: run
it again after changing it and commit the result.  Reproducers of bugs
the fuzzers found are not made here: they are committed as found, named
crash-* or hang-*, and this script leaves them alone.
"""
import hashlib
import importlib.util
import io
import json
import os
import struct
import sys
import tarfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("mkvarchive", os.path.join(HERE, "..", "tools", "mkvarchive.py"))
mkv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mkv)

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")


def write(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


class Args:
    member_size = 2 << 20
    no_index = False
    bad_crc = None
    index_chunk = mkv.SUB_MAX
    level = 6


def archive(entries, manifest=None, **kw):
    a = Args()
    for k, v in kw.items():
        setattr(a, k, v)
    ents = mkv.spec_entries({"entries": entries})
    data, _ = mkv.build(ents, manifest, a)
    return data


PREFIX = "/opt/a/rather/long/prefix/of/the/packed/env"


def env_entries():
    return [
        {"path": "bin", "type": "dir"},
        {"path": "bin/python3", "type": "file", "mode": 0o755, "data": "#!%s/bin/python3.11\nprint(1)\n" % PREFIX},
        {"path": "bin/python", "type": "symlink", "target": "python3"},
        {"path": "bin/tool", "type": "file", "mode": 0o755,
         "data": "#!%s/bin/python3 -E\nimport sys\n" % (PREFIX + "/x" * 60)},
        {"path": "lib", "type": "dir", "mode": 0o700},
        {"path": "lib/libx.so", "type": "file", "data": "\x7fELF\0%s/lib\0rpath=%s/lib:%s/lib64\0end" % (PREFIX, PREFIX, PREFIX)},
        {"path": "lib/site.py", "type": "file", "data": "PREFIX = '%s'\nX = '%s/lib'\n" % (PREFIX, PREFIX), "cut": True},
        {"path": "lib/same.py", "type": "hardlink", "target": "lib/site.py"},
        {"path": "share/doc/readme", "type": "file", "data": "no prefix here\n"},
    ]


def env_manifest(prefix=PREFIX, files=None):
    return {"vine_manifest": 1, "prefix": prefix, "files": files if files is not None else [
        {"path": "bin/python3", "type": "text"},
        {"path": "bin/tool", "type": "text"},
        {"path": "lib/libx.so", "type": "binary"},
        {"path": "lib/site.py", "type": "text"},
    ]}


def archives():
    """name -> bytes: good and hostile archives for the index and extract harnesses"""
    a = {}
    a["env"] = archive(env_entries(), env_manifest())
    a["env-small-members"] = archive(env_entries(), env_manifest(), member_size=600)
    a["env-split-index"] = archive(env_entries(), env_manifest(), member_size=600, index_chunk=50)
    a["env-foreign"] = archive(env_entries(), env_manifest(), no_index=True)
    a["env-bad-crc"] = archive(env_entries(), env_manifest(), bad_crc=0)
    a["env-short-prefix"] = archive(env_entries(), env_manifest(prefix="/u"))
    a["no-manifest"] = archive(env_entries()[:4])
    m = json.dumps(dict(env_manifest(files=[]), entries=0))
    a["manifest-not-last"] = archive([{"path": ".vine/manifest.json", "type": "file", "data": m},
                                      {"path": "a", "type": "file", "data": "x"}])
    ents = [{"path": "a", "type": "file", "data": PREFIX}]
    a["manifest-lies"] = archive(ents, dict(env_manifest(files=[{"path": "a", "type": "text"}]), entries=7))
    a["manifest-missing-file"] = archive(ents, env_manifest(files=[{"path": "nope", "type": "text"}]))
    a["manifest-raw-bad"] = archive(ents, '{"vine_manifest": 1, "prefix": "/p", "files": [')
    a["dotdot"] = archive([{"path": "../evil", "type": "file", "data": "x"}])
    a["absolute"] = archive([{"path": "/tmp/evil", "type": "file", "data": "x"}])
    a["symlink-escape"] = archive([{"path": "l", "type": "symlink", "target": ".."},
                                   {"path": "l/evil", "type": "file", "data": "x"}])
    a["symlink-abs"] = archive([{"path": "l", "type": "symlink", "target": "/tmp"},
                                {"path": "l/evil", "type": "file", "data": "x"}])
    a["hardlink-escape"] = archive([{"path": "h", "type": "hardlink", "target": "../planted"}])
    a["fifo"] = archive([{"path": "f", "type": "fifo"}])
    a["device"] = archive([{"path": "d", "type": "chr"}])
    a["duplicate-file"] = archive([{"path": "a", "type": "file", "data": "1"}, {"path": "a", "type": "file", "data": "2"}])
    a["duplicate-dir"] = archive([{"path": "d", "type": "dir"}, {"path": "d", "type": "dir"}])
    a["dot-entry"] = archive([{"path": ".", "type": "dir", "mode": 0o777}, {"path": "a", "type": "file", "data": "x"}])
    a["setuid"] = archive([{"path": "s", "type": "file", "mode": 0o4755, "data": "x"}])
    a["mode-zero-dir"] = archive([{"path": "d", "type": "dir", "mode": 0}, {"path": "d/f", "type": "file", "data": "x"}])
    a["deep"] = archive([{"path": "/".join(["d"] * n), "type": "dir"} for n in range(1, 40)])
    # a gzip member of zero blocks, and one of nothing
    a["zero-blocks"] = mkv.gzip_member(b"\0" * 10240, 6)
    a["empty-gzip"] = mkv.gzip_member(b"", 6)
    a["not-gzip"] = b"this is not an archive\n"
    a["empty"] = b""
    tail = a["env"]
    a["truncated-index"] = tail[:-30]
    a["truncated-data"] = tail[:len(tail) // 2]
    return a


def index_and_extract():
    for name, data in archives().items():
        write("index", name, data)
        write("extract", name, data)
    # index only: index members with records that lie
    body = b"x" * 40
    idx = b"VINEIDX1" + struct.pack("<IIQ", 1, 1, 10) + struct.pack("<QQQQII", 0, 40, 0, 10, 0, 0)
    idx += struct.pack("<Q", 40) + b"VINEEND1"
    write("index", "lying-record", body + mkv.index_member(idx))
    idx0 = b"VINEIDX1" + struct.pack("<IIQ", 1, 0, 0) + struct.pack("<Q", 40) + b"VINEEND1"
    write("index", "no-members", body + mkv.index_member(idx0))
    big = b"VINEIDX1" + struct.pack("<IIQ", 1, 0xffffffff, 0) + struct.pack("<Q", 40) + b"VINEEND1"
    write("index", "huge-count", body + mkv.index_member(big))


def manifests():
    m = env_manifest()
    m["entries"] = 9
    write("manifest", "good", json.dumps(m, indent=1))
    write("manifest", "empty-files", '{"vine_manifest":1,"prefix":"/p","entries":0,"files":[]}')
    write("manifest", "bad-version", '{"vine_manifest":2,"prefix":"/p","entries":0,"files":[]}')
    write("manifest", "relative-prefix", '{"vine_manifest":1,"prefix":"p","entries":0,"files":[]}')
    write("manifest", "root-prefix", '{"vine_manifest":1,"prefix":"/","entries":0,"files":[]}')
    write("manifest", "nul-prefix", '{"vine_manifest":1,"prefix":"/p\\u0000q","entries":0,"files":[]}')
    write("manifest", "dotdot", '{"vine_manifest":1,"prefix":"/p","entries":1,"files":[{"path":"a/../../b","type":"text"}]}')
    write("manifest", "dot-paths", '{"vine_manifest":1,"prefix":"/p","entries":1,"files":[{"path":"./a//b/./c/","type":"binary"}]}')
    write("manifest", "absolute", '{"vine_manifest":1,"prefix":"/p","entries":1,"files":[{"path":"/etc/passwd","type":"text"}]}')
    write("manifest", "bad-type", '{"vine_manifest":1,"prefix":"/p","entries":1,"files":[{"path":"a","type":"exe"}]}')
    write("manifest", "duplicate-key", '{"vine_manifest":1,"vine_manifest":1,"prefix":"/p","entries":0,"files":[]}')
    write("manifest", "negative-entries", '{"vine_manifest":1,"prefix":"/p","entries":-1,"files":[]}')
    write("manifest", "not-object", '[1,2,3]')
    write("manifest", "truncated", '{"vine_manifest":1,"prefix":"/p","entries":0,"files":[{"path":"a"')
    write("manifest", "unicode", '{"vine_manifest":1,"prefix":"/p\\u00e9","entries":1,"files":[{"path":"\\u00e9/\\ud83d\\ude00","type":"text"}]}')


def tasklists():
    write("tasklist", "simple", "echo a\necho b\n")
    write("tasklist", "comments-blank", "# a comment\n\n   \n  # indented comment\necho x\n")
    write("tasklist", "continued", "echo a \\\n  b \\\n  c\necho d\n")
    write("tasklist", "escaped-backslash", "echo a\\\\\necho b\\\\\\\necho c\n")
    write("tasklist", "crlf", "echo a\r\necho b\\\r\n c\r\n")
    write("tasklist", "no-final-newline", "echo a\necho b\\")
    write("tasklist", "nul", "echo a\necho \0b\n")
    write("tasklist", "only-continuations", "\\\n\\\n\\\n")
    write("tasklist", "binary", bytes(range(1, 256)) + b"\n")
    write("tasklist", "long-line", "echo " + "x" * 3000 + "\n")


# ---- the state protocol -------------------------------------------------

ORIGIN_ID = hashlib.sha256(b"vine fuzz origin\n").hexdigest()


def frame(ftype, fid, body=b""):
    if isinstance(body, str):
        body = body.encode()
    return struct.pack(">IcI", len(body) + 5, ftype.encode(), fid) + body


def q(fid, obj):
    return frame("Q", fid, json.dumps(obj, separators=(",", ":")))


def states():
    W = {"worker": 1}
    reqs = {
        "counts": {"op": "counts"},
        "open-again": {"op": "open", "create": True},
        "submit": {"op": "submit", "specs": [{"cmd": "echo c", "cores": 1, "retries": 2, "timeout": 1.5, "tag": "x"}]},
        "submit-object": {"op": "submit", "once": "k" * 32, "object": {"id": ORIGIN_ID, "size": 17, "origin": "/nonexistent"},
                          "specs": [{"cmd": "true", "object": ORIGIN_ID, "cores": 1}]},
        "submit-bad": {"op": "submit", "specs": [{"cmd": "", "cores": 0}]},
        "requeue": {"op": "requeue_failed", "retries": 1},
        "list-objects": {"op": "list_objects"},
        "register": {"op": "register_worker", "info": {"node": "n3", "host": "h", "pid": 3, "cores": 2, "lease": 10}},
        "heartbeat": {"op": "heartbeat", "worker": 1, "running": [{"task": 2, "attempt": 1}, {"task": 1, "attempt": 1}]},
        "claim": {"op": "finish_claim", "worker": 2, "free_cores": 1, "total_cores": 1, "max": 5, "results": []},
        "claim-max": {"op": "finish_claim", "worker": 2, "free_cores": 1, "total_cores": 1, "max": 9223372036854775807, "results": []},
        "finish": {"op": "finish_claim", "worker": 1, "free_cores": 4, "total_cores": 4, "max": 0,
                   "results": [{"task": 2, "attempt": 1, "outcome": "signaled", "exit_code": 0, "signal": 9, "started": 1, "ended": 3},
                               {"task": 1, "attempt": 1, "outcome": "error", "exit_code": 0, "signal": 0, "started": 0, "ended": 0, "message": "m"}]},
        "unregister": {"op": "unregister_worker", "worker": 1},
        "reap": {"op": "reap"},
        "list-workers": {"op": "list_workers"},
        "list-tasks": {"op": "list_tasks", "after": 0, "limit": 100},
        "list-attempts": {"op": "list_attempts", "task": 1},
        "list-files": {"op": "list_files", "task": 1, "attempt": 1},
        "peer-secret": {"op": "peer_secret"},
        "spread-settings": {"op": "spread_settings", "set": {"k_peer": 3, "k_origin": 2, "relay": 0}},
        "node-listen": {"op": "node_listen", "node": "n1", "addr": None},
        "transfer-begin": {"op": "transfer_begin", "id": ORIGIN_ID, "dest": "n3", "offset": 0, "once": "o" * 32},
        "transfer-progress": {"op": "transfer_progress", "xfer": 1, "bytes": 5},
        "transfer-end": {"op": "transfer_end", "xfer": 1, "status": 0, "bytes": 17, "msg": None},
        "replica-set": {"op": "replica_set", "id": ORIGIN_ID, "node": "n2", "bytes": 4, "complete": 0},
        "list-transfers": {"op": "list_transfers"},
        "origin-read": {"op": "origin_read", "id": ORIGIN_ID, "offset": 2, "len": 10, "skip": 1},
        "unknown": {"op": "frobnicate"},
        "no-op": {"x": 1},
    }
    for name, obj in reqs.items():
        write("state", name, q(1, obj))
    write("state", "get-file", q(1, {"op": "get_file", "task": 1, "attempt": 1, "name": "stdout", "skip": 1}))
    put = {"op": "put_file", "worker": 1, "task": 2, "attempt": 1, "name": "out/a/b", "size": 4}
    write("state", "put-file", q(1, put) + frame("D", 1, "ab") + frame("D", 1, "cd") + frame("Z", 1))
    write("state", "put-file-abandoned", q(1, put) + frame("D", 1, "ab") + frame("E", 1, '{"error":"x"}'))
    write("state", "put-file-bad-args", q(1, {"op": "put_file", "name": "stdout"}) + frame("D", 1, "ab") + frame("Z", 1))
    write("state", "unknown-with-stream", q(5, {"op": "x"}) + frame("D", 5, "ab") + frame("Z", 5) + q(6, {"op": "counts"}))
    write("state", "bad-json", frame("Q", 1, "{not json") + q(2, {"op": "counts"}))
    write("state", "data-first", frame("D", 1, "x"))
    write("state", "session", q(1, reqs["claim"]) + q(2, reqs["heartbeat"]) + q(3, reqs["finish"]) +
          q(4, reqs["requeue"]) + q(5, reqs["list-tasks"]) + q(6, reqs["reap"]) + q(7, reqs["counts"]))
    write("state", "huge-length", b"\x7f\xff\xff\xffQ\0\0\0\1{}")
    hello = frame("H", 0, "vine-state 1")
    write("state", "raw-hello-create", b"\xff" + hello + q(1, {"op": "open", "create": True}) + q(2, reqs["counts"]))
    write("state", "raw-no-open", b"\xff" + hello + q(1, reqs["counts"]))
    write("state", "raw-bad-hello", b"\xff" + frame("H", 0, "vine-state 99"))
    write("state", "raw-greeting", b"\xffWelcome to the cluster!\n" + hello)


# ---- the peer protocol ---------------------------------------------------

OBJ_LEN = 5000
OBJ = bytes(b"vine fuzz object\n"[i % 17] for i in range(OBJ_LEN))
OBJ_ID = hashlib.sha256(OBJ).hexdigest()
ORPHAN = "1" * 64
LIVE = "2" * 64


def pf(t, payload=b""):
    return struct.pack(">BI", t, len(payload)) + payload


def get(oid, off=0, length=0):
    return pf(16, oid.encode() + struct.pack(">QQ", off, length))


def err(code, msg):
    return pf(5, struct.pack(">H", code) + msg.encode())


def obj(complete, size):
    return pf(17, struct.pack(">BQ", complete, size))


def end(complete, size):
    return pf(19, struct.pack(">BQ", complete, size))


def peers():
    s = "peer-server"
    write(s, "get-whole", b"\0" + get(OBJ_ID))
    write(s, "get-range", b"\0" + get(OBJ_ID, 100, 200))
    write(s, "get-two", b"\0" + get(OBJ_ID, 4990) + get(OBJ_ID, 0, 1))
    write(s, "get-at-end", b"\0" + get(OBJ_ID, OBJ_LEN))
    write(s, "get-past-end", b"\0" + get(OBJ_ID, OBJ_LEN + 1))
    write(s, "get-overflow", b"\0" + get(OBJ_ID, 2**64 - 2, 5))
    write(s, "get-orphan", b"\0" + get(ORPHAN, 500))
    write(s, "get-orphan-past", b"\0" + get(ORPHAN, 1000))
    write(s, "get-live", b"\0" + get(LIVE, 0, 100) + get(LIVE, 2990))
    write(s, "get-missing", b"\0" + get("3" * 64))
    write(s, "get-not-id", b"\0" + get("../" + "x" * 61))
    write(s, "get-upper", b"\0" + get(OBJ_ID.upper()))
    write(s, "not-get", b"\0" + pf(1, b"x" * 44))
    write(s, "short-get", b"\0" + pf(16, b"a" * 10))
    write(s, "big-frame", b"\0" + struct.pack(">BI", 16, 2**31))
    hello = pf(1, b"VINEPEER" + struct.pack(">HH", 1, 1) + b"\xc1" * 32)
    write(s, "raw-hello", b"\1" + hello)
    write(s, "raw-hello-auth", b"\1" + hello + pf(3, b"\0" * 32))
    write(s, "raw-hello-v2", b"\1" + pf(1, b"VINEPEER" + struct.pack(">HH", 2, 3) + b"\0" * 32))
    write(s, "raw-not-peer", b"\1GET / HTTP/1.0\r\n\r\n")

    c = "peer-client"
    whole = obj(1, OBJ_LEN) + pf(18, OBJ[:3000]) + pf(18, OBJ[3000:]) + end(1, OBJ_LEN)
    write(c, "whole", b"\0" + whole)
    write(c, "whole-recv", b"\x08" + whole)
    write(c, "resume", b"\x02" + obj(1, OBJ_LEN) + pf(18, OBJ[1000:]) + end(1, OBJ_LEN))
    write(c, "resume-range", b"\x02" + err(9, "offset beyond the end") + whole)
    write(c, "relayed", b"\0" + obj(0, 100) + pf(18, OBJ[:100]) + pf(18, OBJ[100:]) + end(1, OBJ_LEN))
    write(c, "corrupt", b"\0" + obj(1, OBJ_LEN) + pf(18, b"x" * OBJ_LEN) + end(1, OBJ_LEN))
    write(c, "too-much", b"\0" + obj(1, 10) + pf(18, OBJ[:20]) + end(1, 20))
    write(c, "max-size", b"\x04" + obj(1, OBJ_LEN) + pf(18, OBJ) + end(1, OBJ_LEN))
    write(c, "max-size-partial", b"\x04" + obj(0, 0) + pf(18, OBJ) + end(1, OBJ_LEN))
    write(c, "short-end", b"\0" + obj(1, OBJ_LEN) + pf(18, OBJ[:10]) + end(1, 10))
    write(c, "cut", b"\0" + obj(1, OBJ_LEN) + struct.pack(">BI", 18, 4000) + OBJ[:100])
    write(c, "empty-data", b"\0" + obj(1, OBJ_LEN) + pf(18))
    write(c, "huge-data", b"\0" + obj(1, OBJ_LEN) + struct.pack(">BI", 18, 2**31))
    for code, name in [(1, "auth"), (2, "version"), (3, "busy"), (4, "notfound"), (5, "badreq"),
                       (6, "stalled"), (7, "gone"), (8, "io"), (9, "range"), (99, "unknown")]:
        write(c, "error-" + name, b"\0" + err(code, "the peer says \x01\xff " + name))
    write(c, "error-short", b"\0" + pf(5, b"\0"))
    write(c, "raw-challenge", b"\1" + pf(2, struct.pack(">H", 1) + b"\x5e" * 32) + pf(4, b"\0" * 36))
    write(c, "raw-challenge-v2", b"\1" + pf(2, struct.pack(">H", 2) + b"\x5e" * 32))
    write(c, "raw-busy", b"\1" + err(3, "busy"))
    write(c, "raw-data", b"\1" + pf(18, b"x"))


def main():
    index_and_extract()
    manifests()
    tasklists()
    states()
    peers()


if __name__ == "__main__":
    main()
