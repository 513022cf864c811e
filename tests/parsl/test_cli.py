"""Command construction and the reading of vine programs' output
(vine_parsl.vine_cli), and resource_specification mapping."""

import os
import shlex
import stat
import subprocess
import tempfile
import unittest

from vine_parsl import VineResourceSpecError, vine_cli
from vine_parsl.errors import VineCommandError, VineSubmitError
from vine_parsl.executor import collect_due, task_options
from vine_parsl.vine_cli import TaskOptions


class CommandTest(unittest.TestCase):
    def test_task_command_is_one_shell_line(self):
        c = vine_cli.task_command("python3", "/opt/vine/vine_runner.py", "/home/a b/it's/7")
        self.assertNotIn("\n", c)
        self.assertEqual(shlex.split(c), ["python3", "/opt/vine/vine_runner.py",
                                          "/home/a b/it's/7"])
        # and the shell runs it as those three words
        out = subprocess.run(["sh", "-c", c.replace("python3", "printf '%s|'", 1)],
                             capture_output=True, text=True).stdout
        self.assertEqual(out, "/opt/vine/vine_runner.py|/home/a b/it's/7|")

    def test_line_break_in_a_path_is_refused(self):
        with self.assertRaisesRegex(ValueError, "call directory path has a line break"):
            vine_cli.task_command("python3", "/r.py", "/tmp/a\nb")

    def test_options_argv(self):
        self.assertEqual(TaskOptions().argv(), [])
        self.assertEqual(TaskOptions("/e.tar.gz", 4, 2, 60, "t1").argv(),
                         ["-e", "/e.tar.gz", "-n", "4", "-r", "2", "-t", "60", "--tag", "t1"])
        self.assertEqual(TaskOptions(retries=0).argv(), ["-r", "0"])
        self.assertEqual(TaskOptions(cores=2).cores, 2)


class ResourceSpecTest(unittest.TestCase):
    def test_mapping_and_defaults(self):
        d = TaskOptions(env="/d.tar.gz", cores=1)
        self.assertEqual(task_options({}, d), d)
        self.assertEqual(task_options(None, d), d)
        self.assertEqual(task_options({"cores": 8, "retries": 3, "timeout": 90.0}, d),
                         TaskOptions("/d.tar.gz", 8, 3, 90, None))
        self.assertEqual(task_options({"env": "/other.tar.gz", "tag": 5}, d),
                         TaskOptions("/other.tar.gz", 1, None, None, "5"))
        # equal specs group together: the options are the batch key
        self.assertEqual(hash(task_options({"cores": 2}, d)), hash(task_options({"cores": 2.0}, d)))

    def test_bad_specs(self):
        d = TaskOptions()
        for spec, msg in (({"memory": 100}, r"vine cannot honour 'memory'"),
                          ({"cores": 0}, "'cores' must be an integer >= 1"),
                          ({"cores": 1.5}, "'cores' must be an integer"),
                          ({"cores": True}, "'cores' must be an integer"),
                          ({"retries": -1}, "'retries' must be an integer >= 0"),
                          ({"timeout": "10"}, "'timeout' must be an integer >= 1"),
                          ({"env": 3}, "'env' must be a path"),
                          ([1], "must be a dict")):
            with self.subTest(spec=spec):
                with self.assertRaisesRegex(VineResourceSpecError, msg):
                    task_options(spec, d)


class StatusTest(unittest.TestCase):
    def test_counts_that_only_grow(self):
        a = vine_cli.status_signature({"tasks": {"ready": 5, "running": 1, "done": 2, "failed": 0}})
        b = vine_cli.status_signature({"tasks": {"ready": 4, "running": 2, "done": 2, "failed": 0}})
        c = vine_cli.status_signature({"tasks": {"ready": 4, "running": 1, "done": 3, "failed": 0}})
        self.assertEqual(a, b)  # moving between ready and running changes nothing
        self.assertNotEqual(b, c)
        self.assertEqual(vine_cli.status_signature({"tasks": {"counts": {"done": 1}}}),
                         (("done", 1),))

    def test_per_task_list(self):
        s = vine_cli.status_signature({"tasks": [{"id": 1, "state": "done"},
                                                 {"id": 2, "state": "running"}]})
        self.assertEqual(s, (("1", "done"),))

    def test_unknown_shapes_mean_collect_every_poll(self):
        for obj in ([], {}, {"tasks": 3}, {"tasks": ["x"]}, None):
            self.assertIsNone(vine_cli.status_signature(obj))


