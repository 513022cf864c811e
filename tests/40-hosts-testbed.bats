#!/usr/bin/env bats
# The test bed itself (tests/helpers-hosts.bash): sshd test hosts and
# simulated nodes start, work, and stop without leaving processes behind.

load helpers
load helpers-hosts
bats_require_minimum_version 1.5.0

setup_file() {
	host_start
}

# ssh_to NAME CMD: OpenSSH's client, strict about the host key
ssh_to() {
	local name=$1
	shift
	ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes \
		-o UserKnownHostsFile="$VINE_KNOWN_HOSTS" -i "$VINE_SSH_KEY" \
		-p "$(sshd_port "$name")" "root@$(cat "$VINE_HOSTS_DIR/$name/addr")" "$@"
}

# sleeping MARKER: the pids of `sleep MARKER` processes (matching the NUL
# between the arguments, so neither grep itself nor an ssh client
# running "sleep MARKER" remotely counts)
sleeping() {
	grep -lsaP "^sleep\x00\Q$1\E\x00" /proc/[0-9]*/cmdline | cut -d/ -f3
	return 0
}

@test "the manager host's sshd accepts the test key with a strict known_hosts" {
	[[ $HOST_PORT =~ ^[0-9]+$ ]]
	[ "$HOST_ADDR" = 127.0.0.1 ]
	[ "$HOST_URL" = "ssh://root@127.0.0.1:$HOST_PORT" ]
	run -0 ssh_to host 'echo "$PATH|$HOME"'
	assert_output "$VINE_BIN:/usr/bin:/bin|$HOST_DIR"
}

@test "an sshd stops cleanly and takes its sessions with it" {
	local marker="1000.$$$RANDOM" pid
	sshd_start extra 127.0.0.5
	pid=$(cat "$VINE_HOSTS_DIR/extra/pid")
	kill -0 "$pid"
	ssh_to extra "sleep $marker" &
	local client=$!
	for i in $(seq 50); do
		[ -n "$(sleeping "$marker")" ] && break
		sleep 0.1
	done
	[ -n "$(sleeping "$marker")" ]
	sshd_stop extra
	! kill -0 "$pid" 2>/dev/null
	[ -z "$(sleeping "$marker")" ]
	run ssh_to extra true
	assert_failure
	wait "$client" || true
}

@test "hosts_cleanup stops sshds and spawned programs a test started" {
	local marker="1000.$$$RANDOM" pid
	sshd_start extra 127.0.0.6
	pid=$(cat "$VINE_HOSTS_DIR/extra/pid")
	spawn "$BATS_TEST_TMPDIR/log" sleep "$marker"
	[ -n "$(sleeping "$marker")" ]
	hosts_cleanup
	! kill -0 "$pid" 2>/dev/null
	! kill -0 "$SPAWNED" 2>/dev/null
	[ -z "$(sleeping "$marker")" ]
	# the file's host is not this test's to stop
	run -0 ssh_to host true
}

@test "sshds started at once get ports of their own" {
	# (waited for by pid: job numbers would count bats' timeout watchdog)
	sshd_start a 127.0.0.7 &
	local a=$!
	sshd_start b 127.0.0.7 &
	wait $a
	wait $!
	[ "$(sshd_port a)" != "$(sshd_port b)" ]
	run -0 ssh_to a true
	run -0 ssh_to b true
	sshd_stop a
	sshd_stop b
}

@test "sshd_restart keeps the address, port and host key" {
	sshd_start extra 127.0.0.8
	local port old
	port=$(sshd_port extra)
	old=$(cat "$VINE_HOSTS_DIR/extra/pid")
	sshd_restart extra
	[ "$(sshd_port extra)" = "$port" ]
	[ "$(cat "$VINE_HOSTS_DIR/extra/pid")" != "$old" ]
	run -0 ssh_to extra true
}

@test "simulated nodes have a name, a cache and a loopback listen address" {
	nodes_init 3
	[ "$NODE_COUNT" = 3 ]
	[ "${NODE_NAME[1]}" = node1 ]
	[ "${NODE_ADDR[3]}" = 127.0.0.4 ]
	[ "${NODE_LISTEN[2]}" = 127.0.0.3:0 ]
	[ -d "${NODE_CACHE[3]}" ]
	[ "${NODE_CACHE[1]}" != "${NODE_CACHE[2]}" ]
	run -0 node_run 2 sh -c 'echo "$VINE_NODE $VINE_CACHE"'
	assert_output "node2 ${NODE_CACHE[2]}"
	node_spawn 3 sh -c 'echo "$VINE_NODE"; exec sleep 100'
	for i in $(seq 50); do
		[ -s "${NODE_LOG[3]}" ] && break
		sleep 0.1
	done
	[ "$(cat "${NODE_LOG[3]}")" = node3 ]
	run -0 free_port 127.0.0.3
	assert_output --regexp '^[0-9]+$'
}
