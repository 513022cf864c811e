"""VineExecutor: run Parsl apps as vine tasks.

Two modes.  "warm" (the default): the executor listens on a TCP port and
submits pool tasks through vine-submit; each is one long-lived interpreter
(vine_runner.py --pool) that holds its cores on a worker, connects back,
proves it holds the run's key, and runs the calls it is sent one after
another, returning each result over the connection: no call pays an
interpreter start or an import of Parsl, and the state only carries the
pool tasks.  A pool lost in the middle of a call (its node died, it was
killed) gives the call to another pool, up to the call's retries.
"cold": every call is a vine task of its own (`python vine_runner.py
CALLDIR`); a poller gathers finished tasks with vine-collect.

A status poller watches `vine-status --json`: it says in the log (Parsl's
parsl.log) when tasks wait with no live worker, or need more cores than any
live worker has, and keeps saying so.  shutdown() (Parsl's cleanup) ends the
pools, cancels the run's tasks still in the state with vine-cancel, and
fails the futures not done.  Workers are not started here: run vine-worker
on the nodes (a Slurm job, say) against the same state.

The Parsl interface implemented is ParslExecutor of parsl/executors/base.py
(Parsl 1.3.0-dev, commit b8b474c7): label, start(), submit(func,
resource_specification, *args, **kwargs) -> Future, shutdown() (calling
ParslExecutor.shutdown, which stops the monitoring receiver),
monitor_resources(), run_dir, remote_monitoring_radio (a FilesystemRadio
by default, as TaskVineExecutor's: it writes under the run directory, which
the tasks see anyway).
"""

import collections
import itertools
import logging
import os
import secrets
import socket
import sys
import threading
import time
from concurrent.futures import Future, InvalidStateError

from . import codec, vine_cli
from . import vine_runner as fmt
from .errors import (VineCommandError, VineExecutorError, VineShutdownError,
                     VineTaskFailure)

# a child of Parsl's logger, so that what it says lands in parsl.log
logger = logging.getLogger("parsl.executors.vine_parsl")

try:
    from parsl.executors.base import ParslExecutor as _Base
    from parsl.executors.errors import InvalidResourceSpecification as _SpecBase
    HAVE_PARSL = True
except ImportError:
    HAVE_PARSL = False

    class _SpecBase(Exception):
        def __init__(self, invalid_keys, message=""):
            super().__init__(message)
            self.invalid_keys = invalid_keys
            self.message = message

        def __str__(self):
            return "Invalid Resource Specification Supplied: %s. %s" % (self.invalid_keys,
                                                                        self.message)

    class _Base:
        """Stand-in for parsl.executors.base.ParslExecutor when Parsl is not
        installed, so VineExecutor can be driven directly."""

        label = "undefined"

        def __init__(self):
            self.run_dir = os.path.abspath(".")
            self.run_id = None
            self.remote_monitoring_radio = None
            self.monitoring_receiver = None
            self.monitoring_messages = None

        def __enter__(self):
            return self

        def __exit__(self, exc_type, exc_val, exc_tb):
            self.shutdown()
            return False

        def shutdown(self):
            pass

        def monitor_resources(self):
            return True


class VineResourceSpecError(_SpecBase, ValueError):
    """A resource_specification this executor cannot honour (Parsl's
    InvalidResourceSpecification, and a ValueError)."""

    def __init__(self, invalid_keys, message=""):
        _SpecBase.__init__(self, set(invalid_keys), message)


RESOURCE_KEYS = ("cores", "env", "retries", "timeout", "tag")


def _positive_int(key, v, minimum):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or v < minimum:
        raise VineResourceSpecError({key}, "%r must be an integer >= %d, not %r"
                                    % (key, minimum, v))
    return int(v)


