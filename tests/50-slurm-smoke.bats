#!/usr/bin/env bats
# The Slurm test bed (tests/helpers-slurm.bash): a real slurmctld and
# three slurmd virtual nodes on loopback run steps and batch jobs.

load helpers
load helpers-slurm
bats_require_minimum_version 1.5.0

setup_file() {
	slurm_start 3
}

setup() {
	vine_setup
	slurm_skip
}

teardown_file() {
	slurm_stop
}

@test "three idle nodes in the default partition" {
	run -0 sinfo -h -N -o '%N %T %c'
	assert_equal "$(echo "$output" | sort -u)" "n1 idle 1
n2 idle 1
n3 idle 1"
}

@test "srun -N3 runs one task on each node" {
	run -0 srun -N3 -l bash -c 'echo "$SLURMD_NODENAME $SLURM_NNODES"'
	assert_equal "$(echo "$output" | sort)" "0: n1 3
1: n2 3
2: n3 3"
	# a failing step reports its status
	run -3 srun -N1 sh -c 'exit 3'
}

@test "an sbatch job on two nodes runs its steps and completes" {
	cat >job.sh <<-'SH'
	#!/bin/sh
	echo "nodes $SLURM_JOB_NODELIST"
	srun --ntasks-per-node=1 sh -c 'echo "step on $SLURMD_NODENAME"'
	SH
	run -0 sbatch --parsable -N2 -o "$BATS_TEST_TMPDIR/job.out" job.sh
	local id=$output
	[[ $id =~ ^[0-9]+$ ]]
	run -0 slurm_wait_job "$id" 60
	assert_output COMPLETED
	run -0 cat "$BATS_TEST_TMPDIR/job.out"
	assert_line -n 0 "nodes n[1-2]"
	[ "$(sed 1d "$BATS_TEST_TMPDIR/job.out" | sort)" = "step on n1
step on n2" ]
}

@test "a failing batch job is reported as FAILED" {
	printf '#!/bin/sh\nexit 5\n' >fail.sh
	run -0 sbatch --parsable -N1 -o /dev/null fail.sh
	run -0 slurm_wait_job "$output" 60
	assert_output FAILED
}

@test "a port taken meanwhile: the cluster starts again on other ports" {
	local busy pid
	busy=$(slurm_free_ports 127.0.0.1 1)
	/usr/bin/python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
time.sleep(60)' "$busy" 3>&- &
	pid=$!
	# the first choice is the busy port, as if another test took it
	eval "orig_$(declare -f slurm_free_ports)"
	slurm_free_ports() {
		if [ ! -e "$BATS_TEST_TMPDIR/asked" ]; then
			touch "$BATS_TEST_TMPDIR/asked"
			echo "$busy"
		else
			orig_slurm_free_ports "$@"
		fi
	}
	local file_conf=$SLURM_CONF
	SLURM_DIR=$BATS_TEST_TMPDIR/slurm2
	slurm_start 1
	kill "$pid"
	[ "$SLURM_CONF" != "$file_conf" ]
	[ "$(grep -c SlurmctldPort "$SLURM_DIR/slurm.conf")" = 1 ]
	! grep -q "SlurmctldPort=$busy$" "$SLURM_DIR/slurm.conf"
	run -0 srun -N1 bash -c 'echo "$SLURMD_NODENAME"'
	assert_output n1
	slurm_stop
}
