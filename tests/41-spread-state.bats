#!/usr/bin/env bats
# vine-spread -s STATE: nodes fetch as the state directs (peers holding the
# object, complete or still receiving it, else the origin, at most K and
# K_origin at once), and the state records every transfer.  Loopback only:
# node N is named nN, has the cache nN/ and listens on 127.0.0.N.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	vine_setup
}

teardown() {
	spread_stop_all || true
}

# register OBJECT-FILE [vine-submit option...]: the object in the state (one
# no-op task); prints its id.
register() {
	local f=$1
	shift
	echo true | vine-submit -e "$f" "$@" >/dev/null && sha256sum "$f" | cut -c1-64
}

# node_serve N [vine-spread option...]: node nN serves its cache, registered
# in the state; its pid in nN_pid, its stderr in nN.log.
node_serve() {
	local n=$1 i pid
	shift
	vine-spread -s "$VINE_STATE" -c "n$n" -N "n$n" --serve -l "127.0.0.$n:0" "$@" \
		>"n$n.addr" 2>"n$n.log" 3>&- &
	pid=$!
	echo "$pid" >>"$BATS_TEST_TMPDIR/spread.pids"
	for i in $(seq 200); do
		[ -s "n$n.addr" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	[ -s "n$n.addr" ] || { cat "n$n.log" >&2; return 1; }
	printf -v "n${n}_pid" %s "$pid"
}

# node_fetch N ID: node nN fetches ID as the state directs.
node_fetch() {
	vine-spread -q -s "$VINE_STATE" -c "n$1" -N "n$1" "$2"
}

# js EXPR: EXPR over j, the state as vine-status --json shows it (o: the
# first object, t: the transfers).
js() {
	vine-status --json | python3 -c '
import json, sys
j = json.load(sys.stdin); o = j["objects"][0]; t = j["transfers"]
v = eval(sys.argv[1])
print(" ".join(map(str, v)) if isinstance(v, tuple) else v)' "$1"
}

@test "8 nodes: the origin serves at most K_origin copies, peers the rest, each copy verified" {
	head -c $((24 << 20)) /dev/urandom >env.tar
	id=$(register env.tar)
	for n in 1 2 3 4 5 6 7 8; do node_serve $n; done
	pids=
	for n in 1 2 3 4 5 6 7 8; do node_fetch $n "$id" >"n$n.out" 2>"n$n.err" & pids="$pids $!"; done
	for p in $pids; do wait "$p"; done
	for n in 1 2 3 4 5 6 7 8; do
		run -0 sha256sum "n$n/objects/$id"
		assert_output "$id  n$n/objects/$id"
	done
	run -0 js 'o["served_origin"] + o["served_peer"], o["served_origin"] <= 2, o["served_peer"] >= 6'
	assert_output '8 True True'
	# the transfers table agrees with the counters: 8 done, none from the
	# origin beyond K_origin, each node fetched from a node other than itself
	run -0 js 'sum(x["state"] == "done" for x in t), sum(x["source"] is None and x["state"] == "done" for x in t) == o["served_origin"], all(x["source"] != x["dest"] for x in t)'
	assert_output '8 True True'
	run -0 js 'sorted(r["node"] for r in o["replicas"] if r["complete"]) == ["n%d" % i for i in range(1, 9)], o["bytes_origin"] == o["served_origin"] * o["size"], o["transfers_active"]'
	assert_output 'True True 0'
	run -0 vine-status
	assert_output --regexp "replicas 8 \(8 complete\)  served origin [12] \(25.2 MB|replicas 8 \(8 complete\)  served origin [12] \(50.3 MB"
}

@test "K_origin 1, K 1, no relaying: one origin transfer at a time, peers serve complete copies only" {
	head -c $((8 << 20)) /dev/urandom >env.tar
	id=$(register env.tar --k-origin 1 --no-relay --k-peer 1)
	for n in 1 2 3 4; do node_serve $n; done
	pids=
	for n in 1 2 3 4; do node_fetch $n "$id" >/dev/null 2>"n$n.err" & pids="$pids $!"; done
	for p in $pids; do wait "$p"; done
	for n in 1 2 3 4; do cmp env.tar "n$n/objects/$id"; done
	run -0 js 'o["served_origin"] + o["served_peer"], o["served_peer"] >= 1, o["transfers_failed"]'
	assert_output '4 True 0'
	# origin transfers never overlapped
	run -0 js 'all(a["updated"] <= b["started"] or b["updated"] <= a["started"] for a in t for b in t if a["id"] < b["id"] and a["source"] is None and b["source"] is None)'
	assert_output 'True'
	# without relaying, every peer transfer started after its source was complete
	run -0 js 'all(any(y["dest"] == x["source"] and y["updated"] <= x["started"] for y in t) for x in t if x["source"])'
	assert_output 'True'
}

@test "kill -9 of the serving peer mid-transfer: the receiver resumes from another source" {
	head -c $((6 << 20)) /dev/urandom >env.tar
	id=$(register env.tar)
	node_serve 1 >/dev/null
	node_fetch 1 "$id" >/dev/null
	spread_stop_all || true
	# n1 now serves slowly (64 KiB per 20 ms), and is the only peer holding it
	VINE_TEST_SEND_DELAY=0.02 node_serve 1
	node_fetch 2 "$id" >n2.out 2>n2.err &
	fetch=$!
	spread_wait_for 10 sh -c "[ \$(stat -c %s n2/partial/$id 2>/dev/null || echo 0) -gt 1048576 ]"
	kill -9 "$n1_pid"
	wait "$fetch"
	cmp env.tar "n2/objects/$id"
	# n1's transfer failed part way, the origin gave the rest from there
	run -0 js '[(x["source"], x["state"], x["offset"] > 0) for x in t if x["dest"] == "n2"]'
	assert_output "[('n1', 'failed', False), (None, 'done', True)]"
	run -0 js 'o["bytes_origin"] + o["bytes_peer"] == 2 * o["size"], o["transfers_failed"]'
	assert_output 'True 1'
	run -0 cat n2.err
	assert_output --partial "${id:0:12}:"
}

@test "a peer serving corrupt bytes: detected, fetched elsewhere, and that peer avoided" {
	head -c $((3 << 20)) /dev/urandom >env.tar
	id=$(register env.tar)
	node_serve 1
	node_fetch 1 "$id" >/dev/null
	# n1's copy goes bad behind its back (same size)
	chmod u+w "n1/objects/$id"
	dd if=/dev/zero of="n1/objects/$id" bs=1 count=16 seek=1000 conv=notrunc status=none
	node_fetch 2 "$id" >/dev/null 2>n2.err
	cmp env.tar "n2/objects/$id"
	run -0 js '[(x["source"], x["status"]) for x in t if x["dest"] == "n2"]'
	assert_output "[('n1', 'corrupt'), (None, 'ok')]"
	# n3 is not sent to n1 while it is avoided (n2 does not serve)
	node_fetch 3 "$id" >/dev/null 2>n3.err
	cmp env.tar "n3/objects/$id"
	run -0 js '[(x["source"], x["status"]) for x in t if x["dest"] == "n3"]'
	assert_output "[(None, 'ok')]"
}

@test "a peer with another secret is refused, and the fetch goes on from the origin" {
	head -c $((2 << 20)) /dev/urandom >env.tar
	id=$(register env.tar)
	node_serve 1 >/dev/null
	node_fetch 1 "$id" >/dev/null
	spread_stop_all || true
	spread_secret other
	node_serve 1 --secret-file other
	node_fetch 2 "$id" >/dev/null 2>n2.err
	cmp env.tar "n2/objects/$id"
	run -0 js '[(x["source"], x["status"]) for x in t if x["dest"] == "n2"]'
	assert_output "[('n1', 'auth'), (None, 'ok')]"
	run -0 cat n2.err
	assert_output --partial "auth"
}

@test "the state: K settings are checked, an unknown object is an error, and a stopped server unregisters" {
	run -2 vine-submit --k-peer 0 /dev/null
	run -2 vine-submit --k-origin x /dev/null
	head -c 1000 /dev/urandom >env.tar
	id=$(register env.tar)
	run -1 node_fetch 1 "$(printf '%064d' 0)"
	assert_output --partial "not registered"
	run -2 vine-spread -s "$VINE_STATE" --from 127.0.0.1:1 "$id"
	node_serve 1
	kill "$n1_pid"
	wait "$n1_pid" || true
	# nobody serves any more: n2 gets it from the origin, not from n1
	node_fetch 2 "$id" >/dev/null
	run -0 js '[x["source"] for x in t]'
	assert_output '[None]'
	# no peer has it and the origin is gone: a clear failure, not a loop
	rm env.tar
	run -1 node_fetch 3 "$id"
	assert_output --partial "cannot fetch $id"
	run -0 js '[x["status"] for x in t if x["dest"] == "n3"]'
	assert_output "['notfound', 'notfound', 'notfound']"
}

@test "vine-seed -s: 4 nodes seed one packed environment through the state, and run it" {
	fixture_venv venv
	vine-pack -o env.tar.gz venv >/dev/null
	id=$(register env.tar.gz)
	for n in 1 2 3 4; do node_serve $n; done
	pids=
	for n in 1 2 3 4; do
		vine-seed -q -s "$VINE_STATE" -N "n$n" -c "n$n" "$id" -- python -c 'import sys; print(sys.prefix)' \
			>"n$n.out" 2>"n$n.err" &
		pids="$pids $!"
	done
	for p in $pids; do wait "$p"; done
	for n in 1 2 3 4; do
		run -0 cat "n$n.out"
		assert_output --partial "$BATS_TEST_TMPDIR/n$n/env/"
		cmp env.tar.gz "n$n/objects/$id"
		# published whole, nothing left half-received
		assert_not_exists "n$n/partial/$id"
	done
	run -0 js 'o["served_origin"] + o["served_peer"], o["served_origin"] <= 2, sum(r["complete"] for r in o["replicas"])'
	assert_output '4 True 4'
	# an operand that is not an id is refused with -s
	run -2 vine-seed -s "$VINE_STATE" env.tar.gz
	assert_output --partial "not an object id"
}

@test "kill -9 of a standalone server: its lease runs out, and no fetch is sent to it" {
	head -c $((1 << 20)) /dev/urandom >env.tar
	id=$(register env.tar)
	VINE_LEASE=1 node_serve 1
	node_fetch 1 "$id" >/dev/null
	run -0 vine-status
	assert_line "servers: 1 alive, 0 lost, 0 gone"
	# it renews its lease while it lives: still chosen after three leases
	sleep 3
	node_fetch 2 "$id" >/dev/null
	run -0 js '[(x["source"], x["status"]) for x in t if x["dest"] == "n2"]'
	assert_output "[('n1', 'ok')]"
	kill -9 "$n1_pid"
	wait "$n1_pid" || true
	sleep 1.5
	# the next fetch reaps it and goes to the origin at once: no failed transfer
	node_fetch 3 "$id" >/dev/null
	cmp env.tar "n3/objects/$id"
	run -0 js '[(x["source"], x["status"]) for x in t if x["dest"] == "n3"]'
	assert_output "[(None, 'ok')]"
	run -0 js 'o["transfers_failed"], [(w["node"], w["cores"], w["state"]) for w in j["workers"]]'
	assert_output "0 [('n1', 0, 'lost')]"
	run -0 vine-status
	assert_line "servers: 0 alive, 1 lost, 0 gone"
	assert_line "workers: 0 alive, 0 lost, 0 gone"
	# a server stopped by a signal leaves: gone, and unregistered
	node_serve 2
	kill "$n2_pid"
	wait "$n2_pid" || true
	run -0 vine-status
	assert_line "servers: 0 alive, 1 lost, 1 gone"
	run -2 env VINE_LEASE=0 vine-spread -s "$VINE_STATE" -c n4 -N n4 --serve
	assert_output "vine-spread: VINE_LEASE='0' is not a positive number of seconds"
}

# replicas ID: the nodes the state records with a complete replica of ID
replicas() {
	vine-status --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
print(" ".join(sorted(r["node"] for o in j["objects"] if o["id"] == sys.argv[1]
                      for r in o["replicas"] if r["complete"])))' "$1"
}

@test "a node that pruned without telling the state stops being a source at its first 'not found'" {
	head -c 65536 /dev/urandom >env.tar
	id=$(register env.tar)
	node_serve 1
	run -0 node_fetch 1 "$id"
	run -0 replicas "$id"
	assert_output n1
	# n1 prunes it, the state is not told
	VINE_STATE= run -0 vine-cache -c n1 prune --max-size 0
	assert_output "$id 65536"
	# n2 is sent to n1, hears "not found", and the state drops n1's replica
	run -0 timeout 60 vine-spread -q -s "$VINE_STATE" -c n2 -N n2 "$id"
	cmp env.tar "n2/objects/$id"
	run -0 js '[(x["source"], x["dest"], x["status"]) for x in t]'
	assert_output "[(None, 'n1', 'ok'), ('n1', 'n2', 'notfound'), (None, 'n2', 'ok')]"
	run -0 replicas "$id"
	assert_output n2
}

@test "vine-cache prune (-s, or VINE_STATE), vine-seed -L and vine-seed -d withdraw their replicas" {
	mkdir a b
	echo a >a/a
	echo b >b/b
	vine-pack -q -o a.tgz a >/dev/null
	vine-pack -q -o b.tgz b >/dev/null
	ida=$(register a.tgz)
	idb=$(register b.tgz)
	node_serve 1
	run -0 node_fetch 1 "$ida"
	run -0 node_fetch 1 "$idb"
	run -0 replicas "$ida"
	assert_output n1
	# a dry run changes nothing; prune tells the state given by -s
	VINE_STATE= run -0 vine-cache -c n1 -N n1 -s "$PWD/vine.db" prune -n --max-size 0
	run -0 replicas "$ida"
	assert_output n1
	run -0 vine-cache -c n1 -N n1 prune --max-size 0
	run -0 replicas "$ida"
	assert_output ''
	run -0 replicas "$idb"
	assert_output ''
	# vine-seed -L evicts a (not in use) for b, and withdraws n3's replica of a
	run -0 vine-seed -s "$VINE_STATE" -c n3 -N n3 "$ida"
	run -0 replicas "$ida"
	assert_output n3
	run -0 vine-seed -s "$VINE_STATE" -c n3 -N n3 -L 1 "$idb"
	run -0 replicas "$ida"
	assert_output ''
	run -0 replicas "$idb"
	assert_output n3
	# vine-seed -d drops b's archive on n4 and withdraws its replica
	run -0 vine-seed -s "$VINE_STATE" -c n4 -N n4 -d "$idb"
	[ ! -e "n4/objects/$idb" ]
	run -0 replicas "$idb"
	assert_output n3
	# a state that cannot be opened is an error before anything goes
	run -0 node_fetch 1 "$ida"
	run -1 vine-cache -c n1 -s "$PWD/nothing.db" prune --max-size 0
	[ -e "n1/objects/$ida" ]
	# $VINE_STATE naming no file: there is nothing to tell
	VINE_STATE=$PWD/nothing.db run -0 vine-cache -c n1 prune --max-size 0
	[ ! -e "n1/objects/$ida" ]
}
