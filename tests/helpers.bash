# tests/helpers.bash - loaded by every bats file: `load helpers`.
#
# Each test runs in its own directory ($BATS_TEST_TMPDIR) with its own cache
# and state, and the programs under test first on PATH.

bats_load_library bats-support
bats_load_library bats-assert
bats_load_library bats-file

: "${VINE_BIN:?run the tests through make check or tests/run}"
export PATH="$VINE_BIN:$PATH"

vine_setup() {
	cd "$BATS_TEST_TMPDIR" || return 1
	export VINE_CACHE="$BATS_TEST_TMPDIR/cache"
	export VINE_STATE="$BATS_TEST_TMPDIR/vine.db"
	export VINE_NODE=testnode
	unset VINE_TASK_ID VINE_ENV VINE_OUTDIR VIRTUAL_ENV CONDA_PREFIX
}

setup() {
	vine_setup
}

# fixture_venv DIR: a fresh copy of a real venv made with
# `/usr/bin/python3 -m venv --copies` (with pip), built once per build dir.
fixture_venv() {
	local master="$VINE_FIXTURES/venv"
	(
		flock 9
		if [ ! -e "$master/.complete" ]; then
			rm -rf "$master"
			/usr/bin/python3 -m venv --copies "$master" >&2 || exit 1
			touch "$master/.complete"
		fi
	) 9>"$VINE_FIXTURES/venv.lock" || return 1
	mkdir -p "$(dirname "$1")"
	# a venv embeds its own path: make the copy look like it was made at DIR
	cp -a "$master" "$1" || return 1
	rm -f "$1/.complete"
	grep -rlIF "$master" "$1" 2>/dev/null | while IFS= read -r f; do
		sed -i "s|$master|$1|g" "$f"
	done
}

# ---- vine-pack helpers ----

# pack_check ARCHIVE [-v]: check a vine archive's index and every member
# independently of the C code (tests/pack-check.py); exit 3: no index.
pack_check() {
	/usr/bin/python3 "$VINE_TOP/tests/pack-check.py" "$@"
}

# manifest ARCHIVE: the archive's .vine/manifest.json on stdout.
manifest() {
	tar -xzOf "$1" .vine/manifest.json
}

# manifest_files ARCHIVE: one "TYPE PATH" line per relocatable file.
manifest_files() {
	manifest "$1" | /usr/bin/python3 -c '
import json, sys
for f in json.load(sys.stdin)["files"]:
    print(f["type"], f["path"])'
}

# make_tree DIR: a small tree with what packing must keep: nested and
# empty directories, odd modes, long and UTF-8 names, relative symlinks,
# hard links, empty and binary files, fixed mtimes.
make_tree() {
	local d=$1 long
	mkdir -p "$d/bin" "$d/lib/python3.11/site-packages/pkg" "$d/share/doc" "$d/empty" "$d/private"
	printf '#!/bin/sh\necho hi\n' >"$d/bin/tool"
	chmod 755 "$d/bin/tool"
	ln "$d/bin/tool" "$d/bin/tool-again"
	echo 'x = 1' >"$d/lib/python3.11/site-packages/pkg/__init__.py"
	printf 'ELF\0\1\2binary' >"$d/lib/libx.so"
	: >"$d/share/empty-file"
	long=$(printf 'n%.0s' $(seq 150))
	echo long >"$d/share/doc/$long.txt"
	echo utf8 >"$d/share/doc/café ünïcode.txt"
	echo secret >"$d/private/key"
	chmod 600 "$d/private/key"
	chmod 700 "$d/private"
	ln -s ../lib/libx.so "$d/bin/libx"
	ln -s python3.11 "$d/lib/python-current"
	seq 1 20000 >"$d/share/numbers"
	find "$d" -mindepth 1 -exec touch -h -d '2021-05-06 07:08:09.123456789' {} +
	touch -d '2019-01-02 03:04:05' "$d/share/numbers"
}

# tree_listing DIR: type, mode, size and mtime (whole seconds) of every
# entry under DIR but .vine, sorted by path, to compare two trees.  Sizes
# of directories and mtimes of symlinks are left out.
tree_listing() {
	(cd "$1" && find . -mindepth 1 ! -path './.vine' ! -path './.vine/*' \
		-printf '%y %m %s %T@ %P\n' |
		awk '{ split($4, t, "."); $4 = t[1]; if ($1 == "d") $3 = "-"; if ($1 == "l") $4 = "-"; print }' |
		LC_ALL=C sort -k5)
}

# as_unprivileged CMD...: run CMD unable to override file permissions
# (as root: without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH).
as_unprivileged() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --bounding-set=-dac_override,-dac_read_search -- "$@"
	else
		"$@"
	fi
}
