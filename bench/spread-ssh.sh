#!/bin/bash
# bench/spread-ssh.sh - the packed TESTBED venv to 8 simulated nodes when
# there is no shared filesystem: the origin is the manager host, reached
# over SSH (an sshd on loopback, tests/helpers-hosts.bash), the state is
# ssh://, and every node reads the origin through it (VINE_ORIGIN=state):
#   vine          vine-spread -s ssh://...: K_origin copies through SSH at
#                 most, the rest relayed node to node
#   direct        8 nodes each copying from the manager host at once:
#                 OpenSSH `ssh host cat` (no check), and vine-spread with
#                 K_origin 8 and no relaying (copy through the state's SSH
#                 channel + SHA-256)
# Ready = object fetched (and verified, where said).  RUNS repetitions
# (default 2); everything on a private tmpfs.  Prints a markdown table.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
RUNS=${RUNS:-2}
NODES=${NODES:-8}
. "$here/lib.sh"
BENCH_SHELL=bash bench_enter "$0"
T=$BENCH_WORK/tmpfs
export BATS_FILE_TMPDIR=$T/hosts-tmp VINE_HOSTS_DIR=$T/hosts
mkdir -p "$BATS_FILE_TMPDIR"
. "$here/../tests/helpers-hosts.bash"
spread_object
trap 'stop_servers; hosts_cleanup' EXIT
host_start >&2
export VINE_ORIGIN=state

ssh_cat() {
	local n p w=
	for n in $(seq "$NODES"); do
		mkdir -p "$T/d$n"
		ssh -q -i "$VINE_SSH_KEY" -o UserKnownHostsFile="$VINE_KNOWN_HOSTS" -o BatchMode=yes \
			-p "$HOST_PORT" "root@$HOST_ADDR" cat "$T/env.tar.gz" >"$T/d$n/obj" &
		w="$w $!"
	done
	for p in $w; do wait "$p"; done
}

direct_state() {
	local url=$1 n p w=
	for n in $(seq "$NODES"); do
		vine-spread -q -s "$url" -c "$T/d$n" -N "d$n" "$id" >/dev/null &
		w="$w $!"
	done
	for p in $w; do wait "$p"; done
}

echo "## spread, origin on the manager host over SSH: $(echo "scale=1; $size / 1000000" | bc) MB packed object to $NODES nodes, $(nproc) cores, $RUNS runs, loopback, tmpfs"
spread_table_head
t_vine= t_cat= t_direct= b_vine= b_direct=
for i in $(seq "$RUNS"); do
	rm -f "$T"/st*
	echo true | vine-submit -s "$T/st-vine.db" -e "$T/env.tar.gz" >/dev/null
	echo true | vine-submit -s "$T/st-direct.db" -e "$T/env.tar.gz" --no-relay --k-origin "$NODES" >/dev/null
	fresh
	t_run t_vine vine_round "$HOST_URL$T/st-vine.db"
	stop_servers
	b_vine=$(origin_bytes "$T/st-vine.db")
	fresh
	t_run t_cat ssh_cat
	fresh
	t_run t_direct direct_state "$HOST_URL$T/st-direct.db"
	b_direct=$(origin_bytes "$T/st-direct.db")
done
set -- $b_vine
row "vine-spread -s ssh:// (relay, K=2, K_origin=2)" "$t_vine" "$(megabytes "$1")" "$2/$3"
row "$NODES x ssh host cat (OpenSSH, no check)" "$t_cat" "$(megabytes $((size * NODES)))" "$NODES/0"
set -- $b_direct
row "$NODES x vine-spread -s ssh:// from the origin (K_origin=$NODES, no relay; copy + verify)" "$t_direct" "$(megabytes "$1")" "$2/$3"
