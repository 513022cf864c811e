# vine-pack: the archive is an ordinary .tar.gz holding exactly the tree,
# made of independent members with a valid index, the same bytes every time.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	vine_setup
	make_tree src
}

@test "vine-pack: the archive lists exactly the tree, sorted bytewise, manifest last" {
	run -0 vine-pack -o out.tar.gz src
	tar -tzf out.tar.gz | sed 's|/$||' >listed
	[ "$(tail -n 1 listed)" = .vine/manifest.json ]
	head -n -1 listed | LC_ALL=C sort -c
	(cd src && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort) >want
	head -n -1 listed | LC_ALL=C sort | diff - want
}

@test "vine-pack: tar -xzf gives back the tree: contents, modes, mtimes, links" {
	run -0 vine-pack -o out.tar.gz src
	mkdir x
	tar -C x -xzf out.tar.gz
	[ -f x/.vine/manifest.json ]
	diff -r --no-dereference -x .vine src x
	diff <(tree_listing src) <(tree_listing x)
	[ "$(readlink x/bin/libx)" = ../lib/libx.so ]
	[ "$(stat -c %i x/bin/tool)" = "$(stat -c %i x/bin/tool-again)" ]
	[ "$(stat -c %h x/bin/tool)" = 2 ]
	# owners are normalised to root, with no names
	tar -tvzf out.tar.gz | awk '{ print $2 }' | sort -u | diff - <(echo 0/0)
}

@test "vine-pack: the object id is sha256 of the archive, last on stdout; stderr quiet in pipes" {
	run --separate-stderr -0 vine-pack -o out.tar.gz src
	assert_equal "${#lines[@]}" 1
	assert_line -n 0 "$(sha256sum out.tar.gz | cut -d' ' -f1)"
	[ -z "$stderr" ]
}

@test "vine-pack: gzip -t, pigz and zcat read it; every member stands alone; the index is valid" {
	run -0 vine-pack -o out.tar.gz src
	gzip -t out.tar.gz
	pigz -dc out.tar.gz | tar -t >/dev/null
	zcat out.tar.gz | cmp - <(pigz -dc out.tar.gz)
	run -0 pack_check out.tar.gz
	assert_output "ok 1 members"
}

@test "vine-pack: same tree, same bytes, whatever -j and however long apart" {
	run -0 vine-pack -j 1 -o a.tar.gz src
	sleep 1
	cat src/share/numbers >/dev/null  # access times change, nothing else does
	run -0 vine-pack -j 3 -o b.tar.gz src
	cmp a.tar.gz b.tar.gz
	# with many members and a split one, too
	seq 1 900000 >src/big
	head -c 3000000 /dev/urandom >src/random
	run -0 vine-pack -j 1 -o c.tar.gz src
	run -0 vine-pack -j 4 -o d.tar.gz src
	cmp c.tar.gz d.tar.gz
	run -0 pack_check c.tar.gz
}

@test "vine-pack: members are cut at entries near 2 MiB; large entries stand alone" {
	for i in $(seq 1 40); do seq $((i * 100000)) $((i * 100000 + 20000)) >"src/f$i"; done
	seq 1 400000 >src/mid      # 2.6 MB: a member of its own
	seq 1 2000000 >src/split   # 15 MB: a member of its own, compressed in blocks
	run -0 vine-pack -o out.tar.gz src
	run -0 pack_check out.tar.gz -v
	assert_equal "$(grep -c ' mid$' <<<"$output")" 1
	assert_equal "$(grep -c ' split$' <<<"$output")" 1
	# every other member holds entries up to about 2 MiB
	echo "$output" | awk '/^[0-9]/ && $3 != "mid" && $3 != "split" && $2 > 2200000 { exit 1 }'
	[ "$(echo "$output" | grep -c '^[0-9]')" -ge 4 ]
	assert_line -n -1 --regexp '^ok '
	mkdir x
	tar -C x -xzf out.tar.gz
	cmp src/split x/split
	cmp src/mid x/mid
}

@test "vine-pack: default output is ./BASENAME.tar.gz of the directory's real name" {
	mkdir elsewhere
	cd elsewhere
	run -0 vine-pack ../src/
	[ -f src.tar.gz ]
	assert_line -n -1 "$(sha256sum src.tar.gz | cut -d' ' -f1)"
	cd ../src/bin
	run -1 vine-pack ..
	assert_output --partial "inside the directory being packed"
}

@test "vine-pack: -o - writes the archive to stdout and the object id to stderr" {
	run -0 vine-pack -o file.tar.gz src
	id=${lines[-1]}
	vine-pack -o - src >piped.tar.gz 2>err
	cmp file.tar.gz piped.tar.gz
	grep -qx "vine-pack: object id $id" err
	# the output file given as stdout must not be packed into itself
	run -1 bash -c 'vine-pack -o - src >src/self.tar.gz'
	assert_output --partial "is inside the directory being packed"
}

@test "vine-pack: a progress meter on a terminal, none with -q" {
	command -v script >/dev/null || skip "no script(1)"
	seq 1 3000000 >src/big
	script -qec "vine-pack -o t1.tar.gz src" /dev/null >tty.out
	grep -q 'packing:' tty.out
	script -qec "vine-pack -q -o t2.tar.gz src" /dev/null >tty.out
	! grep -q 'packing:' tty.out
	cmp t1.tar.gz t2.tar.gz
}

@test "vine-pack: -h prints usage; bad usage exits 2" {
	run -0 vine-pack -h
	assert_output --regexp '^usage:'
	run -2 vine-pack
	assert_output --partial usage:
	run -2 vine-pack -Z src
	run -2 vine-pack src src
	run -2 vine-pack -j 0 src
	assert_output --partial -- "-j: '0' is not a number from 1 to 1024"
	run -2 vine-pack -l 13 src
	run -2 vine-pack -l x src
	[ ! -e src.tar.gz ]
}
