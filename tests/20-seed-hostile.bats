#!/usr/bin/env bats
# vine-seed: hostile and corrupt archives, unusable caches.  Each is refused
# with a clear message, writes nothing outside the cache, leaves nothing that
# looks ready, and a good seed afterwards works.

bats_require_minimum_version 1.5.0
load helpers
load seed-helpers

setup() {
	vine_setup
	mkdir outside
	echo "do not touch $BATS_TEST_TMPDIR/orig" >outside/victim
	snapshot outside >outside.before
}

# refused JSON MESSAGE: refused as a vine-format archive (entries in
# separate members, so several threads see them) and as a plain gzip tar
refused() {
	local json=$1 msg=$2 fmt
	rm -rf "$VINE_CACHE"
	for fmt in --index --no-index; do
		spec_archive bad.tgz "$json" $([ $fmt = --no-index ] && echo --no-index) --member-size 1
		run -1 vine-seed -j 4 bad.tgz
		assert_output --partial "$msg"
		snapshot outside | diff outside.before -
		assert_no_debris
		assert_nothing_ready
	done
	spec_archive good.tgz '{"entries":[{"path":"ok","type":"file","data":"fine"}]}'
	run -0 vine-seed good.tgz
	[ "$(cat "$output/ok")" = fine ]
}

@test "hostile: '..' entries" {
	refused '{"entries":[{"path":"a","type":"file"},{"path":"../../../outside/pwned","type":"file","data":"x"}]}' \
		"path with a '..' component"
	refused '{"entries":[{"path":"a/../../x","type":"dir"}]}' "path with a '..' component"
}

@test "hostile: absolute paths" {
	refused "{\"entries\":[{\"path\":\"$BATS_TEST_TMPDIR/outside/pwned\",\"type\":\"file\",\"data\":\"x\"}]}" \
		"absolute path"
}

@test "hostile: a symlink, then an entry written through it" {
	refused "{\"entries\":[{\"path\":\"lnk\",\"type\":\"symlink\",\"target\":\"$BATS_TEST_TMPDIR/outside\"},
		{\"path\":\"lnk/victim\",\"type\":\"file\",\"data\":\"pwned\"}]}" "'lnk' appears twice"
	refused '{"entries":[{"path":"lnk","type":"symlink","target":"../../../outside"},
		{"path":"lnk/new","type":"file","data":"pwned"}]}' "'lnk' appears twice"
	# a directory entry in between does not help either
	refused '{"entries":[{"path":"lnk","type":"symlink","target":"../../../outside"},
		{"path":"lnk","type":"dir"},{"path":"lnk/new","type":"file","data":"pwned"}]}' "appears twice"
	# a hard link made through a symlink
	refused '{"entries":[{"path":"lnk","type":"symlink","target":"../../../outside"},
		{"path":"t","type":"file","data":"x"},{"path":"lnk/h","type":"hardlink","target":"t"}]}' \
		"passes through a symlink"
}

@test "hostile: hard links pointing outside" {
	refused '{"entries":[{"path":"h","type":"hardlink","target":"../../../outside/victim"}]}' \
		"hard link 'h' points outside the archive"
	refused "{\"entries\":[{\"path\":\"h\",\"type\":\"hardlink\",\"target\":\"$BATS_TEST_TMPDIR/outside/victim\"}]}" \
		"hard link 'h' points outside the archive"
	refused '{"entries":[{"path":"lnk","type":"symlink","target":"../../../outside"},
		{"path":"h","type":"hardlink","target":"lnk/victim"}]}' "passes through a symlink"
	refused '{"entries":[{"path":"h","type":"hardlink","target":"nothere"}]}' "target 'nothere' is not in the archive"
}

@test "hostile: device nodes, fifos, duplicates" {
	refused '{"entries":[{"path":"null","type":"chr"}]}' "device nodes, fifos and sockets are not allowed"
	refused '{"entries":[{"path":"disk","type":"blk"}]}' "device nodes, fifos and sockets are not allowed"
	refused '{"entries":[{"path":"fifo","type":"fifo"}]}' "device nodes, fifos and sockets are not allowed"
	refused '{"entries":[{"path":"f","type":"file","data":"1"},{"path":"f","type":"file","data":"2"}]}' \
		"'f' appears twice in the archive"
	refused '{"entries":[{"path":"f","type":"file","data":"1"},{"path":"f/g","type":"file","data":"2"}]}' \
		"'f"
}

