#!/usr/bin/env bats
# The state over SSH: programs given -s ssh://host/path run vine-state on
# the test host (tests/helpers-hosts.bash) and must behave as with the
# local state, across lost connections too.

load helpers
load helpers-hosts
bats_require_minimum_version 1.5.0

setup_file() {
	host_start
}

setup() {
	vine_setup
	DB=$BATS_TEST_TMPDIR/run.db
	URL=$HOST_URL$DB
}

# summary DB: per task "id state outcome,outcome,..." from the local state
summary() {
	local id
	for id in $(seq "$2"); do
		vine-status -s "$1" --json "$id" | /usr/bin/python3 -c '
import json, sys
t = json.load(sys.stdin)
print(t["id"], t["state"], ",".join(a["outcome"] + ("=%s" % a["exit"] if a["exit"] is not None else "") for a in t["attempts"]))'
	done
}

# status_json STATE: vine-status --json without what differs by URL and time
status_json() {
	vine-status -s "$1" --json | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
for k in ("state", "time"):
    s.pop(k, None)
for w in s.get("workers", []):
    for k in ("started", "heartbeat", "expires", "pid"):
        w.pop(k, None)
print(json.dumps(s, sort_keys=True))'
}

@test "vine-state: usage, and it serves local states only" {
	run -0 vine-state -h
	assert_line -n 0 "usage: vine-state [-s STATE]"
	run -2 vine-state -x
	assert_output --partial "usage: vine-state"
	run -2 vine-state -s "$DB" extra
	run -2 vine-state -s ssh://host/x.db </dev/null
	assert_output --partial "vine-state: 'ssh://host/x.db': serves a state on this host's disk, not a URL"
}

@test "vine-state: a client that is not one is refused, and nothing is created" {
	run -1 vine-state -s "$DB" <<<"hello there"
	assert_output --partial "vine-state: no vine-state handshake"
	assert_output --partial "not a frame of the state protocol"
	[ ! -e "$DB" ]
	# hanging up at once is no error
	run -0 vine-state -s "$DB" </dev/null
}

@test "a run over ssh: submit, work, collect and status as with the local state" {
	printf '%s\n' 'echo one' 'echo two >&2; exit 3' \
		'printf "x\\377y" >"$VINE_OUTDIR/bytes"; echo out >"$VINE_OUTDIR/f.txt"' >tasks.txt
	run -0 vine-submit -s "$URL" -r 0 tasks.txt
	assert_output "1
2
3"
	[ -f "$DB" ]
	run -0 vine-worker -s "$URL" -N w1 -n 2 -i 0
	run -1 vine-collect -s "$URL" -o res
	[ "$(cat res/1/stdout)" = one ]
	[ "$(cat res/2/stderr)" = two ]
	[ "$(cat res/2/exit)" = 3 ]
	[ "$(cat res/3/out/f.txt)" = out ]
	printf 'x\377y' | cmp - res/3/out/bytes
	# the same through the local state
	run -1 vine-collect -s "$DB" -o local
	diff -r res local
	[ "$(status_json "$URL")" = "$(status_json "$DB")" ]
	run -0 summary "$URL" 3
	assert_output "1 done exited=0
2 failed exited=3
3 done exited=0"
}

@test "strings that are not UTF-8 survive the trip" {
	printf 'echo "caf\351"\n' >tasks.txt
	run -0 vine-submit -s "$URL" tasks.txt
	run -0 vine-status -s "$URL" --json 1
	assert_output "$(vine-status -s "$DB" --json 1)"
	run -0 vine-worker -s "$URL" -N w1 -i 0
	run -0 vine-collect -s "$URL" -o res
	printf 'caf\351\n' | cmp - res/1/stdout
}

