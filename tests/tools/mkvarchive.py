#!/usr/bin/env python3
"""mkvarchive.py - build vine-format archives for the tests, good or hostile.

An independent implementation of share/doc/archive-format.md (python3
standard library only), used to test vine-seed without vine-pack and to
cross-check the format.

    mkvarchive.py [options] -o OUT DIR         pack a directory, like vine-pack
    mkvarchive.py [options] -o OUT --spec FILE  entries from a JSON description

Options:
    --member-size N    cut members at N uncompressed bytes (default 2 MiB)
    --prefix P         prefix recorded in the manifest (default: realpath DIR)
    --no-manifest      no .vine/manifest.json entry
    --no-index         no index members (a "foreign" multi-member gzip tar)
    --bad-crc I        record a wrong crc32 for member I in the index
    --index-chunk N    at most N bytes of index data per index member
    --level N          gzip level (default 6)
    --layout           print the layout as JSON on stdout

A spec file is {"entries": [ENTRY...], "manifest": OBJECT, "raw_manifest": STRING}
where ENTRY is {"path", "type": file|dir|symlink|hardlink|fifo|chr|blk,
"data" (file contents, text), "size" (file of that many pseudo-random bytes),
"mode", "mtime", "target" (symlink/hardlink), "cut": true (start a new
member here)}.  "manifest" is written as given (its "entries" is filled in
when absent); "raw_manifest" is written byte for byte (for broken ones).
"""
import argparse
import io
import json
import os
import random
import stat
import struct
import sys
import tarfile
import zlib

MEMBER_SIZE = 2 << 20
SUB_MAX = 65531
MANIFEST = ".vine/manifest.json"


def gzip_member(data, level):
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def index_member(sub):
    assert len(sub) <= SUB_MAX
    xlen = 4 + len(sub)
    hdr = b"\x1f\x8b\x08\x04" + b"\0\0\0\0" + b"\x00\x03" + struct.pack("<H", xlen)
    return hdr + b"VX" + struct.pack("<H", len(sub)) + sub + b"\x03\x00" + b"\0" * 8


def tarinfo(path, kind, mode, mtime, size=0, target=""):
    ti = tarfile.TarInfo(path)
    ti.type = kind
    ti.mode = mode
    sec, ns = divmod(int(mtime), 10**9) if isinstance(mtime, int) and mtime > 10**12 else (int(mtime), 0)
    ti.mtime = sec
    if ns:
        ti.pax_headers = {"mtime": "%d.%09d" % (sec, ns)}
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.size = size
    ti.linkname = target
    return ti


class Writer:
    """Collects tar entries and cuts them into members at entry boundaries."""

    def __init__(self, member_size):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.member_size = member_size
        self.cuts = [0]
        self.entries = 0

    def add(self, ti, data=None, cut=False):
        pos = self.buf.tell()
        if pos > self.cuts[-1] and (cut or pos - self.cuts[-1] >= self.member_size):
            self.cuts.append(pos)
        self.tar.addfile(ti, io.BytesIO(data) if data is not None else None)
        self.entries += 1

    def finish(self):
        self.tar.close()
        return self.buf.getvalue(), self.cuts


def scan_dir(top, prefix):
    """Entries of DIR, sorted bytewise, and the manifest's file list."""
    top = os.path.realpath(top)
    pfx = prefix.encode()
    paths = []
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            paths.append(os.path.relpath(os.path.join(root, name), top))
    paths.sort(key=lambda p: p.encode("utf-8", "surrogateescape"))
    seen = {}
    out, embed = [], []
    for rel in paths:
        full = os.path.join(top, rel)
        st = os.lstat(full)
        mtime = st.st_mtime_ns
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            out.append((tarinfo(rel, tarfile.DIRTYPE, mode, mtime), None))
        elif stat.S_ISLNK(st.st_mode):
            t = os.readlink(full)
            if t.startswith(prefix + "/"):
                t = os.path.relpath(t, os.path.dirname(os.path.join(prefix, rel)))
            out.append((tarinfo(rel, tarfile.SYMTYPE, mode, mtime, target=t), None))
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in seen:
                out.append((tarinfo(rel, tarfile.LNKTYPE, mode, mtime, target=seen[key]), None))
                continue
            seen[key] = rel
            with open(full, "rb") as f:
                data = f.read()
            if pfx in data and not rel.endswith((".pyc", ".pyo")):
                embed.append({"path": rel, "type": "binary" if b"\0" in data else "text"})
            out.append((tarinfo(rel, tarfile.REGTYPE, mode, mtime, size=len(data)), data))
        else:
            print("mkvarchive: skipping special file %s" % rel, file=sys.stderr)
    embed.sort(key=lambda e: e["path"].encode())
    return out, embed