def task_options(spec, defaults):
    """Map a Parsl resource_specification onto vine-submit options.
    defaults: a TaskOptions with the executor-wide settings."""
    spec = spec or {}
    if not isinstance(spec, dict):
        raise VineResourceSpecError(set(), "resource_specification must be a dict, not %s"
                                    % type(spec).__name__)
    unknown = sorted(set(spec) - set(RESOURCE_KEYS))
    if unknown:
        raise VineResourceSpecError(unknown, "vine cannot honour %s (it takes: %s)"
                                    % (", ".join(map(repr, unknown)), ", ".join(RESOURCE_KEYS)))
    env, cores, retries, timeout, tag = defaults
    if spec.get("env") is not None:
        env = spec["env"]
        if not isinstance(env, (str, os.PathLike)):
            raise VineResourceSpecError({"env"}, "'env' must be a path")
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
    __slots__ = ("number", "future", "options", "blob", "python_path", "cwd", "calldir",
                 "task_id", "attempts", "pool")

    def __init__(self, number, future, options, blob, python_path, cwd):
        self.number = number
        self.future = future
        self.options = options
        self.blob = blob
        self.python_path = python_path
        self.cwd = cwd
        self.calldir = None
        self.task_id = None
        self.attempts = 0
        self.pool = None


class _Pool:
    """A pool task: submitted ("starting"), then connected ("idle" or
    "busy" with call)."""
    __slots__ = ("name", "key", "task_id", "sock", "call", "seen_running", "node", "since",
                 "retiring")

    def __init__(self, name, key):
        self.since = time.monotonic()
        self.retiring = False
        self.name = name
        self.key = key
        self.task_id = None
        self.sock = None
        self.call = None
        self.seen_running = False
        self.node = ""


def pool_key(options):
    """Calls that can share a pool: same environment, cores and tag."""
    return vine_cli.TaskOptions(options.env, options.cores, None, None, options.tag)


