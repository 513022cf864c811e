# tests/helpers-slurm.bash - a real Slurm on loopback for one bats file:
# munged, slurmctld and N slurmd virtual nodes (n1..nN, one CPU each),
# with their own ports, keys, spool, state and logs under a temp dir.
# Load it after helpers:  load helpers; load helpers-slurm
#
#   setup_file()    { slurm_start 3; }
#   setup()         { vine_setup; slurm_skip; }  # skips without Slurm
#   teardown_file() { slurm_stop; }
#
# slurm_start [N]   start the cluster with N nodes (default 3) and export
#                   SLURM_CONF, so srun, sbatch, squeue, sinfo... use it;
#                   returns when all N nodes are idle.  SLURM_DIR is its
#                   directory (logs: slurmctld.log, slurmd-nI.log), by
#                   default $BATS_FILE_TMPDIR/slurm.  Ports are chosen free;
#                   if one is taken before the daemons bind it, they are
#                   started again on others.
# slurm_stop        stop everything it started (also when tests failed)
# slurm_wait_job ID [SECONDS]
#                   wait until job ID has left the queue (default 60 s);
#                   prints its final state (COMPLETED, FAILED, ...)
#
# The daemons run in their own pid namespace (with its own /proc, so
# proctrack/linuxproc sees the pids it is given) and mount namespace; the
# namespace's first process is recorded in SLURM_DIR/pid and stopping it
# ends the daemons, every job step and every process a job started.
# Clients (srun, sbatch) run outside and reach the daemons over loopback
# TCP and the munge socket.  Needs root and slurm-wlm + munge installed.

# slurm_require: skip the test when the test bed cannot run.  In
# setup_file, where bats 1.8 cannot skip, it exports the reason as
# SLURM_SKIP and returns 1; slurm_skip in setup() then skips each test.
slurm_require() {
	local why=
	if [ "$(id -u)" -ne 0 ]; then
		why="the Slurm test bed needs root"
	elif ! { command -v slurmctld && command -v slurmd &&
		command -v munged && command -v mungekey; } >/dev/null; then
		why="the Slurm test bed needs slurm-wlm and munge (make deps-check)"
	fi
	[ -n "$why" ] || return 0
	[ -n "${BATS_TEST_NAME:-}" ] && skip "$why"
	export SLURM_SKIP=$why
	return 1
}

slurm_skip() {
	[ -z "${SLURM_SKIP:-}" ] || skip "$SLURM_SKIP"
}

# slurm_free_ports ADDR COUNT: COUNT consecutive free ports on ADDR
slurm_free_ports() {
	/usr/bin/python3 - "$1" "$2" <<-'EOF'
	import random, socket, sys
	addr, n = sys.argv[1], int(sys.argv[2])
	for _ in range(200):
	    base = random.randint(20000, 32000 - n)
	    socks = []
	    try:
	        for p in range(base, base + n):
	            s = socket.socket()
	            socks.append(s)
	            s.bind((addr, p))
	    except OSError:
	        continue
	    finally:
	        for s in socks:
	            s.close()
	    print(base)
	    sys.exit(0)
	sys.exit("no free ports")
	EOF
}

slurm_config() {
	local d=$SLURM_DIR n=$1 ctl=$2 node=$3
	cat >"$d/slurm.conf" <<-EOF
	ClusterName=vinetest
	SlurmctldHost=localhost(127.0.0.1)
	SlurmctldPort=$ctl
	SlurmUser=root
	SlurmdUser=root
	AuthType=auth/munge
	AuthInfo=socket=$d/run/munge.socket
	CredType=cred/munge
	StateSaveLocation=$d/state
	SlurmdSpoolDir=$d/spool/%n
	SlurmctldPidFile=$d/slurmctld.pid
	SlurmdPidFile=$d/slurmd-%n.pid
	SlurmctldLogFile=$d/slurmctld.log
	SlurmdLogFile=$d/slurmd-%n.log
	ProctrackType=proctrack/linuxproc
	TaskPlugin=task/none
	SelectType=select/cons_tres
	SelectTypeParameters=CR_CPU
	SchedulerParameters=sched_min_interval=0,batch_sched_delay=0,sched_interval=1
	SlurmdParameters=config_overrides
	ReturnToService=2
	MpiDefault=none
	JobAcctGatherType=jobacct_gather/none
	AccountingStorageType=accounting_storage/none
	JobCompType=jobcomp/none
	InactiveLimit=0
	KillWait=2
	NodeName=n[1-$n] NodeHostname=localhost NodeAddr=127.0.0.1 Port=$node-$((node + n - 1)) CPUs=1 RealMemory=500 State=UNKNOWN
	PartitionName=debug Nodes=n[1-$n] Default=YES MaxTime=INFINITE State=UP
	EOF
}

