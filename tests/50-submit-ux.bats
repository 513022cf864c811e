#!/usr/bin/env bats
# vine-submit for a new user: tasks run where they were submitted, a named
# submission can be made again safely, mistakes create nothing.

bats_require_minimum_version 1.5.0
load helpers

@test "submit: tasks run in the directory vine-submit ran from, recorded with each task" {
	mkdir -p project/data
	echo 'print("hi from sweep")' >project/sweep.py
	echo 21 >project/data/n
	cd project
	printf 'cat data/n; pwd\ntest -d "$VINE_SCRATCH" && test -z "$(ls -A "$VINE_SCRATCH")" && echo scratch-empty\n' |
		vine-submit -s "$VINE_STATE"
	cd ..
	run -0 status_py 'j["cwd"]' 1
	assert_output "$PWD/project"
	run -0 vine-status 1
	assert_line "  directory: $PWD/project"
	run -0 vine-worker -i 0
	vine-collect -o out
	assert_equal "$(cat out/1/stdout)" $'21\n'"$PWD/project"
	assert_equal "$(cat out/2/stdout)" scratch-empty
}

@test "submit -C DIR / --chdir DIR: tasks run in DIR, made absolute; a bad DIR adds nothing" {
	mkdir -p elsewhere/sub
	echo pwd | vine-submit -C elsewhere/sub
	echo pwd | vine-submit --chdir "$PWD/elsewhere"
	run -0 vine-worker -i 0
	vine-collect -o out
	assert_equal "$(cat out/1/stdout)" "$PWD/elsewhere/sub"
	assert_equal "$(cat out/2/stdout)" "$PWD/elsewhere"
	run -1 vine-submit -C nowhere <<<'pwd'
	assert_output "vine-submit: -C: cannot use directory 'nowhere': No such file or directory"
	touch afile
	run -1 vine-submit -C afile <<<'pwd'
	assert_output "vine-submit: -C: 'afile' is not a directory"
	run -0 status_py 'j["tasks"]["total"]'
	assert_output 2
}

@test "submit: a directory the node cannot enter fails the attempt, naming it" {
	mkdir gone
	echo pwd | vine-submit -C gone
	rmdir gone
	run -0 vine-worker -i 0
	run -0 status_py 'j["attempts"][0]["message"]' 1
	assert_output "cannot enter directory '$PWD/gone': No such file or directory"
}

@test "submit: the vine-submit(1) sweep example runs as written" {
	fixture_venv "$PWD/venv"
	mkdir -p shared/envs
	vine-pack -o shared/envs/ml.tar.gz venv >/dev/null
	cat >sweep.py <<'EOF'
import argparse, os, sys
p = argparse.ArgumentParser()
p.add_argument("--seed", type=int)
a = p.parse_args()
print(a.seed * a.seed, sys.prefix == os.environ["VINE_ENV"])
EOF
	# the example, with the archive where this test keeps it
	run -0 sh -c "seq 5 | sed 's/.*/python sweep.py --seed &/' |
    vine-submit -s run.db -e $PWD/shared/envs/ml.tar.gz -n 2 -r 1"
	assert_output $'1\n2\n3\n4\n5'
	run -0 vine-worker -s run.db -n 2 -i 0
	run -0 vine-collect -s run.db -o results
	assert_equal "$(cat results/4/stdout)" "16 True"
	assert_equal "$(cat results/5/cmd)" "python sweep.py --seed 5"
	# and the --failed example
	run -0 vine-submit -s run.db --failed
	assert_output ''
}

