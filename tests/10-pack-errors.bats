# vine-pack: every failure says what and why, exits 1 and leaves no output
# and no temporary file behind (except after SIGKILL: then only a
# recognisable .OUT.vine-tmp.XXXXXX).

load helpers
bats_require_minimum_version 1.5.0

setup() {
	vine_setup
	make_tree src
	mkdir out
}

# no_output: out/ holds nothing at all
no_output() {
	[ -z "$(ls -A out)" ]
}

@test "vine-pack: a missing directory" {
	run -1 vine-pack -o out/a.tar.gz nope
	assert_output "vine-pack: cannot open 'nope': No such file or directory"
	no_output
}

@test "vine-pack: the root directory is refused" {
	run -1 vine-pack -o - /
	assert_output "vine-pack: refusing to pack the root directory"
}

@test "vine-pack: DIR is not a directory" {
	run -1 vine-pack -o out/a.tar.gz src/share/numbers
	assert_output "vine-pack: 'src/share/numbers' is not a directory"
	no_output
}

@test "vine-pack: an unreadable file stops the pack" {
	chmod 000 src/share/numbers
	run -1 as_unprivileged vine-pack -o out/a.tar.gz src
	assert_output "vine-pack: cannot open 'src/share/numbers': Permission denied"
	no_output
}

@test "vine-pack: an unreadable directory stops the pack" {
	chmod 000 src/private
	run -1 as_unprivileged vine-pack -o out/a.tar.gz src
	assert_output "vine-pack: cannot open directory 'src/private': Permission denied"
	no_output
}

@test "vine-pack: the output may not be inside the input, however it is named" {
	run -1 vine-pack -o src/a.tar.gz src
	assert_output "vine-pack: output 'src/a.tar.gz' is inside the directory being packed 'src'"
	run -1 vine-pack -o src/bin/../a.tar.gz src
	assert_output --partial "is inside the directory being packed"
	ln -s src alias
	run -1 vine-pack -o alias/a.tar.gz src
	assert_output --partial "is inside the directory being packed"
	run -1 vine-pack -o src/a.tar.gz alias
	assert_output --partial "is inside the directory being packed"
	cd src
	run -1 vine-pack .
	assert_output --partial "is inside the directory being packed"
	cd ..
	[ -z "$(find src -name '*.tar.gz*')" ]
}

@test "vine-pack: an existing output is kept unless -f" {
	echo precious >out/a.tar.gz
	run -1 vine-pack -o out/a.tar.gz src
	assert_output "vine-pack: 'out/a.tar.gz' exists (use -f to overwrite)"
	[ "$(cat out/a.tar.gz)" = precious ]
	[ "$(ls -A out)" = a.tar.gz ]
	run -0 vine-pack -f -o out/a.tar.gz src
	assert_line -n -1 "$(sha256sum out/a.tar.gz | cut -d' ' -f1)"
	[ "$(ls -A out)" = a.tar.gz ]
	# a symlink is neither written through nor replaced
	echo precious >target
	ln -s ../target out/l.tar.gz
	run -1 vine-pack -f -o out/l.tar.gz src
	assert_output "vine-pack: 'out/l.tar.gz' is not a regular file: not replacing it"
	[ "$(readlink out/l.tar.gz)" = ../target ]
	[ "$(cat target)" = precious ]
}

@test "vine-pack: -f replaces only a regular file: never a device node, FIFO or symlink" {
	# before: -f renamed over whatever OUT was (as root it replaced /dev/full)
	mkfifo out/fifo
	ln -s /dev/null out/null
	run -1 vine-pack -f -o out/fifo src
	assert_output "vine-pack: 'out/fifo' is not a regular file: not replacing it"
	[ -p out/fifo ]
	run -1 vine-pack -f -o out/null src
	assert_output "vine-pack: 'out/null' is not a regular file: not replacing it"
	[ -L out/null ]
	if [ "$(id -u)" -eq 0 ]; then
		mknod out/full c 1 7
		run -1 vine-pack -f -o out/full src
		assert_output "vine-pack: 'out/full' is not a regular file: not replacing it"
		[ -c out/full ]
	fi
	[ "$(ls -A out | wc -l)" -eq "$([ "$(id -u)" -eq 0 ] && echo 3 || echo 2)" ]
	# one that becomes a FIFO while packing is put back, not replaced
	echo old >out/a.tar.gz
	VINE_TEST_PAUSE=pack-publish vine-pack -f -o out/a.tar.gz src >pack.out 2>pack.err &
	pid=$!
	wait_stopped "$pid"
	rm out/a.tar.gz && mkfifo out/a.tar.gz
	kill -CONT "$pid"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 1 ]
	[ "$(cat pack.err)" = "vine-pack: 'out/a.tar.gz' is not a regular file: not replacing it" ]
	[ -p out/a.tar.gz ]
	[ -z "$(ls -A out | grep vine-tmp)" ]
}

