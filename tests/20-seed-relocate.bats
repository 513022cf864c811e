#!/usr/bin/env bats
# vine-seed: relocation as the manifest directs: text and binary files,
# rpaths, embedded strings, the too-long-prefix error, long shebangs.

bats_require_minimum_version 1.5.0
load helpers
load seed-helpers

# A conda-style prefix, longer than any cache path the tests use: a program
# linked with -rpath $PREFIX/lib against $PREFIX/lib/libtiny.so, opening the
# compiled-in "$PREFIX/share/data.txt", and a script naming the prefix.
conda_prefix() {
	PREFIX=$BATS_TEST_TMPDIR/build/conda/envs/a-rather-long-environment-name-to-leave-room-for-relocation
	mkdir -p "$PREFIX"/{bin,lib,share,conda-meta}
	echo '{}' >"$PREFIX/conda-meta/history"
	echo "data from the prefix" >"$PREFIX/share/data.txt"
	cat >tiny.c <<-'EOF'
	int tiny(void) { return 42; }
	EOF
	cat >prog.c <<-'EOF'
	#include <stdio.h>
	int tiny(void);
	int main(void)
	{
		char line[256];
		FILE *f = fopen(DATA, "r");
		if (!f || !fgets(line, sizeof(line), f)) { perror(DATA); return 1; }
		printf("%s%d\n", line, tiny());
		return 0;
	}
	EOF
	cc -shared -fPIC -o "$PREFIX/lib/libtiny.so" tiny.c
	cc -DDATA="\"$PREFIX/share/data.txt\"" -o "$PREFIX/bin/prog" prog.c \
		-L"$PREFIX/lib" -ltiny -Wl,-rpath,"$PREFIX/lib"
	printf '#!/bin/sh\ncat "%s/share/data.txt"\n' "$PREFIX" >"$PREFIX/bin/show"
	chmod 555 "$PREFIX/bin/show"
	touch -d '2020-01-01 00:00:00' "$PREFIX/bin/show" "$PREFIX/bin/prog"
	mkvarchive -o conda.tgz "$PREFIX"
	rm -rf "$BATS_TEST_TMPDIR/build"
}

@test "relocate: a compiled program with an rpath and an embedded path" {
	conda_prefix
	tar xzf conda.tgz -O .vine/manifest.json | python3 -c 'import json, sys
files = {f["path"]: f["type"] for f in json.load(sys.stdin)["files"]}
assert files == {"bin/prog": "binary", "bin/show": "text"}, files'
	run -0 vine-seed -c c conda.tgz
	env=$output
	run -0 "$env/bin/prog"
	assert_output "data from the prefix
42"
	run -0 "$env/bin/show"
	assert_output "data from the prefix"
	# the run path under the prefix became relative to the program
	readelf -d "$env/bin/prog" | grep -q 'R.*PATH.*\[\$ORIGIN/\.\./lib\]'

	! grep -q "$BATS_TEST_TMPDIR/build" "$env/bin/prog" "$env/bin/show"
	# modes and mtimes survive the rewrite
	[ "$(stat -c '%a %Y' "$env/bin/show")" = "555 $(date -d '2020-01-01 00:00:00' +%s)" ]
	[ "$(stat -c '%Y' "$env/bin/prog")" = "$(date -d '2020-01-01 00:00:00' +%s)" ]
	# and it runs as a command, with CONDA_PREFIX set
	run -0 vine-seed -c c conda.tgz -- sh -c 'prog && echo "$CONDA_PREFIX ${VIRTUAL_ENV-none}"'
	assert_line "$env none"
}

@test "relocate: a new prefix longer than the packed one fails clearly" {
	conda_prefix
	long=$BATS_TEST_TMPDIR/a-cache-path-that-is-far-too-long-for-the-binary-strings-packed-in-this-archive
	run -1 vine-seed -c "$long" conda.tgz
	id=$(sha256sum conda.tgz | cut -d' ' -f1)
	new="$long/env/${id:0:12}"
	old="$BATS_TEST_TMPDIR/build/conda/envs/a-rather-long-environment-name-to-leave-room-for-relocation"
	assert_output "vine-seed: cannot relocate 'bin/prog': new prefix '$new' (${#new} bytes) is longer than its strings can hold (${#old} bytes; packed prefix '$old', ${#old} bytes); use a shorter cache path (-c)"
	assert_nothing_ready "$long"
	assert_no_debris "$long"
	run -0 vine-seed -c short conda.tgz
}

@test "relocate: a shebang too long for the kernel gets pip's trampoline" {
	fixture_venv "$BATS_TEST_TMPDIR/v"
	mkdir -p "$BATS_TEST_TMPDIR/v/lib/tool"
	printf '#!/bin/sh\necho "hello from $0"\n' >"$BATS_TEST_TMPDIR/v/bin/hello"
	printf '#!%s/bin/hello --flag\n' "$BATS_TEST_TMPDIR/v" >"$BATS_TEST_TMPDIR/v/bin/greet"
	chmod 755 "$BATS_TEST_TMPDIR/v/bin/hello" "$BATS_TEST_TMPDIR/v/bin/greet"
	mkvarchive -o venv.tgz "$BATS_TEST_TMPDIR/v"
	rm -rf "$BATS_TEST_TMPDIR/v"
	long=$BATS_TEST_TMPDIR/a-cache-directory-with-a-very-long-name/so-that-the-shebang-lines/grow-past-127-bytes
	run -0 vine-seed -c "$long" venv.tgz
	env=$output
	[ "$(head -1 "$env/bin/pip")" = "#!/bin/sh" ]
	[ "$(sed -n 2p "$env/bin/pip")" = "'''exec' $env/bin/python3 \"\$0\" \"\$@\"" ]
	run -0 "$env/bin/pip" --version
	assert_output --partial "from $env/lib/python3"
	[ "$(head -1 "$env/bin/greet")" = "#!/usr/bin/env -S hello --flag" ]
	run -0 vine-seed -c "$long" venv.tgz -- greet
	assert_output --partial "hello from $env/bin/hello"
}

@test "relocate: text files of any length, binary files NUL-padded in place" {
	P=$BATS_TEST_TMPDIR/p/original-prefix-of-some-length
	mkdir -p "$P"
	printf 'a %s b %s/x\n' "$P" "$P" >"$P/text"
	printf 'head\0%s/lib:%s/lib64\0tail %s\0end' "$P" "$P" "$P" >"$P/bin.dat"
	ln "$P/text" "$P/text-link"
	mkvarchive -o a.tgz "$P"
	run -0 vine-seed -c c a.tgz
	env=$output
	[ "$(cat "$env/text")" = "a $env b $env/x" ]
	[ "$(stat -c %h "$env/text")" = 2 ] && cmp "$env/text" "$env/text-link"
	[ "$(stat -c %s "$env/bin.dat")" = "$(printf 'head\0%s/lib:%s/lib64\0tail %s\0end' "$P" "$P" "$P" | wc -c)" ]
	python3 - "$env/bin.dat" "$env" "$P" <<-'EOF'
	import sys
	data, env, old = open(sys.argv[1], "rb").read(), sys.argv[2].encode(), sys.argv[3].encode()
	parts = data.split(b"\0")
	assert parts[0] == b"head", parts
	assert parts[1] == env + b"/lib:" + env + b"/lib64", parts
	pad = 2 * (len(old) - len(env))
	assert parts[2:2 + pad] == [b""] * pad, parts
	assert parts[2 + pad] == b"tail " + env, parts
	assert data.endswith(b"\0end")
	EOF
}
