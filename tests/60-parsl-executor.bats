#!/usr/bin/env bats
# The Parsl executor (share/python/vine_parsl): its runner, the reading of
# vine programs' output, and VineExecutor driven through start/submit/
# shutdown against a test double of the vine programs and, once they are
# built, the real ones.  The test logic is in tests/parsl/*.py (unittest).

bats_require_minimum_version 1.5.0
load helpers

# pyunit MODULE: run one unittest module of tests/parsl; pass only if every
# test in it ran and passed (skips only where the caller allows them).
pyunit() {
	export TMPDIR="$BATS_TEST_TMPDIR"
	run python3 -m unittest -v "$1"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ Ran\ [1-9][0-9]*\ test ]]
	if [ -z "${ALLOW_SKIP:-}" ]; then
		! [[ "$output" =~ skipped ]]
	fi
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
	ALLOW_SKIP=cloudpickle pyunit test_runner
}

@test "vine_cli: task lines, resource_specification mapping, vine output" {
	pyunit test_cli
}

@test "vine_parsl imports without Parsl and implements ParslExecutor" {
	ALLOW_SKIP=parsl-installed pyunit test_import
}

@test "executor: results, failures, batching, shutdown (vine test double)" {
	use_fake_vine
	pyunit test_executor
}

@test "executor: results, failures, batching, shutdown (real vine programs)" {
	have_real_vine || skip "vine-submit/-status/-worker/-collect are not built yet"
	pyunit test_executor
}

@test "executor under Parsl: python_apps through the DataFlowKernel" {
	python3 -c 'import parsl' 2>/dev/null || skip "Parsl is not installed (no PyPI here)"
	have_real_vine || use_fake_vine
	pyunit test_parsl
}
