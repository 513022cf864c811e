# tests/helpers-netns.bash - simulated nodes with real network limits: each
# node a network namespace with one link to a shared switch, the link
# rate-limited (and delayed) with tc, the manager host's sshd in a
# namespace of its own.  Load it after helpers and helpers-hosts:
#     load helpers; load helpers-hosts; load helpers-netns
#
# netns_require [DELAY]
#     Skip the test, saying why, unless this machine can build the test
#     bed: root, ip(8) and tc(8), network namespaces, a bridge, veth pairs,
#     the tbf queueing discipline, and with a DELAY other than 0 netem.
# netns_init N RATE [DELAY]
#     Make a switch (a bridge, in a namespace of its own) and N+1 hosts
#     joined to it, each by a veth pair: index 0 is the manager host,
#     1..N the nodes.  RATE (tc's syntax: 8mbit, 2mbps...; "0": no limit)
#     limits each host's link both ways (tbf on each end of its veth), so
#     every host sends and receives at most RATE; DELAY (tc's: 5ms;
#     default 0) adds that much one-way latency to what each host sends
#     (netem).  Sets, for i = 0..N:
#       NETNS[i]       the namespace ("vt<pid>x<tag>-<i>": unique per run)
#       NETNS_ADDR[i]  its address, 198.18.0.1 + i, in 198.18.0.0/15
#     and NETNS_COUNT=N, NETNS_RATE, NETNS_DELAY.  Every namespace has
#     its loopback up.  Nothing is made outside the namespaces: the root
#     namespace gets no interface, no address and no route.
# netns_exec I CMD...   run CMD in host I's namespace
# netns_host_start [CONFIG-LINE...]
#     host_start (helpers-hosts.bash) inside namespace 0, on
#     NETNS_ADDR[0]: HOST_URL etc. then name an address the nodes reach
#     through their links (and the host's own limit).
# netns_node_spawn I CMD...
#     CMD in the background in node I's namespace, with VINE_NODE and
#     VINE_CACHE of helpers-hosts' node I (nodes_init is called for you
#     by netns_init); output in $NODE_LOG[i]; stopped by hosts_cleanup.
#     With NETNS_HIDE set to a directory, CMD runs in a mount namespace of
#     its own where that directory is an empty tmpfs (a node that does not
#     share the manager host's files there: no shared file system).
# netns_cleanup
#     Stop what this scope started (hosts_cleanup), then delete every
#     namespace it made: their veths and the bridge go with them.  Loading
#     this file makes teardown and teardown_file do it, so it happens
#     also when a test fails; a benchmark calls it from a trap.
#
# Why a switch namespace: the bridge and the veths' switch ends live
# there, so a run adds nothing to the root namespace and two runs at
# once cannot collide on interface names; deleting the namespace
# deletes them all.

# The file this scope records its namespaces in.
netns_list_file() {
	if [ -n "${BATS_TEST_NAME:-}" ]; then
		echo "$BATS_TEST_TMPDIR/.netns"
	else
		echo "$BATS_FILE_TMPDIR/.netns"
	fi
}