@test "vine-state is found on the remote PATH, or run as VINE_REMOTE_STATE_CMD" {
	echo true >tasks.txt
	VINE_REMOTE_STATE_CMD=$VINE_BIN/vine-state run -0 vine-submit -s "$URL" tasks.txt
	VINE_REMOTE_STATE_CMD=/nonexistent/vine-state run -1 vine-status -s "$URL"
	assert_output --partial "state '$URL': no vine-state handshake: root@127.0.0.1:$HOST_PORT: connection closed by '/nonexistent/vine-state -s '$DB'' (exit status 127): "
	assert_output --partial "/nonexistent/vine-state: "
}

@test "over ssh: a named submission, cancel, memory and GPUs, and the task's directory" {
	mkdir proj
	cd proj
	run -0 vine-submit -s "$URL" --name remote-1 --memory 1GB <<<$'pwd\nsleep 60'
	assert_output $'1\n2'
	run -0 vine-submit -s "$URL" --name remote-1 --memory 1GB <<<$'pwd\nsleep 60'
	assert_output $'1\n2'
	cd ..
	run -0 vine-cancel -s "$URL" 2
	assert_output 2
	run -0 vine-worker -s "$URL" -i 0 --memory 2GB
	run -1 vine-collect -s "$URL" -o res
	assert_equal "$(cat res/1/stdout)" "$PWD/proj"
	assert_equal "$(cat res/2/exit)" cancelled
	run -0 sh -c "vine-status -s '$URL' --json | python3 -c 'import json, sys; print([w[\"memory\"] for w in json.load(sys.stdin)[\"workers\"]])'"
	assert_output '[2000000000]'
	# an older vine-state would drop them: refused, not silently lost
	old_state
	VINE_REMOTE_STATE_CMD="/usr/bin/python3 $PWD/old.py vine-state" \
		run -1 vine-submit -s "$URL" --name remote-2 <<<'true'
	assert_output --partial "vine-state there understands schema version 2, but a named submission, memory or GPUs needs version 4"
	VINE_REMOTE_STATE_CMD="/usr/bin/python3 $PWD/old.py vine-state" run -1 vine-cancel -s "$URL" --all
	assert_output --partial "but cancelling needs version 4"
}

@test "a missing state is an error unless the program creates states" {
	run -1 vine-status -s "$URL"
	assert_output --partial "state '$URL': state '$DB' does not exist (vine-submit creates one; name yours with -s STATE or \$VINE_STATE)"
	[ ! -e "$DB" ]
	echo true | vine-submit -s "$URL" -
	[ -f "$DB" ]
}

@test "a worker waits for a remote state not made yet, for at most -i seconds" {
	run -1 vine-worker -s "$URL" -i 1
	assert_line -n 0 "vine-worker: state '$URL' does not exist yet: waiting up to 1 s (-i) for vine-submit to create it"
	assert_line -n 1 --partial "does not exist (vine-submit creates one"
	[ ! -e "$DB" ]
}

@test "collect -d over ssh://: delivered results are dropped on the state's host" {
	echo 'echo one' | vine-submit -s "$URL" -
	vine-worker -s "$URL" -i 0
	run -0 --separate-stderr vine-collect -s "$URL" -n -d -o out
	assert_output 1
	assert_equal "$(cat out/1/stdout)" one
	run -0 /usr/bin/python3 -c 'import sqlite3, sys; d = sqlite3.connect(sys.argv[1])
print(d.execute("SELECT count(*) FROM files").fetchone()[0], d.execute("SELECT count(*) FROM tasks WHERE delivered IS NOT NULL").fetchone()[0])' "$DB"
	assert_output '0 1'
	# a vine-state too old to drop them: refused, not left unsaid
	echo 'echo two' | vine-submit -s "$URL" -
	vine-worker -s "$URL" -i 0
	old_state
	VINE_REMOTE_STATE_CMD="/usr/bin/python3 $PWD/old.py vine-state" run -1 vine-collect -s "$URL" -n -d -o out
	assert_output --partial "vine-state there understands schema version 2, but delivering results needs version 6"
}

