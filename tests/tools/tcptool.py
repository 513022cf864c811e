#!/usr/bin/python3
"""tests/tools/tcptool.py - TCP ends for the network test bed's own tests.

  tcptool.py serve ADDR PORT NAME    accept connections forever; to each,
                                     send NAME and a newline, then send
                                     whatever it asks for: the client
                                     writes a decimal byte count and a
                                     newline, gets that many bytes
  tcptool.py hello ADDR PORT         print what the server says first
  tcptool.py pull ADDR PORT BYTES    receive BYTES bytes; print the
                                     seconds it took (after the name line)
"""
import socket
import sys
import threading
import time


def serve(addr, port, name):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)

    def one(c):
        with c:
            c.sendall(name.encode() + b"\n")
            f = c.makefile("rb")
            line = f.readline()
            if not line.strip():
                return
            left = int(line)
            chunk = b"x" * 65536
            while left > 0:
                n = min(left, len(chunk))
                c.sendall(chunk[:n])
                left -= n

    while True:
        c, _ = s.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()


def main():
    cmd, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if cmd == "serve":
        serve(addr, port, sys.argv[4])
        return
    c = socket.create_connection((addr, port), timeout=30)
    f = c.makefile("rb")
    name = f.readline().decode().strip()
    if cmd == "hello":
        c.sendall(b"\n")
        print(name)
        return
    want = int(sys.argv[4])
    t0 = time.monotonic()
    c.sendall(b"%d\n" % want)
    got = 0
    while got < want:
        b = f.read1(1 << 20)
        if not b:
            sys.exit("connection closed after %d bytes" % got)
        got += len(b)
    print("%.3f" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