def spec_entries(spec):
    rnd = random.Random(1)
    out = []
    for e in spec.get("entries", []):
        kind = e["type"]
        mode = e.get("mode", 0o755 if kind == "dir" else 0o644)
        mtime = e.get("mtime", 1700000000)
        data = None
        if kind == "file":
            if "size" in e:
                data = rnd.randbytes(e["size"])
            else:
                data = e.get("data", "").encode()
            ti = tarinfo(e["path"], tarfile.REGTYPE, mode, mtime, size=len(data))
        elif kind == "dir":
            ti = tarinfo(e["path"], tarfile.DIRTYPE, mode, mtime)
        elif kind == "symlink":
            ti = tarinfo(e["path"], tarfile.SYMTYPE, 0o777, mtime, target=e["target"])
        elif kind == "hardlink":
            ti = tarinfo(e["path"], tarfile.LNKTYPE, mode, mtime, target=e["target"])
        elif kind in ("fifo", "chr", "blk"):
            t = {"fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE}[kind]
            ti = tarinfo(e["path"], t, mode, mtime)
            ti.devmajor, ti.devminor = (1, 3) if kind != "fifo" else (0, 0)
        else:
            raise SystemExit("mkvarchive: unknown entry type %r" % kind)
        out.append((ti, data, e.get("cut", False)))
    return out


def build(entries, manifest, args):
    w = Writer(args.member_size)
    for ti, data, cut in entries:
        w.add(ti, data, cut)
    if manifest is not None:
        if isinstance(manifest, dict):
            manifest.setdefault("entries", w.entries)
            blob = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
        else:
            blob = manifest.encode()
        w.add(tarinfo(MANIFEST, tarfile.REGTYPE, 0o644, 0, size=len(blob)), blob)
    stream, cuts = w.finish()
    bounds = cuts + [len(stream)]
    out = bytearray()
    members = []
    for i in range(len(cuts)):
        chunk = stream[bounds[i]:bounds[i + 1]]
        gz = gzip_member(chunk, args.level)
        crc = zlib.crc32(chunk)
        if args.bad_crc is not None and args.bad_crc == i:
            crc ^= 1
        members.append((len(out), len(gz), bounds[i], len(chunk), crc))
        out += gz
    x0 = len(out)
    if not args.no_index:
        idx = b"VINEIDX1" + struct.pack("<IIQ", 1, len(members), len(stream))
        for m in members:
            idx += struct.pack("<QQQQII", *m, 0)
        idx += struct.pack("<Q", x0) + b"VINEEND1"
        # the footer must be whole in the last index member's subfield
        step, body = args.index_chunk, idx[:-16]
        chunks = [body[i:i + step] for i in range(0, len(body), step)]
        if len(chunks[-1]) + 16 <= SUB_MAX:
            chunks[-1] += idx[-16:]
        else:
            chunks.append(idx[-16:])
        for c in chunks:
            out += index_member(c)
    layout = {"size": len(out), "x0off": x0, "total": len(stream),
              "members": [list(m[:4]) for m in members]}
    return bytes(out), layout


def main():
    ap = argparse.ArgumentParser(description="build vine-format archives for tests")
    ap.add_argument("-o", dest="out", required=True)
    ap.add_argument("--spec")
    ap.add_argument("--member-size", type=int, default=MEMBER_SIZE)
    ap.add_argument("--prefix")
    ap.add_argument("--no-manifest", action="store_true")
    ap.add_argument("--no-index", action="store_true")
    ap.add_argument("--bad-crc", type=int)
    ap.add_argument("--index-chunk", type=int, default=SUB_MAX)
    ap.add_argument("--level", type=int, default=6)
    ap.add_argument("--layout", action="store_true")
    ap.add_argument("dir", nargs="?")
    args = ap.parse_args()
    if not 1 <= args.index_chunk <= SUB_MAX:
        ap.error("--index-chunk must be 1..%d" % SUB_MAX)
    if args.spec:
        with open(args.spec) as f:
            spec = json.load(f)
        entries = spec_entries(spec)
        manifest = spec.get("raw_manifest", spec.get("manifest"))
    elif args.dir:
        prefix = args.prefix or os.path.realpath(args.dir)
        found, embed = scan_dir(args.dir, prefix)
        entries = [(ti, data, False) for ti, data in found]
        manifest = {"vine_manifest": 1, "prefix": prefix, "files": embed}
    else:
        ap.error("give DIR or --spec")
    if args.no_manifest:
        manifest = None
    data, layout = build(entries, manifest, args)
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, args.out)
    if args.layout:
        json.dump(layout, sys.stdout)
        print()


if __name__ == "__main__":
    main()
