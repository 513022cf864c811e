# tests/seed-helpers.bash - helpers for the vine-seed tests: `load seed-helpers`
# after `load helpers`.

# mkvarchive ARGS: build a vine-format archive (tests/tools/mkvarchive.py)
mkvarchive() {
	python3 "$VINE_TOP/tests/tools/mkvarchive.py" "$@"
}

# spec_archive OUT JSON [OPTION...]: an archive from a JSON entry list
spec_archive() {
	local out=$1 json=$2
	shift 2
	printf '%s\n' "$json" >"$out.json"
	mkvarchive -o "$out" --spec "$out.json" "$@"
}

# layout ARCHIVE KEY: a number from mkvarchive --layout output saved in ARCHIVE.layout
layout() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, d))' "$1.layout" "$2"
}

# flip FILE OFFSET: invert one byte
flip() {
	python3 -c 'import sys
f = open(sys.argv[1], "r+b"); o = int(sys.argv[2]); f.seek(o); b = f.read(1); f.seek(o); f.write(bytes([b[0] ^ 0xff]))' "$1" "$2"
}

# assert_no_debris [CACHE]: nothing left in tmp/ or partial/
assert_no_debris() {
	local c=${1:-$VINE_CACHE}
	if [ -n "$(ls -A "$c/tmp" "$c/partial" 2>/dev/null | grep -v ':$' | grep -v '^$')" ]; then
		ls -la "$c/tmp" "$c/partial" >&2
		return 1
	fi
}

# assert_nothing_ready [CACHE]: env/ is empty
assert_nothing_ready() {
	local c=${1:-$VINE_CACHE}
	if [ -n "$(ls -A "$c/env" 2>/dev/null)" ]; then
		ls -la "$c/env" >&2
		return 1
	fi
}

# snapshot DIR: names, link counts, sizes and contents' sums of everything in DIR
snapshot() {
	find "$1" -printf '%p %y %n %s\n' | sort
	find "$1" -type f -exec sha256sum {} + | sort
}
