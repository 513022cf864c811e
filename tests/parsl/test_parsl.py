"""VineExecutor under real Parsl: apps through the DataFlowKernel against the
real vine programs and a vine-worker.  The bats file runs it with an
interpreter that imports Parsl (an installed one, else the vendored copy);
tasks run the same interpreter (the executor's default), which gets the
workflow's PYTHONPATH from the executor, not from the worker's environment.

One DataFlowKernel and one worker serve the AppsTest methods, so the warm
pools start once; the other classes need a configuration of their own."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import parsl
from parsl import bash_app, join_app, python_app
from parsl.app.errors import AppTimeout, BashExitFailure
from parsl.config import Config
from parsl.data_provider.files import File
from parsl.executors.errors import InvalidResourceSpecification

import funcs
from vine_parsl import VineExecutor, VineTaskFailure
import vinetest
from vinetest import stop_worker

T = 60  # no future may take longer: a hang fails the test instead


def start_worker(tmp, state, cores=2, node="node1", idle=60):
    with open(os.path.join(tmp, "worker-%s.err" % node), "ab") as err:
        return vinetest.start_worker(state, node, cores, idle, subprocess.DEVNULL, err)


def wait_for(what, cond, timeout=T):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("no %s within %s s" % (what, timeout))
        time.sleep(0.05)


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


@python_app
def add(a, b=0):
    return a + b


@python_app
def where(parsl_resource_specification={}):
    import os
    import sys
    return {"cwd": os.getcwd(), "executable": sys.executable,
            "cores": os.environ.get("VINE_CORES"), "task": os.environ.get("VINE_TASK_ID")}


@python_app
def boom(msg):
    raise ValueError(msg)


@python_app
def raise_needs_two():
    import funcs
    funcs.raise_needs_two()


@python_app
def fail_once(marker):
    import os
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first try")
    return "second try"


@python_app
def killed_once(marker, parsl_resource_specification={}):
    import funcs
    return funcs.kill_once(marker)


@python_app
def nap(seconds, walltime=None, parsl_resource_specification={}):
    import time
    end = time.monotonic() + seconds
    while time.monotonic() < end:  # Parsl's walltime interrupts Python code, not a sleep
        time.sleep(0.05)
    return seconds


@python_app
def copy(inputs=(), outputs=()):
    with open(inputs[0].filepath) as src, open(outputs[0].filepath, "w") as dst:
        dst.write(src.read().upper())
    return outputs[0].filepath


@bash_app
def echo(word, stdout=None, stderr=None):
    return "echo %s; echo err >&2" % word


@bash_app
def bash_exit(code):
    return "exit %d" % code


@bash_app
def bash_sleep(seconds, walltime=None):
    return "sleep %d" % seconds


@join_app
def fan_in(n):
    return sum_all(*[add(i, 1) for i in range(n)])


@python_app
def sum_all(*xs):
    return sum(xs)


class AppsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vine-parsl-")
        cls.state = os.path.join(cls.tmp, "vine.db")
        cls.wf = os.path.join(cls.tmp, "workflow")  # where the workflow runs
        os.mkdir(cls.wf)
        cls.old_cwd = os.getcwd()
        os.chdir(cls.wf)
        cls.ex = VineExecutor(label="vine", state=cls.state, status_interval=0.5)
        cls.dfk = parsl.load(Config(executors=[cls.ex], retries=1,
                                    run_dir=os.path.join(cls.tmp, "runinfo")))
        cls.worker = start_worker(cls.tmp, cls.state, cores=2)

    @classmethod
    def tearDownClass(cls):
        cls.dfk.cleanup()
        parsl.clear()
        stop_worker(cls.worker)
        os.chdir(cls.old_cwd)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_python_apps_and_dependencies(self):
        futs = [add(i, b=1) for i in range(10)]
        self.assertEqual([f.result(T) for f in futs], list(range(1, 11)))
        x = add(0)
        for _ in range(10):
            x = add(x, 1)   # each waits for the one before
        self.assertEqual(x.result(T), 10)
        self.assertEqual(sum_all(*futs[:3]).result(T), 6)

    def test_join_app(self):
        self.assertEqual(fan_in(5).result(T), 15)

    def test_interpreter_and_directory_are_the_workflows(self):
        w = where().result(T)
        self.assertEqual(w["executable"], sys.executable)
        self.assertEqual(w["cwd"], self.wf)

    def test_bash_app_relative_and_absolute_stdout(self):
        rel = echo("hello", stdout="rel.out", stderr="rel.err")
        absolute = os.path.join(self.tmp, "abs.out")
        ab = echo("there", stdout=absolute)
        self.assertEqual(rel.result(T), 0)
        self.assertEqual(ab.result(T), 0)
        # relative paths land where the workflow runs, as under HTEX
        self.assertEqual(read(os.path.join(self.wf, "rel.out")), "hello\n")
        self.assertTrue(read(os.path.join(self.wf, "rel.err")).endswith("\nerr\n"))
        self.assertEqual(read(absolute), "there\n")
        with self.assertRaises(BashExitFailure) as cm:
            bash_exit(3).result(T)
        self.assertEqual(cm.exception.exitcode, 3)

    def test_files_relative_and_absolute(self):
        with open(os.path.join(self.wf, "in.txt"), "w") as f:
            f.write("abc")
        out_rel = copy(inputs=[File("in.txt")], outputs=[File("out.txt")])
        out_rel.outputs[0].result(T)
        self.assertEqual(read(os.path.join(self.wf, "out.txt")), "ABC")
        dst = os.path.join(self.tmp, "abs-out.txt")
        out_abs = copy(inputs=[File(os.path.join(self.wf, "in.txt"))], outputs=[File(dst)])
        self.assertEqual(out_abs.result(T), dst)
        self.assertEqual(read(dst), "ABC")
        # a file made by one app feeds the next
        chained = copy(inputs=[out_rel.outputs[0]], outputs=[File("again.txt")])
        chained.result(T)
        self.assertEqual(read(os.path.join(self.wf, "again.txt")), "ABC")

    def test_exceptions(self):
        with self.assertRaisesRegex(ValueError, "from parsl"):
            boom("from parsl").result(T)
        # pickles on the node, does not unpickle here: an error that names it
        with self.assertRaisesRegex(Exception, "NeedsTwo") as cm:
            raise_needs_two().result(T)
        self.assertIn("x/y", str(cm.exception))

    def test_parsl_retries(self):
        marker = os.path.join(self.tmp, "fail-once")
        self.assertEqual(fail_once(marker).result(T), "second try")

    def test_a_call_whose_pool_dies_runs_again(self):
        marker = os.path.join(self.tmp, "killed-once")
        f = killed_once(marker, parsl_resource_specification={"retries": 1})
        self.assertEqual(f.result(T), "attempt 2")

    def test_walltime(self):
        with self.assertRaises(AppTimeout):
            nap(30, walltime=1).result(T)
        with self.assertRaises(AppTimeout):
            bash_sleep(30, walltime=1).result(T)
        self.assertEqual(nap(0, walltime=30).result(T), 0)

    def test_resource_specification(self):
        w = where(parsl_resource_specification={"cores": 2}).result(T)
        self.assertEqual(w["cores"], "2")
        with self.assertRaises(InvalidResourceSpecification) as cm:
            where(parsl_resource_specification={"memory": 1000}).result(T)
        self.assertEqual(cm.exception.invalid_keys, {"memory"})
        # vine's timeout (whole seconds) stops the call even without walltime
        with self.assertRaises(VineTaskFailure) as cm:
            nap(30, parsl_resource_specification={"timeout": 1}).result(T)
        self.assertIn("timeout", str(cm.exception))


class ParslTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vine-parsl-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.state = os.path.join(self.tmp, "vine.db")
        self.run_dir = os.path.join(self.tmp, "runinfo")
        self.workers = []
        self.addCleanup(lambda: [stop_worker(w) for w in self.workers])
        old = os.getcwd()
        os.chdir(self.tmp)
        self.addCleanup(os.chdir, old)

    def worker(self, **kw):
        w = start_worker(self.tmp, self.state, **kw)
        self.workers.append(w)
        return w

    def load(self, executor, **kw):
        dfk = parsl.load(Config(executors=[executor], run_dir=self.run_dir, **kw))
        self.addCleanup(parsl.clear)
        self.addCleanup(lambda: dfk.cleanup_called or dfk.cleanup())
        return dfk

    def parsl_log(self):
        logs = [os.path.join(self.run_dir, d, "parsl.log") for d in os.listdir(self.run_dir)]
        return "".join(read(p) for p in logs)

    def status(self):
        import json
        p = subprocess.run(["vine-status", "-s", self.state, "--json"], capture_output=True,
                           text=True, check=True)
        return json.loads(p.stdout)


class MonitoringTest(ParslTestCase):
    def test_default_monitoring_hub_with_resource_monitoring(self):
        from parsl.monitoring import MonitoringHub, monitoring
        if monitoring._db_manager_excepts is not None:
            # no sqlalchemy 2 here: only the database is replaced
            import monitor_sink
            monitoring.dbm_starter = monitor_sink.dbm_starter
            monitoring._db_manager_excepts = None
        ex = VineExecutor(state=self.state)
        self.assertTrue(ex.monitor_resources())
        self.dfk = self.load(ex, monitoring=MonitoringHub(resource_monitoring_enabled=True,
                                               resource_monitoring_interval=0.2))
        self.worker()
        self.assertEqual([add(i, 1).result(T) for i in range(3)], [1, 2, 3])
        self.assertEqual(nap(1).result(T), 1)
        self.dfk.cleanup()
        # the monitor around each app reported through the executor's radio
        sink = read(os.path.join(self.run_dir, "000", "monitor-sink.txt")).split()
        self.assertIn("RESOURCE_INFO", sink)


class ShutdownTest(ParslTestCase):
    def test_cleanup_with_tasks_pending_and_running(self):
        ex = VineExecutor(state=self.state, status_interval=0.2)
        dfk = self.load(ex)
        self.worker(cores=1)
        running = nap(60)
        pending = [nap(60) for _ in range(3)]
        wait_for("running app", lambda: any(p.call is not None for p in list(ex._pools.values())))
        start = time.monotonic()
        dfk.cleanup()
        self.assertLess(time.monotonic() - start, 20)
        for f in [running] + pending:
            self.assertIsNotNone(f.exception(T))
        # the pool running the app stopped with it: the worker is free
        wait_for("the running task to stop",
                 lambda: not any(w["running"] for w in self.status()["workers"]), 20)
        if shutil.which("vine-cancel"):
            counts = self.status()["tasks"]
            self.assertEqual(counts["ready"], 0, counts)


class LivenessTest(ParslTestCase):
    def test_no_worker_and_not_enough_cores_are_logged(self):
        ex = VineExecutor(state=self.state, status_interval=0.2, warn_interval=0.5)
        self.load(ex)
        f = add(1, 2)
        wait_for("a second 'no live worker' line",
                 lambda: self.parsl_log().count("no live worker") >= 2, 20)
        self.worker(cores=1)
        self.assertEqual(f.result(T), 3)
        big = where(parsl_resource_specification={"cores": 4})
        wait_for("a second 'cores' line",
                 lambda: self.parsl_log().count("tasks need 4 cores and the largest "
                                                "live worker has 1") >= 2, 20)
        self.assertFalse(big.done())


class ColdModeTest(ParslTestCase):
    def test_cold_mode_apps(self):
        ex = VineExecutor(state=self.state, mode="cold", poll_interval=0.1)
        self.load(ex)
        self.worker()
        # all at once: each is a task of its own, with an interpreter start
        adds = [add(i, 1) for i in range(3)]
        w, b = where(), boom("cold")
        self.assertEqual([f.result(T) for f in adds], [1, 2, 3])
        self.assertEqual(w.result(T)["cwd"], self.tmp)
        with self.assertRaisesRegex(ValueError, "cold"):
            b.result(T)

if __name__ == "__main__":
    unittest.main()
