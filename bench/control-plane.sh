#!/bin/bash
# bench/control-plane.sh [WORKERS [TASKS [SLOTS]]] - the control plane:
# WORKERS workers x SLOTS slots (default 16 x 2) run TASKS short tasks
# (default 1000, each `:`) that all use one small environment, once with
# the state over ssh:// (an sshd on loopback, tests/helpers-hosts.bash,
# every worker one SSH session and one vine-state) and once with the same
# state as a local path, the same run otherwise.
#
# Measures, for each: wall time from the workers' start to the last one's
# exit, tasks/s, that every task has exactly one attempt that ran
# ("every result exactly once"), the SQLite lock waits of every state
# connection ($VINE_STATE_STATS), and for ssh:// the manager host's CPU
# time: vine-state's (each reports its own as it closes the state) and
# sshd's (the whole sshd tree's, less vine-state's).
# Bars (issue 10): every result exactly once; ssh:// tasks/s >= 0.5 x local.
#
# Everything under a scratch directory on ${TMPDIR:-/tmp}; needs root
# (sshd in its own namespaces), python3.  Prints a markdown table row per
# run and a summary; run it under nice on a shared machine.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
W=${1:-16} T=${2:-1000} S=${3:-2}
: "${VINE_BIN:?set VINE_BIN to the built programs (build/bin)}"
export PATH="$VINE_BIN:$PATH"
work=$(mktemp -d "${TMPDIR:-/tmp}/vine-bench-cp.XXXXXX")
export BATS_FILE_TMPDIR=$work/hosts-tmp VINE_HOSTS_DIR=$work/hosts
mkdir -p "$BATS_FILE_TMPDIR"
. "$here/../tests/helpers-hosts.bash"
trap 'hosts_cleanup; rm -rf "$work"' EXIT
unset VINE_STATE VINE_CACHE VINE_NODE VINE_ORIGIN
host_start 'MaxStartups 1000:30:2000' 'MaxSessions 1000' >&2
cd "$work"

# one small environment, and its tasks
mkdir -p tree/bin
printf '#!/bin/sh\n:\n' >tree/bin/noop
chmod +x tree/bin/noop
vine-pack -q -o env.tar.gz tree >/dev/null
yes noop | head -n "$T" >tasks.txt

# vine-state on the manager host, reporting its connection's lock waits
# and its CPU time when it closes the state ($VINE_STATE_STATS)
cat >timed-state.sh <<EOF
#!/bin/sh
VINE_STATE_STATS=$work/stats.ssh exec vine-state "\$@"
EOF
chmod +x timed-state.sh

clk=$(getconf CLK_TCK)
# CPU seconds of a process and its waited-for children, from /proc
proc_cpu() {
	awk -v t="$clk" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13 + $14 + $15) / t }' "/proc/$1/stat"
}
# CPU seconds of the processes that wrote stats FILE
sum_cpu() {
	[ -s "$1" ] || { echo 0; return; }
	awk '{ s += $10 } END { printf "%.2f", s }' "$1"
}
sum_busy() {
	[ -s "$1" ] || { echo "0 0"; return; }
	awk '{ n += $6; s += $8 } END { printf "%d %.2f", n, s }' "$1"
}
once_check() {
	/usr/bin/python3 - "$1" "$T" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = int(sys.argv[2])
done = db.execute("SELECT count(*) FROM tasks WHERE state = 'done'").fetchone()[0]
ran = db.execute("SELECT count(*), count(DISTINCT task) FROM attempts WHERE outcome = 'exited'").fetchone()
print("yes" if done == n and ran == (n, n) else "NO (done %d, ran %d of %d distinct)" % (done, ran[0], ran[1]))
PY
}

# run KIND URL DB: the workers against URL; prints a table row
run() {
	local kind=$1 url=$2 db=$3 i pids= t0 t1 cpu_before cpu_after u0 u1
	rm -f "$db"* "$work/stats.$kind"
	vine-submit -s "$db" -e env.tar.gz tasks.txt >/dev/null
	cpu_before=$(proc_cpu "$(cat "$HOST_DIR/pid")")
	u0=$(awk -v t="$clk" '{ printf "%.2f", ($14 + $15 + $16 + $17) / t }' /proc/$$/stat)
	t0=$(date +%s.%N)
	for i in $(seq "$W"); do
		VINE_STATE_STATS=$work/stats.$kind VINE_REMOTE_STATE_CMD=$work/timed-state.sh \
			vine-worker -q -s "$url" -N "n$i" -c "$work/c$i" -n "$S" -i 0 \
			2>>"$work/workers.err" &
		pids="$pids $!"
	done
	# shellcheck disable=SC2086
	wait $pids
	t1=$(date +%s.%N)
	# the sshd sessions end as the workers leave; let the master reap them
	for i in $(seq 50); do
		[ -z "$(pgrep -f "vine-state -s $db" || true)" ] && break
		sleep 0.1
	done
	cpu_after=$(proc_cpu "$(cat "$HOST_DIR/pid")")
	u1=$(awk -v t="$clk" '{ printf "%.2f", ($14 + $15 + $16 + $17) / t }' /proc/$$/stat)
	local wall tps ok busy state_cpu sshd_cpu workers_cpu
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	tps=$(awk -v n="$T" -v s="$wall" 'BEGIN { printf "%.0f", n / s }')
	ok=$(once_check "$db")
	busy=$(sum_busy "$work/stats.$kind")
	workers_cpu=$(awk -v a="$u0" -v b="$u1" 'BEGIN { printf "%.2f", b - a }')
	if [ "$kind" = ssh ]; then
		state_cpu=$(sum_cpu "$work/stats.ssh")
		sshd_cpu=$(awk -v a="$cpu_before" -v b="$cpu_after" -v s="$state_cpu" 'BEGIN { printf "%.2f", b - a - s }')
	else
		state_cpu=- sshd_cpu=-
	fi
	set -- $busy
	printf '| %s | %d x %d | %d | %s | %s | %s | %s | %s | %s | %s waits, %s s |\n' \
		"$kind" "$W" "$S" "$T" "$wall" "$tps" "$ok" "$workers_cpu" "$state_cpu" "$sshd_cpu" "$1" "$2"
	echo "$tps" >"$work/tps.$kind"
	[ "$kind" != ssh ] || awk -v s="$state_cpu" -v d="$sshd_cpu" -v n="$T" \
		'BEGIN { printf "ssh: manager host CPU per task %.2f ms (vine-state %.2f, sshd %.2f)\n", (s + d) * 1000 / n, s * 1000 / n, d * 1000 / n }' >"$work/per-task"
}

echo "## control plane: $W workers x $S slots, $T tasks with one environment; $(nproc) cores, load before $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| state | workers | tasks | wall s | tasks/s | every result once | workers CPU s | vine-state CPU s | sshd CPU s | SQLite lock waits |"
echo "|---|---|---|---|---|---|---|---|---|---|"
run ssh "$HOST_URL$work/ssh.db" "$work/ssh.db"
run local "$work/local.db" "$work/local.db"
echo
cat "$work/per-task"
awk -v s="$(cat "$work/tps.ssh")" -v l="$(cat "$work/tps.local")" \
	'BEGIN { printf "ssh:// / local tasks/s: %.2f (bar >= 0.5)\n", s / l }'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -s "$work/workers.err" ]; then
	echo "worker messages:"
	sort "$work/workers.err" | uniq -c | sort -rn | head -5
fi
