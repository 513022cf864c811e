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

# wait_until SECONDS COMMAND...: retry COMMAND every 0.05 s until it
# succeeds; fail after SECONDS (a decimal is fine).
wait_until() {
	local end
	end=$(( ${EPOCHREALTIME/./} + $(awk -v s="$1" 'BEGIN { printf "%d", s * 1000000 }') ))
	shift
	until "$@"; do
		if [ "${EPOCHREALTIME/./}" -gt "$end" ]; then
			echo "timed out waiting for: $*" >&2
			return 1
		fi
		sleep 0.05
	done
}

# status_py EXPR [TASK]: print the Python expression EXPR evaluated on
# `vine-status --json [TASK]`, bound to j.
status_py() {
	vine-status --json ${2:+"$2"} | python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"
}

# sanitized: true when the programs under test were built with sanitizers
# (which reserve terabytes of address space: no ulimit -v for them).
sanitized() {
	case "$VINE_BIN" in *build-san*) return 0 ;; esac
	return 1
}
