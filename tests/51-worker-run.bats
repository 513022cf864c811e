#!/usr/bin/env bats
# vine-worker: running tasks - environment, directories, output, limits.

bats_require_minimum_version 1.5.0
load helpers

@test "worker: task environment and a fresh scratch directory for every task" {
	cat >tasks <<'EOF'
cd "$VINE_SCRATCH"; echo "$VINE_TASK_ID $VINE_ATTEMPT $VINE_CORES $VINE_NODE"; ls -A | wc -l; touch left-behind; echo junk >"$VINE_OUTDIR/x"; pwd >"$VINE_OUTDIR/pwd"
cd "$VINE_SCRATCH"; echo "$VINE_TASK_ID"; ls -A | wc -l; ls -A "$VINE_OUTDIR" | wc -l; test -z "$VINE_ENV" && echo no-env; test -r /dev/stdin && head -c 5 </dev/stdin | wc -c
cd "$VINE_SCRATCH"; mkdir sub; chmod 000 sub; chmod 500 .; cd /; echo moved away
cd "$VINE_SCRATCH"; ls -A | wc -l; test -w . && echo writable
EOF
	vine-submit -n 1 tasks
	# one core: every task runs in the same place, which must look new each time
	run -0 vine-worker -n 1 -i 0
	vine-collect -o out
	assert_equal "$(cat out/1/stdout)" $'1 1 1 testnode\n0'
	assert_equal "$(cat out/2/stdout)" $'2\n0\n0\nno-env\n0'
	assert_equal "$(cat out/3/stdout)" 'moved away'
	assert_equal "$(cat out/4/stdout)" $'0\nwritable'
	assert_file_exists out/1/out/pwd
	# the working directory is not the output directory, and lives in the cache
	run -0 cat out/1/out/pwd
	assert_output --regexp "^$VINE_CACHE/tasks/testnode\.[0-9]+/[0-9]+$"
	# nothing is left in the cache once the worker is gone
	run -0 ls -A "$VINE_CACHE/tasks"
	assert_output ''
}

@test "worker: quotes, pipes, redirections and UTF-8 reach the shell intact" {
	cat >tasks <<'EOF'
printf '%s\n' "it's \"quoted\"" 'single $HOME' | tr a-z A-Z
echo 'héllo wörld ✓' | sed 's/ö/o/'; echo ünïcödé >&2
x=1; for i in 1 2 3; do x=$((x * 2)); done; echo "$x" | cat -n | tr -s ' '
EOF
	vine-submit tasks
	vine-worker -i 0
	vine-collect -o out
	assert_equal "$(cat out/1/stdout)" $'IT\'S "QUOTED"\nSINGLE $HOME'
	assert_equal "$(cat out/2/stdout)" 'héllo world ✓'
	assert_equal "$(cat out/2/stderr)" 'ünïcödé'
	assert_equal "$(cat out/3/stdout)" $' 1\t8'
	assert_equal "$(cat out/2/cmd)" "echo 'héllo wörld ✓' | sed 's/ö/o/'; echo ünïcödé >&2"
}

@test "worker: a command of nearly 1 MiB runs (longer than one exec argument may be)" {
	{ printf 'x='; head -c 1040000 /dev/zero | tr '\0' y; printf '; echo ${#x} "$0"\n'; } | vine-submit
	echo 'echo small "$0"' | vine-submit
	vine-worker -i 0
	run -0 vine-collect -o out
	run -0 cat out/1/stdout
	assert_output --regexp '^1040000 .*\.sh$'
	assert_equal "$(cat out/2/stdout)" 'small sh'
}

