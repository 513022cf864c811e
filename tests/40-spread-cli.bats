#!/usr/bin/env bats
# vine-spread: usage, the secret, listening addresses.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	vine_setup
	spread_setup
	ID=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
}

teardown() {
	spread_stop_all
}

@test "-h prints usage and exits 0" {
	run -0 vine-spread -h
	assert_line --index 0 --partial "usage: vine-spread"
	assert_output --partial "--serve"
	assert_output --partial "--from HOST:PORT"
}

@test "bad usage exits 2 with usage on stderr" {
	run -2 vine-spread
	assert_output --partial "usage:"
	run -2 vine-spread --bogus
	run -2 vine-spread --from 127.0.0.2:1
	run -2 vine-spread "$ID"
	assert_output --partial "no source: give --from HOST:PORT"
	run -2 vine-spread --serve "$ID"
	run -2 vine-spread --serve --from 127.0.0.2:1
	run -2 vine-spread -l 127.0.0.2:0 --from 127.0.0.2:1 "$ID"
	run -2 vine-spread -u 0 --serve
	assert_output --partial "-u: '0' is not a number"
	run -2 vine-spread -t x --serve
}

@test "an object operand must be an id: no paths, no uppercase" {
	run -2 vine-spread --secret-file "$SPREAD_SECRET" --from 127.0.0.2:1 ../x
	assert_output --partial "'../x' is not an object id"
	run -2 vine-spread --secret-file "$SPREAD_SECRET" --from 127.0.0.2:1 "${ID^^}"
	assert_output --partial "is not an object id"
	run -2 vine-spread --secret-file "$SPREAD_SECRET" --from 127.0.0.2:1 "$ID/"
	assert_output --partial "is not an object id"
	assert_dir_not_exists "$VINE_CACHE"
}

@test "addresses are checked" {
	run -2 vine-spread --secret-file "$SPREAD_SECRET" --from 127.0.0.2 "$ID"
	assert_output --partial "--from: bad address '127.0.0.2': no port"
	run -2 vine-spread --secret-file "$SPREAD_SECRET" --from 127.0.0.2:70000 "$ID"
	assert_output --partial "bad port"
	run -2 vine-spread --secret-file "$SPREAD_SECRET" --serve -l 127.0.0.2:x
	assert_output --partial "-l: bad address"
	# a well-formed address that cannot be listened on
	run -1 vine-spread --secret-file "$SPREAD_SECRET" --serve -l 192.0.2.1:0
	assert_output --partial "cannot listen on '192.0.2.1:0'"
}

@test "the secret: required, private, well-formed" {
	unset VINE_SECRET_FILE
	run -2 vine-spread --serve -l 127.0.0.2:0
	assert_output --partial "no secret: give --secret-file FILE or set VINE_SECRET_FILE"
	run -1 vine-spread --secret-file "$BATS_TEST_TMPDIR/none" --serve -l 127.0.0.2:0
	assert_output --partial "cannot open secret file"
	chmod 644 "$SPREAD_SECRET"
	run -1 vine-spread --secret-file "$SPREAD_SECRET" --serve -l 127.0.0.2:0
	assert_output --partial "is readable by others (mode 644)"
	(umask 077 && echo nothex >"$BATS_TEST_TMPDIR/bad")
	run -1 vine-spread --secret-file "$BATS_TEST_TMPDIR/bad" --serve -l 127.0.0.2:0
	assert_output --partial "a secret is 64 hex digits"
	assert_output --partial "bad"
}

@test "a FIFO as the secret file is refused, not waited on" {
	mkfifo -m 600 "$BATS_TEST_TMPDIR/fifo"
	run -1 timeout 20 vine-spread --secret-file "$BATS_TEST_TMPDIR/fifo" --serve -l 127.0.0.2:0
	assert_output --partial "secret file '$BATS_TEST_TMPDIR/fifo' is not a regular file"
}

@test "VINE_SECRET_FILE is read when --secret-file is not given" {
	chmod 644 "$SPREAD_SECRET"
	VINE_SECRET_FILE="$SPREAD_SECRET" run -1 vine-spread --serve -l 127.0.0.2:0
	assert_output --partial "readable by others"
}

@test "port 0 picks a free port and prints the address first" {
	spread_serve A "$BATS_TEST_TMPDIR/a" 127.0.0.2
	spread_serve B "$BATS_TEST_TMPDIR/b" 127.0.0.2
	[[ $A =~ ^127\.0\.0\.2:[1-9][0-9]*$ ]]
	[[ $B =~ ^127\.0\.0\.2:[1-9][0-9]*$ ]]
	[ "$A" != "$B" ]
	# the caches are created private
	run -0 stat -c %a "$BATS_TEST_TMPDIR/a/objects" "$BATS_TEST_TMPDIR/a/partial" "$BATS_TEST_TMPDIR/a/locks"
	assert_output $'700\n700\n700'
	# a taken port is an error, not a silent move
	run -1 vine-spread -c "$BATS_TEST_TMPDIR/c" --secret-file "$SPREAD_SECRET" --serve -l "$A"
	assert_output --partial "cannot listen on '$A'"
	assert_output --partial "in use"
}

@test "SIGTERM and SIGINT stop the server cleanly" {
	spread_serve A "$BATS_TEST_TMPDIR/a" 127.0.0.3 -v
	kill -TERM "$A_pid"
	rc=0
	wait "$A_pid" || rc=$?
	[ "$rc" -eq 0 ]
	run -0 cat "$BATS_TEST_TMPDIR/A.log"
	assert_output --partial "serving '$BATS_TEST_TMPDIR/a' on $A"
	assert_output --partial "stopped by signal 15"
	spread_serve B "$BATS_TEST_TMPDIR/b" 127.0.0.3
	kill -INT "$B_pid"
	rc=0
	wait "$B_pid" || rc=$?
	[ "$rc" -eq 0 ]
	# nothing left listening
	run -1 vine-spread -c "$BATS_TEST_TMPDIR/b" --secret-file "$SPREAD_SECRET" -q --from "$B" "$ID"
	assert_output --partial "cannot connect"
}