@test "hostile: symlinks pointing outside are kept but never followed" {
	spec_archive a.tgz '{"entries":[{"path":"out","type":"symlink","target":"../../../outside/victim"},
		{"path":"abs","type":"symlink","target":"/etc/hostname"}]}'
	run -0 vine-seed a.tgz
	[ "$(readlink "$output/out")" = ../../../outside/victim ]
	[ "$(readlink "$output/abs")" = /etc/hostname ]
	snapshot outside | diff outside.before -
}

@test "hostile: the manifest cannot relocate outside" {
	refused "{\"entries\":[{\"path\":\"lnk\",\"type\":\"symlink\",\"target\":\"../../../outside\"}],
		\"manifest\":{\"vine_manifest\":1,\"prefix\":\"$BATS_TEST_TMPDIR/orig\",
		\"files\":[{\"path\":\"lnk/victim\",\"type\":\"text\"}]}}" "passes through a symlink"
	refused "{\"entries\":[{\"path\":\"l\",\"type\":\"symlink\",\"target\":\"../../../outside/victim\"}],
		\"manifest\":{\"vine_manifest\":1,\"prefix\":\"$BATS_TEST_TMPDIR/orig\",
		\"files\":[{\"path\":\"l\",\"type\":\"text\"}]}}" "'l' is a symlink"
	refused "{\"entries\":[],\"manifest\":{\"vine_manifest\":1,\"prefix\":\"$BATS_TEST_TMPDIR/orig\",
		\"files\":[{\"path\":\"../../../outside/victim\",\"type\":\"text\"}]}}" "invalid manifest"
	refused '{"entries":[],"raw_manifest":"{not json"}' "invalid manifest"
	refused '{"entries":[],"manifest":{"vine_manifest":2,"prefix":"/x","files":[]}}' '"vine_manifest" is not 1'
	refused '{"entries":[],"manifest":{"vine_manifest":1,"prefix":"/","files":[]}}' '"prefix" is not an absolute path'
}

@test "hostile: a manifest that does not match the entries" {
	spec_archive a.tgz '{"entries":[{"path":"f","type":"file","data":"x"}],
		"manifest":{"vine_manifest":1,"prefix":"/orig","entries":5,"files":[]}}'
	run -1 vine-seed a.tgz
	assert_output --partial "1 entries before its manifest, which says 5"
	assert_nothing_ready
	assert_no_debris
}

# a vine-format archive of a few members, its layout in a.tgz.layout
corruptible() {
	mkdir -p src/d
	for i in 1 2 3 4 5 6; do head -c 40000 /dev/urandom >src/d/f$i; done
	mkvarchive --member-size 50000 --layout -o a.tgz src/d >a.tgz.layout
	[ "$(layout a.tgz 'len(members)')" -ge 4 ]
}

# broken MESSAGE [OPTION...]: a.tgz is refused with MESSAGE
broken() {
	local msg=$1
	shift
	run -1 vine-seed "$@" a.tgz
	assert_output --partial "$msg"
	assert_nothing_ready
	assert_no_debris
}

@test "corrupt: truncated archives" {
	corruptible
	cp a.tgz good.tgz
	truncate -s $(( $(stat -c %s a.tgz) / 2 )) a.tgz
	broken "truncated gzip input"
	cp good.tgz a.tgz
	truncate -s -30 a.tgz
	broken "the archive is truncated"
	cp good.tgz a.tgz
	truncate -s "$(layout a.tgz 'members[3][0] + 100')" a.tgz
	broken "truncated gzip input"
	run -0 vine-seed good.tgz
}

@test "corrupt: a bit flipped in a data member" {
	corruptible
	flip a.tgz "$(layout a.tgz 'members[2][0] + members[2][1] // 2')"
	broken "member 2 is corrupt"
	broken "member 2 is corrupt" -j 1
}

