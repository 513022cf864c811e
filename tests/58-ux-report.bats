#!/usr/bin/env bats
# Saying what is happening: the worker on a terminal, vine-status for
# people and programs (format version, filters, --watch, units), the
# joblog's Signal column, schema versions, and a retrying ssh:// connection.

bats_require_minimum_version 1.5.0
load helpers

teardown() {
	[ -z "${bg:-}" ] || { kill "$bg" 2>/dev/null; wait "$bg" 2>/dev/null; }
	return 0
}

# on_tty CMD: run the shell command CMD with a terminal as its stdout and
# stderr (script(1)); its output without carriage returns
on_tty() {
	script -qfec "$1" /dev/null | tr -d '\r'
}

@test "worker on a terminal: its start and a line per task; quiet in a pipe and with -q" {
	printf 'echo hi\nexit 3\n' | vine-submit
	run -0 on_tty "vine-worker -i 0 -n 1 -N tty1"
	assert_line --regexp "^vine-worker: worker 1 on node tty1: 1 cores, [0-9.]+ GB memory, [0-9]+ GPUs; state $VINE_STATE; serving its cache at 127\\.0\\.0\\.1:[0-9]+$"
	assert_line "vine-worker: task 1: started: echo hi"
	assert_line --regexp "^vine-worker: task 1: done in [0-9.]+ s$"
	assert_line "vine-worker: task 2: started: exit 3"
	assert_line --regexp "^vine-worker: task 2: failed, exit 3 after [0-9.]+ s$"
	assert_line "vine-worker: idle: leaving"
	echo 'echo again' | vine-submit
	run -0 on_tty "vine-worker -q -i 0"
	assert_output ''
	echo 'echo piped' | vine-submit
	run -0 vine-worker -i 0
	assert_output ''
}

@test "worker on a terminal: the drain after a stop signal is shown" {
	echo 'sleep 60' | vine-submit
	VINE_DRAIN=1 VINE_GRACE=1 script -qfec "vine-worker -i 0 -N tty2" tty.out >/dev/null 3>&- &
	bg=$!
	spread_wait_for 30 running_count 1
	kill -TERM "$(status_py 'j["workers"][0]["pid"]')"
	wait "$bg"
	bg=
	run -0 tr -d '\r' <tty.out
	assert_line "vine-worker: draining: 1 running task gets 1 s to finish (signal again to stop them now)"
	assert_line "vine-worker: task 1: handed back"
	assert_line "vine-worker: drained: leaving"
}

@test "status --json: a format version, and every documented member" {
	echo 'echo a' | vine-submit --name n1
	run -0 vine-worker -i 0
	run -0 status_py 'j["format"], sorted(j), sorted(j["workers"][0]), sorted(j["waiting"])'
	assert_output "1 ['format', 'objects', 'schema', 'state', 'tasks', 'time', 'transfers', 'waiting', 'workers'] ['cores', 'expires', 'gpus', 'heartbeat', 'host', 'id', 'listen', 'memory', 'node', 'pid', 'running', 'started', 'state'] ['no_worker', 'unfit', 'unfit_task']"
	run -0 status_py 'j["format"], sorted(j), sorted(j["attempts"][0])' 1
	assert_output "1 ['attempts', 'cmd', 'cores', 'cwd', 'failures', 'faults', 'format', 'gpus', 'id', 'losses', 'memory', 'object', 'retries', 'state', 'submission', 'submitted', 'tag', 'timeout'] ['attempt', 'claimed', 'ended', 'exit', 'message', 'node', 'outcome', 'received', 'signal', 'started', 'worker']"
	# every member is documented in vine-status(1)
	for m in format state schema time tasks waiting no_worker unfit unfit_task workers memory gpus \
		listen expires running objects replicas served_origin served_peer bytes_origin bytes_peer \
		transfers_active transfers_failed transfers source addr dest status offset bytes updated \
		cwd submission retries timeout submitted failures losses attempts claimed outcome exit \
		signal message received; do
		grep -q "^\.Li $m\b\|\.Li .*\b$m\b\|^\.It Li .*\b$m\b" "$VINE_TOP/man/vine-status.1" ||
			fail "'$m' is not documented in vine-status(1)"
	done
}

@test "status --state: the tasks in those states, as lines or JSON" {
	printf 'true\nexit 4\nfalse\n' | vine-submit
	echo 'echo later' | vine-submit
	vine-cancel 4 >/dev/null
	run -0 vine-worker -i 0
	run -0 vine-status --state failed
	assert_output $'2\tfailed\t4\ttestnode\texit 4\n3\tfailed\t1\ttestnode\tfalse'
	run -0 vine-status --state failed,cancelled
	assert_line $'4\tcancelled\tcancelled\t-\techo later'
	assert_equal "${#lines[@]}" 3
	run -0 sh -c 'vine-status --json --state done | python3 -c "import json, sys; print([json.loads(l)[\"id\"] for l in sys.stdin])"'
	assert_output '[1]'
	run -2 vine-status --state bogus
	assert_output --partial "--state: 'bogus' is not a list of task states (ready, running, done, failed, cancelled)"
	run -2 vine-status --state done 1
	assert_output --partial "--state and task ids cannot go together"
}

