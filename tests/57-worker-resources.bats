#!/usr/bin/env bats
# Memory and GPUs as well as cores: workers advertise them (detected or
# given), claims honour them, status shows them, and a task that no live
# worker can run, or a run with no live worker, is reported.

bats_require_minimum_version 1.5.0
load helpers

teardown() {
	[ -z "${worker:-}" ] || { kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null; }
	return 0
}

worker_alive() {
	[ "$(status_py 'sum(w["state"] == "alive" for w in j["workers"])')" = "${1:-1}" ]
}

@test "worker: memory detected from MemTotal, GPUs from CUDA_VISIBLE_DEVICES, or given" {
	echo true | vine-submit
	CUDA_VISIBLE_DEVICES=0,1,3 run -0 vine-worker -i 0 -N a
	CUDA_VISIBLE_DEVICES= run -0 vine-worker -i 0 -N b
	CUDA_VISIBLE_DEVICES=-1 run -0 vine-worker -i 0 -N c
	run -0 vine-worker -i 0 -N d --memory 2GB --gpus 4
	memtotal=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) * 1024))
	run -0 status_py '[(w["node"], w["memory"], w["gpus"]) for w in j["workers"]]'
	assert_output "[('a', $memtotal, 3), ('b', $memtotal, 0), ('c', $memtotal, 0), ('d', 2000000000, 4)]"
	# without CUDA_VISIBLE_DEVICES: the /dev/nvidiaN device files (none here)
	unset CUDA_VISIBLE_DEVICES
	run -0 vine-worker -i 0 -N e
	run -0 status_py '[w["gpus"] for w in j["workers"]][-1]'
	assert_output "$(find /dev -maxdepth 1 -regex '/dev/nvidia[0-9]+' | wc -l)"
	for bad in "--memory 3Q" "--gpus x" "--gpus 1025"; do
		eval "run -2 vine-worker -i 0 $bad"
		assert_output --partial "usage: vine-worker"
	done
}

@test "worker: claims honour memory and GPUs; tasks get VINE_GPUS" {
	# two tasks of 3 GB each on a 5 GB worker with 4 cores: one at a time
	cat >tasks <<'EOF'
echo start >>log; sleep 0.5; echo end >>log; echo "$VINE_GPUS"
echo start >>log; sleep 0.5; echo end >>log; echo "$VINE_GPUS"
EOF
	vine-submit --memory 3GB --gpus 1 tasks
	run -0 vine-worker -i 0 -n 4 --memory 5GB --gpus 2
	run -0 cat log
	assert_output $'start\nend\nstart\nend'
	vine-collect -o out
	assert_equal "$(cat out/1/stdout)" 1
	# too little memory or too few GPUs: never claimed
	echo 'echo big' | vine-submit --memory 6GB
	echo 'echo gpus' | vine-submit --gpus 3
	run -0 vine-worker -i 0 -n 4 --memory 5GB --gpus 2
	run -0 status_py 'j["tasks"]["ready"]'
	assert_output 2
	run -0 vine-worker -i 0 -n 4 --memory 6GB --gpus 3
	run -0 status_py 'j["tasks"]["ready"], j["tasks"]["done"]'
	assert_output '0 4'
}

@test "status: workers' memory and GPUs, in decimal units" {
	echo true | vine-submit
	vine-worker -N big --memory 64GB --gpus 2 -n 3 3>&- &
	worker=$!
	spread_wait_for 30 worker_alive
	run -0 vine-status
	assert_line --regexp '^  ID +NODE +CORES +MEMORY +GPUS +RUNNING +HEARTBEAT +STATE$'
	assert_line --regexp '^  1 +big +3 +64\.0 GB +2 +0 +[0-9.]+s +alive$'
}

@test "status and collect -w: a task that needs more than any live worker has is reported" {
	echo 'echo big' | vine-submit -n 64 --memory 1TB --gpus 1
	echo 'echo small' | vine-submit
	vine-worker -N w1 -n 2 --memory 4GB --gpus 0 3>&- &
	worker=$!
	spread_wait_for 30 worker_alive
	spread_wait_for 30 sh -c '[ "$(vine-status --json | python3 -c "import json, sys; print(json.load(sys.stdin)[\"tasks\"][\"done\"])")" = 1 ]'
	run -0 vine-status
	assert_line "waiting: task 1 needs more than any live worker has: it needs 64 cores, 1.0 TB memory, 1 GPUs; the largest have 2 cores, 4.0 GB, 0 GPUs"
	run -0 status_py 'j["waiting"]'
	assert_output "{'no_worker': False, 'unfit': 1, 'unfit_task': 1}"
	# collect -w says so too, and keeps waiting (a bigger worker may come)
	run -124 timeout 5 vine-collect -w
	assert_output "vine-collect: waiting: task 1 needs more than any live worker has: it needs 64 cores, 1.0 TB memory, 1 GPUs; the largest have 2 cores, 4.0 GB, 0 GPUs"
}

@test "status and collect -w: no live worker holds the run" {
	printf 'echo a\necho b\n' | vine-submit
	run -0 vine-status
	assert_line "waiting: no live worker holds the run: 2 tasks ready, none can start until a vine-worker runs with this state"
	run -0 status_py 'j["waiting"]["no_worker"]'
	assert_output True
	run -124 timeout 5 vine-collect -w
	assert_output "vine-collect: waiting: no live worker holds the run: 2 tasks ready, none can start until a vine-worker runs with this state"
	run -124 timeout 5 vine-collect -w -q
	assert_output ''
	# once a worker ran them, nothing is waiting
	run -0 vine-worker -i 0
	run -0 vine-status
	refute_line --partial "waiting:"
	run -0 status_py 'j["waiting"]'
	assert_output "{'no_worker': False, 'unfit': 0, 'unfit_task': None}"
}
