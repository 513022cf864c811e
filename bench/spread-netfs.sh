#!/bin/bash
# bench/spread-netfs.sh - the packed TESTBED venv to 8 simulated nodes when
# the origin is on a network filesystem, as a cluster's shared filesystem
# is: the manager host exports a directory over SFTP (an sshd on loopback,
# tests/helpers-hosts.bash) and every node mounts it with sshfs at the same
# path, in a mount namespace of its own (its own client, its own page
# cache; nothing one node read is cached for another).
#   vine          vine-spread -s STATE: the origin path is read by K_origin
#                 nodes at most, the rest relayed node to node
#   direct        8 nodes each copying from the shared filesystem at once:
#                 cp (no check), and vine-spread --origin (copy + SHA-256)
# Ready = object fetched (and verified, where said).  RUNS repetitions
# (default 2); everything on a private tmpfs.  Prints a markdown table.
# Needs sshfs (share/install-deps.sh bench).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
RUNS=${RUNS:-2}
NODES=${NODES:-8}
. "$here/lib.sh"
BENCH_SHELL=bash bench_enter "$0"
command -v sshfs >/dev/null || { echo "spread-netfs: needs sshfs (share/install-deps.sh bench)" >&2; exit 1; }
T=$BENCH_WORK/tmpfs
export BATS_FILE_TMPDIR=$T/hosts-tmp VINE_HOSTS_DIR=$T/hosts
mkdir -p "$BATS_FILE_TMPDIR"
. "$here/../tests/helpers-hosts.bash"

# the export on the manager host, seen at $T/shared there as on every node
mkdir -p "$T/export" "$T/shared"
mount --bind "$T/export" "$T/shared"
spread_object
mv "$T/env.tar.gz" "$T/export/env.tar.gz"
origin=$T/shared/env.tar.gz

declare -a NS
unmount_all() {
	local n
	for n in "${!NS[@]}"; do
		nsenter -t "${NS[n]}" -m umount "$T/shared" 2>/dev/null || true
		kill "${NS[n]}" 2>/dev/null || true
	done
}
trap 'stop_servers; unmount_all; hosts_cleanup' EXIT
host_start >&2

# node N: a process holding a mount namespace with the sshfs mount
for n in $(seq "$NODES"); do
	unshare --mount --propagation private bash -c '
		umount "$1" && sshfs -o IdentityFile="$2",UserKnownHostsFile="$3",BatchMode=yes,port="$4" \
			"root@127.0.0.1:$5" "$1" && touch "$6" && exec sleep 100000' \
		sh "$T/shared" "$VINE_SSH_KEY" "$VINE_KNOWN_HOSTS" "$HOST_PORT" "$T/export" "$T/ns$n.ready" &
	NS[n]=$!
done
for n in $(seq "$NODES"); do
	while [ ! -e "$T/ns$n.ready" ]; do
		kill -0 "${NS[n]}" 2>/dev/null || { echo "spread-netfs: node $n could not mount" >&2; exit 1; }
		sleep 0.05
	done
done
# every node reads through its own mount, not the manager host's bind
[ "$(nsenter -t "${NS[1]}" -m stat -f -c %T "$T/shared")" = fuseblk ] ||
	[ "$(nsenter -t "${NS[1]}" -m stat -f -c %T "$T/shared")" = fuse ] ||
	{ echo "spread-netfs: node 1 does not see sshfs at $T/shared" >&2; exit 1; }

on_node() {
	local n=$1
	shift
	nsenter -t "${NS[n]}" -m -- "$@"
}

direct_cp() {
	local n p w=
	for n in $(seq "$NODES"); do
		mkdir -p "$T/d$n"
		on_node "$n" cp "$origin" "$T/d$n/obj" &
		w="$w $!"
	done
	for p in $w; do wait "$p"; done
}

echo "## spread, origin on a network filesystem (sshfs): $(echo "scale=1; $size / 1000000" | bc) MB packed object to $NODES nodes, $(nproc) cores, $RUNS runs, loopback, tmpfs"
spread_table_head
path_rounds direct_cp "cp from the shared filesystem"
