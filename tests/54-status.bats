#!/usr/bin/env bats
# vine-status, and retries (every attempt on record, --failed).

bats_require_minimum_version 1.5.0
load helpers

@test "status --json: counts by state, workers, objects (shape checked by python3)" {
	head -c 3000 /dev/urandom >env.tar.gz
	printf '%s\n' 'echo a' 'exit 2' 'sleep 30.8642' 'echo later' | vine-submit -e env.tar.gz
	printf '%s\n' 'echo plain' | vine-submit
	# run the environment-less task, then leave one running in a live worker
	vine-worker -N first -i 0 -n 1 >/dev/null 2>&1 || true
	echo 'sleep 30.8642' | vine-submit
	vine-worker -N second -c "$PWD/c2" -n 2 -l 127.0.0.3:0 3>&- &
	w=$!
	spread_wait_for 20 sh -c '[ "$(vine-status --json | python3 -c "import json,sys; print(len(json.load(sys.stdin)[\"workers\"][-1][\"running\"]))")" -ge 1 ]'
	vine-status --json >s.json
	kill -TERM $w
	kill -INT $w
	wait $w
	run -0 python3 - <<'EOF'
import json
j = json.load(open("s.json"))
assert set(j) >= {"state", "schema", "time", "tasks", "workers", "objects"}, j.keys()
t = j["tasks"]
assert set(t) == {"total", "ready", "running", "done", "failed", "cancelled"}, t
assert all(isinstance(v, int) for v in t.values())
assert t["total"] == sum(v for k, v in t.items() if k != "total") == 6, t
assert t["running"] >= 1
assert j["schema"] == 6 and j["format"] == 1
w = j["workers"]
assert [x["node"] for x in w] == ["first", "second"], w
live = w[1]
assert live["cores"] == 2 and live["listen"].startswith("127.0.0.3:") and live["state"] == "alive"
assert int(live["listen"].split(":")[1]) > 0
assert isinstance(live["heartbeat"], float) and abs(live["heartbeat"] - j["time"]) < 30
assert all(isinstance(i, int) for i in live["running"]) and live["running"]
assert w[0]["state"] == "gone" and w[0]["running"] == []
o = j["objects"]
assert len(o) == 1 and o[0]["size"] == 3000 and len(o[0]["id"]) == 64
# the environment was fetched from the origin by each node that claimed
# its tasks (first had left, so no peer had it); its bytes are no archive,
# so each node handed those tasks back, and backs off from it
r = o[0]["replicas"]
assert [(x["node"], x["bytes"], x["complete"]) for x in r] == [("first", 3000, True), ("second", 3000, True)], r
assert o[0]["served_origin"] == 2 and o[0]["served_peer"] == 0, o[0]
assert o[0]["bytes_origin"] == 6000 and o[0]["bytes_peer"] == 0, o[0]
assert o[0]["transfers_active"] == 0 and o[0]["transfers_failed"] == 0, o[0]
assert [(h["node"], h["faults"]) for h in o[0]["handbacks"]] == [("first", 1), ("second", 1)], o[0]
assert all("not an archive" in h["reason"] for h in o[0]["handbacks"]), o[0]
x = j["transfers"]
assert [(t["source"], t["dest"], t["state"], t["status"]) for t in x] == [(None, "first", "done", "ok"), (None, "second", "done", "ok")], x
print("ok")
EOF
	assert_output ok
}

@test "status: a readable summary" {
	printf '%s\n' 'true' 'false' 'true' | vine-submit
	vine-worker -N node-x -i 0
	echo 'true' | vine-submit
	run -0 vine-status
	assert_line --index 0 "state: $VINE_STATE"
	assert_line --index 1 "tasks: 4 total, 1 ready, 0 running, 2 done, 1 failed"
	assert_line --index 2 "waiting: no live worker holds the run: 1 task ready, none can start until a vine-worker runs with this state"
	assert_line --index 3 "workers: 0 alive, 0 lost, 1 gone"
	assert_line --index 4 "objects: 0"
}

