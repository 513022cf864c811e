#!/usr/bin/env bats
# vine-worker: leases, lost workers, stale results, draining, many workers.

bats_require_minimum_version 1.5.0
load helpers

task_state() {
	[ "$(status_py "j[\"state\"], len(j[\"attempts\"])" "$1")" = "$2" ]
}

# overtake: worker a starts task 1 and is stopped until its lease runs out;
# worker b reaps it and runs the task again; a stays stopped (kill -CONT $a
# lets it go on).  Sets $a, $b; a's standard error goes to a.err, b's to
# b.err; b runs with VINE_TEST_PAUSE=$B_PAUSE.
overtake() {
	vine-worker -N a -c "$PWD/ca" -n 1 -i 0 2>a.err 3>&- &
	a=$!
	spread_wait_for 20 task_state 1 "running 1"
	kill -STOP $a
	spread_wait_for 20 past_lease a
	VINE_TEST_PAUSE=${B_PAUSE-} vine-worker -N b -c "$PWD/cb" -n 1 -i 0 2>b.err 3>&- &
	b=$!
	spread_wait_for 20 task_state 1 "running 2"
}

@test "lease: a worker killed with kill -9 loses its task, which runs elsewhere" {
	export VINE_LEASE=1
	echo "$(gate); echo \"ran on \$VINE_NODE, attempt \$VINE_ATTEMPT\"" | vine-submit
	vine-worker -N a -c "$PWD/ca" -n 1 3>&- &
	pid=$!
	spread_wait_for 20 task_state 1 "running 1"
	kill -9 $pid
	wait $pid || true
	# its work directory is left behind, its task held until the lease runs out
	run -0 ls ca/tasks
	assert_output "a.$pid"
	run -0 status_py 'j["state"]' 1
	assert_output running
	spread_wait_for 20 past_lease a
	touch go
	run -0 vine-worker -N b -c "$PWD/cb" -n 1 -i 0
	run -0 status_py '[(a["node"], a["outcome"]) for a in j["attempts"]], j["losses"], j["failures"], j["state"]' 1
	assert_output "[('a', 'lost'), ('b', 'exited')] 1 0 done"
	run -0 vine-collect -o out
	assert_equal "$(cat out/1/stdout)" "ran on b, attempt 2"
	# the next worker on that cache removes what the dead one left
	run -0 vine-worker -N a -c "$PWD/ca" -i 0
	run -0 ls -A ca/tasks
	assert_output ''
}

# gone PID...: none of these processes exists (a zombie counts as existing)
gone() {
	local p
	for p in "$@"; do
		! kill -0 "$p" 2>/dev/null || return 1
	done
}

@test "lease: kill -9 of a worker ends its task's whole tree, what the shell started too" {
	# before: PR_SET_PDEATHSIG killed the task's /bin/sh only; what it had
	# started ran on as an orphan while the task ran again elsewhere
	u=$$$RANDOM
	echo "sleep 300.1$u & echo \$! >'$PWD/bg.pid'; setsid sleep 300.2$u & echo \$! >'$PWD/sid.pid'; wait" | vine-submit
	vine-worker -N a -c "$PWD/ca" -n 1 3>&- &
	pid=$!
	spread_wait_for 20 test -s sid.pid
	spread_wait_for 20 test -s bg.pid
	spread_wait_for 20 pgrep -f "^sleep 300\.2$u\$"
	bg=$(cat bg.pid) sid=$(cat sid.pid)
	! gone "$bg" && ! gone "$sid"
	kill -9 $pid
	wait $pid || true
	spread_wait_for 10 gone "$bg" "$sid"
	run -1 pgrep -f "^sleep 300\.[12]$u\$"
}

@test "lease: a stale result is refused, and the task is recorded once" {
	export VINE_LEASE=1
	echo "$(gate); echo \$VINE_NODE >>'$PWD/ran'" | vine-submit
	overtake
	# a's task ends while a is stopped; a then reports it
	touch go
	spread_wait_for 20 grep -qx a ran
	kill -CONT $a
	wait $a
	wait $b
	run -0 cat a.err
	assert_output --partial "task 1 attempt 1: result refused (stale)"
	run -0 sort ran
	assert_output $'a\nb'
	run -0 status_py '[(a["node"], a["outcome"]) for a in j["attempts"]], j["state"]' 1
	assert_output "[('a', 'lost'), ('b', 'exited')] done"
	vine-collect -j jl
	run -0 cut -f 1,2 jl
	assert_output $'Seq\tHost\n1\tb'
}

@test "lease: a worker that is told its task is stale kills it" {
	export VINE_LEASE=1 VINE_GRACE=1
	# a sleep named for this run alone: pgrep sees the whole machine
	u=$$$RANDOM
	echo "sleep 9.7531$u; echo finished" | vine-submit
	B_PAUSE=drain overtake
	kill -CONT $a
	# a's heartbeat learns its attempt is stale and kills it long before it ends
	spread_wait_for 10 sh -c '[ "$(pgrep -fc "^sleep 9\.7531$1\$")" = 1 ]' sh "$u"
	wait $a
	# b hands its attempt back at once: the second signal once it drains
	kill -TERM $b
	wait_stopped $b
	kill -INT $b
	kill -CONT $b
	wait $b
	run -0 status_py '[(a["node"], a["outcome"]) for a in j["attempts"]], j["state"]' 1
	assert_output "[('a', 'lost'), ('b', 'released')] ready"
	run -1 pgrep -f "^sleep 9\.7531$u\$"
}

@test "workers: 1,000 tasks across 3 workers, every result present exactly once" {
	seq 1000 | awk '{ print "echo task-" $1 }' | vine-submit >ids
	pids=
	for n in 1 2 3; do
		vine-worker -N "node$n" -c "$PWD/c$n" -n 2 -i 0 3>&- &
		pids="$pids $!"
	done
	run -0 vine-collect -w -o out -j jl
	wait $pids
	run -0 python3 - <<'EOF'
import os
bad = [i for i in range(1, 1001)
       if open(f"out/{i}/stdout").read() != f"task-{i}\n"
       or open(f"out/{i}/exit").read() != "0\n"]
print(len(os.listdir("out")), bad)
EOF
	assert_output '1000 []'
	run -0 awk -F '\t' 'NR > 1 { n[$1]++; h[$2]++ } END { for (s in n) if (n[s] != 1) bad++; print NR - 1, length(n), bad + 0, length(h) }' jl
	assert_output '1000 1000 0 3'
	run -0 status_py 'j["tasks"]["done"], sorted(set(w["node"] for w in j["workers"]))'
	assert_output "1000 ['node1', 'node2', 'node3']"
	run -0 python3 -c 'import sqlite3; print(sqlite3.connect("vine.db").execute("SELECT count(*), max(attempt) FROM attempts").fetchone())'
	assert_output '(1000, 1)'
}

@test "drain: SIGTERM lets short tasks finish and hands long ones back" {
	export VINE_DRAIN=4 VINE_GRACE=1
	u=$$$RANDOM
	printf '%s\n' "$(gate); echo short" "sleep 60.1234$u" 'echo never started' | vine-submit
	VINE_TEST_PAUSE=drain vine-worker -n 2 3>&- &
	w=$!
	spread_wait_for 20 running_count 2
	start=${EPOCHREALTIME/./}
	kill -TERM $w
	# the short task ends once the worker drains: no new task is claimed
	wait_stopped $w
	touch go
	kill -CONT $w
	wait $w
	elapsed=$(( (${EPOCHREALTIME/./} - start) / 1000 ))
	[ "$elapsed" -lt 8000 ]
	run -0 status_py '[(a["outcome"], a["exit"]) for a in j["attempts"]], j["state"]' 1
	assert_output "[('exited', 0)] done"
	run -0 status_py '[a["outcome"] for a in j["attempts"]], j["state"], j["failures"]' 2
	assert_output "['released'] ready 0"
	run -0 status_py 'j["state"], j["attempts"]' 3
	assert_output "ready []"
	run -1 pgrep -f "sleep 60\.1234$u\$"
	run -0 status_py '[w["state"] for w in j["workers"]]'
	assert_output "['gone']"
}

@test "drain: a second signal hands running tasks back at once" {
	export VINE_DRAIN=60 VINE_GRACE=1
	u=$$$RANDOM
	echo "sleep 60.4321$u" | vine-submit
	VINE_TEST_PAUSE=drain vine-worker -n 1 3>&- &
	w=$!
	spread_wait_for 20 running_count 1
	start=${EPOCHREALTIME/./}
	kill -TERM $w
	# the second signal comes once the first is taken
	wait_stopped $w
	kill -INT $w
	kill -CONT $w
	wait $w
	elapsed=$(( (${EPOCHREALTIME/./} - start) / 1000 ))
	[ "$elapsed" -lt 3000 ]
	run -0 status_py '[a["outcome"] for a in j["attempts"]], j["state"]' 1
	assert_output "['released'] ready"
	run -1 pgrep -f "sleep 60\.4321$u\$"
}

@test "drain: a task killed by the same signal is handed back, not failed" {
	export VINE_DRAIN=5
	u=$$$RANDOM
	echo "sleep 60.5678$u" | vine-submit
	vine-worker -n 1 3>&- &
	w=$!
	spread_wait_for 20 running_count 1
	# as a batch system does: the worker and its tasks get SIGTERM together
	kill -TERM $w
	pkill -TERM -f "sleep 60\.5678$u\$"
	wait $w
	run -0 status_py '[a["outcome"] for a in j["attempts"]], j["state"], j["failures"]' 1
	assert_output "['released'] ready 0"
}

# damage_reports: results cannot be recorded, while claims and heartbeats work
damage_reports() {
	sqlite3 "$VINE_STATE" "CREATE TRIGGER damaged BEFORE UPDATE OF outcome ON attempts
		BEGIN SELECT RAISE(ABORT, 'damaged'); END;"
}

@test "lease: a worker that cannot report gives up after a lease (10 s at least), exit 1, the reason said few times" {
	# before: each good heartbeat reset the failure clock; it spun at 100 % CPU
	# writing millions of lines, and never ended
	echo true | vine-submit
	damage_reports
	rc=0
	VINE_LEASE=2 timeout 60 vine-worker -n 1 -i 0 2>err 3>&- || rc=$?
	[ "$rc" -eq 1 ]
	[ "$(wc -l <err)" -le 4 ]
	run -0 cat err
	assert_line --regexp '^vine-worker: giving up after 1[0-9] seconds: cannot report results: .*damaged$'
}

@test "lease: SIGTERM ends a worker that cannot report within the drain and grace" {
	echo true | vine-submit
	damage_reports
	# (timeout passes the TERM on; it ends a worker that ignores it)
	VINE_DRAIN=1 VINE_GRACE=1 timeout -s KILL 30 vine-worker -n 1 -i 0 2>err 3>&- &
	w=$!
	spread_wait_for 20 grep -q 'cannot report results' err
	kill -TERM $w
	start=${EPOCHREALTIME/./}
	rc=0
	wait $w || rc=$?
	[ "$rc" -eq 1 ]
	[ $(( (${EPOCHREALTIME/./} - start) / 1000 )) -lt 10000 ]
	run -0 cat err
	assert_line --regexp '^vine-worker: stopping with 1 results unreported: .*damaged$'
}