@test "submit --name: the same list again adds nothing and prints the same ids" {
	printf 'echo a\necho b\n' >tasks
	run -0 vine-submit --name job-1 tasks
	assert_output $'1\n2'
	run -0 vine-submit --name job-1 tasks
	assert_output $'1\n2'
	run -0 vine-submit --name job-1 <tasks
	assert_output $'1\n2'
	run -0 status_py 'j["tasks"]["total"]'
	assert_output 2
	run -0 status_py 'j["submission"]' 2
	assert_output job-1
	# another name is another submission
	run -0 vine-submit --name job-2 tasks
	assert_output $'3\n4'
	# a different list, or the same one with other options, under a used name
	echo 'echo c' >>tasks
	run -1 vine-submit --name job-1 tasks
	assert_output "vine-submit: submission 'job-1' was made before with a different task list; nothing added (choose another name)"
	printf 'echo a\necho b\n' >tasks
	run -1 vine-submit --name job-1 -n 2 tasks
	assert_output --partial "submission 'job-1' was made before with a different task list"
	run -0 status_py 'j["tasks"]["total"]'
	assert_output 4
	run -2 vine-submit --name '' tasks
	assert_output --partial "--name: '' is not 1 to 256 bytes on one line"
}

@test "state: only vine-submit creates one; the others refuse a missing one with a hint" {
	for prog in "vine-worker -i 0" "vine-status" "vine-collect" "vine-cancel --all"; do
		# shellcheck disable=SC2086
		run -1 $prog -s typo.db
		assert_output "${prog%% *}: state 'typo.db' does not exist (vine-submit creates one; name yours with -s STATE or \$VINE_STATE)"
		assert_file_not_exists typo.db
	done
	# no -s and no $VINE_STATE: ./vine.db, named as such
	unset VINE_STATE
	run -1 vine-worker -i 0
	assert_output "vine-worker: state './vine.db' does not exist (vine-submit creates one; name yours with -s STATE or \$VINE_STATE)"
	assert_file_not_exists vine.db
}

@test "state: a state in a missing directory is named as such, for every program" {
	run -1 vine-submit -s nodir/run.db <<<'echo hi'
	assert_output "vine-submit: cannot open state 'nodir/run.db': directory 'nodir' does not exist"
	run -1 vine-worker -s nodir/run.db -i 0
	assert_output "vine-worker: cannot open state 'nodir/run.db': directory 'nodir' does not exist"
	touch plain
	run -1 vine-submit -s plain/run.db <<<'echo hi'
	assert_output "vine-submit: cannot open state 'plain/run.db': 'plain' is not a directory"
	assert_file_not_exists nodir
}

@test "state: the state file is 0600 and results 0700/0600 whatever the umask; the joblog follows the umask" {
	umask 000
	echo 'echo out; echo file >"$VINE_OUTDIR/f"' | vine-submit
	run -0 stat -c %a vine.db
	assert_output 600
	run -0 vine-worker -i 0
	run -0 sh -c 'find vine.db.results -type d -exec stat -c %a {} + | sort -u'
	assert_output 700
	run -0 sh -c 'find vine.db.results -type f -exec stat -c %a {} + | sort -u'
	assert_output 600
	(umask 077 && vine-collect -j log77)
	run -0 stat -c %a log77
	assert_output 600
	(umask 022 && vine-collect -j log22)
	run -0 stat -c %a log22
	assert_output 644
}

@test "submit --memory and --gpus are stored; bad values are usage errors" {
	echo a | vine-submit --memory 4GB --gpus 2
	echo b | vine-submit --memory 1.5GiB
	echo c | vine-submit --memory 123
	run -0 status_py '(j["memory"], j["gpus"])' 1
	assert_output '(4000000000, 2)'
	run -0 status_py 'j["memory"]' 2
	assert_output 1610612736
	run -0 status_py 'j["memory"]' 3
	assert_output 123
	run -0 vine-status 1
	assert_line "  cores 1, retries 0, failures 0, losses 0, memory 4.0 GB, GPUs 2"
	for bad in "--memory 4X" "--memory -1" "--memory 1.5" "--memory ''" "--gpus -1" "--gpus 2000"; do
		eval "run -2 vine-submit $bad <<<'echo x'"
		assert_output --partial "usage: vine-submit"
	done
}
