#!/usr/bin/env bats
# vine-submit: task lists in, task ids out, all or nothing.

bats_require_minimum_version 1.5.0
load helpers

@test "submit: one id per task, in input order, from a file or standard input" {
	printf 'echo a\necho b\necho c\n' >tasks
	run -0 vine-submit tasks
	assert_output $'1\n2\n3'
	run -0 vine-submit - <tasks
	assert_output $'4\n5\n6'
	run -0 vine-submit <tasks
	assert_output $'7\n8\n9'
	assert_file_exists vine.db
	run -0 status_py 'j["tasks"]["ready"], j["tasks"]["total"]'
	assert_output '9 9'
	run -0 vine-status 2
	assert_line '  command: echo b'
}

@test "submit: blank lines, comments and continued lines" {
	printf 'echo one\n\n   \t\n# comment\n  # indented comment\necho two \\\n  three\n# a comment \\\n  continued\necho four\r\necho "x\\\\"\n' >tasks
	run -0 vine-submit tasks
	assert_output $'1\n2\n3\n4'
	run -0 vine-status 2
	assert_line '  command: echo two   three'
	run -0 vine-status 3
	assert_line '  command: echo four'
	run -0 vine-status 4
	assert_line '  command: echo "x\\"'
}

@test "submit: an empty task list is an error and creates nothing" {
	run -1 vine-submit </dev/null
	assert_output "vine-submit: no tasks in 'standard input': nothing submitted"
	assert_file_not_exists vine.db
	printf '\n# only comments\n\n' >tasks
	run -1 vine-submit tasks
	assert_output "vine-submit: no tasks in 'tasks': nothing submitted"
	assert_file_not_exists vine.db
	# with -e it registers the environment only, and says so
	mkdir -p tree && echo x >tree/f && vine-pack -q -o env.tgz tree >/dev/null
	run -0 --separate-stderr vine-submit -e env.tgz </dev/null
	assert_output ""
	[ "$stderr" = "vine-submit: no tasks in 'standard input': registered 'env.tgz' ($(sha256sum env.tgz | cut -c1-64)) only" ]
	run -0 status_py 'j["tasks"]["total"], len(j["objects"])'
	assert_output '0 1'
}

@test "submit: options are stored with every task" {
	printf 'a\nb\n' | vine-submit -n 2 -r 3 -t 1.5 --tag sweep-1
	run -0 status_py '[j[k] for k in ("cores", "retries", "timeout", "tag", "state")]' 2
	assert_output "[2, 3, 1.5, 'sweep-1', 'ready']"
	echo c | vine-submit
	run -0 status_py '[j[k] for k in ("cores", "retries", "timeout", "tag")]' 3
	assert_output "[1, 0, None, None]"
}

@test "submit: a NUL byte adds nothing and names the line" {
	printf 'echo ok\necho ok\necho b\0ad\necho ok\n' >tasks
	run -1 vine-submit tasks
	assert_output --partial "'tasks' line 3"
	assert_output --partial "NUL byte"
	# the state was not even created
	assert_file_not_exists vine.db
	echo 'echo first' | vine-submit
	run -1 vine-submit <tasks
	assert_output --partial "standard input' line 3"
	run -0 status_py 'j["tasks"]["total"]'
	assert_output 1
}

@test "submit: a task longer than 1 MiB adds nothing and names the line" {
	{
		echo 'echo fine'
		echo '# comment'
		head -c 1048577 /dev/zero | tr '\0' x
		echo
		echo 'echo after'
	} >tasks
	run -1 vine-submit tasks
	assert_output --partial "line 3: task longer than 1048576 bytes"
	assert_file_not_exists vine.db
	# 1 MiB exactly is a task
	{ printf 'echo '; head -c 1048571 /dev/zero | tr '\0' x; echo; } >ok
	run -0 vine-submit ok
	assert_output 1
}

@test "submit: absurd option values are usage errors and add nothing" {
	for opt in "-n 0" "-n 4097" "-n two" "-r -1" "-r 1001" "-t 0" "-t -5" "-t abc" \
		"-t inf" "-t nan" "-t 1e10" "-t 5s"; do
		# shellcheck disable=SC2086
		run -2 vine-submit $opt <<<'echo hi'
		assert_output --partial "usage: vine-submit"
		assert_line --index 0 --partial "vine-submit: ${opt%% *}"
	done
	run -2 vine-submit --tag "$(printf 'a\nb')" <<<'echo hi'
	run -2 vine-submit --tag '' <<<'echo hi'
	run -2 vine-submit one two
	run -2 vine-submit --bogus
	run -2 vine-submit --failed tasks
	run -2 vine-submit --failed -n 2
	assert_file_not_exists vine.db
	run -0 vine-submit -h
	assert_output --partial "usage: vine-submit"
}

@test "submit: a missing file is an error" {
	run -1 vine-submit nope.txt
	assert_output "vine-submit: cannot open 'nope.txt': No such file or directory"
}