@test "status --watch: on a terminal it uses the alternate screen, and leaves it" {
	echo true | vine-submit
	VINE_TEST_WATCH_FRAMES=2 run -0 on_tty "vine-status --watch"
	[[ $output == $'\e[?1049h\e[H\e[J'* ]]
	[[ $output == *$'\e[?1049l' ]]
	assert_equal "$(grep -c 'tasks: 1 total' <<<"$output")" 2
	# not on a terminal: frames are appended, no escapes
	VINE_TEST_WATCH_FRAMES=2 run -0 vine-status --watch
	refute_output --partial $'\e['
}

@test "joblog: the Signal column shows a crashed command's signal even when the shell did not exec it" {
	# the inner shell dies of SIGABRT; the outer one goes on, and exits 134
	cat >tasks <<'EOF'
sh -c 'kill -ABRT $$'; exit $?
sh -c 'kill -SEGV $$'
exit 130
exit 3
EOF
	vine-submit tasks
	run -0 vine-worker -i 0
	run -1 vine-collect -j joblog -o out
	run -0 awk -F '\t' 'NR > 1 { print $1, $7, $8 }' joblog
	assert_output $'1 134 6\n2 139 11\n3 130 2\n4 3 0'
	# the exit file keeps the status as it was
	assert_equal "$(cat out/1/exit)" 134
}

@test "schema: an upgrade says so on stderr; a newer state is refused naming both versions" {
	echo 'echo a' | vine-submit
	# make it look like schema version 3 (before the ux step)
	python3 - <<'EOF'
import sqlite3
db = sqlite3.connect("vine.db")
db.executescript("""
DROP INDEX tasks_submission; DROP TABLE submissions;
ALTER TABLE tasks DROP COLUMN cwd; ALTER TABLE tasks DROP COLUMN memory;
ALTER TABLE tasks DROP COLUMN gpus; ALTER TABLE tasks DROP COLUMN submission;
ALTER TABLE workers DROP COLUMN memory; ALTER TABLE workers DROP COLUMN gpus;
DROP TABLE node_faults; ALTER TABLE tasks DROP COLUMN faults;
ALTER TABLE tasks DROP COLUMN delivered;
PRAGMA user_version = 3;
""")
db.close()
EOF
	run -0 --separate-stderr vine-status
	[ "$stderr" = "vine-status: state '$VINE_STATE': upgraded schema version 3 to 4; programs older than this one can no longer open it
vine-status: state '$VINE_STATE': upgraded schema version 4 to 5; programs older than this one can no longer open it
vine-status: state '$VINE_STATE': upgraded schema version 5 to 6; programs older than this one can no longer open it" ]
	# once only
	run -0 --separate-stderr vine-status
	[ -z "$stderr" ]
	python3 -c 'import sqlite3; sqlite3.connect("vine.db").execute("PRAGMA user_version = 7")'
	run -1 vine-worker -i 0
	assert_output "vine-worker: state '$VINE_STATE' has schema version 7, newer than this program's version 6: use the vine that made it, or a newer one"
}

@test "ssh://: a refused connection says so at the first failure and counts its tries" {
	# nothing listens on port 1 of loopback: refused at once, every time
	VINE_SSH_RETRY=1 run -1 --separate-stderr vine-status -s ssh://127.0.0.1:1/nonexistent/run.db
	first=$(head -n 1 <<<"$stderr")
	[[ $first == "vine-status: cannot connect to 127.0.0.1 port 1: Connection refused (try 1; trying again in "*" s, for up to 1 s)" ]] ||
		fail "first line: $first"
	grep -q "(try 2; " <<<"$stderr" || fail "no second try in: $stderr"
	[[ $(tail -n 1 <<<"$stderr") == *"gave up after "*" attempts"* ]] || fail "last: $stderr"
}

@test "collect -w on a terminal: no 'ETA ?' forever when no live worker holds the run" {
	echo true | vine-submit
	run -0 on_tty "timeout 5 vine-collect -w; echo rc=\$?"
	assert_output --partial "0 done, 0 failed, 0 running, 1 ready, 0.0/s, ETA none: no live worker"
	refute_output --partial "ETA ?"
	assert_output --partial "vine-collect: waiting: no live worker holds the run: 1 task ready"
	assert_output --partial "rc=124"
}