@test "another protocol version, or a login script's greeting, is refused clearly" {
	VINE_REMOTE_STATE_CMD="printf '\\000\\000\\000\\021H\\000\\000\\000\\000vine-state 9'; cat >/dev/null; :" \
		run -1 vine-status -s "$URL"
	assert_output --partial "protocol version mismatch: this side speaks vine-state 1, the other side vine-state 9"
	VINE_REMOTE_STATE_CMD="echo Welcome to the cluster; vine-state" run -1 vine-status -s "$URL"
	assert_output --partial "does a login script write to standard output?"
	assert_output --partial "\"Welcome t\""
}

# counts STATE: "total ready running done failed" from vine-status --json
counts() {
	vine-status -s "$1" --json | /usr/bin/python3 -c '
import json, sys
t = json.load(sys.stdin)["tasks"]
print(t["total"], t["ready"], t["running"], t["done"], t["failed"])'
}

@test "a lost answer to submit: sent again with its key, each task exactly once" {
	printf 'echo %s\n' one two three >tasks.txt
	VINE_REMOTE_STATE_CMD="env VINE_TEST_DROP_ANSWER=submit:1:$BATS_TEST_TMPDIR/dropped vine-state" \
		run -0 vine-submit -s "$URL" tasks.txt
	[ -e "$BATS_TEST_TMPDIR/dropped" ]
	assert_output $'1\n2\n3'
	run -0 counts "$DB"
	assert_output "3 3 0 0 0"
	run -0 vine-status -s "$DB" --json 3
	assert_output --partial '"cmd":"echo three"'
	# the key and its answer were kept with the tasks
	run -0 /usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*), max(answer) FROM once").fetchone())' "$DB"
	assert_output "(1, '[1,2,3]')"
}

@test "a lost answer to vine-submit --failed: requeued once, the ids still printed" {
	printf '%s\n' 'exit 1' 'exit 2' true >tasks.txt
	vine-submit -s "$DB" -r 0 tasks.txt >/dev/null
	vine-worker -s "$DB" -N w1 -i 0
	run -0 counts "$DB"
	assert_output "3 0 0 1 2"
	VINE_REMOTE_STATE_CMD="env VINE_TEST_DROP_ANSWER=requeue_failed:1:$BATS_TEST_TMPDIR/dropped vine-state" \
		run -0 vine-submit -s "$URL" -r 0 --failed
	[ -e "$BATS_TEST_TMPDIR/dropped" ]
	assert_output $'1\n2'
	run -0 counts "$DB"
	assert_output "3 2 0 1 0"
	# each requeued once: their failure counts were reset once, attempts kept
	run -0 summary "$DB" 2
	assert_output $'1 ready exited=1\n2 ready exited=2'
}

# old_state: old.py, which runs the real vine-state but makes its open
# answer say schema 2 (same length), as a vine-state that keeps no keys
old_state() {
	cat >old.py <<'PY'
import subprocess, sys, threading
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
def up():
    while (b := sys.stdin.buffer.raw.read(65536)):
        p.stdin.write(b)
    p.stdin.close()
threading.Thread(target=up, daemon=True).start()
while (b := p.stdout.read(65536)):
    sys.stdout.buffer.write(b.replace(b'"schema":6}', b'"schema":2}').replace(b'"schema": 6}', b'"schema": 2}'))
    sys.stdout.buffer.flush()
sys.exit(p.wait())
PY
}

@test "a vine-state older than schema 3 keeps no keys: a lost submit is reported, not resent" {
	old_state
	printf '%s\n' true true true >tasks.txt
	VINE_REMOTE_STATE_CMD="/usr/bin/python3 $PWD/old.py env VINE_TEST_DROP_ANSWER=submit:1:$BATS_TEST_TMPDIR/dropped vine-state" \
		run -1 vine-submit -s "$URL" tasks.txt
	[ -e "$BATS_TEST_TMPDIR/dropped" ]
	assert_output --partial "the connection failed during submit, which may or may not have taken effect"
	assert_output --partial "vine-state there understands schema version 2, older than 4: these tasks will run in their scratch directories"
	# it did, once
	run -0 counts "$DB"
	assert_output "3 3 0 0 0"
}

