#!/usr/bin/env bats
# vine-seed: options, a real venv, the cache, warm seeds, -- COMMAND.

bats_require_minimum_version 1.5.0
load helpers
load seed-helpers

# a venv packed from a path that is then deleted
packed_venv() {
	fixture_venv "$BATS_TEST_TMPDIR/src/venv"
	mkvarchive -o venv.tgz --member-size 500000 "$BATS_TEST_TMPDIR/src/venv"
	rm -rf "$BATS_TEST_TMPDIR/src"
}

@test "vine-seed: -h prints usage and exits 0" {
	run -0 vine-seed -h
	assert_output --partial "usage: vine-seed"
}

@test "vine-seed: bad usage exits 2" {
	run -2 vine-seed
	assert_output --partial "usage:"
	run -2 vine-seed -Z x.tgz
	run -2 vine-seed -j 0 x.tgz
	run -2 vine-seed -j many x.tgz
	run -2 vine-seed -i 1234 x.tgz
	assert_output --partial "not an object id"
	run -2 vine-seed x.tgz echo hi
	run -2 vine-seed x.tgz --
	[ ! -e cache ]
}

@test "vine-seed: a missing archive is a clear error" {
	run -1 vine-seed nosuch.tgz
	assert_output "vine-seed: cannot open 'nosuch.tgz': No such file or directory"
	run -1 vine-seed .
	assert_output --partial "is not a regular file"
}