@test "corrupt: a bit flipped in the index" {
	corruptible
	cp a.tgz good.tgz
	# the clen of member 1: index data starts 16 bytes into the first index member
	flip a.tgz "$(layout a.tgz 'x0off + 16 + 24 + 40 + 8')"
	broken "invalid archive index: bad record for member"
	cp good.tgz a.tgz
	flip a.tgz "$(layout a.tgz 'x0off + 16')"
	broken "invalid archive index: bad magic"
	cp good.tgz a.tgz
	flip a.tgz "$(layout a.tgz 'size - 20')"
	broken "invalid archive index: index offset"
	cp good.tgz a.tgz
	flip a.tgz "$(layout a.tgz 'size - 15')"
	broken "the archive is truncated"
	cp good.tgz a.tgz
	flip a.tgz "$(layout a.tgz 'x0off + 3')"
	broken "bad index member header"
}

@test "corrupt: a wrong member crc in the index" {
	mkdir -p src/d
	for i in 1 2 3; do head -c 30000 /dev/urandom >src/d/f$i; done
	mkvarchive --member-size 20000 --bad-crc 1 -o a.tgz src/d
	broken "member 1 is corrupt: crc32"
}

@test "corrupt: -i with another archive's id" {
	corruptible
	id=$(sha256sum a.tgz | cut -d' ' -f1)
	flip a.tgz "$(layout a.tgz 'members[0][0] + 5')"
	broken "is not object $id" -i "$id"
	[ -z "$(ls -A cache/objects)" ]
}

@test "corrupt: not an archive at all" {
	echo "just some text" >a.tgz
	broken "not an archive vine can read"
	: >a.tgz
	broken "not an archive vine can read"
}

@test "cache: owned by another user" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to chown"
	spec_archive a.tgz '{"entries":[{"path":"f","type":"file"}]}'
	mkdir cache && chown nobody cache
	run -1 vine-seed a.tgz
	assert_output --partial "cannot use cache '$VINE_CACHE': it belongs to another user"
}

@test "cache: not writable" {
	spec_archive a.tgz '{"entries":[{"path":"f","type":"file"}]}'
	if [ "$(id -u)" -ne 0 ]; then
		mkdir -m 500 cache
		run -1 vine-seed a.tgz
		assert_output --partial "cannot use cache"
		return
	fi
	unshare -m true 2>/dev/null || skip "cannot unshare a mount namespace"
	mkdir ro
	run -1 unshare -m --propagation private sh -c 'mount -t tmpfs -o ro tmpfs ro && vine-seed -c ro/c a.tgz'
	assert_output --partial "cannot use cache: cannot create directory 'ro/c': Read-only file system"
	# a cache laid out already, then read-only
	run -1 unshare -m --propagation private sh -c \
		'mount -t tmpfs tmpfs ro && mkdir ro/c && vine-seed -c ro/c a.tgz >/dev/null && rm -rf ro/c/env/* &&
		 mount -o remount,ro ro && vine-seed -c ro/c a.tgz'
	assert_output --partial "Read-only file system"
}