@test "vine-pack: an output that appears while packing is not replaced without -f" {
	# the pack stops itself just before it publishes (VINE_TEST_PAUSE)
	VINE_TEST_PAUSE=pack-publish vine-pack -o out/a.tar.gz src >pack.out 2>pack.err &
	pid=$!
	wait_stopped "$pid"
	ls -A out | grep -q vine-tmp
	echo precious >out/a.tar.gz
	kill -CONT "$pid"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 1 ]
	[ "$(cat pack.err)" = "vine-pack: 'out/a.tar.gz' exists (use -f to overwrite)" ]
	[ "$(cat out/a.tar.gz)" = precious ]
	[ "$(ls -A out)" = a.tar.gz ]
}

@test "vine-pack: bad output places" {
	run -1 vine-pack -o missing/a.tar.gz src
	assert_output "vine-pack: cannot use output directory 'missing': No such file or directory"
	run -1 vine-pack -o out src
	assert_output "vine-pack: 'out' is a directory"
	run -1 vine-pack -o out/ src
	assert_output "vine-pack: 'out/' is a directory"
	no_output
}

@test "vine-pack: a file size limit (write error) leaves nothing behind" {
	seq 1 2000000 >src/big
	run -1 bash -c 'trap "" XFSZ; ulimit -f 200; exec vine-pack -o out/a.tar.gz src'
	assert_output "vine-pack: cannot write 'out/a.tar.gz': File too large"
	no_output
}

@test "vine-pack: a full disk leaves nothing behind" {
	unshare --mount true 2>/dev/null || skip "no mount namespaces here"
	head -c 3000000 /dev/urandom >src/random
	run -1 unshare --mount --propagation private sh -c \
		'mount -t tmpfs -o size=1m tmpfs out && vine-pack -o out/a.tar.gz src; rc=$?; ls -A out; exit $rc'
	assert_line -n 0 "vine-pack: cannot write 'out/a.tar.gz': No space left on device"
	assert_equal "${#lines[@]}" 1  # ls printed nothing
}

@test "vine-pack: SIGTERM or SIGINT removes the temporary file" {
	for sig in TERM INT; do
		# background jobs start with SIGINT ignored: restore the default
		VINE_TEST_PAUSE=pack-temp /usr/bin/python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' vine-pack -j 1 -l 12 -o out/a.tar.gz src >/dev/null 2>&1 &
		pid=$!
		wait_stopped "$pid"
		ls -A out | grep -q vine-tmp
		# delivered when it goes on, with the temporary file being written
		kill -s "$sig" "$pid"
		kill -CONT "$pid"
		rc=0
		wait "$pid" || rc=$?
		[ "$rc" -eq $((128 + $(kill -l "$sig"))) ]
		no_output
	done
}

@test "vine-pack: after SIGKILL only a recognisable temporary file is left" {
	VINE_TEST_PAUSE=pack-temp vine-pack -j 1 -l 12 -o out/a.tar.gz src >/dev/null 2>&1 &
	pid=$!
	wait_stopped "$pid"
	kill -KILL "$pid"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 137 ]
	[ ! -e out/a.tar.gz ]
	ls -A out | grep -Eqx '\.a\.tar\.gz\.vine-tmp\.[A-Za-z0-9]{6}'
	[ "$(ls -A out | wc -l)" -eq 1 ]
}
