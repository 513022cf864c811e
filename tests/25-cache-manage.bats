#!/usr/bin/env bats
# vine-cache list and prune; the cache limit vine-seed honours; in use
# (a shared lock held by vine-seed -- COMMAND) is never removed.

bats_require_minimum_version 1.5.0
load helpers
load seed-helpers

# mk NAME SIZE: an archive NAME.tgz with one file of SIZE pseudo-random
# bytes; ID_NAME is its id
mk() {
	spec_archive "$1.tgz" "{\"entries\":[{\"path\":\"$1\",\"type\":\"file\",\"size\":$2}]}"
	printf -v "ID_$1" %s "$(sha256sum "$1.tgz" | cut -d' ' -f1)"
}

# hold ARCHIVE: seed it and keep it in use (in the background) until
# release; waits (bounded) until it is held
hold() {
	rm -f held stop
	vine-seed "$1" -- sh -c 'touch held; i=0; while [ ! -e stop ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done' &
	HOLDER=$!
	for _ in $(seq 300); do [ -e held ] && return 0; sleep 0.1; done
	return 1
}

release() {
	touch stop
	wait "$HOLDER"
}

# age ID DAYS: its last use DAYS ago
age() {
	touch -d "$2 days ago" "$VINE_CACHE/locks/$1"
}

@test "vine-cache list: ids, archive and environment bytes, last use, in use or idle" {
	mk a 3000
	mk b 5000
	vine-seed a.tgz >/dev/null
	vine-seed b.tgz >/dev/null
	run -0 vine-cache list
	assert_line -n 0 --regexp '^ID +ARCHIVE +ENV +LAST-USE +STATE$'
	assert_line --regexp "^$ID_a +$(stat -c %s a.tgz) +3000 +[0-9T:-]+Z +idle\$"
	assert_line --regexp "^$ID_b +$(stat -c %s b.tgz) +5000 +[0-9T:-]+Z +idle\$"
	[ "${#lines[@]}" -eq 3 ]
	hold a.tgz
	run -0 vine-cache list
	assert_line --regexp "^$ID_a .* in-use\$"
	assert_line --regexp "^$ID_b .* idle\$"
	release
	# least recently used first
	age "$ID_b" 3
	run -0 vine-cache list
	assert_line -n 1 --regexp "^$ID_b "
}

@test "vine-cache prune --older-than removes what was not used since, never what is in use" {
	mk a 1000
	mk b 1000
	mk c 1000
	for x in a b c; do vine-seed $x.tgz >/dev/null; done
	age "$ID_a" 10
	age "$ID_b" 10
	hold b.tgz
	age "$ID_b" 10
	run -0 vine-cache prune -n --older-than 7d
	assert_output "$ID_a $(( $(stat -c %s a.tgz) + 1000 ))"
	[ -e "$VINE_CACHE/objects/$ID_a" ]
	run -0 vine-cache prune --older-than 7d
	assert_output "$ID_a $(( $(stat -c %s a.tgz) + 1000 ))"
	[ ! -e "$VINE_CACHE/objects/$ID_a" ] && [ ! -e "$VINE_CACHE/env/${ID_a:0:12}" ]
	[ -e "$VINE_CACHE/env/${ID_b:0:12}/b" ] && [ -e "$VINE_CACHE/env/${ID_c:0:12}/c" ]
	release
	run -0 vine-cache prune --older-than 7d
	assert_output "$ID_b $(( $(stat -c %s b.tgz) + 1000 ))"
	assert_no_debris
	# and seeding it again works
	run -0 vine-seed a.tgz
	[ -e "$output/a" ]
}

@test "vine-cache prune --max-size removes least recently used first, and fails if in use keeps it over" {
	mk a 20000
	mk b 20000
	mk c 20000
	for x in a b c; do vine-seed $x.tgz >/dev/null; done
	age "$ID_a" 2
	age "$ID_c" 3
	run -0 vine-cache prune --max-size 85KiB
	assert_output "$ID_c $(( $(stat -c %s c.tgz) + 20000 ))"
	hold a.tgz
	run -1 vine-cache prune --max-size 1KiB
	assert_line "$ID_b $(( $(stat -c %s b.tgz) + 20000 ))"
	assert_line --regexp "^vine-cache: '.*' still holds [0-9]+ bytes, more than 1024: the rest is in use\$"
	[ -e "$VINE_CACHE/env/${ID_a:0:12}/a" ]
	release
}