@test "worker: files in VINE_OUTDIR come back, with their subdirectories" {
	echo 'mkdir -p "$VINE_OUTDIR/a/b"; echo deep >"$VINE_OUTDIR/a/b/c.txt"; printf top >"$VINE_OUTDIR/top"; : >"$VINE_OUTDIR/empty"; ln -s top "$VINE_OUTDIR/link"; mkfifo "$VINE_OUTDIR/fifo"' |
		vine-submit
	run -0 vine-worker -i 0
	assert_output --partial "not shipping 'link': not a regular file"
	assert_output --partial "not shipping 'fifo': not a regular file"
	vine-collect -o out
	assert_equal "$(cat out/1/out/a/b/c.txt)" deep
	assert_equal "$(cat out/1/out/top)" top
	assert_file_exists out/1/out/empty
	assert_file_not_exists out/1/out/link
	assert_file_not_exists out/1/out/fifo
	# they are kept beside the state too, per attempt
	assert_equal "$(cat vine.db.results/1/1/out/a/b/c.txt)" deep
}

@test "worker: -t sends TERM to the process group, then KILL after the grace period" {
	export VINE_GRACE=1
	# sleeps named for this run alone: pgrep sees the whole machine
	u=$$$RANDOM
	printf '%s\n' "sleep 30.1357$u & sleep 30.2468$u; wait" "trap '' TERM; sleep 30.3579$u" 'echo quick' |
		vine-submit -t 0.5
	start=${EPOCHREALTIME/./}
	run -0 vine-worker -n 3 -i 0
	elapsed=$(( (${EPOCHREALTIME/./} - start) / 1000 ))
	# far under the tasks' 30 s sleeps, however loaded the machine
	[ "$elapsed" -lt 20000 ]
	run -0 status_py '[(a["outcome"], a["signal"]) for a in j["attempts"]]' 1
	assert_output "[('timeout', 15)]"
	run -0 status_py '[(a["outcome"], a["signal"], a["ended"] - a["started"] >= 1.4) for a in j["attempts"]]' 2
	assert_output "[('timeout', 9, True)]"
	run -0 status_py 'j["state"]' 3
	assert_output done
	# nothing of the killed tasks is left running
	run -1 pgrep -f "^sleep 30\.[0-9]{4}$u\$"
}

@test "worker: tasks start with default signal dispositions, whatever the worker inherited" {
	# a background job of a script ignores INT and QUIT; Python ignores PIPE
	printf '%s\n' 'kill -PIPE $$; echo survived' 'kill -QUIT $$; echo survived' | vine-submit
	run -0 sh -c "trap '' PIPE QUIT; exec vine-worker -n 1 -i 0"
	run -0 status_py '[(a["outcome"], a["signal"]) for a in j["attempts"]]' 1
	assert_output "[('signaled', 13)]"
	run -0 status_py '[(a["outcome"], a["signal"]) for a in j["attempts"]]' 2
	assert_output "[('signaled', 3)]"
}

@test "worker: processes a task leaves behind are killed when it ends" {
	u=$$$RANDOM
	echo "sleep 97.531$u & echo started" | vine-submit
	vine-worker -i 0
	run -1 pgrep -f "^sleep 97\.531$u\$"
	run -0 status_py 'j["state"]' 1
	assert_output done
}

@test "worker: a task writing 100 MB to stdout is streamed, not held in memory" {
	echo 'head -c 104857600 /dev/zero | tr "\0" x; echo done >&2' | vine-submit
	# the largest resident size of any process: holding the output would not fit
	run -0 max_rss vine-worker -i 0
	[ "$output" -lt 60000 ]
	run -0 max_rss vine-collect -o out
	[ "$output" -lt 60000 ]
	run -0 stat -c %s out/1/stdout
	assert_output 104857600
	run -0 sh -c 'tr -d x <out/1/stdout | wc -c'
	assert_output 0
	assert_equal "$(cat out/1/stderr)" done
	run -0 status_py 'j["attempts"][0]["received"]' 1
	assert_output 104857605
}

@test "worker: a command that cannot be found fails with status 127" {
	echo 'no-such-command-xyz' | vine-submit
	vine-worker -i 0
	run -1 vine-collect -o out
	assert_equal "$(cat out/1/exit)" 127
	run -0 cat out/1/stderr
	assert_output --partial "not found"
}

