"""VineExecutor: run Parsl apps as vine tasks.

Each submit() serializes the call into its own directory under the work
directory; a submitter thread batches pending calls (up to batch_size, or
whatever arrived within batch_window seconds of the first) into one
vine-submit per set of task options, one `python3 vine_runner.py CALLDIR`
line per call; a poller thread watches `vine-status --json`, gathers
finished tasks with `vine-collect -o`, and completes each Future with the
value, the remote exception, or a VineTaskFailure when the task ended
without a result.  Workers are not started here: run vine-worker on the
nodes (a Slurm job, say) against the same state.

The Parsl interface implemented is ParslExecutor from parsl/executors/base.py
(Parsl/parsl; checked at commits 02bf983284ec and ed02101c89f6, and the
later base that takes keyword-only monitoring arguments in __init__): label,
start(), submit(func, resource_specification, *args, **kwargs) -> Future,
shutdown(), monitor_resources(), run_dir, plus the members that older
releases declare abstract (scale_in/scale_out, scaling_enabled, status,
status_polling_interval, error_management_enabled, handle_errors,
set_bad_state_and_fail_all, bad_state_is_set, executor_exception, tasks) so
that one class works across releases.  Executors that manage no blocks of
their own (parsl/executors/threads.py in current Parsl) derive from
ParslExecutor directly, as this one does.
"""

import itertools
import logging
import os
import threading
import time
from concurrent.futures import Future, InvalidStateError

from . import codec, vine_cli
from . import vine_runner as fmt
from .errors import (VineCommandError, VineExecutorError, VineShutdownError,
                     VineTaskFailure)

logger = logging.getLogger(__name__)

try:
    from parsl.executors.base import ParslExecutor as _Base
    HAVE_PARSL = True
except ImportError:
    HAVE_PARSL = False

    class _Base:
        """Stand-in for parsl.executors.base.ParslExecutor when Parsl is not
        installed: the same non-abstract members, so VineExecutor behaves the
        same with or without Parsl."""

        label = "undefined"
        radio_mode = "udp"

        def __enter__(self):
            return self

        def __exit__(self, exc_type, exc_val, exc_tb):
            self.shutdown()
            return False

        def create_monitoring_info(self, status):
            return []

        def monitor_resources(self):
            return True

        @property
        def run_dir(self):
            return self._run_dir

        @run_dir.setter
        def run_dir(self, value):
            self._run_dir = value

        @property
        def hub_address(self):
            return getattr(self, "_hub_address", None)

        @hub_address.setter
        def hub_address(self, value):
            self._hub_address = value

        @property
        def hub_port(self):
            return getattr(self, "_hub_port", None)

        @hub_port.setter
        def hub_port(self, value):
            self._hub_port = value


class VineResourceSpecError(VineExecutorError, ValueError):
    """A resource_specification this executor cannot honour."""


RESOURCE_KEYS = ("cores", "env", "retries", "timeout", "tag")


def _positive_int(key, v, minimum):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or v < minimum:
        raise VineResourceSpecError("resource_specification %r must be an integer >= %d, not %r"
                                    % (key, minimum, v))
    return int(v)


def task_options(spec, defaults):
    """Map a Parsl resource_specification onto vine-submit options.
    defaults: a TaskOptions with the executor-wide settings."""
    spec = spec or {}
    if not isinstance(spec, dict):
        raise VineResourceSpecError("resource_specification must be a dict, not %s"
                                    % type(spec).__name__)
    unknown = sorted(set(spec) - set(RESOURCE_KEYS))
    if unknown:
        raise VineResourceSpecError("resource_specification keys %s are not supported "
                                    "(supported: %s)" % (unknown, ", ".join(RESOURCE_KEYS)))
    env, cores, retries, timeout, tag = defaults
    if spec.get("env") is not None:
        env = spec["env"]
        if not isinstance(env, (str, os.PathLike)):
            raise VineResourceSpecError("resource_specification 'env' must be a path")
        env = os.fspath(env)
    if spec.get("cores") is not None:
        cores = _positive_int("cores", spec["cores"], 1)
    if spec.get("retries") is not None:
        retries = _positive_int("retries", spec["retries"], 0)
    if spec.get("timeout") is not None:
        timeout = _positive_int("timeout", spec["timeout"], 1)
    if spec.get("tag") is not None:
        tag = str(spec["tag"])
    return vine_cli.TaskOptions(env, cores, retries, timeout, tag)