@test "status: a worker past its lease shows as such, without being reaped by looking" {
	export VINE_LEASE=1
	echo 'sleep 60.8642' | vine-submit
	vine-worker -N node-k -i 0 3>&- &
	local w=$!
	spread_wait_for 20 running_count 1
	kill -KILL "$w"
	wait "$w" || true
	sleep 1.5
	run -0 vine-status
	assert_line --index 2 "workers: 1 alive, 1 of them past their lease, 0 lost, 0 gone"
	assert_line --regexp '^  1 +node-k +[0-9]+ +[0-9.]+ [kMGT]?B +[0-9]+ +1 +[0-9.]+s  alive, past its lease$'
	# looking changed nothing: the JSON still says alive, and the task runs
	run -0 status_py '[w["state"] for w in j["workers"]], j["tasks"]["running"]'
	assert_output "['alive'] 1"
}

@test "status TASK: the task and every attempt, as text and JSON" {
	echo 'echo hi; exit 4' | vine-submit -r 1 --tag t1
	vine-worker -N w1 -i 0
	run -0 vine-status 1
	assert_line --index 0 'task 1: failed'
	assert_line --index 1 '  command: echo hi; exit 4'
	assert_line --index 2 '  cores 1, retries 1, failures 2, losses 0, tag t1'
	assert_line --index 3 "  directory: $PWD"
	assert_line --index 4 --regexp '^  attempt 1 on w1: exited 4, [0-9-]+ [0-9:]+, [0-9.]+s$'
	assert_line --index 5 --regexp '^  attempt 2 on w1: exited 4, '
	run -0 status_py '[(a["attempt"], a["outcome"], a["exit"], a["signal"], a["received"]) for a in j["attempts"]]' 1
	assert_output "[(1, 'exited', 4, None, 3), (2, 'exited', 4, None, 3)]"
	run -1 vine-status 7
	assert_output --partial "no task 7"
	run -2 vine-status abc
	run -2 vine-status --bogus
}

@test "status --watch: refreshes until interrupted, in place on a terminal" {
	echo true | vine-submit
	run -0 timeout --preserve-status -s INT 2.5 vine-status --watch
	[ "$(grep -c '^tasks: 1 total' <<<"$output")" -ge 2 ]
	run -0 timeout --preserve-status -s INT 1.5 vine-status --watch --json
	run -0 python3 -c 'import json, sys; [json.loads(l) for l in sys.argv[1].splitlines()]' "$output"
	# on a terminal each refresh starts by clearing the screen
	run -0 script -qec "timeout --preserve-status -s INT 1.5 vine-status --watch" /dev/null
	assert_output --partial $'\033[H\033[J'
}

@test "retries: -r re-runs a failing task and keeps every attempt" {
	count="$PWD/count"
	echo "n=\$(cat '$count' 2>/dev/null || echo 0); n=\$((n + 1)); echo \$n >'$count'; echo try \$n; [ \$n -ge 3 ]" |
		vine-submit -r 2
	echo 'exit 9' | vine-submit -r 1
	vine-worker -i 0 -n 1
	run -1 vine-collect -o out
	assert_equal "$(cat out/1/stdout)" 'try 3'
	run -0 status_py '[(a["attempt"], a["exit"]) for a in j["attempts"]], j["state"], j["failures"]' 1
	assert_output "[(1, 1), (2, 1), (3, 0)] done 2"
	run -0 status_py '[a["exit"] for a in j["attempts"]], j["state"]' 2
	assert_output "[9, 9] failed"
	# every attempt's output stays beside the state
	assert_equal "$(cat vine.db.results/1/1/stdout)" 'try 1'
	assert_equal "$(cat vine.db.results/1/2/stdout)" 'try 2'
}

@test "retries: vine-submit --failed sends only the failed tasks back" {
	fixed="$PWD/fixed"
	printf '%s\n' 'echo fine' "test -e '$fixed'" 'echo also fine' "test -e '$fixed'" | vine-submit
	vine-worker -i 0
	run -0 status_py 'j["tasks"]["done"], j["tasks"]["failed"]'
	assert_output '2 2'
	touch "$fixed"
	run -0 vine-submit --failed
	assert_output $'2\n4'
	run -0 vine-submit --failed
	assert_output ''
	vine-worker -i 0
	run -0 vine-collect
	run -0 status_py '[a["exit"] for a in j["attempts"]], j["failures"]' 2
	assert_output '[1, 0] 0'
	run -0 status_py 'len(j["attempts"])' 1
	assert_output 1
	# -r with --failed gives a new retry budget
	echo 'exit 1' | vine-submit
	vine-worker -i 0
	run -0 vine-submit --failed -r 2
	assert_output 5
	run -0 status_py 'j["retries"]' 5
	assert_output 2
}
