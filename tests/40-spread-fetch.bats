#!/usr/bin/env bats
# vine-spread: fetching objects from peers, on loopback, two or three
# simulated nodes with their own caches.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	vine_setup
	spread_setup
	mkdir -p "$A_CACHE/objects" "$C_CACHE/objects"
}

teardown() {
	spread_stop_all
}

fetch() {
	vine-spread -c "$B_CACHE" --secret-file "$SPREAD_SECRET" "$@"
}

@test "a 100 MB object moves between two nodes intact" {
	id=$(spread_object obj 100)
	cp obj "$A_CACHE/objects/$id"
	spread_serve A "$A_CACHE" 127.0.0.2 -v
	run -0 --separate-stderr fetch --from "$A" "$id"
	assert_output "$B_CACHE/objects/$id"
	[ -z "$stderr" ]
	cmp obj "$B_CACHE/objects/$id"
	run -0 ls -A "$B_CACHE/partial"
	assert_output ""
	run -0 cat "$BATS_TEST_TMPDIR/A.log"
	assert_output --partial "sent bytes 0-104857600 (complete)"
	# once there, fetching again moves nothing
	run -0 fetch --from "$A" "$id"
	run -0 grep -c "sent bytes" "$BATS_TEST_TMPDIR/A.log"
	assert_output 1
}

@test "several objects; a missing one fails alone" {
	id1=$(spread_object o1 1)
	id2=$(spread_object o2 2)
	cp o1 "$A_CACHE/objects/$id1"
	missing=$(echo nothing | sha256sum | cut -c1-64)
	spread_serve A "$A_CACHE" 127.0.0.2
	run -1 --separate-stderr fetch --from "$A" "$id1" "$missing" "$id2"
	assert_output "$B_CACHE/objects/$id1"
	assert_equal "$(printf '%s\n' "${stderr_lines[@]}" | grep -c 'no such object')" 2
	[[ $stderr == *"cannot fetch $missing: no source could give it"* ]]
	[[ $stderr == *"cannot fetch $id2: no source could give it"* ]]
	cmp o1 "$B_CACHE/objects/$id1"
	assert_file_not_exists "$B_CACHE/objects/$missing"
	assert_file_not_exists "$B_CACHE/partial/$missing"
}

# resumed MB: B holds the first 3,000,000 bytes of an MB MiB object in
# partial/; fetched from A, only the rest is sent, and the copy is whole
resumed() {
	id=$(spread_object obj "$1")
	cp obj "$A_CACHE/objects/$id"
	mkdir -p "$B_CACHE/partial"
	head -c 3000000 obj >"$B_CACHE/partial/$id"
	spread_serve A "$A_CACHE" 127.0.0.2 -v
	run -0 fetch --from "$A" "$id"
	cmp obj "$B_CACHE/objects/$id"
	run -0 cat "$BATS_TEST_TMPDIR/A.log"
	assert_output --partial "sent bytes 3000000-$(($1 * 1048576)) (complete)"
}

@test "a partial copy is resumed where it stopped" {
	resumed 8
}

@test "a corrupt copy is found out and nothing is kept" {
	id=$(spread_object obj 20)
	cp obj "$A_CACHE/objects/$id"
	printf 'X' | dd of="$A_CACHE/objects/$id" bs=1 seek=12345678 conv=notrunc status=none
	spread_serve A "$A_CACHE" 127.0.0.2
	run -1 fetch -q --from "$A" "$id"
	assert_output --partial "object $id from $A: hash mismatch"
	assert_output --partial "discarded"
	assert_output --partial "cannot fetch $id"
	assert_file_not_exists "$B_CACHE/objects/$id"
	assert_file_not_exists "$B_CACHE/partial/$id"
	# a good second source gives it, from the start
	cp obj "$C_CACHE/objects/$id"
	spread_serve C "$C_CACHE" 127.0.0.3 -v
	run -0 fetch --from "$A" --from "$C" "$id"
	assert_output --partial "hash mismatch"
	cmp obj "$B_CACHE/objects/$id"
	run -0 cat "$BATS_TEST_TMPDIR/C.log"
	assert_output --partial "sent bytes 0-20971520 (complete)"
}

