#!/usr/bin/env bats
# The origin through the state: a node that cannot read the origin path
# (no shared file system: here a private mount namespace hides the
# directory under a tmpfs) reads its bytes through the ssh:// state from
# vine-state on the manager host, counted as an origin transfer, resumable,
# verified.  sshd and vine-state run outside the node's namespace.

load helpers
load helpers-hosts
bats_require_minimum_version 1.5.0

setup_file() {
	host_start
}

setup() {
	vine_setup
	DB=$BATS_TEST_TMPDIR/run.db
	URL=$HOST_URL$DB
	export VINE_STATE=$DB
	mkdir -p origin
}

# register FILE: FILE in the state (one no-op task); prints its id.
register() {
	echo true | vine-submit -s "$DB" -e "$1" >/dev/null && sha256sum "$1" | cut -c1-64
}

# hidden CMD...: CMD run where the origin directory is an empty tmpfs.
hidden() {
	unshare --mount --propagation private sh -c \
		'mount -t tmpfs tmpfs "$1" && ! test -e "$1/env.tar" && shift && exec "$@"' \
		sh "$BATS_TEST_TMPDIR/origin" "$@"
}

# hello_env DIR: a tiny environment whose bin/hello names it.
hello_env() {
	mkdir -p "$1/bin"
	printf '#!/bin/sh\necho "hello from $VINE_ENV"\n' >"$1/bin/hello"
	chmod +x "$1/bin/hello"
}

# js EXPR: EXPR over the local state's vine-status --json (o: the first
# object, t: the transfers).
js() {
	vine-status -s "$DB" --json | python3 -c '
import json, sys
j = json.load(sys.stdin); o = j["objects"][0]; t = j["transfers"]
v = eval(sys.argv[1])
print(" ".join(map(str, v)) if isinstance(v, tuple) else v)' "$1"
}

@test "a node that cannot see the origin reads it through the ssh:// state" {
	# not a multiple of any buffer or chunk size
	head -c $(((9 << 20) + 12345)) /dev/urandom >origin/env.tar
	id=$(register origin/env.tar)
	run -0 hidden vine-spread -q -s "$URL" -c c1 -N n1 "$id"
	run -0 sha256sum "c1/objects/$id"
	assert_output "$id  c1/objects/$id"
	run -0 js 'o["served_origin"], o["bytes_origin"] == o["size"], o["served_peer"], len(t), t[0]["source"], t[0]["state"]'
	assert_output '1 True 0 1 None done'
	# the manager host still has the origin, untouched
	run -0 sha256sum origin/env.tar
	assert_output "$id  origin/env.tar"
	[ -z "$(ls -A c1/partial)" ]
}

@test "an origin the node can read is read directly; VINE_ORIGIN=state forces the state" {
	head -c 300000 /dev/urandom >origin/env.tar
	id=$(register origin/env.tar)
	# the state's first origin_read asks the size; a second one would read
	# bytes, and the server that sees it leaves a file (and hangs up)
	drop="env VINE_TEST_DROP_ANSWER=origin_read:2:$BATS_TEST_TMPDIR/read vine-state"
	VINE_REMOTE_STATE_CMD=$drop run -0 vine-spread -q -s "$URL" -c c1 -N n1 "$id"
	[ ! -e read ]
	cmp origin/env.tar "c1/objects/$id"
	VINE_ORIGIN=path VINE_REMOTE_STATE_CMD=$drop run -0 vine-spread -q -s "$URL" -c c2 -N n2 "$id"
	[ ! -e read ]
	VINE_ORIGIN=state VINE_REMOTE_STATE_CMD=$drop run -0 vine-spread -q -s "$URL" -c c3 -N n3 "$id"
	[ -e read ]
	cmp origin/env.tar "c3/objects/$id"
	# no node serves: every copy came from the origin
	run -0 js 'o["served_origin"], o["served_peer"], o["bytes_origin"]'
	assert_output '3 0 900000'
	VINE_ORIGIN=sideways run -1 vine-spread -q -s "$URL" -c c4 -N n4 "$id"
	assert_output --partial "bad \$VINE_ORIGIN 'sideways': use auto, path or state"
}

@test "VINE_ORIGIN=path: an origin the node cannot see is the error it always was" {
	head -c 300000 /dev/urandom >origin/env.tar
	id=$(register origin/env.tar)
	VINE_ORIGIN=path run -1 hidden vine-spread -q -s "$URL" -c c1 -N n1 "$id"
	assert_output --partial "cannot read '$BATS_TEST_TMPDIR/origin/env.tar'"
	[ ! -e "c1/objects/$id" ]
}

@test "a different file at the origin path on the node: read through the state" {
	head -c 500000 /dev/urandom >origin/env.tar
	id=$(register origin/env.tar)
	# the node sees another file of another size there
	run -0 unshare --mount --propagation private sh -c \
		'mount -t tmpfs tmpfs "$1" && echo stale >"$1/env.tar" && shift && exec "$@"' \
		sh "$BATS_TEST_TMPDIR/origin" vine-spread -q -s "$URL" -c c1 -N n1 "$id"
	cmp origin/env.tar "c1/objects/$id"
	run -0 js 'o["served_origin"], o["bytes_origin"]'
	assert_output '1 500000'
}

