#!/bin/sh
# bench/spread.sh - the packed TESTBED venv (bench/mkvenv.sh) to 8 simulated
# nodes on this host (own cache, own loopback address, own name each):
#   vine       vine-spread -s STATE, relaying partial copies (the default)
#   vine-norelay  the same with vine-submit --no-relay
#   direct     8 nodes each copying from the origin at once: cat alone (no
#              check), and vine-spread --origin (copy + SHA-256 by
#              libcrypto, the check vine's fetch does)
# Ready = object fetched and verified.  Bytes read from the origin: the
# state's counters for vine, 8 x size for direct.  RUNS repetitions
# (default 2); everything on a private tmpfs.  Prints markdown tables.
# Then, if perf works here, one more round of each under `perf record -a`
# and where their CPU time went (bench/perf-split.py): what dominates.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
RUNS=${RUNS:-2}
NODES=${NODES:-8}
. "$here/lib.sh"
bench_enter "$0"
T=$BENCH_WORK/tmpfs
spread_object
origin=$T/env.tar.gz
trap stop_servers EXIT

direct_cat() {
	w=
	for n in $(seq "$NODES"); do
		mkdir -p "$T/d$n"
		cat "$T/env.tar.gz" >"$T/d$n/obj" &
		w="$w $!"
	done
	for p in $w; do wait "$p"; done
}

echo "## spread: $(echo "scale=1; $size / 1000000" | bc) MB packed object to $NODES nodes, $(nproc) cores, $RUNS runs, loopback, tmpfs"
spread_table_head
path_rounds direct_cat "cat from the origin"

# where the CPU went: one more round of each under perf (system-wide, all
# CPUs, call stacks), split by bench/perf-split.py
profile() {
	perf record -q -a -g -e cpu-clock -F 1000 -o "$T/perf.data" 2>/dev/null &
	pp=$!
	sleep 0.5
	"$@" >/dev/null
	kill -INT "$pp"
	wait "$pp" || true
	perf script -i "$T/perf.data" -F comm,period,ip,sym,dso 2>/dev/null | python3 "$here/perf-split.py" vine-spread
}
if perf record -q -e cpu-clock -o "$T/perf.data" true 2>/dev/null; then
	rm -f "$T"/st-prof*
	echo true | vine-submit -s "$T/st-prof.db" -e "$T/env.tar.gz" >/dev/null
	echo
	echo "CPU time of the vine-spread processes in one more round of each, by what it was spent on (perf record -a, bench/perf-split.py):"
	echo
	echo "| vine-spread -s (relay): spent on | CPU s | share |"
	echo "|---|---|---|"
	fresh
	profile vine_round "$T/st-prof.db"
	stop_servers
	echo
	echo "| $NODES x vine-spread --origin: spent on | CPU s | share |"
	echo "|---|---|---|"
	fresh
	profile direct_verified
else
	echo
	echo "(no CPU split: perf record does not work here)"
fi
