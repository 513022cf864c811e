#!/usr/bin/env bats
# Relocation into the default cache: run paths made $ORIGIN-relative,
# strings grown into conda-style NUL padding, the longest prefix reported
# by vine-pack, recorded in the manifest and checked by vine-seed before
# it unpacks anything.

bats_require_minimum_version 1.5.0
load helpers
load seed-helpers

setup() {
	vine_setup
	# the default cache, under a TMPDIR longer than the prefixes packed here
	unset VINE_CACHE
	export TMPDIR=$BATS_TEST_TMPDIR/node-local-scratch USER=user
	mkdir -p "$TMPDIR"
	CACHE=$TMPDIR/vine-user
}

teardown() {
	[ -z "${SHORT:-}" ] || rm -rf "$SHORT"
}

# short_prefix LEN: a fresh directory whose path is LEN bytes (>= 20)
short_prefix() {
	SHORT=$(mktemp -d /tmp/vr.XXXXXX)
	local name
	name=$(printf '%*s' $(( $1 - ${#SHORT} - 1 )) '' | tr ' ' p)
	P=$SHORT/$name
	mkdir -p "$P"
	[ ${#P} -eq "$1" ]
}

manifest_key() {
	manifest "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin).get(sys.argv[1]))' "$2"
}

# build_rpath TAGS: in $P, bin/prog linked to lib/libouter.so, which needs
# lib/inner/libinner.so; each finds the next by a run path under $P
build_rpath() {
	mkdir -p "$P/bin" "$P/lib/inner"
	echo 'int inner(void) { return 40; }' >inner.c
	echo 'int inner(void); int outer(void) { return inner() + 2; }' >outer.c
	printf '#include <stdio.h>\nint outer(void);\nint main(void) { printf("%%d\\n", outer()); return 0; }\n' >prog.c
	cc -shared -fPIC -o "$P/lib/inner/libinner.so" inner.c
	cc -shared -fPIC -o "$P/lib/libouter.so" outer.c -L"$P/lib/inner" -linner \
		-Wl,"$1" -Wl,-rpath,"$P/lib/inner"
	cc -o "$P/bin/prog" prog.c -L"$P/lib" -louter -Wl,"$1" -Wl,-rpath,"$P/lib"
}

@test "room: RUNPATH under a 28-byte prefix runs from the default cache" {
	short_prefix 28
	build_rpath --enable-new-dtags
	readelf -d "$P/bin/prog" | grep -q RUNPATH
	run -0 vine-pack -q -o a.tgz "$P"
	refute_output --partial "relocates into"
	[ "$(manifest_key a.tgz max_prefix)" = None ]
	rm -rf "$SHORT"
	run -0 vine-seed a.tgz
	env=$output
	[[ $env == "$CACHE/env/"* ]] && [ ${#env} -gt 28 ]
	run -0 "$env/bin/prog"
	assert_output 42
	readelf -d "$env/bin/prog" | grep -q 'RUNPATH.*\[\$ORIGIN/\.\./lib\]'
	readelf -d "$env/lib/libouter.so" | grep -q 'RUNPATH.*\[\$ORIGIN/inner\]'
}

@test "room: RPATH under a 28-byte prefix runs from the default cache" {
	short_prefix 28
	build_rpath --disable-new-dtags
	readelf -d "$P/bin/prog" | grep -q '(RPATH)'
	run -0 vine-pack -q -o a.tgz "$P"
	refute_output --partial "relocates into"
	rm -rf "$SHORT"
	run -0 vine-seed a.tgz -- prog
	assert_output 42
	env=$(vine-seed a.tgz)
	readelf -d "$env/bin/prog" | grep -q 'RPATH.*\[\$ORIGIN/\.\./lib\]'
}

@test "room: a conda-style padded string grows into a path longer than its prefix" {
	P=$BATS_TEST_TMPDIR/c/env
	mkdir -p "$P/bin" "$P/share"
	echo "data from the prefix" >"$P/share/data.txt"
	# as conda-build leaves it: the path in a buffer sized for a 255-byte placeholder
	cat >prog.c <<-'EOF2'
	#include <stdio.h>
	const char data[256] = DATA;
	int main(void)
	{
		char line[256];
		FILE *f = fopen(data, "r");
		if (!f || !fgets(line, sizeof(line), f)) { perror(data); return 1; }
		fputs(line, stdout);
		return 0;
	}
	EOF2
	cc -DDATA="\"$P/share/data.txt\"" -o "$P/bin/prog" prog.c
	run -0 vine-pack -q -o a.tgz "$P"
	# the string and its padding hold 256 bytes, the last NUL kept as its end
	room=$(( 255 - ${#P} - 15 + ${#P} ))
	assert_output --partial "'bin/prog' embeds the environment's path in a binary string: it relocates into environment paths of at most $room bytes"
	[ "$(manifest_key a.tgz max_prefix)" = "$room" ]
	[ "$(manifest_key a.tgz max_prefix_file)" = bin/prog ]
	rm -rf "$BATS_TEST_TMPDIR/c"
	long=$BATS_TEST_TMPDIR/a-cache-path-much-longer-than-the-prefix-the-program-was-built-in
	run -0 vine-seed -c "$long" a.tgz
	env=$output
	[ ${#env} -gt ${#P} ]
	run -0 "$env/bin/prog"
	assert_output "data from the prefix"
}

@test "room: a string that cannot fit is reported by vine-pack and refused by vine-seed before unpacking" {
	P=$BATS_TEST_TMPDIR/b/env
	mkdir -p "$P/bin" "$P/share"
	echo data >"$P/share/data.txt"
	printf 'const char *data = DATA;\nint main(void) { return data[0] != 47; }\n' >prog.c
	cc -DDATA="\"$P/share/data.txt\"" -o "$P/bin/prog" prog.c
	run -0 vine-pack -q -o a.tgz "$P"
	n=${#P}
	k=$(( n - 17 ))
	assert_output --partial "vine-pack: warning: 'bin/prog' embeds the environment's path in a binary string: it relocates into environment paths of at most $n bytes, and the default cache here ('$CACHE') gives $(( ${#CACHE} + 17 )); seed it with a cache path of at most $k bytes (-c or VINE_CACHE)"
	assert_line --regexp '^[0-9a-f]{64}$'
	run -1 vine-seed -v a.tgz
	assert_output "vine-seed: cannot seed 'a.tgz': its files embed their path where at most $n bytes fit ('bin/prog'), and environments in cache '$CACHE' take $(( ${#CACHE} + 17 )); use a cache path of at most $k bytes (-c or VINE_CACHE)"
	refute_output --partial unpacking
	assert_nothing_ready "$CACHE"
	assert_no_debris "$CACHE"
	[ -z "$(ls -A "$CACHE/objects")" ]
	# as the message says
	SHORT=$(mktemp -d /tmp/vc.XXXXXX)
	[ ${#SHORT} -le $k ]
	run -0 vine-seed -c "$SHORT" a.tgz -- prog
}

@test "room: a CPython-like shared build (program, libpython, text files) runs from the default cache" {
	short_prefix 28
	mkdir -p "$P/bin" "$P/lib/python3.11"
	# like CPython: the library finds its home from the executable, and the
	# build's prefix is written into text files (sysconfig data, scripts)
	# and keeps its compiled-in PREFIX as a fallback for when it does not
	cat >libpy.c <<-'EOF2'
	#include <libgen.h>
	#include <stdio.h>
	#include <string.h>
	#include <unistd.h>
	static const char prefix[] = PREFIX;
	int py_main(const char *script)
	{
		char exe[4096], path[8192], line[4096];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n < 0) return 2;
		exe[n] = '\0';
		char *home = dirname(dirname(exe));
		snprintf(path, sizeof(path), "%s/lib/python3.11/%s", home, script);
		FILE *f = fopen(path, "r");
		if (!f) snprintf(path, sizeof(path), "%s/lib/python3.11/%s", prefix, script), f = fopen(path, "r");
		if (!f) { perror(path); return 1; }
		while (fgets(line, sizeof(line), f)) fputs(line, stdout);
		return 0;
	}
	EOF2
	printf 'int py_main(const char *);\nint main(void) { return py_main("sysconfigdata.py"); }\n' >python.c
	cc -shared -fPIC -DPREFIX="\"$P\"" -o "$P/lib/libpython3.11.so.1.0" libpy.c
	ln -s libpython3.11.so.1.0 "$P/lib/libpython3.11.so"
	cc -o "$P/bin/python3.11" python.c -L"$P/lib" -lpython3.11 -Wl,-rpath,"$P/lib"
	ln -s python3.11 "$P/bin/python3"
	printf "build_time_vars = {'prefix': '%s', 'LIBDIR': '%s/lib'}\n" "$P" "$P" >"$P/lib/python3.11/sysconfigdata.py"
	printf '#!%s/bin/python3.11\n' "$P" >"$P/bin/idle3"
	# under any other name, the same string bounds the room
	mv "$P/lib/libpython3.11.so.1.0" "$P/lib/libpyth0n.so"
	run -0 vine-pack -q -o other.tgz "$P"
	assert_output --partial "'lib/libpyth0n.so' embeds the environment's path in a binary string: it relocates into environment paths of at most 28 bytes"
	mv "$P/lib/libpyth0n.so" "$P/lib/libpython3.11.so.1.0"
	run -0 vine-pack -q -o py.tgz "$P"
	refute_output --partial "relocates into"
	rm -rf "$SHORT"
	run -0 vine-seed py.tgz -- python3
	env=$(vine-seed py.tgz)
	assert_output "build_time_vars = {'prefix': '$env', 'LIBDIR': '$env/lib'}"
	[ "$(head -1 "$env/bin/idle3")" = "#!$env/bin/python3.11" ]
	# the compiled-in prefix could not take the longer path: left as it was
	[ ${#env} -gt ${#P} ]
	grep -qF "$P" "$env/lib/libpython3.11.so.1.0"
}

# A real CPython build as pyenv makes it (shared libpython, its prefix under
# the home directory compiled in), when this machine has one: its standard
# library and extension modules (not site-packages), packed where it is
# and run from the default cache, whose environment paths are longer.
@test "room: a pyenv CPython runs from the default cache (skipped without a pyenv build)" {
	local d py=
	for d in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.*; do
		[ -d "$d" ] || continue
		for f in "$d"/lib/libpython3.*.so.1.0; do
			[ -e "$f" ] || continue
			v=${f##*/libpython}
			v=${v%%.so.1.0}
			v=${v%m}
			[ -x "$d/bin/python$v" ] && py=$d && break 2
		done
	done
	[ -n "$py" ] || skip "no pyenv CPython with a shared libpython under ${PYENV_ROOT:-$HOME/.pyenv}/versions"
	run -0 vine-pack -q -o py.tgz -x site-packages -x test -x 'config-3*' -x __pycache__ -x idlelib \
		-x tkinter -x ensurepip -x lib2to3 -x include -x share -x '*.a' "$py"
	refute_output --partial "relocates into"
	run -0 vine-seed py.tgz
	env=$output
	[ ${#env} -gt ${#py} ]
	run -0 "$env/bin/python$v" -c 'import sys, json, math, sysconfig; print(sys.prefix); print(sys.exec_prefix); print(sysconfig.get_config_var("prefix"))'
	assert_output "$env"$'\n'"$env"$'\n'"$env"
	run -0 ldd "$env/bin/python$v"
	assert_output --partial "libpython$v"
	assert_output --partial "$env/"
}