netns_require() {
	local delay=${1:-0} probe="vt$$x$RANDOM-probe" why=
	[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"
	command -v ip >/dev/null || skip "no ip(8) (iproute2)"
	command -v tc >/dev/null || skip "no tc(8) (iproute2)"
	if ! ip netns add "$probe" 2>/dev/null; then
		skip "cannot create a network namespace (ip netns add failed)"
	fi
	if ! ip -n "$probe" link add vtb type bridge 2>/dev/null; then
		why="the kernel has no bridge (ip link add type bridge failed)"
	elif ! ip -n "$probe" link add vta type veth peer name vtc 2>/dev/null; then
		why="the kernel has no veth pairs (ip link add type veth failed)"
	elif ! ip -n "$probe" link set vta up 2>/dev/null ||
		! ip netns exec "$probe" tc qdisc add dev vta root tbf rate 8mbit burst 64kb latency 50ms 2>/dev/null; then
		why="tc cannot limit a link: the kernel has no tbf queueing discipline (sch_tbf)"
	elif [ "$delay" != 0 ] && ! ip netns exec "$probe" tc qdisc add dev vtc root netem delay "$delay" 2>/dev/null; then
		why="tc cannot delay a link: the kernel has no netem queueing discipline (sch_netem)"
	fi
	ip netns del "$probe"
	[ -z "$why" ] || skip "$why"
	return 0
}

# netns_addr I: 198.18.0.1 + I
netns_addr() {
	local n=$(($1 + 1))
	echo "198.$((18 + n / 65536)).$((n / 256 % 256)).$((n % 256))"
}

# netns_limit NS DEV: the link's limits on DEV's egress in NS
netns_limit() {
	local ns=$1 dev=$2
	if [ "$NETNS_DELAY" != 0 ]; then
		ip netns exec "$ns" tc qdisc add dev "$dev" root handle 1: netem delay "$NETNS_DELAY" || return 1
		[ "$NETNS_RATE" = 0 ] ||
			ip netns exec "$ns" tc qdisc add dev "$dev" parent 1:1 handle 2: \
				tbf rate "$NETNS_RATE" burst 64kb latency 200ms || return 1
	elif [ "$NETNS_RATE" != 0 ]; then
		ip netns exec "$ns" tc qdisc add dev "$dev" root tbf rate "$NETNS_RATE" burst 64kb latency 200ms ||
			return 1
	fi
	return 0
}

netns_init() {
	local n=$1 i ns sw list
	NETNS_RATE=${2:?netns_init N RATE [DELAY]}
	NETNS_DELAY=${3:-0}
	NETNS_TAG="vt$$x$(printf %04x $((RANDOM)))"
	NETNS_COUNT=$n
	NETNS=() NETNS_ADDR=()
	list=$(netns_list_file)
	sw="$NETNS_TAG-sw"
	# recorded before it exists, so a failure half-way still cleans up
	echo "$sw" >>"$list"
	ip netns add "$sw" || return 1
	ip -n "$sw" link set lo up || return 1
	ip -n "$sw" link add br0 type bridge || return 1
	ip -n "$sw" link set br0 up || return 1
	for i in $(seq 0 "$n"); do
		ns="$NETNS_TAG-$i"
		NETNS[i]=$ns
		NETNS_ADDR[i]=$(netns_addr "$i")
		echo "$ns" >>"$list"
		ip netns add "$ns" || return 1
		ip -n "$ns" link set lo up || return 1
		ip -n "$sw" link add "p$i" type veth peer name eth0 netns "$ns" || return 1
		ip -n "$sw" link set "p$i" master br0 up || return 1
		ip -n "$ns" addr add "${NETNS_ADDR[i]}/15" dev eth0 || return 1
		ip -n "$ns" link set eth0 up || return 1
		netns_limit "$ns" eth0 || return 1
		netns_limit "$sw" "p$i" || return 1
	done
	# the nodes' names, caches and logs (helpers-hosts.bash)
	nodes_init "$n"
	for i in $(seq "$n"); do
		NODE_ADDR[i]=${NETNS_ADDR[i]}
		NODE_LISTEN[i]=${NETNS_ADDR[i]}:0
	done
}

netns_exec() {
	local i=$1
	shift
	ip netns exec "${NETNS[i]}" "$@"
}

netns_host_start() {
	HOSTS_NETNS=${NETNS[0]} HOST_START_ADDR=${NETNS_ADDR[0]} host_start "$@"
}

netns_node_spawn() {
	local i=$1
	shift
	if [ -n "${NETNS_HIDE:-}" ]; then
		set -- unshare --mount --propagation private sh -c \
			'mount -t tmpfs tmpfs "$0" && exec "$@"' "$NETNS_HIDE" "$@"
	fi
	VINE_NODE=${NODE_NAME[i]} VINE_CACHE=${NODE_CACHE[i]} \
		spawn "${NODE_LOG[i]}" ip netns exec "${NETNS[i]}" "$@"
}

netns_cleanup() {
	local list ns rc=0
	hosts_cleanup || rc=1
	list=$(netns_list_file)
	[ -f "$list" ] || return $rc
	while IFS= read -r ns; do
		[ -n "$ns" ] || continue
		if ip netns list | grep -q "^$ns\( \|$\)"; then
			ip netns del "$ns" || rc=1
		fi
	done <"$list"
	rm -f "$list"
	return $rc
}

teardown() {
	netns_cleanup
}

teardown_file() {
	netns_cleanup
}
