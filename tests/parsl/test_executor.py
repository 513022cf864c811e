"""VineExecutor driven through start/submit/shutdown, without Parsl,
against the vine programs first on PATH and a vine-worker running the tasks."""

import os
import shutil
import sys
import time
import traceback
import unittest

import funcs
from vinetest import VineTestCase
from vine_parsl import (VineExecutorError, VineRemoteError, VineShutdownError,
                        VineSubmitError, VineTaskFailure)

T = 60  # no future may take longer: a hang fails the test instead


class ResultsTest(VineTestCase):
    def test_values_come_back(self):
        ex = self.executor()
        ex.start()
        futs = [ex.submit(funcs.add, {}, i, b=100) for i in range(6)]
        self.worker()
        self.assertEqual([f.result(T) for f in futs], [100 + i for i in range(6)])
        self.assertEqual([f.parsl_executor_task_id for f in futs], list(range(6)))
        self.assertEqual(len({f.vine_task_id for f in futs}), 6)
        self.assertEqual(ex.outstanding, 0)
        self.assertEqual(ex.tasks, {})  # finished calls are not kept
        # the task's environment reached the function
        f = ex.submit(funcs.where, {})
        self.worker()
        w = f.result(T)
        self.assertEqual((w["task"], w["node"]), (f.vine_task_id, "testnode"))

    def test_remote_exception_with_traceback(self):
        ex = self.executor()
        ex.start()
        f = ex.submit(funcs.boom, {}, "it broke")
        g = ex.submit(funcs.raise_needs_two, {})
        self.worker()
        exc = f.exception(T)
        self.assertIsInstance(exc, ValueError)
        self.assertEqual(str(exc), "it broke")
        self.assertIn("in boom", exc.remote_traceback)
        text = "".join(traceback.format_exception(exc))
        self.assertIn('raise ValueError(msg)', text)
        self.assertIn("vine task %s" % f.vine_task_id, text)
        exc = g.exception(T)
        self.assertIsInstance(exc, VineRemoteError)
        self.assertEqual(exc.exc_type, "funcs.NeedsTwo")
        self.assertIn("raise NeedsTwo", exc.remote_traceback)

    def test_task_without_result_fails_its_future(self):
        ex = self.executor()
        ex.start()
        killed = ex.submit(funcs.kill_self, {})
        ok = ex.submit(funcs.add, {}, 1, 1)
        self.worker()
        exc = killed.exception(T)
        self.assertIsInstance(exc, VineTaskFailure)
        self.assertEqual(exc.task_id, killed.vine_task_id)
        self.assertNotEqual(exc.exit, "0")
        self.assertIn("killed or failed before writing it", str(exc))
        self.assertEqual(ok.result(T), 2)

    def test_runner_that_cannot_load_the_call(self):
        # an interpreter named: the workflow's PYTHONPATH is not passed on
        ex = self.executor(python_path=[], python=sys.executable)
        ex.start()
        f = ex.submit(funcs.add, {}, 1)
        self.worker()
        exc = f.exception(T)
        self.assertIsInstance(exc, VineTaskFailure)
        self.assertIn("the runner could not load the call", str(exc))
        self.assertIn("No module named 'funcs'", str(exc))

    def test_timeout_kills_the_task(self):
        ex = self.executor()
        ex.start()
        t0 = time.monotonic()
        f = ex.submit(funcs.sleep, {"timeout": 1}, 30)
        self.worker()
        self.assertIsInstance(f.exception(T), VineTaskFailure)
        self.assertLess(time.monotonic() - t0, 25)

    def test_retries(self):
        ex = self.executor()
        ex.start()
        once = ex.submit(funcs.kill_once, {"retries": 1}, os.path.join(self.tmp, "m1"))
        never = ex.submit(funcs.kill_once, {"retries": 0}, os.path.join(self.tmp, "m2"))
        self.worker()
        self.assertEqual(once.result(T), "attempt 2")
        self.assertIsInstance(never.exception(T), VineTaskFailure)


