# tests/helpers-hosts.bash - test hosts on loopback: an sshd for "the
# manager host", more sshds if a test wants them, and simulated nodes.
# Load it after helpers:  load helpers; load helpers-hosts
#
#   setup_file() { host_start; }            # the manager host, for all tests
#
# Loading it defines teardown() and teardown_file() as hosts_cleanup, so
# what a test or the file started is stopped also when a test fails; a
# file that needs more defines its own after loading and calls
# hosts_cleanup there.
#
# host_start [CONFIG-LINE...]
#     Start the manager host's sshd on 127.0.0.1 and a free port and export
#     HOST_ADDR, HOST_PORT, HOST_SSH ("root@127.0.0.1:PORT"), HOST_URL
#     ("ssh://root@127.0.0.1:PORT"; append an absolute path), HOST_DIR (its
#     files), and the client side: VINE_KNOWN_HOSTS (a known_hosts that lists
#     the host's ed25519 key) and VINE_SSH_KEY (a user key it accepts).
#     Extra arguments are sshd_config lines; they replace the defaults
#     with the same keyword (e.g. 'MaxStartups 4:50:8').  HOST_START_ADDR
#     and HOSTS_NETNS put it elsewhere (helpers-netns.bash does).
# sshd_start NAME ADDR [CONFIG-LINE...]
#     The same for any name and loopback address; prints nothing, sets up
#     $VINE_HOSTS_DIR/NAME/{port,log,...} and adds NAME to known_hosts.
#     With HOSTS_NETNS set (helpers-netns.bash), it runs in that network
#     namespace, whose address ADDR is.
# sshd_stop NAME, sshd_restart NAME (same port, same keys), sshd_port NAME
# nodes_init N
#     Simulated nodes 1..N: NODE_NAME[i]=node<i>, NODE_ADDR[i]=127.0.0.<i+1>,
#     NODE_CACHE[i] (a directory of its own), NODE_LISTEN[i]=ADDR:0 (any
#     free port; use free_port ADDR for a fixed one).
# node_run I CMD...     run CMD as node I (VINE_NODE, VINE_CACHE set)
# node_spawn I CMD...   the same in the background, output in
#                       $NODE_LOG[i]; stopped by hosts_cleanup
# spawn LOG CMD...      any background process, stopped by hosts_cleanup
# hosts_cleanup         stop what this scope started (a test, or the file)
#
# Processes: each sshd runs as pid 1 of its own pid and mount namespaces
# (tmpfs on /run, for /run/sshd), so stopping it by its pid ends every
# session and every program the sessions started: nothing strays.  The
# sessions get PATH=$VINE_BIN:/usr/bin:/bin and HOME=the host's directory
# (sshd_config SetEnv), so `vine-state` is found by name and no dotfile of
# the machine's user runs.  Needs root (unshare, sshd).

VINE_HOSTS_DIR="${VINE_HOSTS_DIR:-$BATS_FILE_TMPDIR/hosts}"
export VINE_HOSTS_DIR

hosts_require() {
	[ "$(id -u)" -eq 0 ] || skip "test hosts need root (unshare, sshd)"
	[ -x /usr/sbin/sshd ] || skip "test hosts need openssh-server (/usr/sbin/sshd)"
	command -v unshare >/dev/null || skip "test hosts need unshare (util-linux)"
}

# The directory where this scope records the processes it started.
hosts_procs_dir() {
	if [ -n "${BATS_TEST_NAME:-}" ]; then
		echo "$BATS_TEST_TMPDIR/.procs"
	else
		echo "$BATS_FILE_TMPDIR/.procs"
	fi
}

# free_port ADDR [NETNS]: a port nothing is bound to on ADDR now (in that
# network namespace), below the ephemeral range so outgoing connections
# rarely take it meanwhile.
free_port() {
	${2:+ip netns exec "$2"} /usr/bin/python3 - "$1" <<-'EOF'
	import random, socket, sys
	for _ in range(200):
	    p = random.randint(20000, 32000)
	    s = socket.socket()
	    try:
	        s.bind((sys.argv[1], p))
	    except OSError:
	        continue
	    finally:
	        s.close()
	    print(p)
	    sys.exit(0)
	sys.exit("no free port")
	EOF
}

