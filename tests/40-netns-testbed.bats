#!/usr/bin/env bats
# The network test bed itself (tests/helpers-netns.bash): nodes in network
# namespaces on rate-limited links, reachable by TCP, the manager host's
# sshd in a namespace of its own, and nothing left behind, also when a
# test fails.

load helpers
load helpers-hosts
load helpers-netns
bats_require_minimum_version 1.5.0

TCPTOOL="$BATS_TEST_DIRNAME/tools/tcptool.py"

# serve_on I PORT: a tcptool server in namespace I, up when it listens
serve_on() {
	local i=$1 port=$2 k
	spawn "$BATS_TEST_TMPDIR/serve$i.log" ip netns exec "${NETNS[i]}" \
		/usr/bin/python3 "$TCPTOOL" serve "${NETNS_ADDR[i]}" "$port" "host$i"
	for k in $(seq 100); do
		netns_exec "$i" ss -Hltn "sport = :$port" | grep -q . && return 0
		sleep 0.05
	done
	echo "server $i did not listen" >&2
	return 1
}

# ours: the namespaces and root-namespace links whose names carry TAG
ours() {
	{ ip netns list; ip -o link; } | grep -c -- "$1" || true
}

@test "every node reaches every other by TCP on its own address in 198.18.0.0/15, and the root namespace gets nothing" {
	netns_require
	# (not i: bats-assert's run sets it)
	local before after node peer
	before=$(ip -o link | cut -d: -f2 | sort)
	netns_init 4 0
	[ "${#NETNS[@]}" -eq 5 ]
	assert_equal "${NETNS_ADDR[0]}" 198.18.0.1
	assert_equal "${NETNS_ADDR[4]}" 198.18.0.5
	assert_equal "$(netns_addr 300)" 198.18.1.45
	assert_equal "${NODE_ADDR[2]}" 198.18.0.3
	for node in 0 1 2 3 4; do
		[[ ${NETNS[node]} == "$NETNS_TAG-$node" ]]
		run -0 netns_exec "$node" ip -o -4 addr show dev eth0
		assert_output --partial "inet ${NETNS_ADDR[node]}/15"
		serve_on "$node" 7000
	done
	for node in 0 1 2 3 4; do
		for peer in 0 1 2 3 4; do
			run -0 netns_exec "$node" /usr/bin/python3 "$TCPTOOL" hello "${NETNS_ADDR[peer]}" 7000
			assert_output "host$peer"
		done
	done
	# the root namespace cannot reach them: nothing of ours is there
	run ! timeout 5 /usr/bin/python3 "$TCPTOOL" hello "${NETNS_ADDR[1]}" 7000
	after=$(ip -o link | cut -d: -f2 | sort)
	assert_equal "$after" "$before"
}

@test "each link carries at most its rate, both ways" {
	netns_require
	local t
	# 16 Mbit/s = 2 MB/s: 3 MB take 1.5 s; unlimited they take ~0.02 s
	netns_init 2 16mbit
	serve_on 1 7000
	run -0 netns_exec 2 /usr/bin/python3 "$TCPTOOL" pull "${NETNS_ADDR[1]}" 7000 3000000
	t=$output
	echo "# 3 MB node 1 -> node 2 at 16mbit: $t s" >&3
	[ "$(echo "$t >= 1.2" | bc)" = 1 ]
	[ "$(echo "$t < 10" | bc)" = 1 ]
	# the other way: node 2's upload and node 1's download are limited too
	serve_on 2 7000
	run -0 netns_exec 1 /usr/bin/python3 "$TCPTOOL" pull "${NETNS_ADDR[2]}" 7000 3000000
	[ "$(echo "$output >= 1.2" | bc)" = 1 ]
}

@test "each link delays what it sends (netem)" {
	netns_require 50ms
	netns_init 1 0 50ms
	serve_on 0 7000
	# a connection and one answer: at least two round trips of 2 x 50 ms
	run -0 netns_exec 1 /usr/bin/python3 -c '
import socket, sys, time
t = time.monotonic()
c = socket.create_connection((sys.argv[1], 7000))
c.makefile("rb").readline()
print("%.3f" % (time.monotonic() - t))' "${NETNS_ADDR[0]}"
	[ "$(echo "$output >= 0.19" | bc)" = 1 ]
}

@test "the manager host's sshd runs in namespace 0 and the nodes log in through their links" {
	netns_require
	netns_init 2 0
	netns_host_start
	assert_equal "$HOST_ADDR" 198.18.0.1
	assert_equal "$HOST_URL" "ssh://root@198.18.0.1:$HOST_PORT"
	run -0 netns_exec 2 ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes \
		-o UserKnownHostsFile="$VINE_KNOWN_HOSTS" -i "$VINE_SSH_KEY" -p "$HOST_PORT" \
		"root@$HOST_ADDR" 'echo $SSH_CONNECTION'
	assert_output --regexp "^198\.18\.0\.3 [0-9]+ 198\.18\.0\.1 $HOST_PORT\$"
	# from the root namespace there is no route to it
	run ! timeout 5 ssh -F /dev/null -o BatchMode=yes -o ConnectTimeout=2 -p "$HOST_PORT" "root@$HOST_ADDR" true
}

@test "netns_node_spawn runs a node's program in its namespace with its name and cache" {
	netns_require
	netns_init 2 0
	netns_node_spawn 2 sh -c 'echo "$VINE_NODE $VINE_CACHE"; ip -o -4 addr show dev eth0; sleep 600'
	local k
	for k in $(seq 100); do
		grep -q inet "${NODE_LOG[2]}" && break
		sleep 0.05
	done
	run -0 cat "${NODE_LOG[2]}"
	assert_line "node2 ${NODE_CACHE[2]}"
	assert_output --partial "inet 198.18.0.3/15"
}

@test "cleanup removes every namespace, veth and bridge, and a failing test's teardown does too" {
	netns_require
	local links tag
	links=$(ip -o link | cut -d: -f2 | sort)
	netns_init 3 8mbit
	tag=$NETNS_TAG
	[ "$(ours "$tag")" -eq 5 ]
	netns_node_spawn 1 sleep 600
	netns_cleanup
	assert_equal "$(ours "$tag")" 0
	assert_equal "$(ip -o link | cut -d: -f2 | sort)" "$links"
	! kill -0 "$SPAWNED" 2>/dev/null

	# a test that fails half-way through: its teardown removes what it made
	# ($at: bats would rewrite the word in this very file)
	local at=@test
	cat >"$BATS_TEST_TMPDIR/fails.bats" <<-EOF
	load "$BATS_TEST_DIRNAME/helpers"
	load "$BATS_TEST_DIRNAME/helpers-hosts"
	load "$BATS_TEST_DIRNAME/helpers-netns"
	$at "fails" {
		netns_init 2 8mbit
		echo "\$NETNS_TAG" >"$BATS_TEST_TMPDIR/tag"
		netns_node_spawn 1 sleep 600
		false
	}
	EOF
	# (a clean environment: bats passes its own variables and PATH on)
	run -1 env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="$HOME" VINE_BIN="$VINE_BIN" bats "$BATS_TEST_TMPDIR/fails.bats"
	tag=$(cat "$BATS_TEST_TMPDIR/tag")
	[ -n "$tag" ]
	assert_equal "$(ours "$tag")" 0
	assert_equal "$(ip -o link | cut -d: -f2 | sort)" "$links"
}