class IncrementalTest(VineTestCase):
    def test_each_result_is_stored_once_and_removed_once_delivered(self):
        import sqlite3
        ex = self.executor()
        ex.start()
        futs = [ex.submit(funcs.add, {}, i, b=1) for i in range(3)]
        self.worker()
        self.assertEqual([f.result(T) for f in futs], [1, 2, 3])
        # nothing of them left where vine-collect laid them out ...
        collected = os.path.join(self.work, "collected")
        self.assertEqual(os.listdir(collected), [])
        # ... nor in the state: no result file, only the tasks' records
        ids = [int(f.vine_task_id) for f in futs]
        db = sqlite3.connect(self.state)
        try:
            self.assertEqual(db.execute("SELECT count(*) FROM files").fetchone()[0], 0)
            rows = db.execute("SELECT id, state, delivered IS NOT NULL FROM tasks"
                              " ORDER BY id").fetchall()
        finally:
            db.close()
        self.assertEqual(rows, [(i, "done", 1) for i in ids])
        results = self.state + ".results"
        left = [os.path.join(r, n) for r, _, names in os.walk(results) for n in names]
        self.assertEqual(left, [])
        # still done as far as vine-status is concerned
        import json
        import subprocess
        st = json.loads(subprocess.run(["vine-status", "-s", self.state, "--json"],
                                       capture_output=True, text=True, check=True).stdout)
        self.assertEqual(st["tasks"]["done"], 3)
        self.assertTrue(self.runs("vine-collect"))
        for argv in self.runs("vine-collect"):
            self.assertIn("-n", argv)
            self.assertIn("-d", argv)


class DfkLikeTest(VineTestCase):
    """What Parsl's DataFlowKernel does with an executor: set run_dir and
    run_id, start it, submit from several threads at once, shut it down."""

    def test_parsl_call_pattern(self):
        from concurrent.futures import ThreadPoolExecutor
        ex = self.executor(work_dir=None, batch_window=0.2)
        ex.run_dir = os.path.join(self.tmp, "runinfo", "000")
        ex.run_id = "abc"
        self.assertIsNone(ex.start())
        self.assertEqual(ex.work_dir, os.path.join(self.tmp, "runinfo", "000", "vine"))
        with ThreadPoolExecutor(8) as pool:
            futs = list(pool.map(lambda i: ex.submit(funcs.add, {}, i, b=1000), range(40)))
        self.assertEqual(sorted(f.parsl_executor_task_id for f in futs), list(range(40)))
        self.worker(cores=2)
        self.assertEqual([f.result(T) for f in futs], [1000 + i for i in range(40)])
        self.assertEqual(len({f.vine_task_id for f in futs}), 40)
        self.assertLess(ex.submit_count, 40)
        self.assertTrue(ex.shutdown())


class BatchingTest(VineTestCase):
    def test_calls_are_batched(self):
        ex = self.executor(batch_size=8, batch_window=2.0)
        ex.start()
        futs = [ex.submit(funcs.add, {}, i) for i in range(20)]
        self.assertEqual(set(ex.tasks), set(range(20)))
        self.wait_submitted(futs)
        self.assertEqual(ex.submit_count, 3)
        self.assertEqual(len(self.runs("vine-submit")), 3)
        self.worker()
        self.assertEqual([f.result(T) for f in futs], list(range(20)))

    def test_window_gathers_calls_into_one_run(self):
        ex = self.executor(batch_size=1000, batch_window=0.5)
        ex.start()
        futs = [ex.submit(funcs.add, {}, i) for i in range(5)]
        self.wait_submitted(futs)
        self.assertEqual(len(self.runs("vine-submit")), 1)

    def test_resource_specification_groups_and_maps(self):
        ex = self.executor(batch_window=0.5, retries=2)
        ex.start()
        a = [ex.submit(funcs.where, {"cores": 2}) for _ in range(2)]
        b = ex.submit(funcs.where, {"cores": 1, "retries": 0, "timeout": 50, "tag": "t1"})
        c = ex.submit(funcs.where, {})
        self.wait_submitted(a + [b, c])
        runs = sorted(r[2:] for r in self.runs("vine-submit"))  # after -s STATE
        self.assertEqual(runs, [["-n", "1", "-r", "0", "-t", "50", "--tag", "t1", "-"],
                                ["-n", "2", "-r", "2", "-"],
                                ["-r", "2", "-"]])
        self.worker(cores=2)
        self.assertEqual([f.result(T)["cores"] for f in a], ["2", "2"])
        self.assertEqual(b.result(T)["cores"], "1")

    def test_env_option_and_a_refused_batch(self):
        ex = self.executor(batch_window=0.5)
        ex.start()
        arch = os.path.join(self.tmp, "missing.tar.gz")
        bad = ex.submit(funcs.add, {"env": arch}, 1)
        good = ex.submit(funcs.add, {}, 2)
        exc = bad.exception(T)
        self.assertIsInstance(exc, VineSubmitError)
        self.assertIn("cannot use archive '%s'" % arch, str(exc))
        self.wait_submitted([good])
        self.assertEqual(sorted(r[2:] for r in self.runs("vine-submit")),
                         [["-"], ["-e", arch, "-"]])
        self.worker()
        self.assertEqual(good.result(T), 2)

    def test_a_call_cancelled_while_queued_is_not_submitted(self):
        ex = self.executor(batch_window=0.5)
        ex.start()
        futs = [ex.submit(funcs.add, {}, i) for i in range(3)]
        self.assertTrue(futs[1].cancel())
        self.wait_submitted([futs[0], futs[2]])
        self.assertFalse(hasattr(futs[1], "vine_task_id"))
        self.assertEqual(ex.tasks.keys(), {0, 2})
        self.worker()
        self.assertEqual((futs[0].result(T), futs[2].result(T)), (0, 2))

    def test_start_registers_the_env_and_so_creates_the_state(self):
        arch = os.path.join(self.tmp, "env.tar.gz")
        with open(arch, "wb") as f:
            f.write(b"not looked inside until a worker seeds it")
        self.assertFalse(os.path.exists(self.state))
        ex = self.executor(env=arch)
        ex.start()
        # a worker started now, before any call, finds the state
        self.assertTrue(os.path.exists(self.state))
        self.assertEqual([r[2:] for r in self.runs("vine-submit")], [["-e", arch, "-"]])
        missing = os.path.join(self.tmp, "missing.tar.gz")
        with self.assertRaisesRegex(VineSubmitError, "cannot use archive '%s'" % missing):
            self.executor(env=missing).start()

    def test_bad_resource_specification_raises_in_submit(self):
        ex = self.executor()
        ex.start()
        with self.assertRaisesRegex(ValueError, "vine cannot honour"):
            ex.submit(funcs.add, {"gpus": 1}, 1)
        with self.assertRaisesRegex(Exception, "lambda"):
            ex.submit(lambda: 1, {})
        self.assertEqual(ex.tasks, {})


