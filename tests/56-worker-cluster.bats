#!/usr/bin/env bats
# vine-worker on the cluster path (state over ssh://, tests/helpers-hosts.bash):
# one state connection per worker, infrastructure faults handed back,
# serving its cache by default on an address its peers reach.

load helpers
load helpers-hosts
bats_require_minimum_version 1.5.0

setup_file() {
	# VERBOSE: sshd logs each accepted authentication, one per session
	host_start 'LogLevel VERBOSE'
}

setup() {
	vine_setup
	DB=$BATS_TEST_TMPDIR/run.db
	URL=$HOST_URL$DB
	mkdir -p tree/bin
	printf '#!/bin/sh\necho "env $VINE_ENV"\n' >tree/bin/hello
	chmod +x tree/bin/hello
	vine-pack -q -o env.tar.gz tree >/dev/null
	ID=$(sha256sum env.tar.gz | cut -c1-64)
}

# sessions: SSH sessions the manager host's sshd has accepted so far
sessions() {
	grep -c 'Accepted publickey for' "$HOST_DIR/sshd.log" || true
}

@test "worker over ssh: 200 environment tasks, one SSH session, the environment made ready once" {
	for i in $(seq 200); do echo hello; done | vine-submit -s "$DB" -e env.tar.gz >/dev/null
	before=$(sessions)
	run -0 vine-worker -s "$URL" -N n1 -n 2 -i 0 --no-serve
	refute_output
	after=$(sessions)
	assert_equal "$((after - before))" 1
	run -0 vine-collect -s "$DB" -o out
	export VINE_STATE=$DB
	run -0 cat out/1/stdout out/200/stdout
	assert_output --regexp "^env $VINE_CACHE/env/[0-9a-f]{12}"$'\n'"env $VINE_CACHE/env/[0-9a-f]{12}\$"
	# fetched once, through the state
	run -0 status_py '[(x["dest"], x["status"]) for x in j["transfers"]]'
	assert_output "[('n1', 'ok')]"
}

@test "worker: while an environment is fetched it renews its lease and runs tasks that need none" {
	echo hello | vine-submit -s "$DB" -e env.tar.gz >/dev/null
	printf 'echo plain %s\n' 1 2 3 | vine-submit -s "$DB" >/dev/null
	VINE_LEASE=1 VINE_TEST_FETCH_WAIT=$PWD/go spawn w.log \
		vine-worker -s "$URL" -N n1 -n 2 -i 0 --no-serve
	# the plain tasks run on the other core meanwhile
	spread_wait_for 30 sh -c "vine-status -s '$DB' --json | grep -q '\"done\": 3'"
	# and task 1 waits, its claim kept past several leases
	spread_wait_for 30 python3 -c '
import json, subprocess, sys
j = json.loads(subprocess.check_output(["vine-status", "-s", sys.argv[1], "--json"]))
w = j["workers"][0]
sys.exit(0 if w["heartbeat"] - w["started"] > 3 else 1)' "$DB"
	export VINE_STATE=$DB
	run -0 status_py 'j["state"], [a["outcome"] for a in j["attempts"]]' 1
	assert_output "running ['running']"
	touch go
	spread_wait_for 30 sh -c "vine-status -s '$DB' --json | grep -q '\"done\": 4'"
	run -0 status_py 'j["state"], j["attempts"][0]["attempt"], len(j["attempts"])' 1
	assert_output "done 1 1"
}