@test "the wrong secret gets nothing" {
	id=$(spread_object obj 1)
	cp obj "$A_CACHE/objects/$id"
	spread_serve A "$A_CACHE" 127.0.0.2 -v
	spread_secret other
	run -1 vine-spread -c "$B_CACHE" --secret-file other --from "$A" "$id"
	assert_output --partial "$A: authentication failed"
	assert_file_not_exists "$B_CACHE/objects/$id"
	assert_file_not_exists "$B_CACHE/partial/$id"
	run -0 cat "$BATS_TEST_TMPDIR/A.log"
	assert_output --partial "refused: authentication failed"
	refute_output --partial "sent bytes"
	# a missing object looks the same as a present one to a stranger
	missing=$(echo nothing | sha256sum | cut -c1-64)
	run -1 vine-spread -c "$B_CACHE" --secret-file other --from "$A" "$missing"
	assert_output --partial "$A: authentication failed"
	refute_output --partial "no such object"
}

@test "an unreachable source is skipped for the next one" {
	id=$(spread_object obj 1)
	cp obj "$C_CACHE/objects/$id"
	spread_serve C "$C_CACHE" 127.0.0.3
	run -0 fetch --from 127.0.0.2:1 --from "$C" "$id"
	assert_line --partial "127.0.0.2:1: cannot connect: Connection refused"
	cmp obj "$B_CACHE/objects/$id"
}

@test "the origin file is the last resort, and needs no secret" {
	id=$(spread_object obj 3)
	unset VINE_SECRET_FILE
	run -0 vine-spread -c "$B_CACHE" --origin obj "$id"
	assert_output "$B_CACHE/objects/$id"
	cmp obj "$B_CACHE/objects/$id"
	# after peers that cannot give it
	run -0 vine-spread -c "$C_CACHE" --secret-file "$SPREAD_SECRET" --from 127.0.0.2:1 \
		--origin "$PWD/obj" "$id"
	assert_output --partial "127.0.0.2:1: cannot connect"
	cmp obj "$C_CACHE/objects/$id"
	# an origin that is not the object
	printf 'X' | dd of=obj bs=1 seek=100 conv=notrunc status=none
	run -1 vine-spread -c "$BATS_TEST_TMPDIR/d" --origin obj "$id"
	assert_output --partial "object $id from $PWD/obj: hash mismatch"
	assert_file_not_exists "$BATS_TEST_TMPDIR/d/objects/$id"
}

@test "over the upload limit a client is told BUSY and goes elsewhere" {
	id=$(spread_object obj 4)
	# A holds a copy still being received (slowly): its one upload waits on it
	spread_grow obj "$A_CACHE" "$id" 262144 0.2
	cp obj "$C_CACHE/objects/$id"
	spread_serve A "$A_CACHE" 127.0.0.2 -u 1 -v
	spread_serve C "$C_CACHE" 127.0.0.3
	spread_wait_for 10 test -s "$A_CACHE/partial/$id"
	vine-spread -c "$BATS_TEST_TMPDIR/d" --secret-file "$SPREAD_SECRET" -q --from "$A" "$id" \
		>d.out 2>d.err 3>&- &
	first=$!
	spread_wait_for 10 test -s "$BATS_TEST_TMPDIR/d/partial/$id"
	run -1 fetch --from "$A" "$id"
	assert_output --partial "$A: busy"
	run -0 fetch --from "$A" --from "$C" "$id"
	assert_output --partial "$A: busy"
	cmp obj "$B_CACHE/objects/$id"
	run -0 grep -c "refused: busy" "$BATS_TEST_TMPDIR/A.log"
	assert_output 2
	# the first client was not disturbed
	wait "$first"
	cmp obj "$BATS_TEST_TMPDIR/d/objects/$id"
}