class FailureTest(VineTestCase):
    def test_submit_failure_fails_only_that_batch(self):
        ex = self.executor(batch_window=0.2)
        ex.start()
        self.make_failing("vine-submit")
        bad = ex.submit(funcs.add, {}, 1)
        exc = bad.exception(T)
        self.assertIsInstance(exc, VineSubmitError)
        self.assertIn("vine-submit: failing on purpose", str(exc))
        self.make_failing("vine-submit", False)
        good = ex.submit(funcs.add, {}, 2)
        self.worker()
        self.assertEqual(good.result(T), 2)

    def test_lost_state_fails_everything_instead_of_hanging(self):
        ex = self.executor(max_poll_errors=3)
        ex.start()
        f = ex.submit(funcs.add, {}, 1)
        self.wait_submitted([f])
        self.make_failing("vine-status")
        exc = f.exception(T)
        self.assertIsInstance(exc, VineExecutorError)
        self.assertIn("cannot follow its tasks", str(exc))
        self.assertTrue(ex.bad_state_is_set)
        self.assertIs(ex.executor_exception, exc)
        with self.assertRaises(VineExecutorError):
            ex.submit(funcs.add, {}, 2)

    def test_submit_before_start(self):
        ex = self.executor()
        with self.assertRaisesRegex(VineExecutorError, "not started"):
            ex.submit(funcs.add, {}, 1)


class ShutdownTest(VineTestCase):
    def test_shutdown_does_not_wait_for_tasks_without_workers(self):
        ex = self.executor(batch_window=0.05)
        ex.start()
        sent = [ex.submit(funcs.add, {}, i) for i in range(3)]
        self.wait_submitted(sent)
        ex.batch_window = 60
        queued = ex.submit(funcs.add, {}, 9)
        t0 = time.monotonic()
        ex.shutdown()
        self.assertLess(time.monotonic() - t0, 5)
        for f in sent:
            exc = f.exception(0)
            self.assertIsInstance(exc, VineShutdownError)
            self.assertIn("vine task %s" % f.vine_task_id, str(exc))
        self.assertIn("before call 3 ran", str(queued.exception(0)))
        with self.assertRaises(VineShutdownError):
            ex.submit(funcs.add, {}, 1)
        self.assertTrue(ex.shutdown())  # twice is harmless

    def test_shutdown_wait_sends_and_finishes(self):
        ex = self.executor(batch_window=60)
        ex.start()
        futs = [ex.submit(funcs.add, {}, i, b=1) for i in range(3)]
        self.worker(idle=5)
        ex.shutdown(wait=True, timeout=T)
        self.assertEqual([f.result(0) for f in futs], [1, 2, 3])

    def test_shutdown_wait_with_timeout_gives_up(self):
        ex = self.executor()
        ex.start()
        f = ex.submit(funcs.add, {}, 1)
        t0 = time.monotonic()
        ex.shutdown(wait=True, timeout=1)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertIsInstance(f.exception(0), VineShutdownError)

    def test_context_manager(self):
        with self.executor() as ex:
            ex.start()
            f = ex.submit(funcs.add, {}, 4)
        self.assertIsInstance(f.exception(0), VineShutdownError)


if __name__ == "__main__":
    unittest.main()