@test "worker: -i 0 exits at once when nothing is ready; -i IDLE waits that long" {
	echo true | vine-submit
	run -0 vine-worker -i 0
	run -0 vine-worker -i 0
	assert_output ''
	start=${EPOCHREALTIME/./}
	run -0 vine-worker -i 1
	elapsed=$(( (${EPOCHREALTIME/./} - start) / 1000 ))
	# at least the second it was told; the bound only says it did end
	[ "$elapsed" -ge 1000 ] && [ "$elapsed" -lt 20000 ]
	# a task submitted while it waits is picked up
	vine-worker -i 3 &
	pid=$!
	sleep 0.5
	echo 'echo late' | vine-submit
	wait $pid
	run -0 status_py 'j["state"]' 2
	assert_output done
	# tasks too big for this worker do not keep it busy
	echo 'echo big' | vine-submit -n 8
	run -0 vine-worker -n 2 -i 0
	run -0 status_py 'j["state"]' 3
	assert_output ready
}

@test "worker: started before the state exists, it waits for vine-submit to make it, saying so once" {
	vine-worker -n 1 -i 30 2>worker.err 3>&- &
	w=$!
	spread_wait_for 20 grep -q "does not exist yet: waiting up to 30 s (-i)" worker.err
	assert_file_not_exists vine.db
	echo 'echo late' | vine-submit
	run -0 vine-collect -w -o out
	assert_equal "$(cat out/1/stdout)" late
	kill -TERM "$w"
	wait "$w" || true
	run -0 grep -c "does not exist yet" worker.err
	assert_output 1
	# it waits -i seconds at most, then says why it gives up
	run -1 vine-worker -s other.db -i 1
	assert_line -n 0 "vine-worker: state 'other.db' does not exist yet: waiting up to 1 s (-i) for vine-submit to create it"
	assert_line -n 1 "vine-worker: state 'other.db' does not exist (vine-submit creates one; name yours with -s STATE or \$VINE_STATE)"
	# a state that cannot appear (no such directory) is not waited for
	run -1 vine-worker -s nodir/x.db -i 30
	assert_output "vine-worker: cannot open state 'nodir/x.db': directory 'nodir' does not exist"
}

@test "worker: -l is checked and recorded; bad options are usage errors" {
	echo true | vine-submit
	run -0 vine-worker -i 0 -l 127.0.0.2:0 -N node-a -n 3
	run -0 status_py '[(w["node"], w["cores"], w["listen"], w["state"]) for w in j["workers"]]'
	# the address it served on, its port picked by the system
	assert_output --regexp "^\[\('node-a', 3, '127\.0\.0\.2:[1-9][0-9]*', 'gone'\)\]$"
	for opt in "-l 1.2.3.4:99999" "-l [::1" "-l ::1:80" "-l host:port" "-n 0" "-n 5000" "-i -1" "-i x" \
		"-N a/b" "-N .hidden" "extra"; do
		# shellcheck disable=SC2086
		run -2 vine-worker -i 0 $opt
		assert_output --partial "usage: vine-worker"
	done
	VINE_LEASE=0 run -2 vine-worker -i 0
	assert_output --partial "VINE_LEASE='0' is not a positive number of seconds"
	run -0 vine-worker -h
	assert_output --partial "usage: vine-worker"
}

