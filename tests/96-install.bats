#!/usr/bin/env bats
# make install / make uninstall into a DESTDIR, under umask 077: explicit
# modes, a bash completion for every program, nothing left behind.

bats_require_minimum_version 1.5.0
load helpers

# mk TARGET: make TARGET with the programs already built in VINE_BIN's build
mk() {
	make -s -C "$VINE_TOP" O="$(dirname "$VINE_BIN")" DESTDIR="$BATS_TEST_TMPDIR/dest" PREFIX=/opt/vine "$@"
}

@test "make install: modes 0755/0644 whatever the umask, completion for every program; make uninstall" {
	umask 077
	run -0 mk install
	p=$BATS_TEST_TMPDIR/dest/opt/vine
	for b in "$VINE_BIN"/vine-*; do
		n=${b##*/}
		[ "$(stat -c %a "$p/bin/$n")" = 755 ]
		[ "$(stat -c %a "$p/share/man/man1/$n.1")" = 644 ]
		[ "$(stat -c %a "$p/share/bash-completion/completions/$n")" = 644 ]
		# the completion knows the program's options
		run -0 bash -c 'source "$1"; COMP_WORDS=("$2" -); COMP_CWORD=1; _vine; printf "%s\n" "${COMPREPLY[@]}"' \
			_ "$p/share/bash-completion/completions/$n" "$n"
		assert_line -- -h
	done
	[ "$(stat -c %a "$p/share/man/man7/vine.7")" = 644 ]
	[ "$(stat -c %a "$p/share/vine/doc/archive-format.md")" = 644 ]
	[ "$(stat -c %a "$p/share/vine/spack/package.py")" = 644 ]
	[ "$(stat -c %a "$p/share/vine/slurm/vine-workers.sbatch")" = "$( [ -x "$VINE_TOP/share/slurm/vine-workers.sbatch" ] && echo 755 || echo 644)" ]
	[ -z "$(find "$p" -type d ! -perm 0755)" ]
	[ -z "$(find "$p" -type f ! -perm 0755 ! -perm 0644)" ]
	run -0 bash -c 'source "$1"; COMP_WORDS=(vine-cache ""); COMP_CWORD=1; _vine; printf "%s\n" "${COMPREPLY[@]}"' \
		_ "$p/share/bash-completion/completions/vine-cache"
	assert_output "list
prune"
	# installed programs run
	run -0 "$p/bin/vine-cache" -h
	assert_output --partial usage
	run -0 mk uninstall
	[ -z "$(find "$BATS_TEST_TMPDIR/dest" -type f -o -type l)" ]
	[ ! -e "$p/share/vine" ]
}

@test "the Spack recipe names no made-up home, and tests every installed program" {
	run -0 python3 - "$VINE_TOP/share/spack/package.py" "$VINE_TOP/cmd" <<'PY'
import ast, os, sys
tree = ast.parse(open(sys.argv[1]).read())
cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Vine")
attrs = {t.id: n.value for n in cls.body if isinstance(n, ast.Assign) for t in n.targets
         if isinstance(t, ast.Name)}
# no public home yet: a site sets git and homepage with package_attributes
print(sorted(a for a in ("homepage", "git", "url") if a in attrs))
progs = sorted(ast.literal_eval(attrs["programs"]))
built = sorted(f[:-2] for f in os.listdir(sys.argv[2]) if f.startswith("vine-") and f.endswith(".c"))
print(progs == built, set(built) - set(progs))
PY
	assert_output $'[]\nTrue set()'
}
