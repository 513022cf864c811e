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

@test "a malformed state name, with -s or in VINE_STATE, is a usage error naming it" {
	local id
	id=$(printf '%064d' 0)
	for v in 'ssh://' 'ssh://host' 'ssh://:/x' 'ssh://host:' 'ssh://host:/x' 'ssh://host:0/x' \
		'ssh://host:99999/x' 'ssh://me@/x' 'ssh://host/' 'ftp://host/x'; do
		for p in vine-cancel vine-collect vine-status vine-submit vine-worker; do
			local args=()
			[ "$p" = vine-cancel ] && args=(--all)
			run -2 "$p" -s "$v" "${args[@]}"
			assert_line -n 0 --partial "$p: -s: '$v': "
			assert_output --partial "usage: $p "
			VINE_STATE=$v run -2 "$p" "${args[@]}"
			assert_line -n 0 --partial "$p: VINE_STATE: '$v': "
		done
		run -2 vine-seed -s "$v" "$id"
		assert_line -n 0 --partial "vine-seed: -s: '$v': "
		run -2 vine-spread -s "$v" "$id"
		assert_line -n 0 --partial "vine-spread: -s: '$v': "
	done
	# the reason, each kind once
	run -2 vine-status -s 'ssh://host'
	assert_line -n 0 "vine-status: -s: 'ssh://host': expected ssh://[user@]host[:port]/absolute/path"
	run -2 vine-status -s 'ssh://:/x'
	assert_line -n 0 "vine-status: -s: 'ssh://:/x': empty host name"
	run -2 vine-status -s 'ssh://host:0/x'
	assert_line -n 0 "vine-status: -s: 'ssh://host:0/x': bad port"
	run -2 vine-status -s 'ftp://host/x'
	assert_line -n 0 "vine-status: -s: 'ftp://host/x': unknown URL scheme"
	# nothing was created
	run ls -A
	assert_output ""
}