@test "a stalled source is dropped and the fetch resumes elsewhere at the same offset" {
	id=$(spread_object obj 16)
	cp obj "$A_CACHE/objects/$id"
	cp obj "$C_CACHE/objects/$id"
	# A relays a copy it is still receiving, so the transfer takes a while
	spread_grow obj "$BATS_TEST_TMPDIR/g" "$id" 1048576 0.1
	spread_serve G "$BATS_TEST_TMPDIR/g" 127.0.0.2
	spread_wait_for 10 test -s "$BATS_TEST_TMPDIR/g/partial/$id"
	spread_serve C "$C_CACHE" 127.0.0.3 -v
	fetch -t 1 --from "$G" --from "$C" "$id" >out 2>err 3>&- &
	pid=$!
	spread_wait_for 20 test -s "$B_CACHE/partial/$id"
	kill -STOP "$G_pid"
	rc=0
	wait "$pid" || rc=$?
	kill -CONT "$G_pid"
	[ "$rc" -eq 0 ]
	run -0 cat err
	assert_output --partial "$G: stalled: nothing received for 1 s"
	cmp obj "$B_CACHE/objects/$id"
	run -0 cat "$BATS_TEST_TMPDIR/C.log"
	assert_output --regexp "sent bytes [1-9][0-9]*-16777216 \(complete\)"
}

# full_disk_fetch [SOURCE]: B's cache on a 4 MiB tmpfs of its own (a mount
# namespace); an 8 MB object from peer A (or from the origin file, with
# SOURCE "origin") stops with an error that says the disk is full, naming
# the cache, and removes what it wrote: a kept partial copy would fill the
# disk for good.  With room made, the next fetch starts over and succeeds.
full_disk_fetch() {
	[ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null || skip "needs root and mount namespaces"
	id=$(spread_object obj 8)
	cp obj "$A_CACHE/objects/$id"
	mkdir -p "$B_CACHE"
	local src=(--origin "$PWD/obj")
	if [ "${1-}" != origin ]; then
		spread_serve A "$A_CACHE" 127.0.0.2 -v
		src=(--from "$A")
	fi
	run -0 unshare -m --propagation private sh -c '
		c=$1 id=$2; shift 2
		mount -t tmpfs -o size=4m tmpfs "$c" || exit 9
		vine-spread -q -c "$c" "$@" "$id"; echo "status $?"
		echo "partial [$(ls -A "$c/partial" 2>/dev/null)] tmp [$(ls -A "$c/tmp" 2>/dev/null)]"
		echo "used $(du -sk "$c" | cut -f1)"
		mount -o remount,size=32m "$c" || exit 9
		vine-spread -q -c "$c" "$@" "$id" && cmp obj "$c/objects/$id" && echo same' 		sh "$B_CACHE" "$id" --secret-file "$SPREAD_SECRET" "${src[@]}"
	assert_output --partial "cannot write '$B_CACHE/partial/$id': the disk holding the cache '$B_CACHE' is full (No space left on device); the partial copy is removed"
	assert_line "status 1"
	assert_line "partial [] tmp []"
	assert_line "same"
	used=$(echo "$output" | sed -n 's/^used //p')
	[ "$used" -lt 100 ] || fail "the cache still holds $used KiB after the failed fetch"
}

@test "a full disk: the error says so, naming the cache, and the partial copy is removed" {
	full_disk_fetch
}

@test "without splice (VINE_TEST_NO_SPLICE): a full disk is the same error and removes the copy the same" {
	export VINE_TEST_NO_SPLICE=1
	full_disk_fetch
}

@test "a full disk while copying the origin file: the same error, the copy removed" {
	full_disk_fetch origin
}

@test "without splice (VINE_TEST_NO_SPLICE): a 100 MB object cut at 3 MB resumes there, intact" {
	export VINE_TEST_NO_SPLICE=1
	resumed 100
}

@test "no address space to map the copy for hashing: it is read back, and verified all the same" {
	ldd "$(command -v vine-spread)" | grep -q libasan && skip "a sanitizer build needs more address space than the limit"
	id=$(spread_object obj 20)
	cp obj "$A_CACHE/objects/$id"
	spread_serve A "$A_CACHE" 127.0.0.2
	# 60 MB of address space: enough to run, too little for the mapping
	run -0 bash -c 'ulimit -v 60000 && exec strace -f -e trace=mmap -o mmap.log "$@"' sh \
		vine-spread -q -c "$B_CACHE" --secret-file "$SPREAD_SECRET" --from "$A" "$id"
	cmp obj "$B_CACHE/objects/$id"
	# the mapping was refused, so the fallback did the hashing
	run -0 grep -c 'MAP_SHARED.*ENOMEM' mmap.log
}