class VineExecutor(_Base):
    """Parsl executor that runs apps as tasks of a vine state.

    label        the executor's Parsl label
    state        the vine state (-s); default $VINE_STATE, else ./vine.db
    work_dir     the run's files (the pools' key; in cold mode the calls);
                 must be visible at the same path to the tasks (a shared
                 file system) unless every worker runs on this host;
                 default RUN_DIR/LABEL, RUN_DIR being Parsl's run directory
    env, cores, retries, timeout, tag
                 defaults for every call (vine-submit -e/-n/-r/-t/--tag); an
                 app's resource_specification overrides them per call
    mode         "warm" (pools of long-lived interpreters) or "cold" (a task
                 per call)
    address      the address pools connect back to; default: every
                 interface, and the pools try 127.0.0.1, then this host's name
    max_pools    most pool tasks at once (default: no limit but the calls
                 waiting and the live workers' cores)
    pool_idle    seconds a pool waits for a call before it ends its task
    python       the interpreter of the tasks; default: the one running the
                 workflow (sys.executable), or the environment's python3
                 when the call has an env
    python_path  directories the tasks put in front of sys.path; calls run
                 by the workflow's interpreter also get its PYTHONPATH
    serializer   "auto" (Parsl's when importable, else pickle), "pickle",
                 "cloudpickle" or "parsl"; the tasks need it too
    runner       path of vine_runner.py as the tasks see it
    vine_bin     directory holding the vine programs, else PATH is used
    batch_size, batch_window  (cold) most calls per vine-submit, and the
                 seconds to wait after the first pending call for more
    poll_interval  (cold) seconds between checks for finished tasks
    collect_interval  (cold) run vine-collect at least this often
    status_interval  seconds between vine-status polls (liveness)
    warn_interval  seconds between repeats of a liveness warning
    cancel       shutdown() cancels the run's tasks left in the state
    shutdown_wait  default for shutdown(wait=...)
    max_poll_errors  consecutive failed polls before every outstanding
                 future fails (the executor enters the bad state)
    command_timeout  seconds a vine program may run before it is killed
    storage_access   Parsl staging providers (passed through)
    remote_monitoring_radio  Parsl's radio for resource monitoring
    """

    def __init__(self, label="vine", state=None, work_dir=None, env=None, cores=None,
                 retries=None, timeout=None, tag=None, mode="warm", address=None,
                 max_pools=None, pool_idle=60.0, batch_size=256, batch_window=0.02,
                 poll_interval=0.2, collect_interval=10.0, status_interval=2.0,
                 warn_interval=5.0, serializer="auto", python=None, runner=None,
                 python_path=None, vine_bin=None, cancel=True, shutdown_wait=False,
                 max_poll_errors=10, command_timeout=300, storage_access=None,
                 remote_monitoring_radio=None):
        _Base.__init__(self)
        self.label = label
        self.state = state
        self.work_dir = work_dir
        self.defaults = task_options({"env": env, "cores": cores, "retries": retries,
                                      "timeout": timeout, "tag": tag},
                                     vine_cli.TaskOptions())
        if mode not in ("warm", "cold"):
            raise ValueError("mode must be 'warm' or 'cold', not %r" % (mode,))
        self.mode = mode
        self.address = address
        self.max_pools = None if max_pools is None else int(max_pools)
        self.pool_idle = float(pool_idle)
        if int(batch_size) < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = int(batch_size)
        self.batch_window = float(batch_window)
        self.poll_interval = float(poll_interval)
        self.collect_interval = float(collect_interval)
        self.status_interval = float(status_interval)
        self.warn_interval = float(warn_interval)
        self.serializer = serializer
        self.python = python
        self.runner = runner or os.path.abspath(fmt.__file__)
        self.python_path = [os.path.abspath(p) for p in (python_path or [])]
        self.vine_bin = vine_bin
        self.cancel = cancel
        self.shutdown_wait = shutdown_wait
        self.max_poll_errors = int(max_poll_errors)
        self.command_timeout = command_timeout
        self.storage_access = storage_access
        if remote_monitoring_radio is None and HAVE_PARSL:
            from parsl.monitoring.radios.filesystem import FilesystemRadio
            remote_monitoring_radio = FilesystemRadio()
        self.remote_monitoring_radio = remote_monitoring_radio

        self._lock = threading.Condition()
        self._numbers = itertools.count()
        self._tasks = {}        # call number -> Future, until it is done
        self._queue = []        # cold: _Call not yet given to vine-submit
        self._inflight = {}     # cold: vine task id -> _Call
        self._pending = collections.defaultdict(collections.deque)  # warm: key -> _Call
        self._pools = {}        # warm: name -> _Pool
        self._pool_numbers = itertools.count()
        self._pool_failures = collections.Counter()
        self._live_cores = 0    # from the last vine-status: all live workers' cores
        self._submitted = 0
        self._started = False
        self._closing = False
        self._stop = threading.Event()
        self._bad = None
        self._threads = []
        self._listener = None
        self.submit_count = 0   # vine-submit runs, for tests and logs

    def __repr__(self):
        return "VineExecutor(label=%r, state=%r, mode=%r)" % (self.label, self.state, self.mode)

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
            self.work_dir = os.path.join(getattr(self, "run_dir", None) or os.getcwd(),
                                         self.label)
        self.work_dir = os.path.abspath(self.work_dir)
        self._calls_dir = os.path.join(self.work_dir, "calls")
        self._collect_dir = os.path.join(self.work_dir, "collected")
        os.makedirs(self.work_dir, exist_ok=True)
        # tasks run by the workflow's own interpreter see its module path
        self._inherited_path = [os.path.abspath(p) for p in
                                os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        self._programs = vine_cli.VinePrograms(self.state, self.vine_bin, self.command_timeout)
        if self.defaults.env is not None:
            # registering the environment creates the state: workers started
            # first find it (they also wait for it: vine-worker(1)), and a
            # missing archive fails here, not in every call
            self._programs.register(self.defaults.env)
        if self.mode == "warm":
            self._listen()
        self._started = True
        targets = [("status", self._status_poller)]
        if self.mode == "warm":
            targets += [("pools", self._pool_starter), ("accept", self._acceptor)]
        else:
            targets += [("submitter", self._submitter), ("poller", self._poller)]
        for name, target in targets:
            t = threading.Thread(target=target, name="vine-%s-%s" % (self.label, name),
                                 daemon=True)
            t.start()
            self._threads.append(t)
        logger.info("VineExecutor %s: %s mode, state %s, work dir %s, serializer %s",
                    self.label, self.mode, self.state, self.work_dir, self.serializer)
        return None

    def _python(self, options):
        if self.python:
            return self.python
        return "python3" if options.env else sys.executable

    def _path(self, options):
        if self.python or options.env:
            return list(self.python_path)
        return self.python_path + [p for p in self._inherited_path if p not in self.python_path]

    def submit(self, func, resource_specification, *args, **kwargs):
        if self._bad is not None:
            raise self._bad
        if not self._started:
            raise VineExecutorError("executor %r is not started" % self.label)
        if self._closing:
            raise VineShutdownError("executor %r is shut down" % self.label)
        options = task_options(resource_specification, self.defaults)
        number = next(self._numbers)
        blob = codec.call_blob(func, args, kwargs, self.serializer)
        future = Future()
        future.parsl_executor_task_id = number
        call = _Call(number, future, options, blob, self._path(options), os.getcwd())
        if self.mode == "cold":
            # a thousand calls per directory keeps directories small
            call.calldir = os.path.join(self._calls_dir, "%d" % (number // 1000), "%d" % number)
            codec.write_call(call.calldir, blob, self.serializer, call.python_path, call.cwd)
            call.blob = None
        with self._lock:
            if self._closing:
                raise VineShutdownError("executor %r is shut down" % self.label)
            self._tasks[number] = future
            if self.mode == "cold":
                self._queue.append(call)
            else:
                self._pending[pool_key(options)].append(call)
                self._dispatch()
            self._lock.notify_all()
        return future

    def shutdown(self, wait=None, timeout=None):
        """Stop.  wait=True first waits (at most timeout seconds) for every
        future; then, and by default at once, the pools end, the run's tasks
        still in the state are cancelled (vine-cancel) and each unfinished
        future fails with VineShutdownError."""
        if wait is None:
            wait = self.shutdown_wait
        with self._lock:
            already = not self._started or self._stop.is_set()
            self._closing = True
            self._lock.notify_all()
        if already:
            return self._base_shutdown()
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
            queued, self._queue = self._queue, []
            inflight, self._inflight = self._inflight, {}
            pending = [c for q in self._pending.values() for c in q]
            self._pending.clear()
            pools, self._pools = list(self._pools.values()), {}
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                self._listener.close()
            except OSError:
                pass
        busy = []
        for pool in pools:
            if pool.call is not None:
                busy.append(pool.call)
            if pool.sock is not None:
                # a pool in the middle of a call ends when its connection does
                self._close(pool.sock, goodbye=True)
        for t in self._threads:
            t.join()
        leftover = [c.task_id for c in inflight.values() if c.task_id] + \
                   [p.task_id for p in pools if p.sock is None and p.task_id]
        if leftover and self.cancel:
            self._cancel_tasks(leftover)
        for call in queued + pending:
            self._fail(call.future, VineShutdownError(
                "executor %r shut down before call %d ran" % (self.label, call.number)))
        for call in busy:
            self._fail(call.future, VineShutdownError(
                "executor %r shut down while call %d was running; its pool was stopped"
                % (self.label, call.number)))
        for tid, call in inflight.items():
            self._fail(call.future, VineShutdownError(
                "executor %r shut down before vine task %s finished" % (self.label, tid)))
        return self._base_shutdown()

    def _base_shutdown(self):
        if HAVE_PARSL:
            super().shutdown()
        return True

    def _cancel_tasks(self, ids):
        if not self._programs.have("vine-cancel"):
            logger.warning("VineExecutor %s: vine-cancel is not installed: tasks %s stay in %s",
                           self.label, " ".join(map(str, ids)), self.state)
            return
        try:
            self._programs.cancel(ids)
            logger.info("VineExecutor %s: cancelled %d tasks in %s", self.label, len(ids),
                        self.state)
        except VineCommandError as e:
            logger.warning("VineExecutor %s: %s", self.label, e)

    # --- warm mode: pools ------------------------------------------------

    def _listen(self):
        """Listen for pools.  Without an address, on every interface, and
        the pools try 127.0.0.1 (a worker on this host) and then this host's
        name (a worker elsewhere: the state may be reached over ssh://, or
        opened where the workflow runs while workers come over ssh://)."""
        if self.address:
            fam = socket.AF_INET6 if ":" in self.address else socket.AF_INET
            bind, names = self.address, [self.address]
        else:
            fam, bind, names = socket.AF_INET, "", ["127.0.0.1", socket.getfqdn()]
        sock = socket.socket(fam, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind, 0))
        sock.listen(256)
        port = sock.getsockname()[1]
        self._listener = sock
        self._address = ",".join(("[%s]:%d" if ":" in n else "%s:%d") % (n, port)
                                 for n in names)
        self._key = secrets.token_bytes(32)
        self._keyfile = os.path.join(self.work_dir, "pool.key")
        tmp = self._keyfile + ".%d" % os.getpid()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self._key)
        os.replace(tmp, self._keyfile)
        self._token = secrets.token_hex(4)

    def _acceptor(self):
        self._listener.settimeout(0.5)  # close() does not wake accept()
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=self._serve_pool, args=(conn,), daemon=True,
                             name="vine-%s-pool" % self.label).start()

    @staticmethod
    def _close(sock, goodbye=False):
        if goodbye:
            try:
                sock.settimeout(1)
                fmt.send_frame(sock, ("exit",))
            except OSError:
                pass
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass

    def _handshake(self, conn):
        import hmac
        conn.settimeout(30)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        nonce = secrets.token_bytes(fmt.NONCE)
        conn.sendall(fmt.POOL_MAGIC + nonce)
        reply = fmt.recv_exact(conn, 32 + fmt.NONCE)
        if not hmac.compare_digest(reply[:32], fmt.hmac_of(self._key, b"pool", nonce)):
            raise ValueError("a connection without the key")
        conn.sendall(fmt.hmac_of(self._key, b"executor", reply[32:]))
        hello = fmt.recv_frame(conn)
        conn.settimeout(None)
        if not (isinstance(hello, tuple) and len(hello) == 5 and hello[0] == "hello"):
            raise ValueError("no hello")
        return hello

    def _serve_pool(self, conn):
        try:
            _, name, tid, node, pid = self._handshake(conn)
        except (OSError, EOFError, ValueError) as e:
            logger.warning("VineExecutor %s: refused a pool connection: %s", self.label, e)
            self._close(conn)
            return
        with self._lock:
            pool = self._pools.get(name)
            if pool is None or pool.sock is not None or self._stop.is_set():
                pool = None
            else:
                pool.sock = conn
                pool.node = node
                self._pool_failures[pool.key] = 0
                self._dispatch()
                self._lock.notify_all()
        if pool is None:
            self._close(conn, goodbye=True)   # a stale pool: nothing for it
            return
        logger.debug("VineExecutor %s: pool %s (task %s, node %s, pid %s) connected",
                     self.label, name, tid, node, pid)
        why = "its connection closed"
        try:
            while True:
                msg = fmt.recv_frame(conn)
                if msg[0] == "result":
                    with self._lock:
                        call, pool.call = pool.call, None
                        self._dispatch()
                    if call is not None and call.number == msg[1]:
                        self._complete_data(call, msg[2])
                elif msg[0] == "timeout":
                    why = "timeout"
                    break
        except (OSError, EOFError, ValueError, IndexError, TypeError) as e:
            if not isinstance(e, EOFError):
                why = str(e)
        self._pool_lost(pool, why)

    def _pool_lost(self, pool, why):
        self._close(pool.sock)
        with self._lock:
            if self._pools.get(pool.name) is pool:
                del self._pools[pool.name]
            call, pool.call = pool.call, None
            retry = False
            if call is not None and why != "timeout" and not self._stop.is_set():
                retries = call.options.retries if call.options.retries is not None else 1
                retry = call.attempts <= retries
                if retry:
                    self._pending[pool.key].appendleft(call)
            self._dispatch()
            self._lock.notify_all()
        if call is None or self._stop.is_set():
            return
        if retry:
            logger.warning("VineExecutor %s: pool %s (vine task %s, node %s) was lost in "
                           "call %d (%s); running it again", self.label, pool.name,
                           pool.task_id, pool.node, call.number, why)
            return
        reason = ("it ran past its timeout of %s s" % call.options.timeout if why == "timeout"
                  else "its pool was lost (%s) on attempt %d" % (why, call.attempts))
        self._fail(call.future, VineTaskFailure(pool.task_id, "timeout" if why == "timeout"
                                                else "lost", "", reason))

    def _dispatch(self):
        """Give waiting calls to idle pools (with the lock held)."""
        for pool in self._pools.values():
            if pool.sock is None or pool.call is not None or pool.retiring:
                continue
            q = self._pending.get(pool.key)
            while q:
                call = q.popleft()
                if call.future.cancelled():
                    self._tasks.pop(call.number, None)
                    continue
                call.attempts += 1
                pool.call = call
                try:
                    fmt.send_frame(pool.sock, ("call", call.number, self.serializer,
                                               call.python_path, call.cwd,
                                               call.options.timeout, call.blob))
                except OSError:
                    # the pool's reader sees the connection fail and retries
                    pass
                break

    def _pool_starter(self):
        """Submit pool tasks while calls wait for one."""
        while True:
            with self._lock:
                while not self._stop.is_set():
                    plan = self._pools_wanted()
                    if plan:
                        break
                    self._lock.wait()
                if self._stop.is_set():
                    return
                for key, n in plan:
                    for _ in range(n):
                        name = "%s-%d" % (self._token, next(self._pool_numbers))
                        self._pools[name] = _Pool(name, key)
                names = [p for p in self._pools.values() if p.task_id is None]
            groups = collections.defaultdict(list)
            for p in names:
                groups[p.key].append(p)
            for key, pools in groups.items():
                commands = [vine_cli.shell_line([self._python(key), self.runner, "--pool",
                                                 self._address, self._keyfile, p.name,
                                                 "%g" % self.pool_idle]) for p in pools]
                try:
                    self.submit_count += 1
                    ids = self._programs.submit(commands, key.with_retries(0))
                except VineCommandError as e:
                    logger.error("VineExecutor %s: %s", self.label, e)
                    with self._lock:
                        for p in pools:
                            self._pools.pop(p.name, None)
                        calls = list(self._pending.pop(key, ()))
                    for c in calls:
                        self._fail(c.future, e)
                    continue
                with self._lock:
                    for p, tid in zip(pools, ids):
                        p.task_id = tid
                logger.debug("VineExecutor %s: submitted %d pool tasks %s..%s", self.label,
                             len(ids), ids[0], ids[-1])

    def _pools_wanted(self):
        """[(key, how many pools to start)] for the calls waiting now."""
        starting = sum(1 for p in self._pools.values() if p.sock is None)
        # pools not yet running wait in the state: enough for the live cores
        room = max(2, self._live_cores) - starting
        if self.max_pools is not None:
            room = min(room, self.max_pools - len(self._pools))
        plan = []
        for key, q in self._pending.items():
            if room <= 0:
                break
            if not q:
                continue
            free = sum(1 for p in self._pools.values()
                       if p.key == key and (p.sock is None or p.call is None))
            n = min(len(q) - free, room)
            if n > 0:
                plan.append((key, n))
                room -= n
        return plan

    # --- cold mode: a task per call ----------------------------------------

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
            commands = [vine_cli.task_command(self._python(options), self.runner, c.calldir)
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
                mine = list(self._inflight)
            try:
                sig = vine_cli.status_signature(self._programs.status())
                now = time.monotonic()
                key = None if sig is None else (sig, submitted)
                since = now - last_collect
                if collect_due(since, key != last_sig or key is None,
                               collect_cost, self.collect_interval):
                    # this run's tasks only: a state shared with other
                    # task lists keeps theirs
                    new = self._programs.collect(self._collect_dir, mine)
                    last_sig, last_collect = key, now
                    collect_cost = time.monotonic() - now
                    # the new ones; now and then every call's, a safety net
                    self._resolve(None if since >= self.collect_interval else new)
                errors = 0
            except VineCommandError as e:
                errors += 1
                logger.warning("VineExecutor %s: poll failed (%d of %d): %s", self.label,
                               errors, self.max_poll_errors, e)
                if errors >= self.max_poll_errors:
                    self.set_bad_state_and_fail_all(VineExecutorError(
                        "executor %r cannot follow its tasks: %s" % (self.label, e)))
                    return

    def _resolve(self, ids=None):
        """Complete the calls whose tasks vine-collect -n laid out (ids), or
        every call's whose task has a directory (None)."""
        with self._lock:
            if ids is None:
                inflight = list(self._inflight.items())
            else:
                inflight = [(t, self._inflight[t]) for t in ids if t in self._inflight]
        done = []
        for tid, call in inflight:
            taskdir = os.path.join(self._collect_dir, tid)
            if not os.path.isdir(taskdir):
                continue
            outcome = vine_cli.read_task_dir(taskdir, fmt.RESULT_NAME)
            if outcome is None:
                continue
            self._complete(call, outcome, taskdir)
            done.append(tid)
        if done:
            with self._lock:
                for tid in done:
                    self._inflight.pop(tid, None)
                self._lock.notify_all()

    def _complete(self, call, outcome, taskdir):
        """Read what vine-collect laid out for the call's task (the state
        dropped it then: vine-collect -d), remove it (vine_cli.delivered),
        then complete the future."""
        path = outcome.result
        if path is None:
            # a runner without $VINE_OUTDIR writes beside the call
            p = os.path.join(call.calldir, fmt.RESULT_NAME)
            path = p if os.path.exists(p) else None
        data = error = None
        if path is None:
            error = ("the runner could not load the call" if outcome.exit_code == fmt.EXIT_LOAD
                     else "killed or failed before writing it" if outcome.exit_code != 0
                     else "it exited 0 but returned no result file")
        else:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                error = "unreadable result: %s" % e
        vine_cli.delivered(taskdir)
        if error is not None:
            self._fail(call.future, VineTaskFailure(call.task_id, outcome.exit, outcome.stderr,
                                                    error))
            return
        self._complete_data(call, data, outcome)

    def _complete_data(self, call, data, outcome=None):
        try:
            res = codec.decode_result(data, self.serializer)
        except ValueError as e:
            self._fail(call.future, VineTaskFailure(
                call.task_id, outcome and outcome.exit, outcome and outcome.stderr,
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

    # --- liveness ------------------------------------------------------------

    def _status_poller(self):
        """Poll vine-status: the live workers' cores (how many pools to
        start), pool tasks that ended without connecting, and the warnings
        when work waits for a worker that is not there."""
        warned = {}
        errors = 0
        while not self._stop.wait(self.status_interval):
            with self._lock:
                starting = [p for p in self._pools.values() if p.sock is None and p.task_id]
                waiting = ([c.options.cores or 1 for c in self._inflight.values()] +
                           [p.key.cores or 1 for p in starting if not p.seen_running])
                busy = bool(self._inflight or self._pools or self._queue or
                            any(self._pending.values()))
            if not busy:
                warned.clear()
                continue
            try:
                obj = self._programs.status()
                errors = 0
            except VineCommandError as e:
                errors += 1
                logger.warning("VineExecutor %s: vine-status failed (%d): %s", self.label,
                               errors, e)
                if self.mode == "warm" and errors >= self.max_poll_errors:
                    self.set_bad_state_and_fail_all(VineExecutorError(
                        "executor %r cannot follow its state: %s" % (self.label, e)))
                    return
                continue
            live = vine_cli.live_workers(obj)
            ready = vine_cli.task_counts(obj).get("ready", 0)
            with self._lock:
                self._live_cores = sum(w["cores"] for w in live)
                self._lock.notify_all()
            now = time.monotonic()

            def say(what, text):
                if now - warned.get(what, -1e9) >= self.warn_interval:
                    warned[what] = now
                    logger.warning("VineExecutor %s: %s", self.label, text)

            if waiting and ready and not live:
                say("none", "%d tasks wait in %s and no live worker serves it (start vine-worker "
                    "-s %s on the nodes)" % (ready, self.state, self.state))
            else:
                warned.pop("none", None)
            most = max((w["cores"] for w in live), default=0)
            need = max(waiting, default=0)
            if live and need > most:
                say("cores", "tasks need %d cores and the largest live worker has %d: they wait "
                    "until a bigger worker joins %s" % (need, most, self.state))
            else:
                warned.pop("cores", None)
            if self.mode == "warm":
                self._check_starting(starting, vine_cli.running_ids(obj))
                self._retire_idle()

    def _retire_idle(self):
        """Idle pools hold their cores: when calls of another kind (other
        cores, env or tag) have waited a while for a pool of their own, the
        idle pools of kinds with nothing to do end, to make room."""
        with self._lock:
            now = time.monotonic()
            starving = {p.key for p in self._pools.values()
                        if p.sock is None and now - p.since > 1.0 and self._pending.get(p.key)}
            if not starving:
                return
            for p in self._pools.values():
                if (p.sock is not None and p.call is None and not p.retiring
                        and p.key not in starving and not self._pending.get(p.key)):
                    p.retiring = True
                    try:
                        fmt.send_frame(p.sock, ("exit",))
                    except OSError:
                        pass

    def _check_starting(self, starting, running):
        failed = []
        with self._lock:
            for p in starting:
                if p.sock is not None or self._pools.get(p.name) is not p:
                    continue
                if str(p.task_id) in running:
                    p.seen_running = True
                elif p.seen_running:
                    # ran and ended without ever connecting back
                    del self._pools[p.name]
                    self._pool_failures[p.key] += 1
                    failed.append(p)
            calls = []
            for p in failed:
                if self._pool_failures[p.key] >= 3:
                    calls += list(self._pending.pop(p.key, ()))
            self._lock.notify_all()
        for p in failed:
            logger.warning("VineExecutor %s: pool task %s ended without connecting back to %s "
                           "(vine-collect -s %s shows its stderr)", self.label, p.task_id,
                           self._address, self.state)
        for c in calls:
            self._fail(c.future, VineExecutorError(
                "pool tasks for call %d ended three times without connecting back to %s; "
                "see their stderr with vine-collect -s %s" % (c.number, self._address,
                                                              self.state)))

    # --- Parsl status and error management --------------------------------

    @property
    def tasks(self):
        """Call number -> Future of every call not finished yet."""
        return self._tasks

    @property
    def outstanding(self):
        with self._lock:
            return len(self._tasks)

    @property
    def bad_state_is_set(self):
        return self._bad is not None

    @property
    def executor_exception(self):
        return self._bad

    def set_bad_state_and_fail_all(self, exception):
        with self._lock:
            self._bad = exception
            calls = self._queue + list(self._inflight.values())
            calls += [c for q in self._pending.values() for c in q]
            calls += [p.call for p in self._pools.values() if p.call is not None]
            self._queue, self._inflight = [], {}
            self._pending.clear()
            self._lock.notify_all()
        for call in calls:
            self._fail(call.future, exception)

    def monitor_resources(self):
        # the radio writes under the run directory, as TaskVine's does
        return True
