# vine-pack: the manifest names the original prefix and every file that
# embeds it (text or binary, never .pyc); symlinks, special files and odd
# names are handled as the format says.

load helpers
bats_require_minimum_version 1.5.0

# listed ARCHIVE: the manifest's paths, sorted
listed() {
	manifest_files "$1" | cut -d' ' -f2- | LC_ALL=C sort
}

@test "vine-pack: a real venv: every file embedding the prefix is listed, no .pyc" {
	fixture_venv "$BATS_TEST_TMPDIR/venv"
	v=$(realpath "$BATS_TEST_TMPDIR/venv")
	# a .pyc compiled in place embeds the prefix too
	"$v/bin/python" -m compileall -q -f "$v/lib/python3.11/site-packages/pip/__init__.py"
	grep -qF "$v" "$v/lib/python3.11/site-packages/pip/__pycache__/__init__.cpython-311.pyc"
	run -0 vine-pack -o venv.tar.gz venv
	m=$(manifest venv.tar.gz)
	[ "$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["prefix"])' <<<"$m")" = "$v" ]
	manifest_files venv.tar.gz >files
	grep -qx 'text bin/pip' files
	grep -qx 'text bin/activate' files
	grep -qx 'text pyvenv.cfg' files
	! grep -q '\.py[co]$' files
	# exactly the files that contain the prefix, as grep sees them
	(cd "$v" && grep -rlF "$v" . | sed 's|^\./||' | grep -v '\.py[co]$' | LC_ALL=C sort) >want
	listed venv.tar.gz | diff - want
	# binary exactly when the file holds a NUL byte
	while read -r type path; do
		if grep -qaP '\x00' "$v/$path"; then [ "$type" = binary ]; else [ "$type" = text ]; fi
	done <files
	# entries: every tar entry before the manifest
	/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])' <<<"$m" >n
	[ "$(cat n)" -eq "$(($(tar -tzf venv.tar.gz | wc -l) - 1))" ]
	run -0 pack_check venv.tar.gz
}

@test "vine-pack: conda-style prefix: a program with an rpath and a data path is binary" {
	P=$BATS_TEST_TMPDIR/prefix
	mkdir -p "$P/bin" "$P/lib/pkgconfig" "$P/share"
	echo 'int foo(void) { return 42; }' >foo.c
	cc -shared -fPIC -o "$P/lib/libfoo.so" foo.c
	cat >main.c <<-EOF
	#include <stdio.h>
	int foo(void);
	static const char *data = "$P/share/data.txt";
	int main(void) { FILE *f = fopen(data, "r"); return f && foo() == 42 ? 0 : 1; }
	EOF
	cc -o "$P/bin/prog" main.c -L"$P/lib" -lfoo -Wl,-rpath,"$P/lib"
	echo hello >"$P/share/data.txt"
	printf '#!/bin/sh\nexec %s/bin/prog "$@"\n' "$P" >"$P/bin/run"
	chmod +x "$P/bin/run"
	printf 'prefix=%s\nlibdir=${prefix}/lib\n' "$P" >"$P/lib/pkgconfig/foo.pc"
	"$P/bin/run"
	run -0 vine-pack -o prefix.tar.gz prefix
	manifest_files prefix.tar.gz >files
	printf '%s\n' 'text bin/run' 'binary bin/prog' 'text lib/pkgconfig/foo.pc' | LC_ALL=C sort >want
	LC_ALL=C sort files | diff - want
	manifest prefix.tar.gz | grep -qF "\"prefix\": \"$(realpath "$P")\""
}

@test "vine-pack: a hard-linked file that embeds the prefix is listed once, by its data entry" {
	mkdir -p src/bin
	p=$(realpath src)
	echo "#!$p/bin/python" >src/bin/a
	ln src/bin/a src/bin/b
	run -0 vine-pack -o out.tar.gz src
	[ "$(listed out.tar.gz)" = bin/a ]
	tar -tvzf out.tar.gz | grep -q '^h.* bin/b link to bin/a$'
}

