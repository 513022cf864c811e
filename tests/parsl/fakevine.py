#!/usr/bin/env python3
"""A test double of vine-submit, vine-worker, vine-collect and vine-status
(vine(7), "Conventions shared by every program"), chosen by the name it is run under (tests link it as
each).  It keeps its state in the directory STATE.fake, under one flock, and
runs one task at a time.  It exists to drive VineExecutor's logic (batching,
failure paths, shutdown) deterministically and to inject faults; the same
tests also run against the real programs when they are built.

FAKEVINE_NO_OUTDIR=1 in the worker's environment runs tasks without
VINE_OUTDIR (a worker that ships nothing back; the runner then writes beside
the call).
"""

import fcntl
import getopt
import json
import os
import shutil
import signal
import subprocess
import sys
import time

PROG = os.path.basename(sys.argv[0])


def die(msg, code=1):
    print("%s: %s" % (PROG, msg), file=sys.stderr)
    sys.exit(code)


class State:
    def __init__(self, path):
        self.dir = path + ".fake"
        os.makedirs(os.path.join(self.dir, "tasks"), exist_ok=True)
        self.lockf = open(os.path.join(self.dir, "lock"), "a")

    def __enter__(self):
        fcntl.flock(self.lockf, fcntl.LOCK_EX)
        return self

    def __exit__(self, *a):
        fcntl.flock(self.lockf, fcntl.LOCK_UN)

    def ids(self):
        return sorted(int(x) for x in os.listdir(os.path.join(self.dir, "tasks")))

    def task(self, tid):
        with open(os.path.join(self.dir, "tasks", str(tid), "task.json")) as f:
            return json.load(f)

    def put(self, tid, t):
        d = os.path.join(self.dir, "tasks", str(tid))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "task.json.tmp"), "w") as f:
            json.dump(t, f)
        os.replace(os.path.join(d, "task.json.tmp"), os.path.join(d, "task.json"))


def parse(shortopts, longopts=()):
    try:
        opts, args = getopt.gnu_getopt(sys.argv[1:], shortopts, list(longopts))
    except getopt.GetoptError as e:
        die("%s\nusage: see vine(7)" % e, 2)
    o = {}
    for k, v in opts:
        o[k] = v
    state = o.get("-s") or os.environ.get("VINE_STATE") or "vine.db"
    return o, args, state


def submit():
    o, args, state = parse("s:e:n:r:t:", ["tag="])
    src = sys.stdin if not args or args[0] == "-" else open(args[0])
    lines, cur = [], ""
    for raw in src.read().split("\n"):
        if raw.endswith("\\"):
            cur += raw[:-1]
            continue
        line, cur = cur + raw, ""
        if line.strip() and not line.lstrip().startswith("#"):
            lines.append(line)
    if o.get("-e") and not os.path.exists(o["-e"]):
        die("cannot use archive '%s': No such file or directory" % o["-e"])
    opts = {"env": o.get("-e"), "cores": int(o.get("-n", 1)),
            "retries": int(o.get("-r", 0)), "timeout": int(o.get("-t", 0)), "tag": o.get("--tag")}
    with State(state) as st:
        base = (st.ids() or [0])[-1]
        out = []
        for i, line in enumerate(lines):
            tid = base + 1 + i
            st.put(tid, {"cmd": line, "opts": opts, "state": "ready", "attempts": 0})
            out.append(str(tid))
    for tid in out:
        print(tid)


def status():
    o, args, state = parse("s:", ["json"])
    counts = {"ready": 0, "running": 0, "done": 0, "failed": 0, "cancelled": 0}
    with State(state) as st:
        for tid in st.ids():
            counts[st.task(tid)["state"]] += 1
    print(json.dumps({"tasks": counts, "workers": [], "objects": []}))


def worker():
    o, args, state = parse("s:c:N:n:i:")
    idle = float(o.get("-i", 60))
    node = o.get("-N") or os.environ.get("VINE_NODE") or "fakenode"
    last_work = time.monotonic()
    st = State(state)
    while True:
        claimed = None
        with st:
            busy = False
            for tid in st.ids():
                t = st.task(tid)
                if t["state"] == "ready" and claimed is None:
                    t["state"] = "running"
                    t["attempts"] += 1
                    st.put(tid, t)
                    claimed = (tid, t)
                elif t["state"] == "running":
                    busy = True
        if claimed is None:
            if not busy and time.monotonic() - last_work >= idle:
                return
            time.sleep(0.05)
            continue
        run_task(st, node, *claimed)
        last_work = time.monotonic()


def run_task(st, node, tid, t):
    d = os.path.join(st.dir, "tasks", str(tid))
    outdir = os.path.join(d, "out")
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    env = dict(os.environ, VINE_TASK_ID=str(tid), VINE_OUTDIR=outdir, VINE_NODE=node,
               VINE_CORES=str(t["opts"]["cores"]), VINE_ENV=t["opts"]["env"] or "")
    if os.environ.get("FAKEVINE_NO_OUTDIR"):
        del env["VINE_OUTDIR"]
    with open(os.path.join(d, "stdout"), "wb") as so, open(os.path.join(d, "stderr"), "wb") as se:
        p = subprocess.Popen(["sh", "-c", t["cmd"]], stdout=so, stderr=se, env=env,
                             start_new_session=True)
        try:
            rc = p.wait(timeout=t["opts"]["timeout"] or None)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            rc = p.wait()
    exit = "signal %d" % -rc if rc < 0 else str(rc)
    with st:
        t = st.task(tid)
        t["exit"] = exit
        if rc == 0:
            t["state"] = "done"
        elif t["attempts"] <= t["opts"]["retries"]:
            t["state"] = "ready"
        else:
            t["state"] = "failed"
        st.put(tid, t)


def collect():
    o, args, state = parse("s:wo:j:")
    outdir = o.get("-o")
    while True:
        all_ok, waiting = True, False
        with State(state) as st:
            for tid in st.ids():
                t = st.task(tid)
                if t["state"] in ("ready", "running"):
                    all_ok, waiting = False, True
                    continue
                if t["state"] != "done":
                    all_ok = False
                if outdir:
                    write_task(st, outdir, tid, t)
        if not waiting or "-w" not in o:
            break
        time.sleep(0.05)
    sys.exit(0 if all_ok else 1)


def write_task(st, outdir, tid, t):
    src = os.path.join(st.dir, "tasks", str(tid))
    dst = os.path.join(outdir, str(tid))
    if os.path.exists(os.path.join(dst, "exit")):
        return
    os.makedirs(dst, exist_ok=True)
    for name in ("stdout", "stderr"):
        shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
    if os.path.isdir(os.path.join(src, "out")):
        shutil.copytree(os.path.join(src, "out"), dst, dirs_exist_ok=True)
    with open(os.path.join(dst, "cmd"), "w") as f:
        f.write(t["cmd"] + "\n")
    with open(os.path.join(dst, "exit"), "w") as f:
        f.write(t["exit"] + "\n")


if __name__ == "__main__":
    {"vine-submit": submit, "vine-status": status, "vine-worker": worker,
     "vine-collect": collect}.get(PROG, lambda: die("run me as vine-submit, -status, "
                                                     "-worker or -collect", 2))()