# The client's user key and known_hosts, one per test file.
hosts_client_init() {
	local c="$VINE_HOSTS_DIR/client"
	mkdir -p "$c"
	if [ ! -e "$c/id_ed25519" ]; then
		ssh-keygen -q -t ed25519 -N '' -C vine-test -f "$c/id_ed25519" || return 1
	fi
	touch "$VINE_HOSTS_DIR/known_hosts"
	export VINE_SSH_KEY="$c/id_ed25519"
	export VINE_KNOWN_HOSTS="$VINE_HOSTS_DIR/known_hosts"
}

# proc_track PID: stop PID in hosts_cleanup of the current scope.
proc_track() {
	local d
	d=$(hosts_procs_dir)
	mkdir -p "$d"
	echo "$1" >"$d/$1"
}

# stop_pid PID: TERM, then KILL after 5 s; returns when it is gone.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "hosts: process $pid would not die" >&2
	return 1
}

sshd_port() {
	cat "$VINE_HOSTS_DIR/$1/port"
}

# Write the config of NAME for its address and port.  The caller's lines
# replace the defaults with the same keyword (sshd keeps the first value
# of most options but the last of some, such as MaxStartups).
sshd_config() {
	local name=$1 addr=$2 port=$3 d="$VINE_HOSTS_DIR/$1" line given=" "
	shift 3
	for line in "$@"; do
		given="$given${line%% *} "
	done
	given=${given,,}
	{
		for line in "$@"; do
			echo "$line"
		done
		while IFS= read -r line; do
			[[ $given == *" ${line%% *} "* ]] || echo "$line"
		done <<-EOF
		listenaddress $addr
		port $port
		pidfile $d/sshd.pid
		hostkey $d/ssh_host_ed25519_key
		hostkey $d/ssh_host_ecdsa_key
		authorizedkeysfile $d/authorized_keys
		permitrootlogin prohibit-password
		usepam no
		strictmodes no
		passwordauthentication no
		kbdinteractiveauthentication no
		subsystem sftp internal-sftp
		setenv PATH=$VINE_BIN:/usr/bin:/bin HOME=$d
		maxstartups 100:30:200
		EOF
	} >"$d/sshd_config"
}

# Run the sshd of NAME (already configured); 0 when it listens, 1 when
# it could not bind, 2 on any other failure.
sshd_launch() {
	local d="$VINE_HOSTS_DIR/$1" u pid= i ns=
	rm -f "$d/sshd.pid" "$d/pid"
	: >"$d/sshd.log"
	[ -s "$d/netns" ] && ns=$(cat "$d/netns")
	# fd 3 is bats' own: a daemon holding it would hang the test run
	${ns:+ip netns exec "$ns"} unshare --mount --pid --fork --kill-child --propagation private \
		sh -c 'mount -t tmpfs -o mode=755 tmpfs /run && mkdir -m 755 /run/sshd &&
			exec /usr/sbin/sshd -D -f "$1" -E "$2"' sh \
		"$d/sshd_config" "$d/sshd.log" </dev/null >>"$d/sshd.log" 2>&1 3>&- &
	u=$!
	for i in $(seq 100); do
		# sshd writes its pid file after it bound its address
		if [ -z "$pid" ]; then
			pid=$(cat "/proc/$u/task/$u/children" 2>/dev/null)
			pid=${pid%% *}
		fi
		if [ -n "$pid" ] && [ -s "$d/sshd.pid" ]; then
			echo "$pid" >"$d/pid"
			proc_track "$pid"
			return 0
		fi
		if ! kill -0 "$u" 2>/dev/null; then
			wait "$u" 2>/dev/null
			grep -q "Address already in use\|Cannot bind any address" "$d/sshd.log" && return 1
			cat "$d/sshd.log" >&2
			return 2
		fi
		sleep 0.05
	done
	echo "hosts: sshd $1 did not start" >&2
	cat "$d/sshd.log" >&2
	[ -n "$pid" ] && stop_pid "$pid"
	return 2
}