@test "vine-seed: a venv packed elsewhere runs from the cache, relocated" {
	packed_venv
	run -0 vine-seed venv.tgz
	env=$output
	id=$(sha256sum venv.tgz | cut -d' ' -f1)
	[ "$env" = "$(realpath cache)/env/${id:0:12}" ]
	[ "$(cat "$env/.vine/id")" = "$id" ]
	run -0 "$env/bin/python3" -c 'import sys; print(sys.prefix)'
	assert_output "$env"
	run -0 "$env/bin/pip" --version
	assert_output --partial "from $env/lib/python3."
	[ "$(head -1 "$env/bin/pip")" = "#!$env/bin/python3" ]
	# the verified object is kept, by id
	cmp venv.tgz "cache/objects/$id"
	[ "$(stat -c %a cache cache/env cache/objects)" = "700
700
700" ]
	assert_no_debris
}

@test "vine-seed: file modes and mtimes are kept" {
	mkdir -p src/d/ro
	echo x >src/d/exec && chmod 755 src/d/exec
	echo y >src/d/private && chmod 600 src/d/private
	echo z >src/d/ro/file && chmod 444 src/d/ro/file
	chmod 555 src/d/ro
	touch -d '2001-02-03 04:05:06.123456789' src/d/exec src/d/ro/file src/d/ro src/d
	mkvarchive -o a.tgz src/d
	run -0 vine-seed a.tgz
	env=$output
	[ "$(stat -c '%a %y' "$env/exec" "$env/private" "$env/ro/file" "$env/ro" | cut -d' ' -f1-3)" = \
	  "$(cd src/d && stat -c '%a %y' exec private ro/file ro | cut -d' ' -f1-3)" ]
	chmod 755 src/d/ro
}

@test "vine-seed: a second seed finds the environment ready without unpacking" {
	packed_venv
	run -0 vine-seed -v venv.tgz
	assert_output --partial "unpacking 'venv.tgz'"
	env=$(vine-seed venv.tgz)
	ino=$(stat -c %i "$env/bin/python3" "$env")
	run -0 vine-seed -v venv.tgz
	refute_output --partial "unpacking"
	assert_output "$env"
	[ "$(stat -c %i "$env/bin/python3" "$env")" = "$ino" ]
	# through another path to the same file too (one hash, then recorded)
	ln -s venv.tgz other.tgz
	run -0 vine-seed other.tgz
	assert_output "$env"
}

@test "vine-seed: a warm seed does not read the archive" {
	packed_venv
	env=$(vine-seed venv.tgz)
	# same size, mtime and ctime: only the record can tell the id, so a
	# warm seed never opens the archive (seen in the system calls, not timed)
	local reads=read,pread64,readv,preadv,mmap,sendfile,copy_file_range,splice
	# (LeakSanitizer cannot run under ptrace: off for the traced runs)
	export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
	run -0 strace -f -qq -y -e trace=$reads -o trace vine-seed venv.tgz
	assert_output "$env"
	# (the archive as a descriptor, "<.../venv.tgz>": ASan's runtime reads
	# /proc/self/cmdline, which names it too)
	run -1 grep -F 'venv.tgz>' trace
	# (the same trace of a cold seed does name it: the check can fail)
	run -0 strace -f -qq -y -e trace=$reads -o trace vine-seed -c cold venv.tgz
	grep -qF 'venv.tgz>' trace
	# rewritten with the same bytes (new times): hashed again, found ready, not unpacked
	cp venv.tgz copy.tgz && mv copy.tgz venv.tgz
	run -0 vine-seed -v venv.tgz
	assert_line --partial "hashing 'venv.tgz'"
	refute_output --partial "unpacking"
	assert_line "$env"
	run -0 vine-seed -v venv.tgz
	assert_output "$env"
	assert_no_debris
	# rewritten with other bytes of the same size: unpacked anew
	python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(20); b = f.read(1); f.seek(20); f.write(bytes([b[0] ^ 1]))' venv.tgz
	run -1 vine-seed -v venv.tgz
	assert_output --partial "hashing 'venv.tgz'"
	assert_output --partial "member 0 is corrupt"
	assert_no_debris
	[ ! -e "cache/objects/$(sha256sum venv.tgz | cut -d' ' -f1)" ]
}

@test "vine-seed: -i ID verifies the archive and finds a ready env without it" {
	packed_venv
	id=$(sha256sum venv.tgz | cut -d' ' -f1)
	run -0 vine-seed -i "$id" venv.tgz
	env=$output
	"$env/bin/python3" -c 'import sys; assert sys.prefix == sys.argv[1]' "$env"
	# the record written with -i serves a later seed without it
	run -0 vine-seed -v venv.tgz
	refute_output --partial unpacking
	assert_output "$env"
	mv venv.tgz moved.tgz
	run -0 vine-seed -i "$id" venv.tgz
	assert_output "$env"
}

@test "vine-seed: -i with the wrong id keeps nothing" {
	packed_venv
	bad=$(printf '%064d' 0)
	run -1 vine-seed -i "$bad" venv.tgz
	assert_output --partial "is not object $bad: its SHA-256 is $(sha256sum venv.tgz | cut -d' ' -f1)"
	assert_no_debris
	assert_nothing_ready
	[ -z "$(ls -A cache/objects)" ]
	run -0 vine-seed venv.tgz
}

@test "vine-seed: an object already in the cache is unpacked without the archive" {
	packed_venv
	id=$(sha256sum venv.tgz | cut -d' ' -f1)
	env=$(vine-seed venv.tgz)
	rm -rf "$env"
	rm venv.tgz
	run -0 vine-seed -v -i "$id" venv.tgz
	assert_output --partial unpacking
	assert_line "$env"
	[ -x "$env/bin/python3" ]
}

@test "vine-seed: -c and VINE_CACHE choose the cache, created mode 0700" {
	spec_archive a.tgz '{"entries":[{"path":"f","type":"file","data":"hi"}]}'
	run -0 vine-seed -c c1 a.tgz
	assert_output --regexp "^$(realpath c1)/env/"
	VINE_CACHE=$BATS_TEST_TMPDIR/c2 run -0 vine-seed a.tgz
	assert_output --regexp "^$BATS_TEST_TMPDIR/c2/env/"
	[ "$(stat -c %a c1 c2)" = "700
700" ]
	unset VINE_CACHE
	TMPDIR=$BATS_TEST_TMPDIR USER=someone run -0 vine-seed a.tgz
	assert_output --regexp "^$BATS_TEST_TMPDIR/vine-someone/env/"
}

@test "vine-seed: -- COMMAND runs in the activated environment" {
	packed_venv
	env=$(vine-seed venv.tgz)
	run -0 vine-seed venv.tgz -- sh -c 'echo "$PATH"; echo "$VIRTUAL_ENV"; echo "$VINE_ENV"; echo "${CONDA_PREFIX-unset}"; command -v python3'
	assert_line -n 0 --regexp "^$env/bin:"
	assert_line -n 1 "$env"
	assert_line -n 2 "$env"
	assert_line -n 3 "unset"
	assert_line -n 4 "$env/bin/python3"
	run -0 vine-seed venv.tgz -- python3 -c 'import sys; print(sys.prefix)'
	assert_output "$env"
	run -0 vine-seed venv.tgz -- pip --version
	assert_output --partial "from $env/lib/python3"
}

@test "vine-seed: -- COMMAND exit statuses" {
	spec_archive a.tgz '{"entries":[{"path":"bin/notexec","type":"file","data":"x","mode":420},
		{"path":"conda-meta/history","type":"file","data":""}]}'
	run -7 vine-seed a.tgz -- sh -c 'exit 7'
	run -0 vine-seed a.tgz -- true
	assert_output ""
	run -127 vine-seed a.tgz -- no-such-command-here
	assert_output --partial "cannot run 'no-such-command-here'"
	run -126 vine-seed a.tgz -- notexec
	assert_output --partial "cannot run 'notexec': Permission denied"
	# a conda-style prefix gets CONDA_PREFIX, and a stale VIRTUAL_ENV goes
	VIRTUAL_ENV=/stale run -0 vine-seed a.tgz -- sh -c 'echo "$CONDA_PREFIX ${VIRTUAL_ENV-unset}"'
	env=$(vine-seed a.tgz)
	assert_output "$env unset"
	# a killed command: the status the shell would give
	run -137 vine-seed a.tgz -- sh -c 'kill -9 $$'
}