@test "vine-seed -s ssh://: an environment whose archive the node cannot see is ready and runs" {
	hello_env env
	id=$(vine-pack -q -o origin/env.tar env | tail -n 1)
	[ "$id" = "$(register origin/env.tar)" ]
	run -0 hidden vine-seed -q -s "$URL" -N n1 -c c1 "$id" -- hello
	assert_output --regexp "^hello from $BATS_TEST_TMPDIR/c1/"
	run -0 js 'o["served_origin"], o["bytes_origin"] == o["size"]'
	assert_output '1 True'
}

@test "vine-worker -s ssh://: a task whose environment the node cannot see runs in it" {
	hello_env env
	vine-pack -q -o origin/env.tar env >/dev/null
	echo hello | vine-submit -s "$DB" -e origin/env.tar >/dev/null
	run -0 hidden vine-worker -s "$URL" -N w1 -c c1 -i 0
	run -0 vine-collect -s "$DB" -o res
	run -0 cat res/1/stdout
	assert_output --regexp "^hello from $BATS_TEST_TMPDIR/c1/"
	run -0 js 'o["served_origin"], o["bytes_origin"] == o["size"], t[0]["dest"]'
	assert_output '1 True w1'
}

@test "a read through the state cut in the middle resumes at the byte it reached" {
	head -c $((6 << 20)) /dev/urandom >origin/env.tar
	id=$(register origin/env.tar)
	# the state will not read past 4 MiB: the fetch fails there, keeping
	# what it has
	VINE_REMOTE_STATE_CMD="env VINE_TEST_ORIGIN_LIMIT=$((4 << 20)) vine-state" \
		run -1 hidden vine-spread -q -s "$URL" -c c1 -N n1 "$id"
	assert_output --partial "not reading the origin past byte $((4 << 20))"
	[ "$(stat -c %s "c1/partial/$id")" -eq $((4 << 20)) ]
	cmp -n $((4 << 20)) origin/env.tar "c1/partial/$id"
	[ ! -e "c1/objects/$id" ]
	run -0 js 'o["served_origin"], o["bytes_origin"], t[-1]["state"]'
	assert_output "0 $((4 << 20)) failed"
	# run again: it resumes at the byte held, and the object is whole
	run -0 hidden vine-spread -q -s "$URL" -c c1 -N n1 "$id"
	cmp origin/env.tar "c1/objects/$id"
	[ -z "$(ls -A c1/partial)" ]
	run -0 js 't[-1]["offset"], t[-1]["state"], o["served_origin"], o["bytes_origin"]'
	assert_output "$((4 << 20)) done 1 $((6 << 20))"
	# the connection lost in the middle of an answer: the request is sent
	# again for the bytes after those that came
	VINE_REMOTE_STATE_CMD="env VINE_TEST_DROP_ANSWER=origin_read:2:$BATS_TEST_TMPDIR/dropped vine-state" \
		run -0 hidden vine-spread -q -s "$URL" -c c2 -N n2 "$id"
	[ -e dropped ]
	cmp origin/env.tar "c2/objects/$id"
}

@test "the origin is asked for through the state 16 MiB at a time, not 1 MiB" {
	head -c $((40 << 20)) /dev/urandom >origin/env.tar
	id=$(register origin/env.tar)
	# a size query and three reads (16 + 16 + 8 MiB): no 5th request
	VINE_REMOTE_STATE_CMD="env VINE_TEST_DROP_ANSWER=origin_read:5:$BATS_TEST_TMPDIR/dropped5 vine-state" \
		run -0 hidden vine-spread -q -s "$URL" -c c1 -N n1 "$id"
	[ ! -e dropped5 ]
	cmp origin/env.tar "c1/objects/$id"
	# the 4th is the last one; cut, it is asked again for the rest
	VINE_REMOTE_STATE_CMD="env VINE_TEST_DROP_ANSWER=origin_read:4:$BATS_TEST_TMPDIR/dropped4 vine-state" \
		run -0 hidden vine-spread -q -s "$URL" -c c2 -N n2 "$id"
	[ -e dropped4 ]
	cmp origin/env.tar "c2/objects/$id"
}

@test "an origin changed on the manager host: the mismatch is caught, nothing is published" {
	head -c 400000 /dev/urandom >origin/env.tar
	id=$(register origin/env.tar)
	# same size, other bytes
	head -c 400000 /dev/urandom >origin/env.tar
	run -1 hidden vine-spread -q -s "$URL" -c c1 -N n1 "$id"
	assert_output --partial "object $id from $URL: hash mismatch"
	[ ! -e "c1/objects/$id" ]
	[ -z "$(ls -A c1/partial)" ]
	# another size: the state says so before a byte is sent
	head -c 1000 /dev/urandom >origin/env.tar
	run -1 hidden vine-spread -q -s "$URL" -c c1 -N n1 "$id"
	assert_output --partial "its origin '$BATS_TEST_TMPDIR/origin/env.tar' is 1000 bytes, not the 400000 registered: it changed since"
	[ ! -e "c1/objects/$id" ]
	rm origin/env.tar
	run -1 hidden vine-spread -q -s "$URL" -c c1 -N n1 "$id"
	assert_output --partial "cannot read its origin '$BATS_TEST_TMPDIR/origin/env.tar': No such file or directory"
}
