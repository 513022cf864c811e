"""vine_parsl imports without Parsl, and with Parsl it is a ParslExecutor
that implements every abstract member.  Parsl cannot be installed here, so
the second part uses stand-ins for parsl.executors.base reduced to the
abstract interface of two Parsl releases (Parsl/parsl parsl/executors/base.py
at 02bf983284ec, where status and scaling members are abstract, and the
current form, where only start, submit and shutdown are, with keyword-only
monitoring arguments to __init__)."""

import importlib.util
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

SHARE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "share", "python"))

# what both releases declare: context manager, start, submit, shutdown
COMMON = '''
    def __enter__(self): return self
    def __exit__(self, *a): self.shutdown(); return False
    @abstractmethod
    def start(self): pass
    @abstractmethod
    def submit(self, func, resource_specification, *args, **kwargs): pass
    @abstractmethod
    def shutdown(self): pass
    def monitor_resources(self): return True
'''

OLD_BASE = '''
from abc import ABCMeta, abstractmethod, abstractproperty

class ParslExecutor(metaclass=ABCMeta):
    label: str
    radio_mode: str = "udp"
''' + COMMON + '''
    @abstractmethod
    def scale_out(self, blocks): pass
    @abstractmethod
    def scale_in(self, blocks): pass
    @abstractproperty
    def scaling_enabled(self): pass
    @abstractmethod
    def status(self): pass
    @property
    @abstractmethod
    def status_polling_interval(self): pass
    @property
    @abstractmethod
    def error_management_enabled(self): pass
    @abstractmethod
    def handle_errors(self, error_handler, status): pass
    @abstractmethod
    def set_bad_state_and_fail_all(self, exception): pass
    @property
    @abstractmethod
    def bad_state_is_set(self): pass
    @property
    @abstractmethod
    def executor_exception(self): pass
    @property
    @abstractmethod
    def tasks(self): pass
    @property
    def run_dir(self): return self._run_dir
    @run_dir.setter
    def run_dir(self, value): self._run_dir = value
'''

NEW_BASE = '''
from abc import ABCMeta, abstractmethod

class ParslExecutor(metaclass=ABCMeta):
    label: str = "undefined"
    def __init__(self, *, remote_monitoring_radio=None):
        self.remote_monitoring_radio = remote_monitoring_radio
        self.run_dir = "."
        self.run_id = None
''' + COMMON

CHECK = '''
import vine_parsl
from parsl.executors.base import ParslExecutor
assert vine_parsl.HAVE_PARSL
assert issubclass(vine_parsl.VineExecutor, ParslExecutor)
ex = vine_parsl.VineExecutor(label="v")   # fails if anything is left abstract
assert ex.label == "v" and not ex.scaling_enabled and ex.status_polling_interval == 0
ex.run_dir = "/some/run"
assert ex.run_dir == "/some/run"
print("ok")
'''


def python(code, path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd="/")


class ImportTest(unittest.TestCase):
    def test_without_parsl(self):
        if importlib.util.find_spec("parsl") is not None:
            self.skipTest("Parsl is installed")
        p = python(textwrap.dedent('''
            import sys, vine_parsl
            assert "parsl" not in sys.modules
            assert not vine_parsl.HAVE_PARSL
            ex = vine_parsl.VineExecutor(label="v", cores=2)
            assert ex.label == "v" and ex.defaults.cores == 2
            assert ex.monitor_resources() is False
            with ex:
                pass
            print("ok")'''), [SHARE])
        self.assertEqual((p.returncode, p.stdout), (0, "ok\n"), p.stderr)

    def stand_in(self, base):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        d = os.path.join(tmp.name, "parsl", "executors")
        os.makedirs(d)
        for f in (os.path.join(tmp.name, "parsl", "__init__.py"), os.path.join(d, "__init__.py")):
            open(f, "w").close()
        with open(os.path.join(d, "base.py"), "w") as f:
            f.write(base)
        return tmp.name

    def test_old_parsl_interface(self):
        p = python(CHECK, [SHARE, self.stand_in(OLD_BASE)])
        self.assertEqual((p.returncode, p.stdout), (0, "ok\n"), p.stderr)

    def test_current_parsl_interface(self):
        p = python(CHECK, [SHARE, self.stand_in(NEW_BASE)])
        self.assertEqual((p.returncode, p.stdout), (0, "ok\n"), p.stderr)

    def test_stand_in_catches_a_missing_member(self):
        # the check above would fail if the executor lacked an abstract member
        p = python(CHECK, [SHARE, self.stand_in(OLD_BASE + '''
    @abstractmethod
    def not_implemented_by_vine(self): pass
''')])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("abstract method", p.stderr)


if __name__ == "__main__":
    unittest.main()
