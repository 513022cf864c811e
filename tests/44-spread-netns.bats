#!/usr/bin/env bats
# Spreading on the network test bed (helpers-netns.bash): nodes in network
# namespaces on rate-limited links, started the way the shipped Slurm
# script starts them, the manager host (sshd, vine-state, the origin) in
# a namespace of its own.  The nodes do not see the manager host's files
# (a tmpfs over the origin's directory in each node's mount namespace), so
# the origin's bytes cross the manager host's link, through the state.

load helpers
load helpers-hosts
load helpers-netns
bats_require_minimum_version 1.5.0

SBATCH="$BATS_TEST_DIRNAME/../share/slurm/vine-workers.sbatch"

# worker_line: the shell program the shipped script runs on each node
# (the argument of its `srun ... sh -c '...'`), as written
worker_line() {
	awk '/ sh -c '"'"'$/ { on = 1; next } on && /^'"'"'$/ { exit } on' "$SBATCH"
}

# js EXPR: EXPR over vine-status --json of the run (o: its first object)
js() {
	vine-status -s "$DB" --json | python3 -c '
import json, sys
j = json.load(sys.stdin); o = j["objects"][0]
v = eval(sys.argv[1])
print(" ".join(map(str, v)) if isinstance(v, tuple) else v)' "$1"
}

@test "the shipped worker line is found" {
	run -0 worker_line
	assert_output --partial 'exec vine-worker -s "$VINE_STATE"'
}

@test "16 nodes started as vine-workers.sbatch starts them spread one environment; the origin serves at most K_origin copies" {
	netns_require
	local n=16 i k
	# 40 Mbit/s (5 MB/s) a link: one 4 MB copy takes about 0.8 s
	netns_init "$n" 40mbit
	netns_host_start
	mkdir -p origin/env/bin started
	head -c $((4 << 20)) /dev/urandom >origin/env/data
	printf '#!/bin/sh\necho "hello from $VINE_ENV"\n' >origin/env/bin/hello
	chmod +x origin/env/bin/hello
	vine-pack -q -o origin/env.tar.gz origin/env >/dev/null
	DB=$BATS_TEST_TMPDIR/run.db
	# one task per node: each waits (bounded) until all have started, so
	# no worker (1 core) runs two and every node needs the environment
	for i in $(seq "$n"); do
		echo "touch '$PWD/started/'\$VINE_NODE; k=0; while [ \$(ls '$PWD/started' | wc -l) -lt $n ] && [ \$k -lt 600 ]; do sleep 0.1; k=\$((k + 1)); done; hello"
	done | vine-submit -s "$DB" -e origin/env.tar.gz --k-origin 2 >/dev/null
	# what sbatch and srun would give each node's step
	export VINE_STATE=$HOST_URL$DB VINE_IDLE=2 VINE_CACHE="$BATS_TEST_TMPDIR/nodes/%n/cache"
	export SLURM_CPUS_ON_NODE=1
	NETNS_HIDE=$PWD/origin
	for i in $(seq "$n"); do
		SLURMD_NODENAME=node$i netns_node_spawn "$i" sh -c "$(worker_line)"
	done
	run -0 timeout 120 vine-collect -s "$DB" -w
	run -0 js 'len([r for r in o["replicas"] if r["complete"]])'
	assert_output "$n"
	echo "# origin/peer copies: $(js 'o["served_origin"], o["served_peer"]') (K_origin 2)" >&3
	run -0 js 'o["served_origin"] <= 2, o["served_origin"] + o["served_peer"]'
	assert_output "True $n"
}