def collect_due(since, changed, cost, interval):
    """Whether to run vine-collect now: since the last one ran `since`
    seconds ago and took `cost`; `changed`: vine-status shows tasks that
    finished since.  vine-collect lays out every finished task of the state,
    so its cost grows with the run: it gets at most about a quarter of the
    time, however often tasks finish, and runs every `interval` regardless
    (a safety net for anything vine-status did not show)."""
    return since >= interval or (changed and since >= 3 * cost)


class _Call:
    __slots__ = ("number", "calldir", "future", "options", "task_id")

    def __init__(self, number, calldir, future, options):
        self.number = number
        self.calldir = calldir
        self.future = future
        self.options = options
        self.task_id = None


class VineExecutor(_Base):
    """Parsl executor that runs apps as tasks of a vine state.

    label        the executor's Parsl label
    state        the vine state (-s); default $VINE_STATE, else ./vine.db
    work_dir     where calls are written; must be visible at the same path
                 to the tasks (a shared file system) unless every worker runs
                 on this host; default RUN_DIR/LABEL, RUN_DIR being Parsl's
                 run directory (the current directory without Parsl)
    env, cores, retries, timeout, tag
                 defaults for every task (vine-submit -e/-n/-r/-t/--tag); an
                 app's resource_specification overrides them per call
    batch_size   most calls per vine-submit
    batch_window seconds to wait after the first pending call for more
    poll_interval  seconds between vine-status polls
    collect_interval  run vine-collect at least this often while tasks are
                 out, even if vine-status shows no change
    serializer   "auto" (Parsl's when importable, else pickle), "pickle",
                 "cloudpickle" or "parsl"; the task's python3 needs it too
    python       the interpreter named in each task line ("python3": the
                 first on the task's PATH, which starts with the environment's
                 bin)
    runner       path of vine_runner.py as the tasks see it
    python_path  directories the runner puts in front of sys.path
    vine_bin     directory holding the vine programs, else PATH is used
    shutdown_wait  default for shutdown(wait=...)
    max_poll_errors  consecutive failed polls before every outstanding
                 future fails (the executor enters the bad state)
    command_timeout  seconds a vine program may run before it is killed
    storage_access   Parsl staging providers (passed through)
    """

    radio_mode = "filesystem"

    def __init__(self, label="vine", state=None, work_dir=None, env=None, cores=None,
                 retries=None, timeout=None, tag=None, batch_size=256, batch_window=0.1,
                 poll_interval=1.0, collect_interval=10.0, serializer="auto",
                 python="python3", runner=None, python_path=None, vine_bin=None,
                 shutdown_wait=False, max_poll_errors=10, command_timeout=300,
                 storage_access=None):
        _Base.__init__(self)
        self.label = label
        self.state = state
        self.work_dir = work_dir
        self.defaults = task_options({"env": env, "cores": cores, "retries": retries,
                                      "timeout": timeout, "tag": tag},
                                     vine_cli.TaskOptions())
        if int(batch_size) < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = int(batch_size)
        self.batch_window = float(batch_window)
        self.poll_interval = float(poll_interval)
        self.collect_interval = float(collect_interval)
        self.serializer = serializer
        self.python = python
        self.runner = runner or os.path.abspath(fmt.__file__)
        self.python_path = [os.path.abspath(p) for p in (python_path or [])]
        self.vine_bin = vine_bin
        self.shutdown_wait = shutdown_wait
        self.max_poll_errors = int(max_poll_errors)
        self.command_timeout = command_timeout
        self.storage_access = storage_access

        self._lock = threading.Condition()
        self._numbers = itertools.count()
        self._tasks = {}        # call number -> Future, until it is done
        self._queue = []        # _Call not yet given to vine-submit
        self._inflight = {}     # vine task id -> _Call
        self._submitted = 0     # calls that became vine tasks
        self._started = False
        self._closing = False
        self._stop = threading.Event()
        self._bad = None
        self._threads = []
        self.submit_count = 0   # vine-submit runs, for tests and logs

    def __repr__(self):
        return "VineExecutor(label=%r, state=%r, work_dir=%r)" % (self.label, self.state,
                                                                  self.work_dir)

    # --- lifecycle -------------------------------------------------------

    def start(self):
        if self._started:
            raise VineExecutorError("executor %r already started" % self.label)
        self.serializer = codec.choose_serializer(self.serializer)
        state = self.state or os.environ.get("VINE_STATE") or "vine.db"
        if "://" not in state:
            state = os.path.abspath(state)
        self.state = state
        if self.work_dir is None:
            try:
                base = self.run_dir
            except AttributeError:
                base = None
            self.work_dir = os.path.join(base or os.getcwd(), self.label)
        self.work_dir = os.path.abspath(self.work_dir)
        self._calls_dir = os.path.join(self.work_dir, "calls")
        self._collect_dir = os.path.join(self.work_dir, "collected")
        vine_cli.task_command(self.python, self.runner, self._calls_dir)  # checks the paths
        os.makedirs(self._calls_dir, exist_ok=True)
        os.makedirs(self._collect_dir, exist_ok=True)
        self._programs = vine_cli.VinePrograms(self.state, self.vine_bin, self.command_timeout)
        self._started = True
        for name, target in (("submitter", self._submitter), ("poller", self._poller)):
            t = threading.Thread(target=target, name="vine-%s-%s" % (self.label, name),
                                 daemon=True)
            t.start()
            self._threads.append(t)
        logger.info("VineExecutor %s: state %s, work dir %s, serializer %s",
                    self.label, self.state, self.work_dir, self.serializer)
        return None

    def submit(self, func, resource_specification, *args, **kwargs):
        if self._bad is not None:
            raise self._bad
        if not self._started:
            raise VineExecutorError("executor %r is not started" % self.label)
        if self._closing:
            raise VineShutdownError("executor %r is shut down" % self.label)
        options = task_options(resource_specification, self.defaults)
        number = next(self._numbers)
        # a thousand calls per directory keeps directories small
        calldir = os.path.join(self._calls_dir, "%d" % (number // 1000), "%d" % number)
        codec.write_call(calldir, func, args, kwargs, self.serializer, self.python_path)
        future = Future()
        future.parsl_executor_task_id = number
        call = _Call(number, calldir, future, options)
        with self._lock:
            if self._closing:
                raise VineShutdownError("executor %r is shut down" % self.label)
            self._tasks[number] = future
            self._queue.append(call)
            self._lock.notify_all()
        return future

    def shutdown(self, wait=None, timeout=None):
        """Stop the threads.  wait=True first sends every queued call and
        waits (at most timeout seconds) for every future; then, and by
        default at once, each unfinished future fails with VineShutdownError
        naming its vine task (which stays in the state: vine-collect can
        still gather it).  Never blocks longer than that."""
        if wait is None:
            wait = self.shutdown_wait
        with self._lock:
            if not self._started or self._stop.is_set():
                self._closing = True
                return True
            self._closing = True
            if not wait:
                # with _closing, so the submitter cannot send what is queued
                self._stop.set()
            self._lock.notify_all()
        if wait:
            deadline = None if timeout is None else time.monotonic() + timeout
            with self._lock:
                while self._bad is None and self._tasks:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        break
                    self._lock.wait(0.1 if left is None else min(left, 0.1))
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        for t in self._threads:
            t.join()
        with self._lock:
            queued, self._queue = self._queue, []
            inflight, self._inflight = self._inflight, {}
        for call in queued:
            self._fail(call.future, VineShutdownError(
                "executor %r shut down before call %d was submitted" % (self.label, call.number)))
        for tid, call in inflight.items():
            self._fail(call.future, VineShutdownError(
                "executor %r shut down before vine task %s finished; it stays in %s"
                % (self.label, tid, self.state)))
        return True

    # --- submitter thread ------------------------------------------------

    def _submitter(self):
        while True:
            with self._lock:
                while not self._queue and not self._stop.is_set():
                    self._lock.wait()
                if self._stop.is_set():
                    return
                # a closing executor sends at once what it has
                deadline = time.monotonic() + self.batch_window
                while (len(self._queue) < self.batch_size and not self._closing
                       and not self._stop.is_set()):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._lock.wait(left)
                if self._stop.is_set():
                    return
                batch = self._queue[:self.batch_size]
                del self._queue[:self.batch_size]
            self._send(batch)

    def _send(self, batch):
        groups = {}
        for call in batch:
            if call.future.cancelled():  # cancelled by the caller while queued
                self._tasks.pop(call.number, None)
                continue
            groups.setdefault(call.options, []).append(call)
        for options, calls in groups.items():
            commands = [vine_cli.task_command(self.python, self.runner, c.calldir)
                        for c in calls]
            try:
                self.submit_count += 1
                ids = self._programs.submit(commands, options)
            except VineCommandError as e:
                logger.error("VineExecutor %s: %s", self.label, e)
                for c in calls:
                    self._fail(c.future, e)
                continue
            with self._lock:
                bad = self._bad
                for c, tid in zip(calls, ids):
                    c.task_id = tid
                    c.future.vine_task_id = tid
                    if bad is None:
                        self._inflight[tid] = c
                self._submitted += len(calls)
                self._lock.notify_all()
            if bad is not None:  # the poller gave up while vine-submit ran
                for c in calls:
                    self._fail(c.future, bad)
                continue
            logger.debug("VineExecutor %s: submitted %d tasks %s..%s", self.label,
                         len(ids), ids[0], ids[-1])

    # --- poller thread ---------------------------------------------------

    def _poller(self):
        last_sig = None
        last_collect = 0.0
        collect_cost = 0.0
        errors = 0
        while not self._stop.wait(self.poll_interval):
            with self._lock:
                if not self._inflight:
                    continue
                submitted = self._submitted
            try:
                sig = vine_cli.status_signature(self._programs.status())
                now = time.monotonic()
                key = None if sig is None else (sig, submitted)
                if collect_due(now - last_collect, key != last_sig or key is None,
                               collect_cost, self.collect_interval):
                    self._programs.collect(self._collect_dir)
                    last_sig, last_collect = key, now
                    collect_cost = time.monotonic() - now
                    self._resolve()
                errors = 0
            except VineCommandError as e:
                errors += 1
                logger.warning("VineExecutor %s: poll failed (%d of %d): %s", self.label,
                               errors, self.max_poll_errors, e)
                if errors >= self.max_poll_errors:
                    self.set_bad_state_and_fail_all(VineExecutorError(
                        "executor %r cannot follow its tasks: %s" % (self.label, e)))
                    return

    def _resolve(self):
        with self._lock:
            inflight = list(self._inflight.items())
        done = []
        for tid, call in inflight:
            outcome = vine_cli.read_task_dir(os.path.join(self._collect_dir, tid), fmt.RESULT_NAME)
            if outcome is None:
                continue
            self._complete(call, outcome)
            done.append(tid)
        if done:
            with self._lock:
                for tid in done:
                    self._inflight.pop(tid, None)
                self._lock.notify_all()

    def _complete(self, call, outcome):
        path = outcome.result
        if path is None:
            # a runner without $VINE_OUTDIR writes beside the call
            p = os.path.join(call.calldir, fmt.RESULT_NAME)
            path = p if os.path.exists(p) else None
        if path is None:
            reason = ("the runner could not load the call" if outcome.exit_code == fmt.EXIT_LOAD
                      else "killed or failed before writing it" if outcome.exit_code != 0
                      else "it exited 0 but returned no result file")
            self._fail(call.future,
                       VineTaskFailure(call.task_id, outcome.exit, outcome.stderr, reason))
            return
        try:
            res = codec.read_result(path, self.serializer)
        except (OSError, ValueError) as e:
            self._fail(call.future, VineTaskFailure(call.task_id, outcome.exit, outcome.stderr,
                                               "unreadable result: %s" % e))
            return
        if res.ok:
            self._succeed(call.future, res.value)
        else:
            self._fail(call.future, res.exception)

    def _succeed(self, future, value):
        # forget the call first, so results are not kept for the whole run
        self._tasks.pop(future.parsl_executor_task_id, None)
        try:
            future.set_result(value)
        except InvalidStateError:
            pass  # already failed by shutdown or the bad state

    def _fail(self, future, exc):
        self._tasks.pop(future.parsl_executor_task_id, None)
        try:
            future.set_exception(exc)
        except InvalidStateError:
            pass

    # --- Parsl status and error management --------------------------------

    @property
    def tasks(self):
        """Call number -> Future of every call not finished yet."""
        return self._tasks

    @property
    def outstanding(self):
        with self._lock:
            return len(self._queue) + len(self._inflight)

    @property
    def bad_state_is_set(self):
        return self._bad is not None

    @property
    def executor_exception(self):
        return self._bad

    def set_bad_state_and_fail_all(self, exception):
        with self._lock:
            self._bad = exception
            queued, self._queue = self._queue, []
            inflight, self._inflight = self._inflight, {}
            self._lock.notify_all()
        for call in queued + list(inflight.values()):
            self._fail(call.future, exception)

    # Workers are started outside Parsl (vine-worker in a job script): no
    # blocks to scale, nothing for Parsl's job status poller to watch.
    @property
    def scaling_enabled(self):
        return False

    def scale_out(self, blocks=1):
        return []

    def scale_in(self, blocks=1, *args, **kwargs):
        return []

    def status(self):
        return {}

    @property
    def status_polling_interval(self):
        return 0

    @property
    def error_management_enabled(self):
        return False

    def handle_errors(self, *args, **kwargs):
        return None

    def monitor_resources(self):
        # Parsl's per-task resource monitor reports over a radio that needs
        # a shared run directory or a network path back; not supported here.
        return False

