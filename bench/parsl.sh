#!/bin/sh
# bench/parsl.sh - Parsl apps through VineExecutor (warm pools) beside
# Parsl's HighThroughputExecutor, in the same run on the same machine:
# 200 trivial apps (wall time from parsl.load, worker start included), a
# chain of 20 dependent apps (seconds a hop), 10,000 apps (seconds an app),
# and 200 apps again with 10,000 finished tasks already in the state.
# Two worker slots for both (HTEX max_workers_per_node=2, vine-worker -n 2).
#
# Needs Parsl: installed, else PARSL_VENDOR (default ../shared/vendor beside
# the repository) with Debian's /usr/bin/python3 and the Python packages of
# `sh share/install-deps.sh check`.  RUNS (default 3) runs of each row.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
: "${VINE_BIN:?set VINE_BIN to the built programs}"
RUNS=${RUNS:-3}
BIG=${BIG:-10000}
export PATH="$VINE_BIN:$PATH"
export BENCH_WORK="${BENCH_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/vine-bench-parsl.XXXXXX")}"
mkdir -p "$BENCH_WORK"
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX="$BENCH_WORK/pycache"
export PYTHONPATH="$here/../share/python${PYTHONPATH:+:$PYTHONPATH}"
py=python3
if ! python3 -c 'import parsl' 2>/dev/null; then
	v=$(cd "${PARSL_VENDOR:-$here/../../shared/vendor}" && pwd)
	export PYTHONPATH="$PYTHONPATH:$v/parsl:$v/pydeps"
	py=/usr/bin/python3
	# what Parsl's setup.py would install on PATH, for HTEX
	mkdir -p "$BENCH_WORK/bin"
	for s in interchange.py process_worker_pool.py; do
		printf '#!/bin/sh\nexec /usr/bin/python3 %s "$@"\n' \
			"$v/parsl/parsl/executors/high_throughput/$s" >"$BENCH_WORK/bin/$s"
		chmod +x "$BENCH_WORK/bin/$s"
	done
	export PATH="$BENCH_WORK/bin:$PATH"
fi
$py -c 'import parsl' # compile once, outside the timings

one() { # KIND APPS CHAIN [STATE]: one line of parsl_run.py
	(cd "$BENCH_WORK" && $py "$here/parsl_run.py" "$@") 2>>"$BENCH_WORK/errors.log"
}
fresh_state() { # the executor's first vine-submit makes it; the worker waits for it
	rm -rf "$BENCH_WORK"/s.db*
	echo "$BENCH_WORK/s.db"
}

echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
# the load every 30 s while it runs, on standard error
(while sleep 30; do echo "load average $(date -u +%T): $(cut -d' ' -f1-3 /proc/loadavg)" >&2
 done) &
sampler=$!
trap 'kill $sampler 2>/dev/null' EXIT
echo "| executor | apps | wall s | s an app | s a hop (chain of 20) |"
echo "|---|---|---|---|---|"
for r in $(seq "$RUNS"); do
	for kind in htex vine; do
		set -- $(one "$kind" 200 20 "$(fresh_state)")
		echo "| $1 | $2 | $3 | $4 | $5 |"
	done
done
for kind in htex vine; do
	set -- $(one "$kind" "$BIG" 20 "$(fresh_state)")
	echo "| $1 | $2 | $3 | $4 | $5 |"
done
# a state that already holds $BIG finished tasks
st=$(fresh_state)
seq "$BIG" | sed 's/.*/true/' | vine-submit -s "$st" - >/dev/null
t0=$(date +%s)
vine-worker -s "$st" -n 2 -i 0 2>/dev/null
echo "($BIG finished tasks made in $(($(date +%s) - t0)) s)"
set -- $(one vine 200 20 "$st")
echo "| $1 (state with $BIG finished tasks) | $2 | $3 | $4 | $5 |"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
