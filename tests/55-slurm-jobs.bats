#!/usr/bin/env bats
# The job scripts of share/slurm, run end to end by a real Slurm on
# loopback (tests/helpers-slurm.bash, three virtual nodes n1..n3): workers
# reach the manager host's state over ssh:// (tests/helpers-hosts.bash);
# seed steps make an environment ready on every node and run a command
# in it.

load helpers
load helpers-hosts
load helpers-slurm
bats_require_minimum_version 1.5.0

setup_file() {
	slurm_start 3
	[ -n "${SLURM_SKIP:-}" ] || host_start
}

teardown_file() {
	slurm_stop
	hosts_cleanup
}

setup() {
	vine_setup
	slurm_skip
	WORKERS=$VINE_TOP/share/slurm/vine-workers.sbatch
	SEED=$VINE_TOP/share/slurm/vine-seed-steps.sbatch
	# one cache per virtual node, as node-local disks would be
	export VINE_CACHE="$BATS_TEST_TMPDIR/cache-%n"
	# sbatch, with the job's output in job.out; prints the job id
	SBATCH=(sbatch --parsable -o "$BATS_TEST_TMPDIR/job.out")
	fixture_venv "$BATS_TEST_TMPDIR/venv"
	vine-pack -q -o env.tar.gz venv >/dev/null
}


# the first 12 hex digits of the archive's id: the env directory's name
env_short() {
	sha256sum env.tar.gz | cut -c1-12
}

@test "vine-workers.sbatch: a worker per node over ssh:// runs every task, spread over the nodes" {
	local db=$BATS_TEST_TMPDIR/run.db dir=$BATS_TEST_TMPDIR i n short
	short=$(env_short)
	mkdir seen
	# three tasks that end only when all three nodes run one at once (one
	# CPU per node), then three more; all use the packed venv's python
	{
		for i in 1 2 3; do
			echo "python3 -c 'import sys; print(sys.prefix)'; touch $dir/seen/\$VINE_NODE; i=0; while [ \$(ls $dir/seen | wc -l) -lt 3 ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i + 1)); done; ls $dir/seen | wc -l"
		done
		for i in 4 5 6; do
			echo "python3 -c 'import sys, os; print(sys.prefix); print(os.environ[\"VINE_TASK_ID\"])'"
		done
	} >tasks
	run -0 vine-submit -s "$db" -e env.tar.gz tasks
	run -0 env VINE_STATE="$HOST_URL$db" VINE_IDLE=2 "${SBATCH[@]}" -N3 "$WORKERS"
	local id=$output
	run -0 slurm_wait_job "$id" 60
	assert_output COMPLETED || { cat job.out; false; }
	run -0 vine-collect -s "$db" -o out -j joblog
	for i in 1 2 3 4 5 6; do
		run -0 cat "out/$i/exit"
		run -0 sed -n 1p "out/$i/stdout"
		assert_output --regexp "^$dir/cache-n[123]/env/$short\$"
	done
	for i in 1 2 3; do
		[ "$(sed -n 2p "out/$i/stdout")" = 3 ]
	done
	[ "$(sed -n 2p out/5/stdout)" = 5 ]
	# the Host column: every node ran tasks, and each in its own cache
	run -0 awk -F '\t' 'NR > 1 { print $2 }' joblog
	assert_equal "${#lines[@]}" 6
	assert_equal "$(printf '%s\n' "${lines[@]}" | sort -u | tr '\n' ' ')" "n1 n2 n3 "
	awk -F '\t' 'NR > 1 { print $1, $2 }' joblog | while read -r i n; do
		grep -qx "$dir/cache-$n/env/$short" "out/$i/stdout" || exit 1
	done
	for n in n1 n2 n3; do
		assert_file_exists "$dir/cache-$n/env/$short/.vine/id"
		assert_file_exists "seen/$n"
	done
	# one worker per node, with the node's CPUs (SLURM_CPUS_ON_NODE)
	VINE_STATE=$db run -0 status_py '" ".join(sorted("%s:%s:%s" % (w["node"], w["cores"], w["state"]) for w in j["workers"]))'
	assert_output "n1:1:gone n2:1:gone n3:1:gone"
	# the workers left when idle, and said nothing
	run -0 cat job.out
	assert_output ''
}

