"""Tasks run inside a packed environment: env= maps to vine-submit -e, the
worker seeds the archive into its cache, and `python3` in the task line is
the environment's interpreter.  Needs the archive of a venv in
$VINE_PARSL_TEST_ENV (the bats file packs one with vine-pack)."""

import os
import unittest

import funcs
from vinetest import VineTestCase

T = 120


class EnvTest(VineTestCase):
    def test_tasks_run_in_the_environment(self):
        arch = os.environ["VINE_PARSL_TEST_ENV"]
        cache = os.path.realpath(os.environ["VINE_CACHE"])
        ex = self.executor(env=arch)
        ex.start()
        futs = [ex.submit(funcs.where, {}), ex.submit(funcs.where, {"cores": 1})]
        self.worker(idle=10)
        for f in futs:
            w = f.result(T)
            prefix = os.path.realpath(w["prefix"])
            self.assertTrue(prefix.startswith(cache + os.sep), (prefix, cache))
            self.assertTrue(os.path.realpath(w["executable"]).startswith(prefix + os.sep), w)
            self.assertEqual(os.path.realpath(w["env"]), prefix)
        # start() registers the environment (and so makes the state)
        self.assertEqual([r[2:4] for r in self.runs("vine-submit")], [["-e", arch]] * 3)


if __name__ == "__main__":
    unittest.main()