class CollectDueTest(unittest.TestCase):
    def test_collect_when_changed_unless_collecting_is_slow(self):
        self.assertTrue(collect_due(0.2, True, 0.05, 10))
        self.assertFalse(collect_due(0.2, False, 0.05, 10))
        # a collect that took 1 s waits 3 s before the next, changes or not
        self.assertFalse(collect_due(2.9, True, 1.0, 10))
        self.assertTrue(collect_due(3.0, True, 1.0, 10))
        # the interval forces one anyway
        self.assertTrue(collect_due(10, False, 0.05, 10))
        self.assertTrue(collect_due(10, True, 5, 10))


class TaskDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = os.path.join(self.tmp.name, "12")
        os.mkdir(self.d)

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        p = os.path.join(self.d, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)

    def test_not_final_without_exit(self):
        self.write("cmd", "python3 r c\n")
        self.assertIsNone(vine_cli.read_task_dir(self.d, "R"))

    def test_final(self):
        self.write("exit", "0\n")
        self.write("stderr", "x" * 5000 + "END")
        self.write("R", "r")
        o = vine_cli.read_task_dir(self.d, "R")
        self.assertEqual((o.exit, o.exit_code, o.result), ("0", 0, os.path.join(self.d, "R")))
        self.assertEqual(len(o.stderr), vine_cli.STDERR_TAIL)
        self.assertTrue(o.stderr.endswith("END"))

    def test_result_one_level_down_and_signal_exit(self):
        self.write("exit", "signal 9\n")
        self.write("out/R", "r")
        o = vine_cli.read_task_dir(self.d, "R")
        self.assertIsNone(o.exit_code)
        self.assertEqual(o.exit, "signal 9")
        self.assertEqual(o.result, os.path.join(self.d, "out", "R"))
        self.assertEqual(o.stderr, "")


def script(dirpath, name, body):
    p = os.path.join(dirpath, name)
    with open(p, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(p, os.stat(p).st_mode | stat.S_IXUSR)
    return p


class ProgramsTest(unittest.TestCase):
    """VinePrograms against tiny shell doubles: argv, stdin, exit codes."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.bin = self.tmp.name
        self.log = os.path.join(self.bin, "log")
        self.p = vine_cli.VinePrograms("/st/v.db", self.bin, timeout=5)

    def tearDown(self):
        self.tmp.cleanup()

    def test_submit_argv_stdin_and_ids(self):
        script(self.bin, "vine-submit",
               'echo "$@" >"%s"; n=0; while read -r l; do n=$((n+1)); echo "t$n"; done\n' % self.log)
        ids = self.p.submit(["cmd a", "cmd b"], TaskOptions(cores=2, retries=1))
        self.assertEqual(ids, ["t1", "t2"])
        with open(self.log) as f:
            self.assertEqual(f.read(), "-s /st/v.db -n 2 -r 1 -\n")

    def test_submit_failure_and_short_output(self):
        script(self.bin, "vine-submit", 'cat >/dev/null; echo "vine-submit: bad" >&2; exit 1\n')
        with self.assertRaisesRegex(VineSubmitError, r"failed \(exit 1\): vine-submit: bad"):
            self.p.submit(["a"], TaskOptions())
        script(self.bin, "vine-submit", 'cat >/dev/null; echo 1\n')
        with self.assertRaisesRegex(VineSubmitError, "printed 1 task ids for 2 commands"):
            self.p.submit(["a", "b"], TaskOptions())

    def test_missing_program(self):
        with self.assertRaisesRegex(VineSubmitError, "cannot run '.*vine-submit'"):
            self.p.submit(["a"], TaskOptions())
        with self.assertRaisesRegex(VineCommandError, "cannot run '.*vine-status'"):
            self.p.status()

    def test_status_json(self):
        script(self.bin, "vine-status", 'echo "$@" >"%s"; echo \'{"tasks": {"done": 1}}\'\n'
               % self.log)
        self.assertEqual(self.p.status(), {"tasks": {"done": 1}})
        with open(self.log) as f:
            self.assertEqual(f.read(), "-s /st/v.db --json\n")
        script(self.bin, "vine-status", "echo nope\n")
        with self.assertRaisesRegex(VineCommandError, "printed no JSON object"):
            self.p.status()

    def test_collect_exit_1_is_not_an_error_but_2_is(self):
        script(self.bin, "vine-collect", 'echo "$@" >"%s"; exit 1\n' % self.log)
        self.p.collect("/out")
        with open(self.log) as f:
            self.assertEqual(f.read(), "-s /st/v.db -q -n -d -o /out\n")
        script(self.bin, "vine-collect", "echo usage >&2; exit 2\n")
        with self.assertRaisesRegex(VineCommandError, r"exit 2\): usage"):
            self.p.collect("/out")

    def test_timeout(self):
        script(self.bin, "vine-status", "exec sleep 10\n")
        self.p.timeout = 0.3
        with self.assertRaisesRegex(VineCommandError, "took longer than 0.3 s"):
            self.p.status()


if __name__ == "__main__":
    unittest.main()
