#!/usr/bin/env bats
# The Parsl executor (share/python/vine_parsl): its runner, the reading of
# vine programs' output, and VineExecutor driven through start/submit/
# shutdown against a test double of the vine programs and, once they are
# built, the real ones.  The test logic is in tests/parsl/*.py (unittest).

bats_require_minimum_version 1.5.0
load helpers

# pyunit MODULE [SKIPS]: run one unittest module of tests/parsl; pass only
# if its tests ran and passed with exactly SKIPS (default 0) skipped.
pyunit() {
	local want=OK
	[ "${2:-0}" -eq 0 ] || want="OK (skipped=$2)"
	export TMPDIR="$BATS_TEST_TMPDIR"
	run python3 -m unittest -v "$1"
	echo "$output"
	assert_success
	assert_output --regexp 'Ran [1-9][0-9]* test'
	assert_line -n -1 "$want"
}

# skips_unless MODULE: 0 if python3 can import MODULE, else 1
skips_unless() {
	python3 -c "import $1" 2>/dev/null && echo 0 || echo 1
}

# the test double, linked under each program name, first on PATH
use_fake_vine() {
	local d="$BATS_TEST_TMPDIR/fakebin" p
	mkdir -p "$d"
	for p in vine-submit vine-status vine-worker vine-collect; do
		ln -s "$VINE_TOP/tests/parsl/fakevine.py" "$d/$p"
	done
	export PATH="$d:$PATH"
}

have_real_vine() {
	local p
	for p in vine-submit vine-status vine-worker vine-collect; do
		[ -x "$VINE_BIN/$p" ] || return 1
	done
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

@test "vine_parsl imports without Parsl and implements ParslExecutor" {
	pyunit test_import "$((1 - $(skips_unless parsl)))"
}

@test "executor: results, failures, batching, shutdown (vine test double)" {
	use_fake_vine
	pyunit test_executor
}

@test "executor: results, failures, batching, shutdown (real vine programs)" {
	have_real_vine || skip "vine-submit/-status/-worker/-collect are not built yet"
	pyunit test_executor 1   # one test needs the double's worker
}

@test "executor: tasks run in a packed environment (real vine programs)" {
	have_real_vine || skip "vine-submit/-status/-worker/-collect are not built yet"
	[ -x "$VINE_BIN/vine-pack" ] || skip "vine-pack is not built yet"
	fixture_venv "$BATS_TEST_TMPDIR/venv"
	run -0 vine-pack -o "$BATS_TEST_TMPDIR/env.tar.gz" "$BATS_TEST_TMPDIR/venv"
	rm -rf "$BATS_TEST_TMPDIR/venv"
	VINE_PARSL_TEST_ENV="$BATS_TEST_TMPDIR/env.tar.gz" pyunit test_env
}

@test "executor under Parsl: python_apps through the DataFlowKernel" {
	python3 -c 'import parsl' 2>/dev/null || skip "Parsl is not installed (no PyPI here)"
	have_real_vine || use_fake_vine
	pyunit test_parsl
}
