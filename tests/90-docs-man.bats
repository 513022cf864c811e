#!/usr/bin/env bats
# The documentation promises: every program has an mdoc page with the
# sections users look for, and every page is lint-clean.

load helpers

@test "docs: every program has a man page with EXIT STATUS, ENVIRONMENT, FILES and EXAMPLES" {
	for c in "$VINE_TOP"/cmd/vine-*.c; do
		name=$(basename "$c" .c)
		page="$VINE_TOP/man/$name.1"
		assert_file_exists "$page"
		for s in SYNOPSIS DESCRIPTION "EXIT STATUS" ENVIRONMENT FILES EXAMPLES; do
			grep -q "^\.Sh $s\$" "$page" || fail "$name.1 has no $s section"
		done
	done
}

@test "docs: man pages are lint-clean" {
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	run -0 mandoc -Tlint -W warning "$VINE_TOP"/man/*.1 "$VINE_TOP"/man/vine.7
	assert_output ''
}

@test "docs: vine(7) describes the state file, the protocols and the cache" {
	for s in "ARCHIVE FORMAT" "NODE CACHE" "STATE FILE" "STATE PROTOCOL" "PEER PROTOCOL" SECURITY; do
		run -0 awk -v s="$s" '$0 == ".Sh " s { on = 1; next } /^\.Sh / { on = 0 } on && !/^\.\\"/ { n++ } END { print n + 0 }' "$VINE_TOP/man/vine.7"
		[ "$output" -gt 10 ] || fail "vine(7) section $s is nearly empty ($output lines)"
	done
}