@test "vine-workers.sbatch: VINE_CORES, and the default cache under TMPDIR" {
	local db=$BATS_TEST_TMPDIR/run.db
	mkdir tmp
	echo 'echo "$VINE_SCRATCH"' | vine-submit -s "$db"
	run -0 env -u VINE_CACHE USER=vineuser TMPDIR="$BATS_TEST_TMPDIR/tmp" VINE_CORES=3 \
		VINE_STATE="$HOST_URL$db" VINE_IDLE=0 "${SBATCH[@]}" -N1 "$WORKERS"
	run -0 slurm_wait_job "$output" 60
	assert_output COMPLETED || { cat job.out; false; }
	run -0 vine-collect -s "$db" -o out
	run -0 cat out/1/stdout
	assert_output --regexp "^$BATS_TEST_TMPDIR/tmp/vine-vineuser/tasks/n1\\.[0-9]+/[0-9]+\$"
	VINE_STATE=$db run -0 status_py '" ".join("%s:%s" % (w["node"], w["cores"]) for w in j["workers"])'
	assert_output "n1:3"
}

@test "vine-workers.sbatch: a failing worker fails the job, the others finish; no state is a clear error" {
	local db=$BATS_TEST_TMPDIR/run.db
	# n2's cache cannot be made: its worker fails at once, while the
	# workers of n1 and n3 run the two tasks to the end
	touch cache-n2
	printf 'sleep 3; echo "$VINE_NODE"\n%.0s' 1 2 | vine-submit -s "$db"
	run -0 env VINE_STATE="$HOST_URL$db" VINE_IDLE=1 "${SBATCH[@]}" -N3 "$WORKERS"
	run -0 slurm_wait_job "$output" 60
	assert_output FAILED
	run -0 cat job.out
	assert_output --partial "vine-worker: cannot stat '$BATS_TEST_TMPDIR/cache-n2/tasks/"
	run -0 vine-collect -s "$db" -o out -j joblog
	[ "$(cat out/1/stdout out/2/stdout | sort | tr '\n' ' ')" = "n1 n3 " ]
	run -0 env VINE_STATE="$BATS_TEST_TMPDIR/missing/run.db" VINE_IDLE=1 "${SBATCH[@]}" -N3 "$WORKERS"
	run -0 slurm_wait_job "$output" 60
	assert_output FAILED
	run -0 cat job.out
	assert_output --partial "vine-worker: "
	assert_output --partial "missing/run.db"
	run -0 env -u VINE_STATE "${SBATCH[@]}" -N1 "$WORKERS"
	run -0 slurm_wait_job "$output" 60
	assert_output FAILED
	run -0 cat job.out
	assert_output --partial "set VINE_STATE"
}

@test "vine-workers.sbatch: scancel reaches the workers, which hand their tasks back" {
	local db=$BATS_TEST_TMPDIR/run.db i
	echo 'touch "$VINE_SCRATCH/$VINE_NODE.started"; sleep 30' | vine-submit -s "$db"
	run -0 env VINE_STATE="$HOST_URL$db" "${SBATCH[@]}" -N1 "$WORKERS"
	local id=$output
	for i in $(seq 300); do
		! ls "$BATS_TEST_TMPDIR"/cache-n1/tasks/*/*/n1.started >/dev/null 2>&1 || break
		sleep 0.1
	done
	ls "$BATS_TEST_TMPDIR"/cache-n1/tasks/*/*/n1.started
	scancel "$id"
	run -0 slurm_wait_job "$id" 30
	assert_output CANCELLED
	VINE_STATE=$db run -0 status_py '"%s %s" % (j["tasks"]["ready"], j["tasks"]["failed"])'
	assert_output "1 0"
	VINE_STATE=$db run -0 status_py '" ".join(w["state"] for w in j["workers"])'
	assert_output "gone"
}