@test "vine-seed -L and VINE_CACHE_LIMIT evict least recently used environments no one holds" {
	mk a 30000
	mk b 30000
	mk c 30000
	vine-seed a.tgz >/dev/null
	vine-seed b.tgz >/dev/null
	age "$ID_a" 1
	hold a.tgz
	age "$ID_a" 5
	# a is older but in use: b goes
	VINE_CACHE_LIMIT=80KiB run -0 vine-seed c.tgz
	run -0 vine-cache list
	refute_output --partial "$ID_b"
	assert_output --partial "$ID_a"
	assert_output --partial "$ID_c"
	release
	run -0 vine-seed -L 40KiB b.tgz
	run -0 vine-cache list
	refute_output --partial "$ID_a"
	refute_output --partial "$ID_c"
	assert_output --partial "$ID_b"
	run -2 vine-seed -L lots a.tgz
	assert_line --partial "vine-seed: -L: 'lots' is not a size"
	VINE_CACHE_LIMIT=x run -2 vine-seed a.tgz
	assert_line --partial "VINE_CACHE_LIMIT: 'x' is not a size"
	run -2 vine-worker -L 1Q
	assert_line --partial "-L: '1Q' is not a size"
}

@test "vine-seed -d drops the archive once the environment is ready" {
	mk a 1000
	run -0 vine-seed -d a.tgz
	env=$output
	[ -e "$env/a" ]
	[ -z "$(ls -A "$VINE_CACHE/objects")" ]
	run -0 vine-cache list
	assert_line --regexp "^$ID_a +- +1000 "
	run -0 vine-seed a.tgz
	assert_output "$env"
}

@test "vine-cache: usage" {
	run -0 vine-cache -h
	assert_output --partial "usage: vine-cache"
	run -2 vine-cache
	run -2 vine-cache frob
	assert_line "vine-cache: 'frob' is not a command (list, prune)"
	run -2 vine-cache prune
	assert_line --partial "prune: say what to remove"
	run -2 vine-cache prune --max-size big
	run -2 vine-cache prune --older-than 3y
	run -2 vine-cache list --older-than 1d
}

# worker_env CACHE [OPTION...]: run one task in a.tgz's environment on a
# worker with cache CACHE (local state, node named after CACHE)
worker_env() {
	local cache=$1
	shift
	echo 'cat "$VINE_ENV/a" | wc -c' | vine-submit -e a.tgz >/dev/null
	run -0 vine-worker -c "$PWD/$cache" -N "$cache" -i 0 "$@"
	run -0 vine-collect -o "out-$cache"
	assert_equal "$(tr -d ' ' <"out-$cache/$(ls "out-$cache" | sort -n | tail -1)/stdout")" 1000
}

@test "vine-worker --no-serve drops the archive once the environment is ready; a serving one keeps it" {
	mk a 1000
	worker_env quiet --no-serve
	[ -e "quiet/env/${ID_a:0:12}/a" ]
	[ ! -e "quiet/objects/$ID_a" ]
	run -0 ls -A quiet/objects quiet/partial
	refute_output --partial "$ID_a"
	worker_env none -l none
	[ -e "none/env/${ID_a:0:12}/a" ] && [ ! -e "none/objects/$ID_a" ]
	# serving (the default): peers are sent to it, so it keeps it
	worker_env served
	[ -e "served/env/${ID_a:0:12}/a" ]
	cmp a.tgz "served/objects/$ID_a"
	# and the state holds the replicas that are there
	run -0 vine-status --json
	run -0 python3 -c 'import json, sys; print([r["node"] for o in json.load(sys.stdin)["objects"] for r in o["replicas"] if r["complete"]])' <<<"$output"
	assert_output "['served']"
}

@test "an archive is kept while another process serves the cache (vine-worker --no-serve, vine-seed -d)" {
	spread_setup
	mk a 1000
	spread_serve S "$PWD/shared" 127.0.0.1
	worker_env shared --no-serve
	cmp a.tgz "shared/objects/$ID_a"
	run -0 vine-seed -c "$PWD/shared" -d -v a.tgz
	cmp a.tgz "shared/objects/$ID_a"
	kill "$S_pid"
	wait "$S_pid" || true
	# nobody serves it now
	run -0 vine-seed -c "$PWD/shared" -d a.tgz
	[ ! -e "shared/objects/$ID_a" ]
}

teardown() {
	spread_stop_all
}
