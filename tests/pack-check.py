#!/usr/bin/python3
"""pack-check.py ARCHIVE [-v] - check a vine archive against
share/doc/archive-format.md, independently of the C code: the index members
at the end, every rule a reader checks, and each data member on its own
(gzip header, decompressed length and CRC, a tar header at its start).
Prints "ok N members" and exits 0, or prints the first problem and exits 1.
With -v, prints one line per member: index, ulen, then its entry names.
Exit 3: the archive has no index (the last bytes are not a vine footer)."""
import io
import struct
import sys
import tarfile
import zlib

MEMBER_MAX = 1 << 30


def fail(msg):
    print("pack-check: " + msg)
    sys.exit(1)


def read_index(data):
    if len(data) < 26 or data[-18:-10] != b"VINEEND1":
        print("pack-check: no vine index")
        sys.exit(3)
    if data[-10:] != b"\x03\x00" + b"\x00" * 8:
        fail("bad index member trailer")
    x0 = struct.unpack("<Q", data[-26:-18])[0]
    pos, idx, pieces = x0, b"", []
    while pos < len(data):
        h = data[pos:pos + 16]
        if h[:4] != b"\x1f\x8b\x08\x04" or h[4:8] != b"\0\0\0\0" or h[9] != 3:
            fail("bad index member header at %d" % pos)
        xlen, si1, si2, ln = struct.unpack("<HBBH", h[10:16])
        if (si1, si2) != (ord("V"), ord("X")) or xlen != ln + 4 or ln > 65531:
            fail("bad index subfield at %d" % pos)
        pieces.append(ln)
        idx += data[pos + 16:pos + 16 + ln]
        pos += 16 + ln
        if data[pos:pos + 10] != b"\x03\x00" + b"\x00" * 8:
            fail("bad index member end at %d" % pos)
        pos += 10
        # gzip itself must see an empty member
        d = zlib.decompressobj(31)
        if d.decompress(data[pos - 26 - ln:pos]) != b"" or not d.eof:
            fail("index member at %d is not an empty gzip member" % (pos - 26 - ln))
    if pos != len(data):
        fail("index members do not end at the end of the file")
    if pieces[-1] < 16:
        fail("the footer is split across index members")
    if idx[:8] != b"VINEIDX1" or struct.unpack("<I", idx[8:12])[0] != 1:
        fail("bad index magic or version")
    n, total = struct.unpack("<IQ", idx[12:24])
    if len(idx) != 24 + 40 * n + 16:
        fail("index length %d does not hold %d members" % (len(idx), n))
    if struct.unpack("<Q", idx[-16:-8])[0] != x0 or idx[-8:] != b"VINEEND1":
        fail("bad footer")
    recs = [struct.unpack("<QQQQII", idx[24 + 40 * i:64 + 40 * i]) for i in range(n)]
    return x0, total, recs


def main():
    path = sys.argv[1]
    verbose = "-v" in sys.argv[2:]
    with open(path, "rb") as f:
        data = f.read()
    x0, total, recs = read_index(data)
    coff = uoff = 0
    stream = io.BytesIO()
    for i, (c, cl, u, ul, crc, flags) in enumerate(recs):
        if c != coff or u != uoff or flags != 0 or ul > MEMBER_MAX or cl == 0:
            fail("member %d: offsets or lengths out of order" % i)
        m = data[c:c + cl]
        if m[:4] != b"\x1f\x8b\x08\x00" or m[4:8] != b"\0\0\0\0" or m[9] != 3:
            fail("member %d: gzip header is not FLG 0, MTIME 0, OS 3" % i)
        d = zlib.decompressobj(31)
        out = d.decompress(m)
        if not d.eof or d.unused_data:
            fail("member %d: not exactly one gzip member" % i)
        if len(out) != ul or zlib.crc32(out) != crc:
            fail("member %d: length or crc32 does not match the index" % i)
        try:
            tarfile.TarInfo.frombuf(out[:512], "utf-8", "surrogateescape")
        except tarfile.HeaderError as e:
            fail("member %d does not start with a tar header: %s" % (i, e))
        if verbose:
            names = []
            with tarfile.open(fileobj=io.BytesIO(out), mode="r:", errors="surrogateescape") as t:
                try:
                    for ti in t:
                        names.append(ti.name)
                except tarfile.ReadError:
                    pass  # a member ends mid-stream only before end-of-archive
            print(i, ul, " ".join(names))
        stream.write(out)
        coff += cl
        uoff += ul
    if coff != x0:
        fail("members end at %d, index starts at %d" % (coff, x0))
    if uoff != total:
        fail("members hold %d bytes, index says %d" % (uoff, total))
    s = stream.getvalue()
    if s[-1024:] != b"\0" * 1024:
        fail("the last member does not end with the end-of-archive blocks")
    print("ok %d members" % len(recs))


main()