@test "vine-seed-steps.sbatch: every node seeds, then the command runs in the relocated env" {
	local dir=$BATS_TEST_TMPDIR short n
	short=$(env_short)
	# no state: every node reads the archive
	run -0 env -u VINE_STATE "${SBATCH[@]}" -N3 "$SEED" env.tar.gz \
		python3 -c 'import os, sys; print("ran", os.environ["SLURMD_NODENAME"], sys.prefix, os.environ["VINE_ENV"], os.environ["VIRTUAL_ENV"])'
	run -0 slurm_wait_job "$output" 60
	assert_output COMPLETED || { cat job.out; false; }
	# step 1 printed each node's env; step 2 ran python from it
	run -0 grep -v '^ran ' job.out
	assert_equal "$(sort <<<"$output")" "0: $dir/cache-n1/env/$short
1: $dir/cache-n2/env/$short
2: $dir/cache-n3/env/$short"
	run -0 grep '^ran ' job.out
	assert_equal "$(sort <<<"$output")" "ran n1 $dir/cache-n1/env/$short $dir/cache-n1/env/$short $dir/cache-n1/env/$short
ran n2 $dir/cache-n2/env/$short $dir/cache-n2/env/$short $dir/cache-n2/env/$short
ran n3 $dir/cache-n3/env/$short $dir/cache-n3/env/$short $dir/cache-n3/env/$short"
	for n in n1 n2 n3; do
		run -0 cat "$dir/cache-$n/env/$short/.vine/id"
		assert_output "$(sha256sum env.tar.gz | cut -d' ' -f1)"
		# relocated: the venv's own files name the node's copy, not the packed one
		run -1 grep -rlF "$dir/venv" "$dir/cache-$n/env/$short/bin"
	done
}

@test "vine-seed-steps.sbatch with VINE_STATE: the environment fans out through the peers" {
	local dir=$BATS_TEST_TMPDIR db=$BATS_TEST_TMPDIR/run.db short
	short=$(env_short)
	# the origin serves one copy at a time: the other nodes get theirs from peers
	# (a state is made by submitting: one task no worker here runs)
	run -0 vine-submit -s "$db" --k-origin 1 <<<'true'
	run -0 env VINE_STATE="$HOST_URL$db" "${SBATCH[@]}" -N3 "$SEED" env.tar.gz \
		sh -c 'echo "ran $SLURMD_NODENAME $VINE_ENV"'
	run -0 slurm_wait_job "$output" 60
	[ "$output" = COMPLETED ] || { cat job.out; false; }
	run -0 grep '^ran ' job.out
	[ "$(sort <<<"$output")" = "ran n1 $dir/cache-n1/env/$short
ran n2 $dir/cache-n2/env/$short
ran n3 $dir/cache-n3/env/$short" ]
	VINE_STATE=$db run -0 status_py '(lambda o: (o["served_origin"], o["served_peer"], sorted(r["node"] for r in o["replicas"] if r["complete"])))(j["objects"][0])'
	assert_output "(1, 2, ['n1', 'n2', 'n3'])"
	# a server on every node, with the address toward the manager host
	VINE_STATE=$db run -0 status_py 'sorted((w["node"], w["cores"], w["listen"].split(":")[0]) for w in j["workers"])'
	assert_output "[('n1', 0, '127.0.0.1'), ('n2', 0, '127.0.0.1'), ('n3', 0, '127.0.0.1')]"
}

@test "vine-seed-steps.sbatch: a node that cannot seed fails the job before the command runs" {
	run -0 env -u VINE_STATE "${SBATCH[@]}" -N3 "$SEED" missing.tar.gz touch "$BATS_TEST_TMPDIR/ran"
	run -0 slurm_wait_job "$output" 60
	assert_output FAILED
	assert_file_not_exists ran
	run -0 cat job.out
	assert_output --partial "vine-seed: "
	assert_output --partial "missing.tar.gz"
	# only step 1 ran (its output is labelled): one error per node
	[ "$(grep -c 'vine-seed: ' job.out)" = 3 ]
	[ "$(grep -c '^[012]: vine-seed: ' job.out)" = 3 ]
	# the command failing on one node fails the job
	run -0 env -u VINE_STATE "${SBATCH[@]}" -N3 "$SEED" env.tar.gz sh -c 'echo "ran $SLURMD_NODENAME"; [ "$SLURMD_NODENAME" != n2 ]'
	run -0 slurm_wait_job "$output" 60
	assert_output FAILED
	[ "$(grep '^ran ' job.out | sort | tr '\n' ' ')" = "ran n1 ran n2 ran n3 " ]
	# no command: usage, and nothing runs
	run -0 "${SBATCH[@]}" -N1 "$SEED" env.tar.gz
	run -0 slurm_wait_job "$output" 60
	assert_output FAILED
	run -0 cat job.out
	assert_output --partial "usage: sbatch vine-seed-steps.sbatch"
}
