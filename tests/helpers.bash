# tests/helpers.bash - loaded by every bats file: `load helpers`.
#
# Each test runs in its own directory ($BATS_TEST_TMPDIR) with its own cache
# and state, and the programs under test first on PATH.

bats_require_minimum_version 1.5.0
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

# status_py EXPR [TASK]: print the Python expression EXPR evaluated on
# `vine-status --json [TASK]`, bound to j.
status_py() {
	vine-status --json ${2:+"$2"} | python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"
}

# running_count N: exactly N tasks are running (for spread_wait_for)
running_count() {
	[ "$(status_py 'j["tasks"]["running"]')" = "$1" ]
}

# past_lease NODE: the lease of NODE's worker has run out (it is due to be
# reaped: the next claim does it); for spread_wait_for
past_lease() {
	[ "$(status_py "[w['expires'] < __import__('time').time() for w in j['workers'] if w['node'] == '$1']")" = "[True]" ]
}

# gate [FILE]: a task command that waits until FILE (default go, in the
# test's directory) exists, so that a task is still running, whatever the
# load, until the test lets it end (touch go)
gate() {
	echo "until [ -e '$PWD/${1:-go}' ]; do sleep 0.05; done"
}

# max_rss COMMAND...: run COMMAND (it must succeed); print the largest
# resident set size, in KiB, of it or any process it waited for.
max_rss() {
	python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"
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

# ---- peer transport (vine-spread) ----

# spread_secret FILE: a new per-run secret, 64 hex digits, mode 600.
spread_secret() {
	(umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$1" && echo >>"$1")
}

# spread_setup: for a test of simulated nodes: a run secret in
# $SPREAD_SECRET, and node caches $A_CACHE, $B_CACHE, $C_CACHE (not created).
# Pair it with spread_stop_all in teardown.
spread_setup() {
	export SPREAD_SECRET="$BATS_TEST_TMPDIR/secret"
	spread_secret "$SPREAD_SECRET"
	A_CACHE="$BATS_TEST_TMPDIR/a" B_CACHE="$BATS_TEST_TMPDIR/b" C_CACHE="$BATS_TEST_TMPDIR/c"
}

# spread_serve VAR CACHE IP [OPTION...]: start `vine-spread --serve` on
# IP:0 (loopback only) with $SPREAD_SECRET, in the background; its address
# goes in $VAR, its pid in ${VAR}_pid, its stderr in
# $BATS_TEST_TMPDIR/VAR.log.  spread_stop_all (in teardown) stops it.
spread_serve() {
	local var=$1 cache=$2 ip=$3 i pid addr=
	shift 3
	local out="$BATS_TEST_TMPDIR/$var"
	vine-spread -c "$cache" -N "$var" --secret-file "$SPREAD_SECRET" --serve -l "$ip:0" "$@" \
		>"$out.addr" 2>"$out.log" 3>&- &
	pid=$!
	echo "$pid" >>"$BATS_TEST_TMPDIR/spread.pids"
	for i in $(seq 200); do
		[ -s "$out.addr" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	read -r addr <"$out.addr" || { cat "$out.log" >&2; return 1; }
	printf -v "$var" %s "$addr"
	printf -v "${var}_pid" %s "$pid"
}

# spread_stop_all: stop every server spread_serve started (and any helper
# recorded in spread.pids), also stopped ones; kill -9 what does not go.
spread_stop_all() {
	local f="$BATS_TEST_TMPDIR/spread.pids" pid i
	[ -f "$f" ] || return 0
	while read -r pid; do
		kill -CONT "$pid" 2>/dev/null
		kill "$pid" 2>/dev/null
	done <"$f"
	while read -r pid; do
		for i in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done <"$f"
	rm -f "$f"
	return 0
}

# spread_grow SRC CACHE ID CHUNK DELAY: write SRC into CACHE/partial/ID
# CHUNK bytes at a time, DELAY seconds apart, holding the exclusive flock on
# CACHE/locks/ID that a fetch holds, then publish it as CACHE/objects/ID,
# in the background (pid in GROW_PID, recorded for spread_stop_all).  The
# wall time it published at is written to CACHE.grown.
spread_grow() {
	/usr/bin/python3 - "$@" 3>&- <<'PY' &
import fcntl, os, sys, time
src, cache, oid, chunk, delay = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
for d in ("objects", "partial", "locks"):
    os.makedirs(os.path.join(cache, d), mode=0o700, exist_ok=True)
lock = os.open(os.path.join(cache, "locks", oid), os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(lock, fcntl.LOCK_EX)
part = os.path.join(cache, "partial", oid)
fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o600)
with open(src, "rb") as f:
    while True:
        b = f.read(chunk)
        if not b:
            break
        os.write(fd, b)
        time.sleep(delay)
os.rename(part, os.path.join(cache, "objects", oid))
with open(cache + ".grown", "w") as g:
    g.write("%.3f\n" % time.time())
os.close(fd)
os.close(lock)
PY
	GROW_PID=$!
	echo "$GROW_PID" >>"$BATS_TEST_TMPDIR/spread.pids"
}

# spread_object FILE MB: a file of MB mebibytes of random bytes; prints its id.
spread_object() {
	head -c "$(($2 * 1048576))" /dev/urandom >"$1" && sha256sum "$1" | cut -c1-64
}

# spread_wait_for SECONDS COMMAND...: poll until COMMAND succeeds, or fail.
# wait_stopped PID: until process PID has stopped itself at a
# VINE_TEST_PAUSE point (vine(7) TEST HOOKS); 20 s at most
wait_stopped() {
	local i s
	for i in $(seq 400); do
		s=$(ps -o stat= -p "$1") || return 1
		case "$s" in T*) return 0 ;; esac
		sleep 0.05
	done
	return 1
}

spread_wait_for() {
	local t=$1 i
	shift
	for i in $(seq $((t * 20))); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}
