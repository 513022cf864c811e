"""vine_runner.py run standalone, as a task runs it, and the client-side
codec that reads what it writes.  No vine programs involved."""

import json
import os
import pickle
import subprocess
import sys
import tempfile
import unittest

import funcs
from vine_parsl import codec, vine_runner
from vine_parsl.errors import RemoteTraceback, VineRemoteError

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = vine_runner.__file__


def run_runner(*args, outdir=None, env=None):
    e = dict(os.environ)
    e.pop("VINE_OUTDIR", None)
    e.pop("PYTHONPATH", None)  # the runner must find funcs through python_path
    if outdir is not None:
        e["VINE_OUTDIR"] = outdir
    e.update(env or {})
    return subprocess.run([sys.executable, RUNNER, *args], capture_output=True, text=True,
                          env=e, cwd="/")


class RunnerTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.out = os.path.join(self.dir, "out")
        os.mkdir(self.out)

    def tearDown(self):
        self.tmp.cleanup()

    def call(self, func, *args, serializer="pickle", python_path=(HERE,), **kwargs):
        d = os.path.join(self.dir, "call")
        codec.write_call(d, codec.call_blob(func, args, kwargs, serializer), serializer, python_path)
        return d

    def result(self, where=None, serializer="pickle"):
        return codec.read_result(os.path.join(where or self.out, vine_runner.RESULT_NAME),
                                 serializer)

    def test_value_comes_back_in_outdir(self):
        p = run_runner(self.call(funcs.add, 2, b=40), outdir=self.out,
                       env={"VINE_TASK_ID": "17", "VINE_NODE": "n3"})
        self.assertEqual(p.returncode, 0, p.stderr)
        r = self.result()
        self.assertTrue(r.ok)
        self.assertEqual(r.value, 42)
        self.assertEqual((r.task, r.node), ("17", "n3"))
        # published atomically: nothing but the result is left behind
        self.assertEqual(os.listdir(self.out), [vine_runner.RESULT_NAME])

    def test_without_outdir_result_goes_beside_the_call(self):
        d = self.call(funcs.add, 1, 2)
        p = run_runner(d)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.result(d).value, 3)
        self.assertEqual(os.listdir(self.out), [])

    def test_exception_is_a_result_with_traceback(self):
        p = run_runner(self.call(funcs.boom, "kaput"), outdir=self.out,
                       env={"VINE_TASK_ID": "5"})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("ValueError: kaput", p.stderr)  # also in the task's stderr
        r = self.result()
        self.assertFalse(r.ok)
        self.assertIsInstance(r.exception, ValueError)
        self.assertEqual(str(r.exception), "kaput")
        tb = r.exception.remote_traceback
        self.assertIn("in boom", tb)
        self.assertIn("raise ValueError(msg)", tb)
        self.assertIsInstance(r.exception.__cause__, RemoteTraceback)
        self.assertIn("vine task 5", str(r.exception.__cause__))

    def test_exception_that_does_not_unpickle_becomes_remote_error(self):
        p = run_runner(self.call(funcs.raise_needs_two), outdir=self.out)
        self.assertEqual(p.returncode, 0, p.stderr)
        exc = self.result().exception
        self.assertIsInstance(exc, VineRemoteError)
        self.assertEqual(exc.exc_type, "funcs.NeedsTwo")
        self.assertEqual(exc.message, "x/y")
        self.assertIn("raise NeedsTwo", exc.remote_traceback)

    def test_sys_exit_in_the_function_is_a_result(self):
        p = run_runner(self.call(funcs.exit_with, 7), outdir=self.out)
        self.assertEqual(p.returncode, 0, p.stderr)
        exc = self.result().exception
        self.assertIsInstance(exc, SystemExit)
        self.assertEqual(exc.code, 7)

    def test_unserializable_value_is_reported_as_an_error(self):
        p = run_runner(self.call(funcs.unpicklable_result), outdir=self.out)
        self.assertEqual(p.returncode, 0, p.stderr)
        exc = self.result().exception
        self.assertIsInstance(exc, TypeError)
        self.assertIn("could not be serialized", str(exc))

    def test_runner_directory_does_not_shadow_task_modules(self):
        p = run_runner(self.call(funcs.import_file, "codec"), outdir=self.out)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIsInstance(self.result().exception, ModuleNotFoundError)

    def test_value_that_does_not_deserialize_here(self):
        remote = os.path.join(self.dir, "remote")
        os.mkdir(remote)
        p = run_runner(self.call(funcs.remote_only_object, remote), outdir=self.out,
                       env={"VINE_TASK_ID": "9"})
        self.assertEqual(p.returncode, 0, p.stderr)
        r = self.result()
        self.assertFalse(r.ok)
        self.assertIsInstance(r.exception, VineRemoteError)
        self.assertIn("the result (vine task 9) could not be deserialized here", str(r.exception))
        self.assertIn("remote_only_mod", str(r.exception))

    def test_python_path_is_needed_to_find_the_module(self):
        p = run_runner(self.call(funcs.add, 1, python_path=()), outdir=self.out)
        self.assertEqual(p.returncode, vine_runner.EXIT_LOAD)
        self.assertIn("cannot load the call", p.stderr)
        self.assertIn("No module named 'funcs'", p.stderr)
        self.assertEqual(os.listdir(self.out), [])

    def test_missing_call_directory(self):
        p = run_runner(os.path.join(self.dir, "nope"), outdir=self.out)
        self.assertEqual(p.returncode, vine_runner.EXIT_LOAD)
        self.assertIn("cannot load the call in '%s'" % os.path.join(self.dir, "nope"), p.stderr)

    def test_wrong_format_and_unknown_serializer(self):
        d = self.call(funcs.add, 1)
        meta = os.path.join(d, vine_runner.META_NAME)
        with open(meta, "w") as f:
            json.dump({"vine_parsl_call": 99, "serializer": "pickle"}, f)
        p = run_runner(d, outdir=self.out)
        self.assertEqual(p.returncode, vine_runner.EXIT_LOAD)
        self.assertIn("not a vine_parsl call of format 1", p.stderr)
        with open(meta, "w") as f:
            json.dump({"vine_parsl_call": 1, "serializer": "yaml"}, f)
        p = run_runner(d, outdir=self.out)
        self.assertEqual(p.returncode, vine_runner.EXIT_LOAD)
        self.assertIn("unknown serializer 'yaml'", p.stderr)

    def test_unwritable_outdir(self):
        p = run_runner(self.call(funcs.add, 1), outdir=os.path.join(self.dir, "missing"))
        self.assertEqual(p.returncode, vine_runner.EXIT_WRITE)
        self.assertIn("cannot write the result into", p.stderr)

    def test_usage(self):
        p = run_runner()
        self.assertEqual(p.returncode, vine_runner.EXIT_USAGE)
        self.assertIn("usage: vine_runner.py CALLDIR", p.stderr)
        p = run_runner("-h")
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage:", p.stdout)

    def test_runs_with_the_interpreter_first_on_path(self):
        # the task line is `python3 RUNNER CALLDIR`: the runner must not need
        # anything but the standard library of whatever python3 that is
        p = subprocess.run(["/usr/bin/python3", "-I", RUNNER, self.call(funcs.add, 5, 6)],
                           capture_output=True, text=True,
                           env={"VINE_OUTDIR": self.out, "PATH": "/usr/bin:/bin"})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.result().value, 11)


class CodecTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_call_files(self):
        d = os.path.join(self.tmp.name, "c")
        codec.write_call(d, codec.call_blob(funcs.add, (1,), {"b": 2}, "pickle"), "pickle", ["/x"])
        self.assertEqual(sorted(os.listdir(d)), [vine_runner.CALL_NAME, vine_runner.META_NAME])
        with open(os.path.join(d, vine_runner.META_NAME)) as f:
            self.assertEqual(json.load(f), {"vine_parsl_call": 1, "serializer": "pickle",
                                            "python_path": ["/x"]})
        func, args, kwargs, _ = vine_runner.load_call(d)
        self.assertIs(func, funcs.add)
        self.assertEqual((args, kwargs), ((1,), {"b": 2}))

    def test_lambda_does_not_pickle(self):
        with self.assertRaises(Exception):
            codec.call_blob(lambda: 1, (), {}, "pickle")

    def test_not_a_result(self):
        p = os.path.join(self.tmp.name, "r")
        with open(p, "wb") as f:
            f.write(b"junk")
        with self.assertRaisesRegex(ValueError, "is not a vine_parsl result"):
            codec.read_result(p, "pickle")
        with open(p, "wb") as f:
            f.write(pickle.dumps({"version": 2}))
        with self.assertRaisesRegex(ValueError, "of format 1"):
            codec.read_result(p, "pickle")

    def test_choose_serializer(self):
        auto = codec.choose_serializer("auto")
        self.assertEqual(auto, "parsl" if codec.importable("parsl.serialize") else "pickle")
        self.assertEqual(codec.choose_serializer("pickle"), "pickle")
        with self.assertRaisesRegex(ValueError, "serializer must be one of"):
            codec.choose_serializer("json")

    @unittest.skipUnless(codec.importable("cloudpickle"), "cloudpickle is not installed")
    def test_cloudpickle_ships_a_lambda_by_value(self):
        d = os.path.join(self.tmp.name, "c")
        k = 5
        codec.write_call(d, codec.call_blob(lambda x: x * k, (3,), {}, "cloudpickle"), "cloudpickle")
        p = run_runner(d)
        self.assertEqual(p.returncode, 0, p.stderr)
        r = codec.read_result(os.path.join(d, vine_runner.RESULT_NAME), "cloudpickle")
        self.assertEqual(r.value, 15)


if __name__ == "__main__":
    unittest.main()
