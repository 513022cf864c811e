#!/usr/bin/env bats
# make demo's script, end to end: the whole main job on one machine.

load helpers

@test "demo: packs a venv, runs the task list on two simulated nodes, collects every result" {
	export VINE_DEMO_DIR="$BATS_TEST_TMPDIR/demo"
	run -0 sh "$VINE_TOP/share/demo.sh"
	assert_output --partial "vine-collect exit status: 1 (1: one task fails on purpose)"
	d=$VINE_DEMO_DIR
	# 20 tasks, all but the deliberate failure done, on both nodes
	run -0 vine-status -s "$d/run.db" --json
	run -0 python3 -c 'import json, sys; j = json.load(sys.stdin); print(j["tasks"]["done"], j["tasks"]["failed"])' <<<"$output"
	assert_output "19 1"
	run -0 cut -f 2 "$d/joblog"
	assert_line node1
	assert_line node2
	# tasks ran the relocated environment's interpreter, from each node's cache
	run -0 cat "$d/results/1/stdout"
	assert_output --regexp "python from $d/cache-node[12]/env/[0-9a-f]{12}\$"
	run -0 cat "$d/results/4/stdout"
	assert_output --regexp "^pip .* from $d/cache-node[12]/env/"
	run -0 cat "$d/results/2/out/squares.json"
	assert_output '{"squares": [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]}'
	run -0 cat "$d/results/6/exit"
	assert_output 3
}