@test "cache: a full disk" {
	[ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null || skip "needs root and mount namespaces"
	mkdir -p src/d small
	head -c 3000000 /dev/urandom >src/d/big
	mkvarchive --level 1 -o big.tgz src/d
	spec_archive a.tgz '{"entries":[{"path":"f","type":"file","data":"fits"}]}'
	run -0 unshare -m --propagation private sh -c '
		mount -t tmpfs -o size=4m tmpfs small || exit 9
		vine-seed -c small/c big.tgz; echo "status $?"
		ls -A small/c/tmp small/c/partial small/c/env
		cat "$(vine-seed -c small/c a.tgz)/f"'
	assert_output --partial "No space left on device"
	assert_line "status 1"
	assert_line "fits"
	refute_line --regexp '^[0-9a-f]{16}$'
	refute_line --regexp '\.[A-Za-z0-9]{6}$'
}

# deep_chain N: the JSON path of a directory chain N deep
deep_chain() {
	python3 -c 'import sys; print("/".join(["d"] * int(sys.argv[1])))' "$1"
}

@test "hostile: a chain deeper than the open-file limit, then a refused entry, in bounded time" {
	# before: vine_rm_rf retried each failed child, exponential past the fd limit
	local deep
	deep=$(deep_chain 2000)
	for fmt in --index --no-index; do
		rm -rf "$VINE_CACHE"
		spec_archive bad.tgz "{\"entries\":[{\"path\":\"$deep\",\"type\":\"dir\"},
			{\"path\":\"fifo\",\"type\":\"fifo\"}]}" $([ $fmt = --no-index ] && echo --no-index) --member-size 1
		run -1 bash -c 'ulimit -n 64 && exec timeout 120 vine-seed -j 2 bad.tgz'
		assert_output --partial "device nodes, fifos and sockets are not allowed"
		assert_no_debris
		assert_nothing_ready
	done
}

@test "hostile: a deep tree left in tmp/ by a killed seeder does not hang the next seed" {
	spec_archive good.tgz '{"entries":[{"path":"ok","type":"file","data":"fine"}]}'
	run -0 vine-seed good.tgz
	rm -rf "$VINE_CACHE/env" && mkdir "$VINE_CACHE/env"
	# debris as a dead seeder leaves it: tmp/<lock>.XXXXXX, its lock free
	python3 -c '
import os, sys
top = sys.argv[1] + "/tmp/src-0123456789abcdef0123456789abcdef.AbCdEf"
os.mkdir(top)
fd = os.open(top, os.O_RDONLY)
for i in range(3000):
    os.mkdir("d", dir_fd=fd)
    n = os.open("d", os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    fd = n
' "$VINE_CACHE"
	run -0 bash -c 'ulimit -n 64 && exec timeout 120 vine-seed -i "$(sha256sum good.tgz | cut -c1-64)" good.tgz'
	[ "$(cat "$output/ok")" = fine ]
	assert_no_debris
}

@test "hostile: a '.' entry does not set the environment root's mode" {
	for mode in 0777 0000; do
		rm -rf "$VINE_CACHE"
		spec_archive a.tgz "{\"entries\":[{\"path\":\".\",\"type\":\"dir\",\"mode\":$((8#$mode))},
			{\"path\":\"f\",\"type\":\"file\",\"data\":\"x\"}]}"
		run -0 vine-seed a.tgz
		[ "$(stat -c %a "$output")" = 755 ]
	done
}

@test "hostile: a directory twice, and an archive of only zero blocks, are refused" {
	refused '{"entries":[{"path":"d","type":"dir"},{"path":"d/f","type":"file"},{"path":"d","type":"dir"}]}' \
		"'d' appears twice in the archive"
	rm -rf "$VINE_CACHE"
	head -c 10240 /dev/zero | gzip >zero.tgz
	run -1 vine-seed zero.tgz
	assert_output --partial "the archive has no entries"
	assert_nothing_ready
	assert_no_debris
	head -c 10240 /dev/zero >zero.tar
	run -1 vine-seed zero.tar
	assert_output --partial "the archive has no entries"
}

@test "hostile: an unindexed archive whose manifest lies or is not last is refused" {
	spec_archive a.tgz '{"entries":[{"path":"f","type":"file","data":"x"}],
		"manifest":{"vine_manifest":1,"prefix":"/orig","entries":5,"files":[]}}' --no-index
	run -1 vine-seed a.tgz
	assert_output --partial "1 entries before its manifest, which says 5"
	assert_nothing_ready
	assert_no_debris
	spec_archive b.tgz '{"entries":[{"path":".vine/manifest.json","type":"file",
		"data":"{\"vine_manifest\":1,\"prefix\":\"/orig\",\"entries\":0,\"files\":[]}"},
		{"path":"f","type":"file","data":"x"}]}' --no-index --no-manifest
	run -1 vine-seed b.tgz
	assert_output --partial "must be last"
	assert_nothing_ready
}

@test "hostile: a short packed prefix cannot blow the environment up (relocation growth limit)" {
	# 64 MiB of "/u" compresses to ~70 KB; relocated to the cache path it was 2.4 GB
	python3 -c '
import json, sys
print(json.dumps({"entries": [{"path": "t", "type": "file", "data": "/u" * (32 << 20)}],
                  "manifest": {"vine_manifest": 1, "prefix": "/u", "files": [{"path": "t", "type": "text"}]}}))' >spec.json
	mkvarchive -o a.tgz --spec spec.json --level 9
	[ "$(stat -c %s a.tgz)" -lt 1000000 ]
	run -1 vine-seed a.tgz
	assert_output --partial "cannot relocate 't': the new prefix would add more than 256 MiB"
	assert_nothing_ready
	assert_no_debris
}

@test "hostile: a FIFO as the archive is refused, not waited on" {
	mkfifo fifo.tgz
	run -1 timeout 20 vine-seed fifo.tgz
	assert_output --partial "'fifo.tgz' is not a regular file"
}
