#!/usr/bin/env bats
# vine-worker: a task that dies of a stop signal the worker did not send is
# parked until the worker's own stop signal comes (handed back) or
# VINE_STOP_WAIT runs out (failed), without holding up the worker's loop.

bats_require_minimum_version 1.5.0
load helpers

task_state() {
	[ "$(status_py "j[\"state\"], len(j[\"attempts\"])" "$1")" = "$2" ]
}

# a worker a failed test left running must not run on
teardown() {
	local p
	for p in ${w:-} ${a:-}; do
		kill -9 "$p" 2>/dev/null || true
	done
}

ms_since() {
	echo $(( (${EPOCHREALTIME/./} - $1) / 1000 ))
}

@test "stop: a task that kills itself does not hold up another task's time limit" {
	# task 1 dies once task 2 has started, well before task 2's time is
	# up: a worker that blocked while waiting for its own stop signal
	# would kill task 2 20 s late.  (The wait is long so that task 1 is
	# surely still parked when this test, slowed by a loaded machine,
	# looks at it.)
	export VINE_STOP_WAIT=20 VINE_GRACE=1
	echo "$(gate t2); kill -TERM \$\$" | vine-submit
	echo "touch '$PWD/t2'; sleep 30.8642" | vine-submit -t 0.8
	start=${EPOCHREALTIME/./}
	vine-worker -n 2 -i 0 3>&- &
	w=$!
	# the timed-out task is killed and recorded while the other is parked
	spread_wait_for 20 task_state 2 "failed 1"
	run -0 status_py 'j["state"], [(a["outcome"], a["signal"]) for a in j["attempts"]]' 1
	assert_output "running [('running', None)]"
	# on time: the times the worker recorded, not this test's clock, which
	# a loaded machine stretches
	run -0 status_py '[(a["outcome"], a["signal"], 0.7 < a["ended"] - a["started"] < 6) for a in j["attempts"]]' 2
	assert_output "[('timeout', 15, True)]"
	wait $w
	# nothing came: after the wait (-i 0 does not cut it short) it is the
	# failure it was, with its signal and the time it died
	[ "$(ms_since "$start")" -ge 20000 ]
	run -0 status_py 'j["state"], j["failures"], [(a["outcome"], a["signal"], a["exit"], a["ended"] - a["started"] < 3) for a in j["attempts"]]' 1
	assert_output "failed 1 [('signaled', 15, None, True)]"
	# the joblog says so too
	run -1 vine-collect -j jl
	run -0 awk -F '\t' 'NR > 1 { print $1, $7, $8 }' jl
	assert_output $'1 0 15\n2 -1 15'
}

@test "stop: the wait for a decision is a sleep, not a busy loop, even with -i 0" {
	echo 'kill -TERM $$' | vine-submit
	# the worker's CPU time (user + system) over a 3 s wait
	run -0 env VINE_STOP_WAIT=3 python3 -c 'import resource, subprocess, sys, time
t = time.monotonic()
subprocess.run(sys.argv[1:], check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(time.monotonic() - t >= 3, r.ru_utime + r.ru_stime < 1)' vine-worker -i 0
	assert_output 'True True'
	run -0 status_py 'j["state"], [(a["outcome"], a["signal"]) for a in j["attempts"]]' 1
	assert_output "failed [('signaled', 15)]"
}

@test "stop: a task killed by a stop signal the worker gets soon after is handed back" {
	# the lease is renewed while the result waits: a second worker's claim
	# finds nothing to reap
	export VINE_STOP_WAIT=120 VINE_LEASE=3
	# a sleep named for this run alone: pgrep sees the whole machine, and
	# another test run may be at this test too
	u=$$$RANDOM
	echo "exec sleep 60.9753$u" | vine-submit
	echo 'sleep 0.1' | vine-submit
	vine-worker -N a -c "$PWD/ca" -n 1 3>&- &
	w=$!
	# running in the state comes before the task's exec: wait for the sleep
	spread_wait_for 20 pgrep -f "^sleep 60\.9753$u\$"
	killed=$EPOCHREALTIME
	pkill -TERM -f "^sleep 60\.9753$u\$"
	# the worker renews its lease while the result waits: a heartbeat more
	# than a lease after the task died (a lease of 3 s, as 1 s is too short
	# for a loaded machine to renew it in time)
	spread_wait_for 20 status_py "[w['heartbeat'] > $killed + 3.5 for w in j['workers']] == [True] or exit(1)"
	run -0 status_py 'j["state"], [a["outcome"] for a in j["attempts"]]' 1
	assert_output "running ['running']"
	# its core stays taken: the next task waits
	run -0 status_py 'j["state"]' 2
	assert_output ready
	run -0 vine-worker -N b -c "$PWD/cb" -n 1 -i 0
	run -0 status_py '[(a["node"], a["outcome"]) for a in j["attempts"]]' 1
	assert_output "[('a', 'running')]"
	# the worker's own signal: handed back at once, not failed
	start=${EPOCHREALTIME/./}
	kill -TERM $w
	wait $w
	# at once: not after VINE_STOP_WAIT (a loaded machine makes it slower;
	# the long wait keeps the task parked however slow this test is)
	[ "$(ms_since "$start")" -lt 10000 ]
	run -0 status_py 'j["state"], j["failures"], [(a["node"], a["outcome"]) for a in j["attempts"]]' 1
	assert_output "ready 0 [('a', 'released')]"
}

@test "stop: each kind of stop signal (or a shell's 128 + it) is parked; SIGTERM to the worker hands them all back" {
	export VINE_STOP_WAIT=120 VINE_DRAIN=1 VINE_GRACE=1
	# (a worker started with & ignores SIGINT, and so do its tasks' shells)
	vine-submit <<'EOF'
kill -TERM $$
exec python3 -c 'import os, signal; signal.signal(2, signal.SIG_DFL); os.kill(os.getpid(), 2)'
kill -HUP $$
kill -KILL $$
exit 143
exit 3
kill -USR1 $$
EOF
	vine-worker -n 7 3>&- &
	w=$!
	# an exit status or another signal is recorded at once; a shell's
	# 128 + TERM (its child died of a stop signal) is parked too
	spread_wait_for 20 task_state 6 "failed 1"
	spread_wait_for 20 task_state 7 "failed 1"
	run -0 status_py 'j["tasks"]["running"]'
	assert_output 5
	kill -TERM $w
	wait $w
	for t in 1 2 3 4 5; do
		run -0 status_py 'j["state"], j["failures"], [a["outcome"] for a in j["attempts"]]' $t
		assert_output "ready 0 ['released']"
	done
	run -0 status_py 'j["state"], j["failures"], [a["outcome"] for a in j["attempts"]]' 6
	assert_output "failed 1 ['exited']"
	run -0 status_py 'j["state"], j["failures"], [(a["outcome"], a["signal"]) for a in j["attempts"]]' 7
	assert_output "failed 1 [('signaled', 10)]"
}

@test "stop: a parked task whose attempt went stale is dropped, not reported" {
	export VINE_STOP_WAIT=120 VINE_LEASE=1
	u=$$$RANDOM
	echo "[ \"\$VINE_ATTEMPT\" = 2 ] && echo second || exec sleep 60.3197$u" | vine-submit
	vine-worker -N a -c "$PWD/ca" -n 1 -i 0 2>a.err 3>&- &
	a=$!
	spread_wait_for 20 pgrep -f "^sleep 60\.3197$u\$"
	pkill -TERM -f "^sleep 60\.3197$u\$"
	spread_wait_for 20 sh -c '! pgrep -f "^sleep 60\.3197$1\$"' sh "$u"
	# a hangs until its lease is gone; b reaps it and runs the task again
	kill -STOP $a
	spread_wait_for 20 past_lease a
	run -0 vine-worker -N b -c "$PWD/cb" -n 1 -i 0
	kill -CONT $a
	# a's heartbeat learns its attempt is stale and drops it, then goes idle
	start=${EPOCHREALTIME/./}
	wait $a
	[ "$(ms_since "$start")" -lt 10000 ]
	run -0 cat a.err
	assert_output ''
	run -0 status_py 'j["state"], j["failures"], [(a["node"], a["outcome"]) for a in j["attempts"]]' 1
	assert_output "done 0 [('a', 'lost'), ('b', 'exited')]"
}

@test "stop: a bad VINE_STOP_WAIT is a usage error" {
	echo true | vine-submit
	for v in 0 -1 x 1e9; do
		VINE_STOP_WAIT=$v run -2 vine-worker -i 0
		assert_output "vine-worker: VINE_STOP_WAIT='$v' is not a positive number of seconds"
	done
	VINE_STOP_WAIT= run -0 vine-worker -i 0
}