# The script that runs as pid 1 of the namespace: start the daemons in
# the foreground and wait; when it dies the kernel ends all of them.
slurm_script() {
	cat >"$SLURM_DIR/run.sh" <<-'EOF'
	set -u
	d=$1 n=$2
	mount -t proc proc /proc || exit 1
	munged -F --force --key-file="$d/key/munge.key" --socket="$d/run/munge.socket" \
		--pid-file="$d/munged.pid" --log-file="$d/munged.log" \
		--seed-file="$d/munged.seed" &
	i=0
	while [ ! -S "$d/run/munge.socket" ]; do
		i=$((i + 1))
		[ $i -gt 100 ] && { echo "munged did not start" >&2; exit 1; }
		sleep 0.05
	done
	slurmctld -D -i -f "$d/slurm.conf" &
	for i in $(seq "$n"); do
		slurmd -D -f "$d/slurm.conf" -N "n$i" &
	done
	wait
	EOF
}

# slurm_launch N: start the daemons on free ports; 0 when all N nodes are
# idle, 1 when a port was taken meanwhile (stopped; try again), 2 else.
slurm_launch() {
	local n=$1 ports i u pid
	rm -rf "$SLURM_DIR/state" "$SLURM_DIR/spool" "$SLURM_DIR"/*.log "$SLURM_DIR"/*.pid
	mkdir -p "$SLURM_DIR/state"
	for i in $(seq "$n"); do
		mkdir -p "$SLURM_DIR/spool/n$i"
	done
	ports=$(slurm_free_ports 127.0.0.1 $((n + 1))) || return 2
	slurm_config "$n" "$ports" $((ports + 1))
	# fd 3 is bats' own: a daemon holding it would hang the test run
	unshare --mount --pid --fork --kill-child --propagation private \
		sh "$SLURM_DIR/run.sh" "$SLURM_DIR" "$n" \
		</dev/null >"$SLURM_DIR/run.log" 2>&1 3>&- &
	u=$!
	echo "$u" >"$SLURM_DIR/unshare.pid"
	for i in $(seq 100); do
		pid=$(cat "/proc/$u/task/$u/children" 2>/dev/null)
		pid=${pid%% *}
		[ -n "$pid" ] && { echo "$pid" >"$SLURM_DIR/pid"; break; }
		sleep 0.05
	done
	[ -s "$SLURM_DIR/pid" ] || { echo "slurm: the namespace did not start" >&2; return 2; }
	# ready when every node is idle
	for i in $(seq 300); do
		# first, as sinfo waits long for a controller that is gone
		if grep -qs "Address already in use" "$SLURM_DIR"/*.log; then
			slurm_stop
			return 1
		fi
		if [ "$(timeout 2 sinfo -h -N -t idle -o %N 2>/dev/null | sort -u | wc -l)" -eq "$n" ]; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "slurm: the cluster did not come up; logs:" >&2
	tail -n 20 "$SLURM_DIR"/*.log >&2
	slurm_stop
	return 2
}

slurm_start() {
	local n=${1:-3} try rc
	slurm_require || return 0
	export SLURM_DIR="${SLURM_DIR:-$BATS_FILE_TMPDIR/slurm}"
	rm -rf "$SLURM_DIR"
	mkdir -p "$SLURM_DIR/key" "$SLURM_DIR/run"
	chmod 700 "$SLURM_DIR/key"
	chmod 755 "$SLURM_DIR/run"
	mungekey -c -k "$SLURM_DIR/key/munge.key" -b 1024 || return 1
	slurm_script
	export SLURM_CONF="$SLURM_DIR/slurm.conf"
	for try in 1 2 3 4 5; do
		# (no bare failing command: bats runs tests under set -e)
		rc=0
		slurm_launch "$n" || rc=$?
		[ $rc -eq 1 ] || return $rc
	done
	echo "slurm: no free ports" >&2
	return 1
}

slurm_stop() {
	local pid i
	[ -n "${SLURM_DIR:-}" ] && [ -s "$SLURM_DIR/pid" ] || return 0
	pid=$(cat "$SLURM_DIR/pid")
	# pid 1 of a namespace takes only SIGKILL from outside; that ends
	# every process in it at once
	kill -KILL "$pid" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "slurm: process $pid would not die" >&2
		return 1
	fi
	# reap unshare if it is our child (it is not when a subshell started it)
	wait "$(cat "$SLURM_DIR/unshare.pid")" 2>/dev/null || true
	rm -f "$SLURM_DIR/pid"
}

slurm_wait_job() {
	local id=$1 limit=${2:-60} i
	for i in $(seq $((limit * 10))); do
		if [ -z "$(squeue -h -j "$id" -o %i 2>/dev/null)" ]; then
			# finished jobs stay known to slurmctld a while (MinJobAge)
			scontrol show job "$id" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'
			return 0
		fi
		sleep 0.1
	done
	echo "slurm: job $id still queued after $limit s" >&2
	return 1
}