@test "vine-pack: symlinks: relative kept, absolute into the tree made relative, outside kept with a warning" {
	mkdir -p src/bin src/lib
	echo t >src/lib/target
	ln -s ../lib/target src/bin/rel
	ln -s "$PWD/src/lib/target" src/bin/abs
	ln -s "$PWD/src" src/bin/root
	ln -s "$PWD/src/lib" src/top
	ln -s /etc/hostname src/bin/etc
	ln -s ../../../elsewhere src/bin/up
	ln -s src alias
	ln -s "$PWD/alias/lib/target" src/bin/via-alias
	# packed through the alias: links naming either spelling are inside
	run --separate-stderr -0 vine-pack -o out.tar.gz alias
	mkdir x
	tar -C x -xzf out.tar.gz
	[ "$(readlink x/bin/rel)" = ../lib/target ]
	[ "$(readlink x/bin/abs)" = ../lib/target ]
	[ "$(readlink x/bin/root)" = .. ]
	[ "$(readlink x/top)" = lib ]
	[ "$(readlink x/bin/via-alias)" = ../lib/target ]
	[ "$(readlink x/bin/etc)" = /etc/hostname ]
	[ "$(readlink x/bin/up)" = ../../../elsewhere ]
	[ "$(cat x/bin/abs)" = t ]
	# named in one summary at the end
	[ "$stderr" = "vine-pack: warning: 'alias' is not self-contained; every node needs what 2 symlinks lead to: 'bin/etc' -> '/etc/hostname', 'bin/up' -> '../../../elsewhere'. To make it self-contained: copy what the links lead to into it (python -m venv --copies for a venv's interpreter)." ]
	manifest out.tar.gz | grep -qF "\"prefix\": \"$PWD/src\""
}

@test "vine-pack: sockets, fifos and devices are skipped with a warning, exit 0" {
	mkdir src
	echo keep >src/file
	mkfifo src/fifo
	/usr/bin/python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' src/sock
	if [ "$(id -u)" -eq 0 ]; then mknod src/null c 1 3; fi
	run --separate-stderr -0 vine-pack -o out.tar.gz src
	[[ "$stderr" == *"skipping fifo 'src/fifo'"* ]]
	[[ "$stderr" == *"skipping socket 'src/sock'"* ]]
	if [ "$(id -u)" -eq 0 ]; then [[ "$stderr" == *"skipping device 'src/null'"* ]]; fi
	[ "$(tar -tzf out.tar.gz)" = "$(printf 'file\n.vine/manifest.json')" ]
}

@test "vine-pack: a name that is not UTF-8 is packed with a warning and not listed" {
	mkdir src
	p=$(realpath src)
	echo "$p/x" >"src/bad-$(printf '\377').txt"
	echo "$p/y" >src/good.txt
	run --separate-stderr -0 vine-pack -o out.tar.gz src
	[[ "$stderr" == *"name is not valid UTF-8"* ]]
	[[ "$stderr" == *"will not be relocated"* ]]
	[ "$(listed out.tar.gz)" = good.txt ]
	mkdir x
	tar -C x -xzf out.tar.gz 2>/dev/null
	[ "$(cat "x/bad-$(printf '\377').txt")" = "$p/x" ]
}

@test "vine-pack: a .vine/manifest.json in the tree gives way to the new one" {
	make_tree src
	mkdir src/.vine
	echo '{"old": true}' >src/.vine/manifest.json
	echo other >src/.vine/other
	run --separate-stderr -0 vine-pack -o out.tar.gz src
	[[ "$stderr" == *"skipping 'src/.vine/manifest.json'"* ]]
	[ "$(tar -tzf out.tar.gz | grep -c '^\.vine/manifest\.json$')" -eq 1 ]
	tar -tzf out.tar.gz | grep -qx '.vine/other'
	manifest out.tar.gz | grep -q '"vine_manifest": 1'
}