@test "lost answers to finish_claim: every task done exactly once, none stranded" {
	for i in $(seq 8); do echo 'sleep 0.1; echo "$VINE_TASK_ID"'; done >tasks.txt
	vine-submit -s "$DB" -r 0 tasks.txt >/dev/null
	# every vine-state process hangs up instead of answering its third
	# finish_claim (after doing it), so claims are lost again and again
	VINE_REMOTE_STATE_CMD="env VINE_TEST_DROP_ANSWER=finish_claim:3 vine-state" \
		run -0 vine-worker -s "$URL" -N w1 -n 2 -i 0
	run -0 vine-collect -s "$DB" -o res
	for i in $(seq 8); do
		[ "$(cat "res/$i/stdout")" = "$i" ]
	done
	run -0 summary "$DB" 8
	# each task ended well once; tasks claimed in a lost answer were
	# given back (released) and claimed again
	assert_equal "$(grep -c ' done ' <<<"$output")" 8
	refute_line --regexp 'exited=0.*exited=0'
	assert_output --partial released
}

@test "a lost put_file answer: the file is sent again and stored once" {
	echo 'head -c 600000 /dev/zero | tr "\0" x >"$VINE_OUTDIR/big"' >tasks.txt
	vine-submit -s "$DB" tasks.txt >/dev/null
	VINE_REMOTE_STATE_CMD="env VINE_TEST_DROP_ANSWER=put_file:1:$BATS_TEST_TMPDIR/dropped vine-state" \
		run -0 vine-worker -s "$URL" -N w1 -i 0
	[ -e "$BATS_TEST_TMPDIR/dropped" ]
	run -0 vine-collect -s "$DB" -o res
	head -c 600000 /dev/zero | tr '\0' x | cmp - res/1/out/big
	run -0 summary "$DB" 1
	assert_output "1 done exited=0"
}

@test "a download cut in the middle resumes where it stopped" {
	echo 'head -c 900000 /dev/zero | tr "\0" y' >tasks.txt
	vine-submit -s "$DB" tasks.txt >/dev/null
	vine-worker -s "$DB" -N w1 -i 0
	VINE_REMOTE_STATE_CMD="env VINE_TEST_DROP_ANSWER=get_file:1:$BATS_TEST_TMPDIR/dropped vine-state" \
		run -0 vine-collect -s "$URL" -o res
	[ -e "$BATS_TEST_TMPDIR/dropped" ]
	head -c 900000 /dev/zero | tr '\0' y | cmp - res/1/stdout
}

@test "a worker carries on across an sshd restart" {
	sshd_start flaky 127.0.0.11
	local url="ssh://root@127.0.0.11:$(sshd_port flaky)$DB"
	for i in $(seq 6); do echo 'sleep 0.4; echo "$VINE_TASK_ID"'; done >tasks.txt
	vine-submit -s "$DB" -r 0 tasks.txt >/dev/null
	spawn "$BATS_TEST_TMPDIR/worker.log" vine-worker -s "$url" -N w1 -n 1 -i 0
	local worker=$SPAWNED
	for i in $(seq 100); do
		[ -s res1 ] && break
		vine-status -s "$DB" --json | grep -q '"done": [1-9]' && break
		sleep 0.1
	done
	sshd_restart flaky
	local rc=0
	wait "$worker" || rc=$?
	cat "$BATS_TEST_TMPDIR/worker.log"
	[ "$rc" = 0 ]
	run -0 vine-collect -s "$DB" -o res
	run -0 summary "$DB" 6
	assert_equal "$(grep -c ' done ' <<<"$output")" 6
	refute_line --regexp 'exited=0.*exited=0'
}