@test "worker: a task's environment is made ready once per node and activated" {
	[ -x "$VINE_BIN/vine-seed" ] || skip "the seed module is not merged yet"
	fixture_venv "$PWD/venv"
	vine-pack -o env.tar.gz venv >/dev/null
	for i in 1 2 3 4; do
		echo 'python -c "import sys; print(sys.prefix)"; echo "$VINE_ENV|$VIRTUAL_ENV"; command -v python'
	done | vine-submit -e env.tar.gz
	run -0 vine-worker -n 4 -i 0
	run -0 vine-collect -o out
	env=$(head -1 out/1/stdout)
	[[ $env == "$VINE_CACHE"/env/* ]]
	for i in 1 2 3 4; do
		assert_equal "$(cat out/$i/stdout)" "$env"$'\n'"$env|$env"$'\n'"$env/bin/python"
	done
	run -0 ls "$VINE_CACHE/env"
	assert_equal "${#lines[@]}" 1
}

@test "worker: an environment that cannot be had is handed back, and fails after a set number of nodes, every reason kept" {
	head -c 4096 /dev/urandom >env.tar.gz
	echo 'echo never' | vine-submit -e env.tar.gz -r 0
	# the origin changes after it was registered: its id no longer matches
	head -c 4096 /dev/urandom >env.tar.gz
	# each node hands it back once, not using up -r 0 (and then backs off
	# from it); the third node makes it fail
	for n in a b; do
		run -0 vine-worker -N "$n" -c "$PWD/c-$n" -n 1 -i 0
		assert_output --regexp "environment [0-9a-f]{64} on node '$n': .*: its tasks are handed back"
		run -0 status_py 'j["state"], j["faults"]' 1
		assert_output "ready $([ $n = a ] && echo 1 || echo 2)"
	done
	run -0 vine-worker -N c -c "$PWD/c-c" -n 1 -i 0
	run -1 vine-collect -o out
	run -0 status_py '[a["outcome"] for a in j["attempts"]], j["state"], j["failures"], j["faults"]' 1
	assert_output "['fault', 'fault', 'fault'] failed 0 3"
	run -0 status_py 'sorted(a["node"] for a in j["attempts"])' 1
	assert_output "['a', 'b', 'c']"
	run -0 status_py '[a["message"] for a in j["attempts"]]' 1
	assert_output --regexp "environment [0-9a-f]{64} on node '[abc]': "
	run -0 cat out/1/exit
	assert_output --regexp '^fault: environment [0-9a-f]{64} on node '
}

@test "worker -l: serves its cache to peers while it runs; its environment came through the state" {
	fixture_venv "$PWD/venv"
	vine-pack -o env.tar.gz venv >/dev/null
	id=$(sha256sum env.tar.gz | cut -c1-64)
	echo 'python -c "import sys; print(sys.prefix)"' | vine-submit -e env.tar.gz >/dev/null
	vine-worker -N node-a -c "$PWD/ca" -l 127.0.0.3:0 -i 30 2>a.err 3>&- &
	pid=$!
	spread_wait_for 20 sh -c 'vine-status --json | grep -q "\"done\": 1"'
	# the worker's environment was fetched from the origin, recorded in the state
	run -0 status_py '[(x["source"], x["dest"], x["status"]) for x in j["transfers"]]'
	assert_output "[(None, 'node-a', 'ok')]"
	# another node now gets the object from the worker
	run -0 vine-spread -q -s "$VINE_STATE" -N node-b -c "$PWD/cb" "$id"
	cmp env.tar.gz "cb/objects/$id"
	run -0 status_py '[(x["source"], x["dest"], x["status"]) for x in j["transfers"]][1:]'
	assert_output "[('node-a', 'node-b', 'ok')]"
	kill -TERM "$pid"
	wait "$pid"
	# it stopped serving: node-c gets it from the origin
	run -0 vine-spread -q -s "$VINE_STATE" -N node-c -c "$PWD/cc" "$id"
	run -0 status_py '[x["source"] for x in j["transfers"] if x["dest"] == "node-c"]'
	assert_output "[None]"
}

@test "worker: a relative state path works for tasks with an environment (the task's child reopens the state)" {
	mkdir -p tree/bin
	printf '#!/bin/sh\necho hello from "$VINE_ENV"\n' >tree/bin/hello
	chmod +x tree/bin/hello
	run -0 vine-pack -q -o env.tar.gz tree
	unset VINE_STATE
	echo hello | vine-submit -s run.db -e env.tar.gz
	run -0 vine-worker -s run.db -N a -c "$PWD/ca" -n 1 -i 0
	run -0 vine-collect -s run.db -o out
	run -0 cat out/1/stdout
	assert_output --regexp "^hello from $PWD/ca/env/[0-9a-f]{12}\$"
}
