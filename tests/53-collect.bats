#!/usr/bin/env bats
# vine-collect: results directories, joblogs, waiting, exit status.

bats_require_minimum_version 1.5.0
load helpers

@test "collect -o: cmd, stdout, stderr, exit and returned files per task" {
	printf '%s\n' 'echo out; echo err >&2; echo f >"$VINE_OUTDIR/result.txt"' 'exit 3' 'kill -9 $$' \
		'sleep 5' 'echo quiet' | vine-submit -t 1
	VINE_GRACE=1 vine-worker -n 5 -i 0
	run -1 vine-collect -o out
	run -0 ls out
	assert_output $'1\n2\n3\n4\n5'
	assert_equal "$(cat out/1/cmd)" "$(sed -n 1p <<<'echo out; echo err >&2; echo f >"$VINE_OUTDIR/result.txt"')"
	assert_equal "$(cat out/1/stdout)" out
	assert_equal "$(cat out/1/stderr)" err
	assert_equal "$(cat out/1/exit)" 0
	assert_equal "$(cat out/1/out/result.txt)" f
	assert_equal "$(cat out/2/exit)" 3
	assert_equal "$(cat out/3/exit)" 'signal 9'
	assert_equal "$(cat out/4/exit)" timeout
	# empty output is an empty file, not a missing one
	assert_file_exists out/5/stderr
	run -0 stat -c %s out/5/stderr
	assert_output 0
	# nothing half-written is left behind
	run -0 ls -A out
	refute_output --partial .tmp
}

@test "collect -j: GNU parallel's joblog columns, with exit codes and signals" {
	printf '%s\n' 'true' 'exit 3' 'kill -9 $$' 'kill -15 $$' 'sleep 5' 'echo hé "q" | cat' | vine-submit -t 0.5
	VINE_GRACE=1 vine-worker -n 6 -i 0 -N n1
	run -1 vine-collect -j jl
	# the same header line as GNU parallel's own
	parallel --joblog pjl ::: true
	assert_equal "$(head -1 jl)" "$(head -1 pjl)"
	run -0 awk -F '\t' 'NR > 1 { print $1, $2, $5, $6, $7, $8, $9 }' jl
	assert_output - <<'EOF'
1 n1 0 0 0 0 true
2 n1 0 0 3 0 exit 3
3 n1 0 0 0 9 kill -9 $$
4 n1 0 0 0 15 kill -15 $$
5 n1 0 0 -1 15 sleep 5
6 n1 0 6 0 0 echo hé "q" | cat
EOF
	# Starttime is seconds since the epoch with milliseconds; JobRuntime is %10.3f
	run -0 awk -F '\t' 'NR > 1 && ($3 !~ /^[0-9]+\.[0-9][0-9][0-9]$/ || $4 !~ /^ +[0-9]+\.[0-9][0-9][0-9]$/ || length($4) != 10) { print "bad", NR }' jl
	assert_output ''
	run -0 awk -F '\t' 'NR == 6 { print ($4 >= 0.45 && $4 < 3) }' jl
	assert_output 1
	# "-" is standard output
	run -1 vine-collect -j -
	assert_line --index 0 "$(head -1 pjl)"
	assert_equal "${#lines[@]}" 8 # six lines, a header, the summary on stderr
}

@test "collect: exit 0 only when every task is done and succeeded" {
	echo 'echo a' | vine-submit
	run -1 vine-collect
	assert_output "vine-collect: 1 tasks: 0 done, 0 failed, 0 cancelled, 0 running, 1 ready"
	run -1 vine-collect -q
	assert_output ''
	vine-worker -i 0
	run -0 vine-collect
	assert_output ''
	echo 'exit 1' | vine-submit
	vine-worker -i 0
	run -1 vine-collect -q -o out -j jl
	# results are written even when not all succeeded
	assert_equal "$(cat out/2/exit)" 1
	run -0 wc -l <jl
	assert_output 3
	# no empty state can be made (an empty task list is refused, and only
	# vine-submit creates a state): collect names the missing one
	run -1 vine-submit -s empty.db </dev/null
	run -1 vine-collect -s empty.db
	assert_output --partial "state 'empty.db' does not exist"
}

@test "collect: the joblog and results get the modes the umask allows, under 077 too" {
	echo true | vine-submit
	vine-worker -i 0
	run -0 sh -c 'umask 077 && vine-collect -j jl -o out && stat -c %a jl out out/1 out/1/cmd'
	assert_output $'600\n700\n700\n600'
	run -0 sh -c 'umask 022 && vine-collect -j jl2 -o out2 && stat -c %a jl2 out2/1 out2/1/cmd'
	assert_output $'644\n755\n644'
}

@test "collect -w waits for every task; running it again is harmless" {
	printf '%s\n' "$(gate); echo one" 'echo two' | vine-submit
	vine-collect -w -o out -j jl 3>&- &
	c=$!
	vine-worker -n 1 -i 0 3>&- &
	w=$!
	# task 1 cannot end before the gate opens: vine-collect waits for it
	spread_wait_for 20 running_count 1
	kill -0 $c
	touch go
	wait $c
	assert_equal "$(cat out/1/stdout)" one
	assert_equal "$(cat out/2/stdout)" two
	wait $w
	cp -a out out.first
	cp jl jl.first
	run -0 vine-collect -w -o out -j jl
	run -0 diff -r out.first out
	run -0 diff jl.first jl
	# a stale layout from an earlier run is replaced, not merged
	echo stray >out/1/stray
	run -0 vine-collect -o out
	assert_file_not_exists out/1/stray
}

reaped() {
	[ "$(status_py '[w["state"] for w in j["workers"]], j["tasks"]["ready"]')" = "['lost'] 1" ]
}

