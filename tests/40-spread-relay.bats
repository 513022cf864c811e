#!/usr/bin/env bats
# vine-spread: relaying an object a node is still receiving, and losing a
# source in the middle of a transfer.  Loopback only.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	vine_setup
	spread_setup
}

teardown() {
	spread_stop_all
}

now() {
	date +%s.%N
}

@test "a node serves an object while still receiving it, and its peer completes after it" {
	id=$(spread_object obj 64)
	# A receives the object slowly (a test helper writes its partial copy)
	spread_grow obj "$A_CACHE" "$id" 2097152 0.05
	spread_wait_for 10 test -s "$A_CACHE/partial/$id"
	spread_serve A "$A_CACHE" 127.0.0.2 -v
	run -0 vine-spread -c "$B_CACHE" --secret-file "$SPREAD_SECRET" --from "$A" "$id"
	done_b=$(now)
	cmp obj "$B_CACHE/objects/$id"
	# B started on A's partial copy and could only finish once A had it all
	run -0 cat "$BATS_TEST_TMPDIR/A.log"
	assert_output --partial "sent bytes 0-67108864 (complete) relayed from a partial copy"
	run -0 cat "$A_CACHE.grown"
	awk -v a="$output" -v b="$done_b" 'BEGIN { exit !(b >= a) }'
}

@test "a chain: C relays from B while B relays from A" {
	id=$(spread_object obj 48)
	spread_grow obj "$A_CACHE" "$id" 1048576 0.05
	spread_wait_for 10 test -s "$A_CACHE/partial/$id"
	spread_serve A "$A_CACHE" 127.0.0.2 -v
	spread_serve B "$B_CACHE" 127.0.0.3 -v
	vine-spread -c "$B_CACHE" --secret-file "$SPREAD_SECRET" -q --from "$A" "$id" >b.out 2>b.err 3>&- &
	fetch_b=$!
	spread_wait_for 10 test -s "$B_CACHE/partial/$id"
	run -0 vine-spread -c "$C_CACHE" --secret-file "$SPREAD_SECRET" --from "$B" "$id"
	rc=0
	wait "$fetch_b" || rc=$?
	[ "$rc" -eq 0 ]
	cmp obj "$B_CACHE/objects/$id"
	cmp obj "$C_CACHE/objects/$id"
	run -0 cat "$BATS_TEST_TMPDIR/B.log"
	assert_output --partial "sent bytes 0-50331648 (complete) relayed from a partial copy"
	run -0 cat "$BATS_TEST_TMPDIR/A.log"
	assert_output --partial "relayed from a partial copy"
}

@test "kill -9 of the serving peer: the fetch resumes from another source at the same offset" {
	id=$(spread_object obj 32)
	mkdir -p "$C_CACHE/objects"
	cp obj "$C_CACHE/objects/$id"
	# A relays a copy it is still receiving, so there is time to kill it
	spread_grow obj "$A_CACHE" "$id" 1048576 0.1
	spread_wait_for 10 test -s "$A_CACHE/partial/$id"
	spread_serve A "$A_CACHE" 127.0.0.2
	spread_serve C "$C_CACHE" 127.0.0.3 -v
	vine-spread -c "$B_CACHE" --secret-file "$SPREAD_SECRET" -q --from "$A" --from "$C" "$id" \
		>b.out 2>b.err 3>&- &
	fetch_b=$!
	spread_wait_for 20 eval '[ "$(stat -c %s "$B_CACHE/partial/$id" 2>/dev/null || echo 0)" -ge 3145728 ]'
	kill -9 "$A_pid"
	rc=0
	wait "$fetch_b" || rc=$?
	[ "$rc" -eq 0 ]
	cmp obj "$B_CACHE/objects/$id"
	run -0 cat b.err
	assert_output --regexp "$A: .*connection closed"
	# C sent only the rest, from where A stopped
	run -0 cat "$BATS_TEST_TMPDIR/C.log"
	assert_output --regexp "sent bytes [1-9][0-9]{6,}-33554432 \(complete\)"
	refute_output --partial "sent bytes 0-"
}

@test "a client that waits for a node which stops receiving is told STALLED" {
	id=$(spread_object obj 2)
	mkdir -p "$A_CACHE/partial" "$A_CACHE/objects"
	# a partial copy whose writer died: nobody holds its lock
	head -c 1000000 obj >"$A_CACHE/partial/$id"
	spread_serve A "$A_CACHE" 127.0.0.2
	run -1 vine-spread -c "$B_CACHE" --secret-file "$SPREAD_SECRET" --from "$A" "$id"
	assert_output --partial "$A: the partial copy is not being received"
	# B keeps the bytes it got, for a resume elsewhere
	run -0 stat -c %s "$B_CACHE/partial/$id"
	assert_output 1000000
}