@test "vine-seed: foreign archives (tar czf, pigz) unpack sequentially" {
	mkdir -p src/env/bin src/env/lib
	echo hello >src/env/lib/data
	ln -s ../lib/data src/env/bin/link
	printf '#!/bin/sh\necho run\n' >src/env/bin/run && chmod 755 src/env/bin/run
	tar czf plain.tgz -C src/env .
	run -0 vine-seed -v plain.tgz
	assert_output --partial "(not in vine format)"
	env=$(vine-seed plain.tgz)
	[ "$(cat "$env/bin/link")" = hello ]
	[ "$("$env/bin/run")" = run ]
	[ "$(cat "$env/.vine/id")" = "$(sha256sum plain.tgz | cut -d' ' -f1)" ]
	tar -I pigz -cf pigz.tgz -C src env
	run -0 vine-seed pigz.tgz
	[ "$(cat "$output/env/lib/data")" = hello ]
	# a multi-member gzip without an index
	mkvarchive --no-index --member-size 1000 -o noidx.tgz src/env
	run -0 vine-seed noidx.tgz
	[ "$(cat "$output/lib/data")" = hello ]
	assert_no_debris
}

@test "vine-seed: a foreign archive whose manifest does not match it is refused" {
	# an unindexed archive is taken at its manifest's word only when the
	# manifest is last and counts the entries before it (vine(7), LIMITS);
	# a re-tar of an unpacked environment adds entries ('./', '.vine/')
	mkdir -p src
	fixture_venv "$BATS_TEST_TMPDIR/src/venv"
	mkvarchive -o vine.tgz src/venv
	mkdir x && tar xzf vine.tgz -C x
	rm -rf src
	tar czf foreign.tgz -C x .
	run -1 vine-seed foreign.tgz
	assert_output --partial "'foreign.tgz' is damaged"
	assert_output --partial "must be last"
	assert_no_debris
	[ -z "$(ls "$VINE_CACHE/env" 2>/dev/null)" ]
}

@test "vine-seed: silent in pipes, a progress meter on a terminal" {
	command -v script >/dev/null || skip "no script(1)"
	mkdir -p src/d
	head -c 3000000 /dev/urandom >src/d/big
	mkvarchive -o a.tgz --level 1 src/d
	run -0 vine-seed -c c1 a.tgz
	assert_output "$(realpath c1)/env/$(sha256sum a.tgz | cut -c1-12)"
	script -qec "vine-seed -c c2 a.tgz" /dev/null >tty.out
	grep -q 'unpacking: ' tty.out
	script -qec "vine-seed -q -c c3 a.tgz" /dev/null >tty.out
	! grep -q 'unpacking' tty.out
}
