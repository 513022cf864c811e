"""VineExecutor under Parsl proper: a Config, a python_app, results and a
remote exception through the DataFlowKernel.  Skipped when Parsl is not
importable (it is not installable on the development machine)."""

import os
import unittest

from vinetest import HERE, VineTestCase

try:
    import parsl
    from parsl.config import Config
except ImportError:
    parsl = None


@unittest.skipIf(parsl is None, "Parsl is not installed")
class ParslTest(VineTestCase):
    def test_python_apps(self):
        import funcs
        from vine_parsl import VineExecutor

        ex = VineExecutor(label="vine", state=self.state, python_path=[HERE],
                          poll_interval=0.1, batch_window=0.05)
        config = Config(executors=[ex], run_dir=os.path.join(self.tmp, "runinfo"))
        add = parsl.python_app(funcs.add, executors=["vine"])
        boom = parsl.python_app(funcs.boom, executors=["vine"])
        with parsl.load(config):
            futs = [add(i, b=1) for i in range(4)]
            bad = boom("from parsl")
            self.worker(idle=5)
            self.assertEqual([f.result(timeout=60) for f in futs], [1, 2, 3, 4])
            with self.assertRaisesRegex(ValueError, "from parsl"):
                bad.result(timeout=60)
        # the calls were written under Parsl's run directory
        self.assertTrue(os.path.isdir(os.path.join(ex.work_dir, "calls")))
        self.assertTrue(ex.work_dir.startswith(os.path.join(self.tmp, "runinfo")))


if __name__ == "__main__":
    unittest.main()
