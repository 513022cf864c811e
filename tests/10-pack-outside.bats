#!/usr/bin/env bats
# vine-pack: honest packing.  Editable installs and other Python path
# entries leading outside the directory are refused (-E packs them with a
# warning); a venv's base interpreter and symlinks leading outside are
# named in one summary at the end, with how to do without them.

bats_require_minimum_version 1.5.0
load helpers

site=lib/python3.11/site-packages

@test "vine-pack: an editable .pth, egg-link or direct_url.json leading outside is refused" {
	mkdir -p env/$site/foo-1.0.dist-info src/foo
	echo "$PWD/src/foo" >env/$site/__editable__.foo-1.0.pth
	printf '%s\n.\n' "$PWD/src/bar" >env/$site/bar.egg-link
	printf '{"url": "file://%s/src/baz", "dir_info": {"editable": true}}\n' "$PWD" \
		>env/$site/foo-1.0.dist-info/direct_url.json
	# not references outside: imports, comments, relative paths inside, non-editable urls
	printf 'import os; os.environ\n# %s\nlib\n../site-packages/x\n' "$PWD/src" >env/$site/ok.pth
	mkdir -p env/$site/qux-1.0.dist-info
	printf '{"url": "file://%s/src/qux.whl", "archive_info": {}}\n' "$PWD" \
		>env/$site/qux-1.0.dist-info/direct_url.json
	run -1 vine-pack -q -o a.tgz env
	assert_output "vine-pack: 'env' uses files outside it, which would not be packed: '$site/__editable__.foo-1.0.pth' adds to Python's path '$PWD/src/foo'; '$site/bar.egg-link' links an egg in '$PWD/src/bar'; '$site/foo-1.0.dist-info/direct_url.json' is an editable install of '$PWD/src/baz'; reinstall those packages into it without -e (pip install --no-deps --force-reinstall SOURCE), or pack it anyway with -E"
	[ ! -e a.tgz ]
	[ -z "$(ls -A . | grep vine-tmp)" ]
	# -E: packed, and named in the summary
	run -0 vine-pack -E -q -o a.tgz env
	assert_line --partial "vine-pack: warning: 'env' is not self-contained; every node needs what was packed anyway (-E): '$site/__editable__.foo-1.0.pth' adds to Python's path '$PWD/src/foo';"
	assert_output --partial "reinstall editable packages without -e."
	assert_line --regexp '^[0-9a-f]{64}$'
	[ -e a.tgz ]
}

@test "vine-pack: a relative .pth path that climbs out is refused; one inside is not" {
	mkdir -p env/$site
	echo ../../../../src >env/$site/up.pth
	run -1 vine-pack -q -o a.tgz env
	assert_output --partial "'$site/up.pth' adds to Python's path '../../../../src'"
	echo ../../../src >env/$site/up.pth
	run -0 vine-pack -q -o a.tgz env
	refute_output --partial "self-contained"
}

@test "vine-pack: a venv with symlinks: base interpreter and links in one summary" {
	mkdir -p v/bin v/lib
	printf 'home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n' >v/pyvenv.cfg
	for i in 1 2 3 4 5 6 7; do ln -s /usr/bin/python3 "v/bin/py$i"; done
	run --separate-stderr -0 vine-pack -q -o v.tgz v
	[ "$(grep -c . <<<"$stderr")" -eq 1 ]
	[ "$stderr" = "vine-pack: warning: 'v' is not self-contained; every node needs its base interpreter in '/usr/bin' (pyvenv.cfg home), what 7 symlinks lead to: 'bin/py1' -> '/usr/bin/python3', 'bin/py2' -> '/usr/bin/python3', 'bin/py3' -> '/usr/bin/python3', 'bin/py4' -> '/usr/bin/python3', 'bin/py5' -> '/usr/bin/python3' and 2 more. To make it self-contained: copy what the links lead to into it (python -m venv --copies for a venv's interpreter); a venv always runs its base Python's standard library, so make sure the nodes have it at that path, or pack a conda environment (or any Python installed inside the directory) instead." ]
	[[ $output =~ ^[0-9a-f]{64}$ ]]
}

@test "vine-pack: a self-contained tree gets no summary" {
	mkdir -p env/bin
	echo hi >env/bin/x
	ln -s x env/bin/y
	run --separate-stderr -0 vine-pack -q -o a.tgz env
	[ -z "$stderr" ]
}
