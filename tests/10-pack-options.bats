# vine-pack: -x excludes, -l levels, -j threads.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	vine_setup
	make_tree src
	mkdir -p src/lib/python3.11/site-packages/pkg/__pycache__ src/share/doc/html
	echo c >src/lib/python3.11/site-packages/pkg/__pycache__/m.cpython-311.pyc
	echo h >src/share/doc/html/index.html
	echo l >src/build.log
}

@test "vine-pack: -x matches names and relative paths; an excluded directory drops its contents" {
	run -0 vine-pack -x __pycache__ -x 'share/doc' -x '*.log' -o out.tar.gz src
	tar -tzf out.tar.gz | sed 's|/$||' >listed
	! grep -q __pycache__ listed
	! grep -q '^share/doc' listed
	! grep -q 'build.log' listed
	grep -qx share/numbers listed
	grep -qx lib/python3.11/site-packages/pkg/__init__.py listed
	# the same listing as find with the same exclusions
	(cd src && find . -mindepth 1 \( -name __pycache__ -o -path ./share/doc -o -name '*.log' \) -prune \
		-o -print | sed 's|^\./||' | LC_ALL=C sort) >want
	head -n -1 listed | LC_ALL=C sort | diff - want
	run -0 pack_check out.tar.gz
}

@test "vine-pack: -x wildcards match across slashes" {
	run -0 vine-pack -x 'lib/*/pkg' -o out.tar.gz src
	! tar -tzf out.tar.gz | grep -q 'pkg'
	tar -tzf out.tar.gz | grep -qx 'lib/python3.11/site-packages/'
}

@test "vine-pack: -x that excludes a hard link's first name keeps the data in the next" {
	run -0 vine-pack -x tool -o out.tar.gz src
	mkdir x
	tar -C x -xzf out.tar.gz
	[ ! -e x/bin/tool ]
	cmp src/bin/tool-again x/bin/tool-again
}

@test "vine-pack: -l sets the level: all valid, higher is smaller, same level same bytes" {
	seq 1 300000 >src/big
	run -0 vine-pack -l 1 -o l1.tar.gz src
	run -0 vine-pack -l 9 -o l9.tar.gz src
	run -0 vine-pack -l 12 -o l12.tar.gz src
	run -0 vine-pack -o l6.tar.gz src
	run -0 vine-pack -l 6 -o l6b.tar.gz src
	cmp l6.tar.gz l6b.tar.gz
	for f in l1 l9 l12 l6; do pack_check $f.tar.gz; done
	[ "$(stat -c %s l1.tar.gz)" -gt "$(stat -c %s l6.tar.gz)" ]
	[ "$(stat -c %s l6.tar.gz)" -gt "$(stat -c %s l12.tar.gz)" ]
	# OS byte 3 and MTIME 0 whatever the level (libdeflate's XFL varies)
	[ "$(head -c 10 l12.tar.gz | od -An -tx1 | tr -d ' \n')" = 1f8b0800000000000203 ]
}