@test "collect -w reaps the tasks of a worker that died and waits for them to run again" {
	export VINE_LEASE=1
	echo "$(gate); echo again" | vine-submit
	vine-worker -N a -c "$PWD/ca" -n 1 3>&- &
	a=$!
	spread_wait_for 20 sh -c '[ "$(vine-status --json | python3 -c "import json, sys; print(json.load(sys.stdin)[\"tasks\"][\"running\"])")" = 1 ]'
	kill -9 $a
	wait $a || true
	vine-collect -w -o out 3>&- &
	c=$!
	spread_wait_for 20 reaped
	kill -0 $c
	touch go
	vine-worker -N b -c "$PWD/cb" -n 1 -i 0
	wait $c
	assert_equal "$(cat out/1/stdout)" again
}

@test "collect: usage errors" {
	run -2 vine-collect extra
	assert_output --partial "usage: vine-collect"
	run -2 vine-collect -x
	run -0 vine-collect -h
	assert_output --partial "usage: vine-collect"
}

@test "collect: the debris of a vine-collect killed with kill -9 is cleared by the next run" {
	echo 'echo hi' | vine-submit
	vine-worker -i 0
	# it stops itself with a task's temporary directory and the joblog's made
	VINE_TEST_PAUSE=collect-task vine-collect -o out -j jl 3>&- &
	pid=$!
	wait_stopped "$pid"
	kill -9 "$pid"
	wait "$pid" || true
	run -0 ls -A out
	assert_output --regexp '^\.tmp\.1\.[A-Za-z0-9]{6}$'
	run -0 ls -A
	assert_line --regexp '^jl\.tmp\.[A-Za-z0-9]{6}$'
	# before: the rerun left them there for ever
	run -0 vine-collect -o out -j jl
	run -0 ls -A out
	assert_output 1
	run -0 ls -A
	refute_line --regexp '^jl\.tmp\.'
	assert_equal "$(cat out/1/stdout)" hi
}

@test "collect -n: only tasks the directory holds no entry for, their ids on stdout" {
	printf '%s\n' 'echo one' 'echo two' | vine-submit
	vine-worker -n 2 -i 0
	run -0 --separate-stderr vine-collect -n -o out
	assert_output $'1\n2'
	assert_equal "$(cat out/2/stdout)" two
	# a reader took task 1: an empty file of its name stays, the results go
	rm -r out/1
	touch out/1
	echo 'echo three' | vine-submit
	vine-worker -n 2 -i 0
	run -0 --separate-stderr vine-collect -n -o out
	assert_output 3
	assert_file_empty out/1
	assert_equal "$(cat out/3/stdout)" three
	# nothing new: nothing written, nothing printed
	run -0 --separate-stderr vine-collect -n -o out
	assert_output ''
	# -n needs -o, and shares stdout with no joblog
	run -2 vine-collect -n
	run -2 vine-collect -n -o out -j -
}

# files_in_state: result files rows, and files under the state's results directory
files_in_state() {
	echo "$(python3 -c 'import sqlite3; print(sqlite3.connect("vine.db").execute("SELECT count(*) FROM files").fetchone()[0])') $(find vine.db.results -type f 2>/dev/null | wc -l)"
}

@test "collect -d: results written are dropped from the state, which still counts the tasks" {
	printf '%s\n' 'echo one; echo r >"$VINE_OUTDIR/res"' 'echo two; exit 3' | vine-submit
	vine-worker -n 2 -i 0
	run -0 files_in_state
	assert_output '3 3'
	run -1 --separate-stderr vine-collect -n -d -o out
	assert_output $'1\n2'
	assert_equal "$(cat out/1/out/res)" r
	assert_equal "$(cat out/2/exit)" 3
	run -0 files_in_state
	assert_output '0 0'
	run -0 vine-status
	assert_line --partial '2 total, 0 ready, 0 running, 1 done, 1 failed'
	# the reader removes what it took outright: delivered tasks are not written again
	rm -r out/1 out/2
	run -1 --separate-stderr vine-collect -n -d -o out
	assert_output ''
	run -1 vine-collect -o out
	run -0 ls -A out
	assert_output ''
	# the joblog still lists them
	run -1 vine-collect -j -
	assert_line --regexp $'^1\t.*\techo one'
	# written by a run cut before it delivered (or by -n alone): delivered next time
	echo 'echo three' | vine-submit
	vine-worker -i 0
	run -1 --separate-stderr vine-collect -n -o out
	assert_output 3
	run -0 files_in_state
	assert_output '1 1'
	run -1 --separate-stderr vine-collect -n -d -o out
	assert_output 3
	run -0 files_in_state
	assert_output '0 0'
	assert_equal "$(cat out/3/stdout)" three
	# -d needs -o
	run -2 vine-collect -d
}

@test "collect TASK...: only the tasks named, in the directory and the joblog" {
	printf '%s\n' 'echo one' 'echo two' 'echo three' | vine-submit
	vine-worker -n 3 -i 0
	run -0 --separate-stderr vine-collect -n -d -o out 3 1
	assert_output $'1\n3'
	run -0 ls out
	assert_output $'1\n3'
	# task 2 keeps its results in the state
	run -0 python3 -c 'import sqlite3; print(sqlite3.connect("vine.db").execute("SELECT task FROM files").fetchall())'
	assert_output '[(2,)]'
	run -0 vine-collect -j - 2
	assert_equal "${#lines[@]}" 2
	assert_line --regexp $'^2\t'
	run -2 vine-collect 2
	run -2 vine-collect -o out x1
	assert_output --partial "'x1' is not a task id"
}
