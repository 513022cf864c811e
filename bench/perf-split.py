#!/usr/bin/env python3
"""bench/perf-split.py - where the CPU time of a benchmark round went.

Reads `perf script -F comm,period,ip,sym,dso` output of a system-wide
`perf record -a -g -e cpu-clock` on stdin and prints one markdown row per
category for the processes named on the command line (default vine-spread):
CPU seconds and share.  A sample belongs to the first category whose test
matches a frame of its call stack, in this order:

  hashing        SHA-256 (libcrypto)
  socket         TCP send and receive, sendfile included (loopback)
  file write     writing the copy into the cache (tmpfs page cache)
  file read      reading a file (the origin, a partial copy)
  page faults    faulting memory in
  other          everything else (state, scheduling, process start...)

Idle CPU (the swapper) is printed too: on a CPU-bound round it is near 0.
"""
import sys

RULES = [
    ("hashing", lambda f: "libcrypto" in f),
    ("socket", lambda f: any(k in f for k in ("tcp_", "sock_", "skb_", "do_sendfile", "__sys_recvfrom",
                                               "__sys_sendto", "inet_"))),
    ("file write", lambda f: any(k in f for k in ("vfs_write", "generic_perform_write", "shmem_write",
                                                   "ksys_pwrite"))),
    ("file read", lambda f: any(k in f for k in ("vfs_read", "filemap_read", "shmem_file_read",
                                                  "ksys_pread"))),
    ("page faults", lambda f: any(k in f for k in ("asm_exc_page_fault", "do_user_addr_fault"))),
]


def main():
    comms = set(sys.argv[1:]) or {"vine-spread"}
    total = {}
    idle = 0
    comm, period, frames = None, 0, []

    def flush():
        nonlocal idle
        if comm is None:
            return
        if comm == "swapper":
            idle += period
            return
        if comm not in comms:
            return
        cat = "other"
        for name, test in RULES:
            if any(test(f) for f in frames):
                cat = name
                break
        total[cat] = total.get(cat, 0) + period

    for line in sys.stdin:
        if not line.strip():
            flush()
            comm, period, frames = None, 0, []
        elif not line[0].isspace():
            parts = line.split()
            comm = parts[0]
            period = int(parts[-1]) if parts[-1].isdigit() else 0
        else:
            frames.append(line.strip())
    flush()
    busy = sum(total.values())
    for name in [r[0] for r in RULES] + ["other"]:
        ns = total.get(name, 0)
        share = 100.0 * ns / busy if busy else 0.0
        print(f"| {name} | {ns / 1e9:.2f} | {share:.0f} % |")
    print(f"| (all of {', '.join(sorted(comms))}) | {busy / 1e9:.2f} | 100 % |")
    print(f"| (idle CPU) | {idle / 1e9:.2f} | |")


if __name__ == "__main__":
    main()
