#!/bin/sh
# bench/tasks.sh [RUNS] - task-list throughput, against GNU parallel.
#
#  1. submit: 100,000 task lines into a new state (bar: under 2 s)
#  2. run: N `true` tasks with 2 workers x 2 cores, and the same with
#     `parallel -j 4` (bar: vine at least 0.5x parallel's tasks/s)
#
# vine is timed from vine-submit to the end of vine-collect -o -j.
# Prints one line per measurement and a summary with min/median/max over
# RUNS runs (default 3).  Uses $VINE_BIN (else PATH) and a scratch
# directory under ${TMPDIR:-/tmp}.  N is $BENCH_TASKS (default 10000).
set -eu
runs=${1:-3}
n=${BENCH_TASKS:-10000}
[ -n "${VINE_BIN:-}" ] && PATH="$VINE_BIN:$PATH"
command -v vine-submit >/dev/null || { echo "tasks.sh: vine-submit not found" >&2; exit 1; }
command -v parallel >/dev/null || { echo "tasks.sh: GNU parallel not found" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/vine-bench-tasks.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cd "$work"
unset VINE_STATE VINE_CACHE VINE_NODE

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
stats() { sort -g | awk '{ v[NR] = $1 } END { printf "min %.3f median %.3f max %.3f", v[1], v[int((NR + 1) / 2)], v[NR] }'; }

seq 100000 | sed 's/^/echo task /' >big.txt
yes true | head -n "$n" >true.txt
: >submit.t; : >vine.t; : >par.t
i=1
while [ "$i" -le "$runs" ]; do
	rm -rf s.db* ca cb
	t=$(now); vine-submit -s s.db big.txt >/dev/null; s=$(since "$t")
	echo "submit 100000: ${s}s"; echo "$s" >>submit.t

	rm -rf s.db* out joblog
	# timed end to end: submit, run on 2 workers x 2 cores, collect
	t=$(now)
	vine-submit -s s.db true.txt >/dev/null
	vine-worker -s s.db -N a -c "$work/ca" -n 2 -i 0 &
	vine-worker -s s.db -N b -c "$work/cb" -n 2 -i 0 &
	wait
	vine-collect -s s.db -q -o out -j joblog || { echo "tasks.sh: not every task succeeded" >&2; exit 1; }
	v=$(since "$t")
	echo "vine $n x true, 2 workers x 2 cores: ${v}s ($(awk -v n="$n" -v s="$v" 'BEGIN { printf "%.0f", n / s }') tasks/s)"
	echo "$v" >>vine.t

	t=$(now); parallel -j 4 <true.txt; p=$(since "$t")
	echo "parallel -j 4, $n x true: ${p}s ($(awk -v n="$n" -v s="$p" 'BEGIN { printf "%.0f", n / s }') tasks/s)"
	echo "$p" >>par.t
	i=$((i + 1))
done
echo "summary over $runs runs (seconds): load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo ?)"
echo "  submit 100000 lines:   $(stats <submit.t)"
echo "  vine 2x2 workers:      $(stats <vine.t)"
echo "  parallel -j 4:         $(stats <par.t)"
vm=$(stats <vine.t | awk '{ print $4 }'); pm=$(stats <par.t | awk '{ print $4 }')
echo "  median throughput ratio vine/parallel: $(awk -v v="$vm" -v p="$pm" 'BEGIN { printf "%.2f", p / v }')"
