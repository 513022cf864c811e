#!/usr/bin/env bats
# vine-seed: many seeders at once unpack once; a seeder killed at any moment
# leaves nothing that looks ready, and the next one recovers.

bats_require_minimum_version 1.5.0
load helpers
load seed-helpers

# big.tgz: ~48 MB in 600 files, slow enough to be caught mid-unpack
big_archive() {
	mkdir -p src/d
	for i in $(seq 1 24); do
		mkdir src/d/dir$i
		for j in $(seq 1 25); do head -c 80000 /dev/urandom >src/d/dir$i/f$j; done
	done
	mkvarchive --level 1 --member-size 1000000 -o big.tgz src/d
}

# wait_for FILE PATTERN: until FILE has a line matching PATTERN (10 s at most)
wait_for() {
	for _ in $(seq 1 1000); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.01
	done
	cat "$1" >&2
	return 1
}

@test "concurrency: 16 seeders at once unpack once" {
	big_archive
	pids=
	for i in $(seq 1 16); do
		vine-seed -v -j 2 big.tgz >out.$i 2>err.$i &
		pids="$pids $!"
	done
	wait $pids
	[ "$(cat err.* | grep -c "unpacking 'big.tgz'")" -eq 1 ]
	[ "$(sort -u out.* | wc -l)" -eq 1 ]
	env=$(cat out.1)
	[ -d "$env/dir24" ] && [ "$(ls "$env/dir24" | wc -l)" -eq 25 ]
	diff -r src/d "$env" -x .vine
	assert_no_debris
}

@test "concurrency: 16 seeders with -i at once unpack once" {
	big_archive
	id=$(sha256sum big.tgz | cut -d' ' -f1)
	pids=
	for i in $(seq 1 16); do
		vine-seed -v -i "$id" big.tgz >out.$i 2>err.$i &
		pids="$pids $!"
	done
	wait $pids
	[ "$(cat err.* | grep -c "unpacking 'big.tgz'")" -eq 1 ]
	[ "$(sort -u out.* | wc -l)" -eq 1 ]
	diff -r src/d "$(cat out.1)" -x .vine
}

@test "concurrency: kill -9 during the unpack, then seed again" {
	big_archive
	id="-i $(sha256sum big.tgz | cut -d' ' -f1)"
	# killed without and with -i, then seeded the same way or the other
	for modes in ":" "$id:$id" ":$id" "$id:"; do
		rm -rf cache
		# shellcheck disable=SC2086
		# it stops itself in the middle of the unpack (VINE_TEST_PAUSE): no
		# race with the clock, however loaded the machine
		VINE_TEST_PAUSE=unpack vine-seed -v -j 1 ${modes%%:*} big.tgz >out 2>err &
		pid=$!
		wait_stopped $pid
		kill -9 $pid
		wait $pid || true
		[ ! -s out ]
		assert_nothing_ready
		[ -n "$(ls -A cache/tmp)" ] # the killed seeder's debris
		# shellcheck disable=SC2086
		run -0 vine-seed ${modes#*:} big.tgz
		diff -r src/d "$output" -x .vine
		assert_no_debris
	done
}

@test "concurrency: a waiting seeder takes over when the holder is killed" {
	big_archive
	VINE_TEST_PAUSE=unpack vine-seed -v -j 1 big.tgz >out.a 2>err.a &
	a=$!
	wait_stopped $a
	vine-seed -v big.tgz >out.b 2>err.b &
	b=$!
	wait_for err.b "waiting for another seeder"
	kill -9 $a
	wait $b
	env=$(cat out.b)
	diff -r src/d "$env" -x .vine
	assert_no_debris
}

@test "concurrency: 16 seeders of a real venv, then python runs" {
	fixture_venv "$BATS_TEST_TMPDIR/src/venv"
	mkvarchive --member-size 300000 -o venv.tgz src/venv
	rm -rf src
	pids=
	for i in $(seq 1 16); do vine-seed -v venv.tgz >out.$i 2>err.$i & pids="$pids $!"; done
	wait $pids
	[ "$(cat err.* | grep -c unpacking)" -eq 1 ]
	env=$(cat out.1)
	run -0 "$env/bin/python3" -c 'import sys, json; print(sys.prefix)'
	assert_output "$env"
}
