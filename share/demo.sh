#!/bin/sh
# share/demo.sh - the main job of vine, end to end on this one machine:
# pack a real Python environment, submit a task list that uses it, run two
# workers as two simulated nodes, collect and show the results.
# make demo runs it with VINE_BIN set to the freshly built programs.
set -eu
: "${VINE_BIN:?run through make demo}"
export PATH="$VINE_BIN:$PATH"
W=${VINE_DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/vine-demo.XXXXXX")}
mkdir -p "$W"
cd "$W"
unset VINE_STATE VINE_CACHE VINE_NODE
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. a real Python environment: a venv (with pip) made with --copies"
/usr/bin/python3 -m venv --copies "$W/env"
"$W/env/bin/python3" -c 'import sys; print("python", sys.version.split()[0], "at", sys.prefix)'

say "2. vine-pack: one relocatable archive; its object id is its sha256"
vine-pack -o "$W/env.tar.gz" "$W/env"
ls -l "$W/env.tar.gz"
rm -rf "$W/env"
echo "(the original environment is deleted: the tasks only have the archive)"

say "3. a task list: one shell command per line"
cat >tasks.txt <<'TASKS'
# each task runs in the seeded environment: python3 is the env's interpreter
python3 -c 'import sys, os; print("task", os.environ["VINE_TASK_ID"], "on", os.environ["VINE_NODE"], "python from", sys.prefix)'
python3 -c 'import json, os; json.dump({"squares": [i*i for i in range(10)]}, open(os.environ["VINE_OUTDIR"] + "/squares.json", "w")); print("wrote squares.json")'
python3 -c 'import hashlib; print(hashlib.sha256(b"vine" * 1000000).hexdigest())'
pip --version
sh -c 'echo "a shell pipeline" | tr a-z A-Z'
python3 -c 'import sys; print("this task fails on purpose", file=sys.stderr); sys.exit(3)'
TASKS
for i in $(seq 1 14); do
	echo "python3 -c 'import math, time; time.sleep(0.1); print(\"task $i:\", sum(math.sqrt(k) for k in range($i * 100000)))'"
done >>tasks.txt
cat tasks.txt | head -8; echo "... ($(grep -c . tasks.txt) lines)"

say "4. vine-submit: one task id per line"
vine-submit -s run.db -e "$W/env.tar.gz" -r 0 tasks.txt | tr '\n' ' '; echo

say "5. two workers as two simulated nodes (own names and caches), 2 cores each"
vine-worker -s run.db -N node1 -c "$W/cache-node1" -n 2 -i 0 2>"$W/worker1.log" &
w1=$!
vine-worker -s run.db -N node2 -c "$W/cache-node2" -n 2 -i 0 2>"$W/worker2.log" &
w2=$!

say "6. vine-collect: wait, gather results and a GNU parallel style joblog"
rc=0
vine-collect -s run.db -w -o results -j joblog || rc=$?
wait "$w1" "$w2" || true
echo "vine-collect exit status: $rc (1: one task fails on purpose)"

say "7. the results"
vine-status -s run.db
echo
column -t -s "$(printf '\t')" joblog 2>/dev/null || cat joblog
echo
for t in 1 2 4 6; do
	echo "--- results/$t/cmd: $(cat results/$t/cmd)"
	sed 's/^/    stdout: /' results/$t/stdout
	sed 's/^/    stderr: /' results/$t/stderr
	echo "    exit: $(cat results/$t/exit)"
done
echo "--- results/2/squares.json: $(cat results/2/squares.json)"
echo
echo "environments unpacked once per node:"
ls -d "$W"/cache-node*/env/* 2>/dev/null || true
echo
echo "demo directory: $W"