@test "a forced command in authorized_keys pins the key to one state" {
	echo 'echo pinned' | vine-submit -s "$DB" - >/dev/null
	local keys=$BATS_TEST_TMPDIR/authorized_keys
	echo "command=\"vine-state -s $DB\",restrict $(cat "$VINE_SSH_KEY.pub")" >"$keys"
	sshd_start pinned 127.0.0.12 "AuthorizedKeysFile $keys"
	local url="ssh://root@127.0.0.12:$(sshd_port pinned)"
	# whatever state the URL names, the key gets the pinned one
	run -0 vine-status -s "$url/some/other.db" --json 1
	assert_output --partial '"cmd":"echo pinned"'
	# and no other command: asked for `echo hello`, vine-state answers
	run -0 "$VINE_UNITS/test-ssh" run "$url/x" 'echo hello' 2>/dev/null
	assert_output --regexp 'vine-state 1$'
}

# env_tree: env.tar.gz, a packed tree whose bin/hello greets; its id in $id
env_tree() {
	mkdir -p tree/bin
	printf '#!/bin/sh\necho "hello $1"\n' >tree/bin/hello
	chmod +x tree/bin/hello
	vine-pack -o env.tar.gz tree >/dev/null
	id=$(sha256sum env.tar.gz | cut -c1-64)
}

# remote_py EXPR: EXPR over j, vine-status --json through the state over ssh
remote_py() {
	vine-status -s "$URL" --json | python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"
}

@test "spreading over ssh: a serving worker seeds its environment and records the transfer" {
	env_tree
	printf 'hello %s\n' 1 2 3 | vine-submit -s "$URL" --k-peer 3 --no-relay -e env.tar.gz >/dev/null
	run -0 vine-worker -s "$URL" -N node-a -c "$PWD/ca" -l 127.0.0.1:0 -n 2 -i 0
	run -0 vine-collect -s "$URL" -o res
	for t in 1 2 3; do [ "$(cat "res/$t/stdout")" = "hello $t" ]; done
	cmp env.tar.gz "ca/objects/$id"
	run -0 remote_py '[(r["node"], r["complete"], r["bytes"]) for r in j["objects"][0]["replicas"]], j["objects"][0]["served_origin"], j["objects"][0]["bytes_origin"]'
	assert_output "[('node-a', True, $(stat -c %s env.tar.gz))] 1 $(stat -c %s env.tar.gz)"
	run -0 remote_py '[(x["source"], x["dest"], x["state"], x["status"]) for x in j["transfers"]]'
	assert_output "[(None, 'node-a', 'done', 'ok')]"
	# every field of objects and transfers made the trip
	[ "$(status_json "$URL")" = "$(status_json "$DB")" ]
	# the settings went through the state too
	run -0 sqlite3 "$DB" "select value from meta where key in ('k_peer', 'relay') order by key"
	assert_output "3
0"
}

@test "spreading over ssh: vine-spread fetches as the remote state directs, from a serving peer" {
	env_tree
	echo 'hello 1' | vine-submit -s "$URL" -e env.tar.gz >/dev/null
	vine-spread -s "$URL" -c "$PWD/n1" -N n1 --serve -l 127.0.0.1:0 >n1.addr 2>n1.log 3>&- &
	pid=$!
	run -0 vine-spread -q -s "$URL" -c "$PWD/n2" -N n2 "$id"
	cmp env.tar.gz "n2/objects/$id"
	spread_wait_for 10 test -s n1.addr
	run -0 vine-spread -q -s "$URL" -c "$PWD/n1" -N n1 "$id"
	run -0 vine-spread -q -s "$URL" -c "$PWD/n3" -N n3 "$id"
	cmp env.tar.gz "n3/objects/$id"
	kill -TERM "$pid"
	wait "$pid" || true
	run -0 remote_py '[(x["source"], x["dest"], x["status"]) for x in j["transfers"]]'
	assert_output "[(None, 'n2', 'ok'), (None, 'n1', 'ok'), ('n1', 'n3', 'ok')]"
	[ "$(status_json "$URL")" = "$(status_json "$DB")" ]
}