@test "submit -e registers the archive as an object: sha256, size, absolute origin" {
	mkdir envs
	head -c 5000 /dev/urandom >envs/env.tar.gz
	id=$(sha256sum envs/env.tar.gz | cut -d' ' -f1)
	run -0 vine-submit -e envs/env.tar.gz <<<$'echo one\necho two'
	assert_output $'1\n2'
	run -0 status_py '[(o["id"], o["size"], o["origin"], o["replicas"], o["served_origin"], o["served_peer"]) for o in j["objects"]]'
	assert_output "[('$id', 5000, '$PWD/envs/env.tar.gz', [], 0, 0)]"
	run -0 status_py 'j["object"]' 2
	assert_output "$id"
	# the same archive again: one object still
	cd envs
	run -0 vine-submit -s ../vine.db -e ./env.tar.gz <<<'echo three'
	cd ..
	run -0 status_py 'len(j["objects"])'
	assert_output 1
}

@test "submit -e: a missing or unusable archive adds nothing" {
	run -1 vine-submit -e nope.tar.gz <<<'echo hi'
	assert_output "vine-submit: cannot use archive 'nope.tar.gz': No such file or directory"
	mkdir adir
	run -1 vine-submit -e adir <<<'echo hi'
	assert_output "vine-submit: cannot use archive 'adir': not a regular file"
	if [ "$(id -u)" -ne 0 ]; then
		echo x >locked.tar.gz
		chmod 000 locked.tar.gz
		run -1 vine-submit -e locked.tar.gz <<<'echo hi'
		assert_output --partial "locked.tar.gz"
	fi
	assert_file_not_exists vine.db
}

@test "submit: 100,000 tasks go in in one transaction" {
	seq 100000 | sed 's/^/echo task /' >tasks
	# counted by the state itself (VINE_STATE_STATS), not timed: the
	# benchmark (bench/tasks.sh) holds the speed bar
	VINE_STATE_STATS=$PWD/stats vine-submit tasks >ids
	run -0 wc -l <ids
	assert_output 100000
	run -0 tail -1 ids
	assert_output 100000
	# one to make the state, one for the tasks
	run -0 cat stats
	assert_output --regexp '^pid [0-9]+ transactions 2 '
	seq 3 | sed 's/^/echo more /' | VINE_STATE_STATS=$PWD/stats2 vine-submit >/dev/null
	run -0 cat stats2
	assert_output --regexp '^pid [0-9]+ transactions 1 '
	run -0 vine-status 99999
	assert_line '  command: echo task 99999'
}

@test "state: a schema version mismatch is refused clearly, and the file left alone" {
	echo 'echo hi' | vine-submit
	python3 -c 'import sqlite3; c = sqlite3.connect("vine.db"); c.execute("PRAGMA user_version = 99"); c.commit()'
	for cmd in vine-submit vine-status vine-collect "vine-worker -i 0"; do
		# shellcheck disable=SC2086
		run -1 $cmd <<<'echo more'
		assert_output --partial "vine.db' has schema version 99, newer than this program's version 6: use the vine that made it, or a newer one"
	done
	run -0 python3 -c 'import sqlite3; print(sqlite3.connect("vine.db").execute("SELECT count(*) FROM tasks").fetchone()[0])'
	assert_output 1
}

@test "state: a database that is not a vine state is refused and left alone" {
	python3 -c 'import sqlite3; c = sqlite3.connect("other.db"); c.execute("CREATE TABLE mine(x)"); c.commit()'
	run -1 vine-submit -s other.db <<<'echo hi'
	assert_output "vine-submit: 'other.db' is an SQLite database but not a vine state"
	run -0 python3 -c 'import sqlite3; print([r[0] for r in sqlite3.connect("other.db").execute("SELECT name FROM sqlite_master")])'
	assert_output "['mine']"
	echo 'not a database at all, just some text that is long enough' >text.db
	run -1 vine-status -s text.db
	assert_output --partial "not a database"
}

@test "state: readers need an existing state; ssh:// needs a host" {
	run -1 vine-status -s missing.db
	assert_output "vine-status: state 'missing.db' does not exist (vine-submit creates one; name yours with -s STATE or \$VINE_STATE)"
	run -1 vine-collect -s missing.db
	assert_file_not_exists missing.db
	run -1 vine-submit -s ssh://nonexistent.invalid/home/me/run.db <<<'echo hi'
	assert_output --partial "cannot resolve 'nonexistent.invalid'"
	run -1 vine-worker -s ssh://nonexistent.invalid/run.db -i 0
	assert_output --partial "cannot resolve"
	# $VINE_STATE is the default, then ./vine.db
	VINE_STATE=$PWD/env.db vine-submit <<<'echo hi'
	assert_file_exists env.db
	unset VINE_STATE
	vine-submit <<<'echo hi'
	assert_file_exists vine.db
}

@test "state: many programs creating the state at once all succeed" {
	pids=
	for i in 1 2 3 4 5 6 7 8; do
		(echo "echo $i" | vine-submit >"ids.$i") 3>&- &
		pids="$pids $!"
	done
	# a worker started at the same time finds the state, or says it is not
	# there yet (missing, or empty while a vine-submit makes it): with -i 0
	# it does not wait for it
	vine-worker -i 0 -N early 2>early.err 3>&- &
	local w=$!
	# every vine-submit succeeds
	for p in $pids; do wait "$p"; done
	wait "$w" || grep -qE "does not exist \(vine-submit creates one|' is empty" early.err
	run -0 sh -c 'cat ids.* | sort -n | tr "\n" " "'
	assert_output '1 2 3 4 5 6 7 8 '
	run -0 status_py 'j["tasks"]["total"], j["schema"]'
	assert_output '8 6'
	[ ! -s early.err ] || grep -qE "does not exist|' is empty" early.err
}
