#!/usr/bin/env bats
# Every program one shape: --help and -h print the usage (every option its
# man page's SYNOPSIS names) on stdout and exit 0; --version prints the
# version; an unknown option or an empty value is a usage error, exit 2.

bats_require_minimum_version 1.5.0
load helpers

PROGRAMS="vine-collect vine-pack vine-seed vine-spread vine-state vine-status vine-submit vine-worker"

# synopsis_options PROG: each option named in man/PROG.1's SYNOPSIS, one a line
synopsis_options() {
	awk '/^\.Sh SYNOPSIS/ { p = 1; next } /^\.Sh/ { p = 0 } p' "$VINE_TOP/man/$1.1" | sed 's/Fl Fl /Fl \\-/g' |
		grep -o 'Fl [^ ]*' | sed 's/^Fl //; s/\\//g' | while read -r f; do
			case $f in
			-) ;;                                  # "Fl -" before a command
			-*) echo "-$f" ;;                      # Fl \-json: --json
			[a-zA-Z]*) [ ${#f} -eq 1 ] && echo "-$f" ||
				for ((i = 0; i < ${#f}; i++)); do echo "-${f:i:1}"; done ;;
			esac
		done | sort -u
}

@test "every program: --help and -h print the usage on stdout and exit 0" {
	for p in $PROGRAMS; do
		run --separate-stderr -0 "$p" --help
		assert_line -n 0 --partial "usage: $p "
		[ -z "$stderr" ]
		local help=$output
		run --separate-stderr -0 "$p" -h
		assert_output "$help"
	done
}

@test "every program: --version prints its name and the version, exit 0" {
	for p in $PROGRAMS; do
		run --separate-stderr -0 "$p" --version
		assert_output --regexp "^$p [0-9]+\.[0-9]+\.[0-9]+\$"
	done
}

@test "every program: -h lists every option its man page's SYNOPSIS names" {
	for p in $PROGRAMS; do
		run -0 "$p" -h
		local help=$output n=0
		for opt in $(synopsis_options "$p"); do
			grep -qE -- "(^|[ [])$opt( |\$)" <<<"$help" || fail "$p -h does not list $opt"
			n=$((n + 1))
		done
		[ "$n" -gt 0 ] || fail "no options found in $p's SYNOPSIS"
	done
}

@test "every program: an unknown option is a usage error, exit 2" {
	for p in $PROGRAMS; do
		run --separate-stderr -2 "$p" -Z
		assert_equal "$output" ""
		[[ $stderr == *"usage: $p "* ]] || fail "$p -Z: no usage on stderr"
	done
}

@test "empty option values are usage errors with a clear message" {
	for args in "vine-pack -o '' src" "vine-collect -s ''" "vine-collect -o ''" "vine-collect -j ''" \
		"vine-seed -c '' a.tgz" "vine-seed -s '' $(printf '%064d' 0)" "vine-worker -s ''" \
		"vine-worker -c ''" "vine-worker -N ''" "vine-status -s ''" "vine-submit -s ''" \
		"vine-submit -e ''" "vine-spread -c '' --serve" "vine-spread --secret-file '' --serve" \
		"vine-state -s ''"; do
		eval "run -2 $args"
		assert_output --partial ": the value is empty"
		assert_output --partial "usage: "
	done
}

@test "numbers and seconds are checked one way, naming the option" {
	run -2 vine-worker -n 0
	assert_line -n 0 "vine-worker: -n: '0' is not a number from 1 to 4096"
	run -2 vine-worker -i -1
	assert_line -n 0 "vine-worker: -i: '-1' is not a number of seconds from 0 up to 31622400"
	run -2 vine-submit -t 0
	assert_line -n 0 --partial "vine-submit: -t: '0' is not a number of seconds above 0"
	run -2 vine-spread -u 2000 --serve
	assert_line -n 0 "vine-spread: -u: '2000' is not a number from 1 to 1024"
}