@test "a lost answer to transfer_begin: sent again with its key, one transfer for the node" {
	env_tree
	echo 'hello 1' | vine-submit -s "$URL" -e env.tar.gz >/dev/null
	VINE_REMOTE_STATE_CMD="env VINE_TEST_DROP_ANSWER=transfer_begin:1:$BATS_TEST_TMPDIR/dropped vine-state" \
		run -0 vine-spread -q -s "$URL" -c "$PWD/n1" -N n1 "$id"
	[ -e "$BATS_TEST_TMPDIR/dropped" ]
	cmp env.tar.gz "n1/objects/$id"
	# the resend got the transfer begun the first time: none is left active
	run -0 remote_py '[(x["source"], x["dest"], x["state"], x["status"]) for x in j["transfers"]]'
	assert_output "[(None, 'n1', 'done', 'ok')]"
	run -0 remote_py '[(o["served_origin"], o["transfers_active"]) for o in j["objects"]]'
	assert_output "[(1, 0)]"
}

@test "a lost answer to register_worker: sent again with its key, one worker row" {
	echo true | vine-submit -s "$DB" >/dev/null
	VINE_REMOTE_STATE_CMD="env VINE_TEST_DROP_ANSWER=register_worker:1:$BATS_TEST_TMPDIR/dropped vine-state" \
		run -0 vine-worker -s "$URL" -N w1 -i 0
	[ -e "$BATS_TEST_TMPDIR/dropped" ]
	run -0 summary "$DB" 1
	assert_output "1 done exited=0"
	# the worker that ran the task is the one and only worker row, gone now
	run -0 remote_py '[(w["id"], w["node"], w["state"]) for w in j["workers"]]'
	assert_output "[(1, 'w1', 'gone')]"
	run -0 sqlite3 "$DB" "select count(*) from workers"
	assert_output 1
	run -0 vine-status -s "$DB" --json 1
	assert_output --partial '"worker":1'
}

@test "a vine-state older than schema 3: lost transfer_begin and register_worker answers are still resent" {
	env_tree
	echo true | vine-submit -s "$URL" -e env.tar.gz >/dev/null
	old_state
	VINE_REMOTE_STATE_CMD="/usr/bin/python3 $PWD/old.py env VINE_TEST_DROP_ANSWER=transfer_begin:1:$BATS_TEST_TMPDIR/dropped vine-state" \
		run -0 vine-spread -q -s "$URL" -c "$PWD/n1" -N n1 "$id"
	[ -e "$BATS_TEST_TMPDIR/dropped" ]
	cmp env.tar.gz "n1/objects/$id"
	VINE_REMOTE_STATE_CMD="/usr/bin/python3 $PWD/old.py env VINE_TEST_DROP_ANSWER=register_worker:1:$BATS_TEST_TMPDIR/dropped2 vine-state" \
		run -0 vine-worker -s "$URL" -N w1 -c "$PWD/n1" -i 0
	[ -e "$BATS_TEST_TMPDIR/dropped2" ]
	run -0 summary "$DB" 1
	assert_output "1 done exited=0"
}

@test "a worker over ssh stopped by SIGTERM hands its task back and exits 0" {
	# a sleep named for this run alone: pgrep sees the whole machine
	local u=$$$RANDOM
	echo "sleep 30.4242$u" | vine-submit -s "$DB" >/dev/null
	VINE_DRAIN=1 VINE_GRACE=1 spawn "$BATS_TEST_TMPDIR/worker.log" vine-worker -s "$URL" -N w1 -i 0
	local worker=$SPAWNED rc=0
	spread_wait_for 20 pgrep -f "^sleep 30\.4242$u\$"
	kill -TERM "$worker"
	wait "$worker" || rc=$?
	cat "$BATS_TEST_TMPDIR/worker.log"
	# (under the sanitizers a leak on this path makes the exit status 1)
	[ "$rc" = 0 ]
	VINE_STATE=$DB run -0 status_py '"%s %s" % (j["state"], [a["outcome"] for a in j["attempts"]])' 1
	assert_output "ready ['released']"
	run -1 pgrep -f "^sleep 30\.4242$u\$"
}