sshd_start() {
	local name=$1 addr=$2 d="$VINE_HOSTS_DIR/$1" port try rc kh
	shift 2
	hosts_require
	hosts_client_init || return 1
	mkdir -p "$d"
	rm -f "$d"/ssh_host_*
	ssh-keygen -q -t ed25519 -N '' -f "$d/ssh_host_ed25519_key" </dev/null || return 1
	ssh-keygen -q -t ecdsa -N '' -f "$d/ssh_host_ecdsa_key" </dev/null || return 1
	cp "$VINE_HOSTS_DIR/client/id_ed25519.pub" "$d/authorized_keys"
	echo "${HOSTS_NETNS:-}" >"$d/netns"
	for try in $(seq 20); do
		port=$(free_port "$addr" "${HOSTS_NETNS:-}") || return 1
		sshd_config "$name" "$addr" "$port" "$@"
		# (no bare failing command: bats runs tests under set -e)
		rc=0
		sshd_launch "$name" || rc=$?
		[ $rc -eq 1 ] && continue
		[ $rc -eq 0 ] || return 1
		echo "$port" >"$d/port"
		echo "$addr" >"$d/addr"
		kh="[$addr]:$port $(cut -d' ' -f1-2 "$d/ssh_host_ed25519_key.pub")"
		echo "$kh" >"$d/known_hosts_line"
		echo "$kh" >>"$VINE_HOSTS_DIR/known_hosts"
		return 0
	done
	echo "hosts: no free port for sshd $name on $addr" >&2
	return 1
}

sshd_stop() {
	local d="$VINE_HOSTS_DIR/$1" pid
	[ -s "$d/pid" ] || return 0
	pid=$(cat "$d/pid")
	stop_pid "$pid" || return 1
	rm -f "$d/pid" "$(hosts_procs_dir)/$pid" "$BATS_FILE_TMPDIR/.procs/$pid"
}

# sshd_restart NAME: stop it (every session ends) and start it again on
# the same address and port with the same keys.
sshd_restart() {
	local i
	sshd_stop "$1" || return 1
	# the port is free once the old listener is gone; retry a moment in
	# case a client connection from that port lingers
	for i in $(seq 20); do
		sshd_launch "$1" && return 0
		[ $? -eq 1 ] || return 1
		sleep 0.1
	done
	return 1
}

host_start() {
	local addr=${HOST_START_ADDR:-127.0.0.1}
	sshd_start host "$addr" "$@" || return 1
	export HOST_DIR="$VINE_HOSTS_DIR/host"
	export HOST_ADDR=$addr
	HOST_PORT=$(sshd_port host)
	export HOST_PORT
	export HOST_SSH="root@$HOST_ADDR:$HOST_PORT"
	export HOST_URL="ssh://$HOST_SSH"
}

nodes_init() {
	local n=$1 i
	NODE_NAME=() NODE_ADDR=() NODE_CACHE=() NODE_LISTEN=() NODE_LOG=()
	for i in $(seq "$n"); do
		NODE_NAME[i]=node$i
		NODE_ADDR[i]=127.0.0.$((i + 1))
		NODE_CACHE[i]=${BATS_TEST_TMPDIR:-$BATS_FILE_TMPDIR}/nodes/node$i/cache
		NODE_LISTEN[i]=${NODE_ADDR[i]}:0
		NODE_LOG[i]=${BATS_TEST_TMPDIR:-$BATS_FILE_TMPDIR}/nodes/node$i/log
		mkdir -p "${NODE_CACHE[i]}"
	done
	NODE_COUNT=$n
}

node_run() {
	local i=$1
	shift
	VINE_NODE=${NODE_NAME[i]} VINE_CACHE=${NODE_CACHE[i]} "$@"
}

# spawn LOG CMD...: run CMD in the background (stdin /dev/null, output to
# LOG), tracked for hosts_cleanup; its pid is in $SPAWNED.
spawn() {
	local log=$1
	shift
	"$@" </dev/null >>"$log" 2>&1 3>&- &
	SPAWNED=$!
	proc_track "$SPAWNED"
}

node_spawn() {
	local i=$1
	shift
	VINE_NODE=${NODE_NAME[i]} VINE_CACHE=${NODE_CACHE[i]} spawn "${NODE_LOG[i]}" "$@"
}

# hosts_cleanup: stop every process the current scope started (sshds,
# spawned programs), newest first.
hosts_cleanup() {
	local d pid rc=0
	d=$(hosts_procs_dir)
	[ -d "$d" ] || return 0
	for pid in $(ls -t "$d"); do
		stop_pid "$pid" || rc=1
		rm -f "$d/$pid"
	done
	return $rc
}

teardown() {
	hosts_cleanup
}

teardown_file() {
	hosts_cleanup
}
