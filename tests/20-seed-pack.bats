#!/usr/bin/env bats
# vine-seed with archives made by vine-pack: the two sides of the format,
# written by different hands, agree.  (Skipped until vine-pack is built.)

bats_require_minimum_version 1.5.0
load helpers
load seed-helpers

setup() {
	vine_setup
	command -v vine-pack >/dev/null || skip "vine-pack is not built"
}

manifest_of() {
	tar xzf "$1" -O .vine/manifest.json | python3 -c 'import json, sys
m = json.load(sys.stdin); print(m["prefix"], m["entries"], sorted((f["path"], f["type"]) for f in m["files"]))'
}

@test "pack: a venv packed by vine-pack seeds and runs relocated" {
	fixture_venv "$BATS_TEST_TMPDIR/src/venv"
	run -0 vine-pack -o venv.tgz "$BATS_TEST_TMPDIR/src/venv"
	id=$(tail -1 <<<"$output")
	[ "$id" = "$(sha256sum venv.tgz | cut -d' ' -f1)" ]
	# mkvarchive.py reads the same tree the same way
	mkvarchive -o mine.tgz "$BATS_TEST_TMPDIR/src/venv"
	[ "$(manifest_of venv.tgz)" = "$(manifest_of mine.tgz)" ]
	[ "$(tar tzf venv.tgz)" = "$(tar tzf mine.tgz)" ]
	rm -rf src
	run -0 vine-seed -v -i "$id" venv.tgz
	assert_output --partial "unpacking 'venv.tgz' with"
	refute_output --partial "not in vine format"
	env=$(tail -1 <<<"$output")
	[ "$(cat "$env/.vine/id")" = "$id" ]
	run -0 "$env/bin/python3" -c 'import sys; print(sys.prefix)'
	assert_output "$env"
	run -0 "$env/bin/pip" --version
	assert_output --partial "from $env/lib/python3"
}

@test "pack: a compiled program packed by vine-pack relocates" {
	P=$BATS_TEST_TMPDIR/build/a-prefix-long-enough-for-the-cache-path-used-by-this-test-xxxxxxxxxx
	mkdir -p "$P/bin" "$P/lib" "$P/share"
	echo "data" >"$P/share/data.txt"
	echo 'int tiny(void) { return 7; }' >tiny.c
	printf '#include <stdio.h>\nint tiny(void);\nint main(void) { FILE *f = fopen(DATA, "r"); char b[64];\n if (!f || !fgets(b, sizeof b, f)) return 1; printf("%%s%%d\\n", b, tiny()); return 0; }\n' >prog.c
	cc -shared -fPIC -o "$P/lib/libtiny.so" tiny.c
	cc -DDATA="\"$P/share/data.txt\"" -o "$P/bin/prog" prog.c -L"$P/lib" -ltiny -Wl,-rpath,"$P/lib"
	run -0 vine-pack -j 2 -o c.tgz "$P"
	rm -rf build
	run -0 vine-seed -j 2 c.tgz
	run -0 "$output/bin/prog"
	assert_output "data
7"
}

@test "pack: 16 seeders of a vine-pack archive unpack once" {
	mkdir -p src/d
	for i in $(seq 1 200); do head -c 20000 /dev/urandom >src/d/f$i; done
	run -0 vine-pack -o a.tgz src/d
	pids=
	for i in $(seq 1 16); do vine-seed -v a.tgz >out.$i 2>err.$i & pids="$pids $!"; done
	wait $pids
	[ "$(cat err.* | grep -c unpacking)" -eq 1 ]
	diff -r src/d "$(cat out.1)" -x .vine
}
