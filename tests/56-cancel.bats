#!/usr/bin/env bats
# vine-cancel: by id, by submission, the whole run; ready tasks at once,
# running ones stopped on their node within the documented bound.

bats_require_minimum_version 1.5.0
load helpers

teardown() {
	[ -z "${worker:-}" ] || { kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null; }
	return 0
}

# running_pid: the pid task 1 wrote, once it is running
running_pid() {
	[ -s pid ] && [ "$(status_py 'j["tasks"]["running"]')" = 1 ]
}

@test "cancel: ready tasks by id, at once; shown as cancelled in status, collect and the joblog" {
	printf 'echo a\necho b\necho c\n' | vine-submit
	run -0 vine-cancel 1 3
	assert_output $'1\n3'
	run -0 status_py 'j["tasks"]["cancelled"], j["tasks"]["ready"]'
	assert_output '2 1'
	run -0 vine-status 1
	assert_line 'task 1: cancelled'
	run -0 vine-status
	assert_line 'tasks: 3 total, 1 ready, 0 running, 0 done, 0 failed, 2 cancelled'
	run -0 vine-worker -i 0
	run -1 vine-collect -o out -j joblog
	assert_output 'vine-collect: 3 tasks: 1 done, 0 failed, 2 cancelled, 0 running, 0 ready'
	assert_equal "$(cat out/1/exit)" cancelled
	assert_equal "$(cat out/2/exit)" 0
	run -0 awk -F '\t' 'NR > 1 { print $1, $7, $8, $9 }' joblog
	assert_output $'1 -1 0 echo a\n2 0 0 echo b\n3 -1 0 echo c'
	# cancelling again changes nothing, and says so
	run -0 --separate-stderr vine-cancel 1 2
	assert_output ''
	[ "$stderr" = "vine-cancel: task 1: not cancelled: it had already finished or been cancelled
vine-cancel: task 2: not cancelled: it had already finished or been cancelled" ]
	run -0 vine-cancel -q 1
	assert_output ''
}

@test "cancel: an unknown id cancels nothing; usage errors" {
	printf 'echo a\necho b\n' | vine-submit
	run -1 vine-cancel 1 9
	assert_output "vine-cancel: no task 9 in state '$VINE_STATE'"
	run -0 status_py 'j["tasks"]["ready"]'
	assert_output 2
	run -2 vine-cancel
	assert_output --partial "name the tasks to cancel: IDs, --submission NAME or --all"
	run -2 vine-cancel --all 1
	run -2 vine-cancel --all --submission x
	run -2 vine-cancel x1
	assert_output --partial "'x1' is not a task id"
	run -0 vine-cancel -h
	assert_output --partial "usage: vine-cancel"
}

@test "cancel --submission NAME and --all" {
	printf 'echo a\necho b\n' | vine-submit --name first
	printf 'echo c\n' | vine-submit --name second
	echo 'echo d' | vine-submit
	run -1 vine-cancel --submission third
	assert_output "vine-cancel: no submission 'third' in state '$VINE_STATE'"
	run -0 vine-cancel --submission first
	assert_output $'1\n2'
	run -0 vine-cancel --all
	assert_output $'3\n4'
	run -0 status_py 'j["tasks"]["cancelled"]'
	assert_output 4
	# submitting a cancelled submission's name again adds nothing: it was made
	run -0 vine-submit --name first <<<$'echo a\necho b'
	assert_output $'1\n2'
}

@test "cancel: a running task is stopped on its node within the bound, its process group killed" {
	# the default lease (60 s): heartbeats every 5 s, the documented bound
	cat >tasks <<'EOF'
sh -c 'sleep 300 & echo $! >child; wait' & echo $$ >pid; wait
EOF
	vine-submit tasks
	vine-worker -i 0 2>worker.err 3>&- &
	worker=$!
	spread_wait_for 30 running_pid
	spread_wait_for 10 test -s child
	start=$EPOCHSECONDS
	run -0 vine-cancel 1
	assert_output 1
	# the shell and what it started are killed within the bound
	spread_wait_for 30 sh -c '! kill -0 "$(cat pid)" 2>/dev/null'
	stopped=$((EPOCHSECONDS - start))
	# 5 s, plus slack for a loaded machine
	[ "$stopped" -le 12 ] || fail "stopped after $stopped s"
	run kill -0 "$(cat child)"
	assert_failure
	# the state said so at once, and the worker goes idle
	run -0 status_py 'j["state"], j["attempts"][-1]["outcome"]' 1
	assert_output "cancelled cancelled"
	wait "$worker"
	worker=
	run -0 cat worker.err
	refute_output --partial "refused"
	run -1 vine-collect -j joblog
	run -0 awk -F '\t' 'NR > 1 { print $1, $7, $8 }' joblog
	assert_output '1 -1 9'
}