@test "worker: a node whose fetch fails hands its tasks back, and another node runs them" {
	for i in 1 2 3 4; do echo hello; done | vine-submit -s "$DB" -e env.tar.gz -r 0 >/dev/null
	export VINE_STATE=$DB
	# node bad cannot make the environment ready: hands back all it claimed
	VINE_TEST_FAIL_FETCH=1 run -0 vine-worker -s "$URL" -N bad -c "$PWD/cbad" -n 2 -i 0 --no-serve
	assert_output --partial "environment $ID on node 'bad': not fetching it (\$VINE_TEST_FAIL_FETCH): its tasks are handed back"
	run -0 status_py 'j["tasks"]["ready"], j["tasks"]["failed"]'
	assert_output '4 0'
	# vine-status says who handed back what, and why
	run -0 status_py '[(h["node"], h["faults"], h["until"] > j["time"], h["reason"]) for h in j["objects"][0]["handbacks"]]'
	assert_output "[('bad', 1, True, \"environment $ID on node 'bad': not fetching it (\$VINE_TEST_FAIL_FETCH)\")]"
	run -0 vine-status -s "$DB"
	assert_output --regexp "handed back by bad 1 time \(claims none for [0-9]+s more\): environment $ID"
	# bad backs off from the object: it claims none of them now
	VINE_TEST_FAIL_FETCH=1 run -0 vine-worker -s "$URL" -N bad -c "$PWD/cbad" -n 2 -i 0 --no-serve
	refute_output
	run -0 vine-worker -s "$URL" -N good -c "$PWD/cgood" -n 2 -i 0 --no-serve
	run -0 vine-collect -s "$DB" -o out
	run -0 status_py '[a["node"] + ":" + a["outcome"] for a in j["attempts"]], j["failures"], j["faults"]' 1
	assert_output "['bad:fault', 'good:exited'] 0 1"
	run -0 vine-status -s "$DB" 1
	assert_output --partial "handed back by 1 node (fails at 3)"
	assert_output --partial "attempt 1 on bad: fault"
}

@test "worker: with no -l it serves its cache on the address toward the manager host, and a peer fetches from it" {
	echo hello | vine-submit -s "$DB" -e env.tar.gz >/dev/null
	export VINE_STATE=$DB
	spawn w.log vine-worker -s "$URL" -N n1 -c "$PWD/c1" -n 1 -i 60
	spread_wait_for 30 sh -c "vine-status -s '$DB' --json | grep -q '\"done\": 1'"
	# the manager host is 127.0.0.1: so is the route to it
	run -0 status_py '[(w["node"], w["listen"]) for w in j["workers"]]'
	assert_output --regexp "^\[\('n1', '127\.0\.0\.1:[1-9][0-9]*'\)\]$"
	run -0 vine-spread -q -s "$URL" -N n2 -c "$PWD/c2" "$ID"
	cmp env.tar.gz "c2/objects/$ID"
	run -0 status_py '[(x["source"], x["dest"], x["status"]) for x in j["transfers"]]'
	assert_output "[(None, 'n1', 'ok'), ('n1', 'n2', 'ok')]"
}

@test "worker: -l none and --no-serve turn serving off; a local state serves on loopback" {
	echo true | vine-submit -s "$DB"
	run -0 vine-worker -s "$DB" -N a -i 0 -l none
	run -0 vine-worker -s "$DB" -N b -i 0 --no-serve
	run -0 vine-worker -s "$DB" -N c -i 0
	export VINE_STATE=$DB
	run -0 status_py '[(w["node"], w["listen"]) for w in j["workers"]]'
	assert_output --regexp "^\[\('a', None\), \('b', None\), \('c', '127\.0\.0\.1:[1-9][0-9]*'\)\]$"
}

@test "what is shipped starts workers that serve: no -l none, no --no-serve" {
	cd "$VINE_TOP"
	run -0 grep -n 'vine-worker' share/slurm/vine-workers.sbatch README share/doc/parsl.md man/vine-worker.1 man/vine-state.1
	refute_output --partial -- '-l none'
	refute_output --partial -- '--no-serve'
	# vine-seed-steps.sbatch serves on every node and seeds through the state
	run -0 grep -c 'vine-spread -s "$VINE_STATE" --serve' share/slurm/vine-seed-steps.sbatch
	assert_output 1
	run -0 grep -c 'vine-seed -q -s "$VINE_STATE" "$id"' share/slurm/vine-seed-steps.sbatch
	assert_output 2
}
