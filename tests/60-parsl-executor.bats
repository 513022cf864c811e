#!/usr/bin/env bats
# The Parsl executor (share/python/vine_parsl): its runner and the reading of
# vine programs' output as unit tests, VineExecutor driven directly through
# start/submit/shutdown, and under real Parsl (installed, else the vendored
# copy in ../shared/vendor beside the repository) against the real vine
# programs and workers.  The test logic is in tests/parsl/*.py (unittest).

bats_require_minimum_version 1.5.0
load helpers
load helpers-hosts

# pyunit [-p] MODULE [SKIPS]: run one unittest module of tests/parsl; pass
# only if its tests ran and passed with exactly SKIPS (default 0) skipped.
# -p: with the interpreter that imports Parsl (parsl_python).
pyunit() {
	local want=OK py=python3
	if [ "$1" = -p ]; then
		py=$PARSL_PY
		shift
	fi
	[ "${2:-0}" -eq 0 ] || want="OK (skipped=$2)"
	export TMPDIR="$BATS_TEST_TMPDIR"
	run "$py" -m unittest -v "$1"
	echo "$output"
	assert_success
	assert_output --regexp 'Ran [1-9][0-9]* test'
	assert_line -n -1 "$want"
}

# skips_unless MODULE: 0 if python3 can import MODULE, else 1
skips_unless() {
	python3 -c "import $1" 2>/dev/null && echo 0 || echo 1
}

# parsl_python: PARSL_PY is an interpreter that imports Parsl: python3 when
# Parsl is installed, else Debian's /usr/bin/python3 with the vendored copy
# (../shared/vendor beside the repository: Parsl and the two packages
# Debian 12 has too old; the rest are in install-deps.sh check); else skip.
# Bytecode goes to a directory of the build (the vendored copy may be
# read-only), or every interpreter would compile Parsl again.
parsl_python() {
	local v="$VINE_TOP/../shared/vendor"
	unset PYTHONDONTWRITEBYTECODE
	export PYTHONPYCACHEPREFIX="$VINE_FIXTURES/pycache"
	if python3 -c 'import parsl' 2>/dev/null; then
		PARSL_PY=python3
		return 0
	fi
	[ -d "$v/parsl/parsl" ] || skip "Parsl is not installed and ../shared/vendor has no copy"
	v=$(cd "$v" && pwd)
	export PYTHONPATH="$PYTHONPATH:$v/parsl:$v/pydeps"
	run /usr/bin/python3 -c 'import parsl'
	[ "$status" -eq 0 ] || skip "the vendored Parsl does not import: $output (sh share/install-deps.sh check)"
	PARSL_PY=/usr/bin/python3
}

setup() {
	vine_setup
	export PYTHONPATH="$VINE_TOP/share/python:$VINE_TOP/tests/parsl"
	cd "$VINE_TOP/tests/parsl"
}

@test "runner: calls, results, remote exceptions, exit statuses" {
	pyunit test_runner "$(skips_unless cloudpickle)"
}

@test "vine_cli: task lines, resource_specification mapping, vine output" {
	pyunit test_cli
}

@test "executor driven directly, cold mode: results, failures, batching, shutdown" {
	pyunit test_executor
}

@test "executor: tasks run in a packed environment" {
	fixture_venv "$BATS_TEST_TMPDIR/venv"
	run -0 vine-pack -o "$BATS_TEST_TMPDIR/env.tar.gz" "$BATS_TEST_TMPDIR/venv"
	rm -rf "$BATS_TEST_TMPDIR/venv"
	VINE_PARSL_TEST_ENV="$BATS_TEST_TMPDIR/env.tar.gz" pyunit test_env
}

@test "under Parsl: apps, files, exceptions, retries, walltime, resources, monitoring, shutdown, liveness" {
	parsl_python
	pyunit -p test_parsl
}

# the ```python block after "`workflow.py`" in share/doc/parsl.md
doc_workflow() {
	awk '/^`workflow.py`/ { f = 1; next } f && /^```python/ { p = 1; next }
	     p && /^```/ { exit } p { print }' "$VINE_TOP/share/doc/parsl.md"
}

@test "under Parsl: share/doc/parsl.md's configuration runs as written" {
	parsl_python
	local wf="$BATS_TEST_TMPDIR/wf" env="$BATS_TEST_TMPDIR/env" v
	mkdir -p "$wf"
	doc_workflow >"$wf/workflow.py"
	grep -q 'VineExecutor(' "$wf/workflow.py"
	# the environment: a venv of the interpreter that has Parsl (with its
	# Debian packages), the vendored Parsl copied in when that is where it is
	"$PARSL_PY" -m venv --copies --system-site-packages --without-pip "$env"
	if [ "$PARSL_PY" = /usr/bin/python3 ]; then
		v=$(cd "$VINE_TOP/../shared/vendor" && pwd)
		cp -r "$v/parsl/parsl" "$v"/pydeps/* "$env"/lib/python3*/site-packages/
	fi
	run -0 vine-pack -o "$wf/wf.tar.gz" "$env"
	rm -rf "$env"
	# only vine-submit makes a state: register the environment first, as a
	# job script submits before its workers start
	run -0 vine-submit -s "$wf/run.db" -e "$wf/wf.tar.gz" </dev/null
	# tasks find Parsl in the environment only
	PYTHONPATH= spawn "$BATS_TEST_TMPDIR/worker.log" vine-worker -s "$wf/run.db" -n 2 -i 120
	cd "$BATS_TEST_TMPDIR"
	run --separate-stderr -0 timeout 300 "$PARSL_PY" "$wf/workflow.py"
	assert_output --partial "done: 101 runs"
	run -0 cat "$BATS_TEST_TMPDIR/report.txt"
	assert_output --regexp '^total -?[0-9]+\.[0-9]{3}$'
}

@test "under Parsl: the state over ssh:// and workers on three simulated nodes" {
	parsl_python
	hosts_require
	host_start
	nodes_init 3
	local i state="$BATS_TEST_TMPDIR/run.db"
	# only vine-submit makes a state: register an environment (no tasks)
	local none="$BATS_TEST_TMPDIR/none"
	mkdir -p "$none" && : >"$none/.keep" && vine-pack -q -o "$none.tgz" "$none" >/dev/null
	run -0 vine-submit -s "$state" -e "$none.tgz" </dev/null
	for i in 1 2 3; do
		PYTHONPATH= node_spawn "$i" vine-worker -s "$HOST_URL$state" -n 1 \
			-l "${NODE_LISTEN[i]}" -i 120
	done
	cd "$BATS_TEST_TMPDIR"
	run --separate-stderr -0 timeout 300 "$PARSL_PY" "$VINE_TOP/tests/parsl/wf_nodes.py" "$HOST_URL$state" 15
	assert_output "$(printf 'node1\nnode2\nnode3')"
}
