"""The one place that runs vine programs and reads their output.

Everything that depends on the shape of vine-submit, vine-status --json and
vine-collect -o output lives here (see share/doc/parsl.md, "What the executor
relies on"), so a change in those formats is a change in this file only.
"""

import json
import os
import shlex
import shutil
import subprocess

from .errors import VineCommandError, VineSubmitError

# Task states in which a task will not run again (vine(7), TASKS).
TERMINAL_STATES = ("done", "failed", "cancelled")
# Counters in vine-status --json "tasks" that move while tasks are queued or
# running; the rest only grow as tasks finish.
MOVING_STATES = ("ready", "running", "total", "waiting")

STDERR_TAIL = 4000


class TaskOptions(tuple):
    """Per-task vine-submit options: (env, cores, retries, timeout, tag).
    Hashable, so calls are grouped by it into one vine-submit each."""

    __slots__ = ()
    FIELDS = ("env", "cores", "retries", "timeout", "tag")

    def __new__(cls, env=None, cores=None, retries=None, timeout=None, tag=None):
        return tuple.__new__(cls, (env, cores, retries, timeout, tag))

    def __getattr__(self, name):
        try:
            return self[self.FIELDS.index(name)]
        except ValueError:
            raise AttributeError(name) from None

    def with_retries(self, retries):
        return TaskOptions(self[0], self[1], retries, self[3], self[4])

    def argv(self):
        """The vine-submit options for these settings, in a fixed order."""
        env, cores, retries, timeout, tag = self
        out = []
        if env is not None:
            out += ["-e", env]
        if cores is not None:
            out += ["-n", str(cores)]
        if retries is not None:
            out += ["-r", str(retries)]
        if timeout is not None:
            out += ["-t", str(timeout)]
        if tag is not None:
            out += ["--tag", tag]
        return out


def task_command(python, runner, calldir):
    """The shell command line of one task: `python3 RUNNER CALLDIR`."""
    return shell_line([python, runner, calldir], ("python", "runner", "call directory"))


def shell_line(argv, names=None):
    """One task line: the words quoted for the shell."""
    for i, s in enumerate(argv):
        if "\n" in s or "\r" in s:
            # vine-submit reads one task per line
            what = names[i] if names else "word %d" % i
            raise ValueError("the %s path has a line break: %r" % (what, s))
    return " ".join(shlex.quote(s) for s in argv)


class VinePrograms:
    """Runs vine-submit, vine-status and vine-collect for one state.

    bin_dir: a directory holding the programs, else they are found on PATH.
    timeout: seconds any one program may take before it is killed.
    """

    def __init__(self, state, bin_dir=None, timeout=300):
        self.state = state
        self.bin_dir = bin_dir
        self.timeout = timeout

    def _argv(self, name, *args):
        prog = os.path.join(self.bin_dir, name) if self.bin_dir else name
        return [prog, "-s", self.state] + list(args)

    def _run(self, argv, stdin_text=None, error=VineCommandError, ok=(0,)):
        try:
            p = subprocess.run(argv, input=stdin_text, capture_output=True,
                               text=True, timeout=self.timeout)
        except FileNotFoundError as e:
            raise error("cannot run '%s': %s" % (argv[0], e.strerror), argv) from None
        except OSError as e:
            raise error("cannot run '%s': %s" % (argv[0], e), argv) from None
        except subprocess.TimeoutExpired:
            raise error("'%s' took longer than %s s" % (argv[0], self.timeout), argv) from None
        if p.returncode not in ok:
            err = p.stderr.strip()
            raise error("'%s' failed (exit %s)%s" % (
                " ".join(shlex.quote(a) for a in argv), p.returncode,
                ": " + err if err else ""), argv, p.returncode, p.stderr)
        return p

    def submit(self, commands, options):
        """Add one task per command (all or nothing); return the task ids in
        input order."""
        argv = self._argv("vine-submit", *options.argv(), "-")
        text = "".join(c + "\n" for c in commands)
        p = self._run(argv, text, error=VineSubmitError)
        ids = [line.strip() for line in p.stdout.splitlines() if line.strip()]
        if len(ids) != len(commands):
            raise VineSubmitError(
                "vine-submit printed %d task ids for %d commands; the tasks may "
                "be in the state but cannot be matched to calls" % (len(ids), len(commands)),
                argv, p.returncode, p.stderr)
        return ids

    def register(self, env):
        """Register the environment archive (`vine-submit -e ENV` with no
        tasks), which creates the state if need be, so that workers started
        before the first call find it."""
        self._run(self._argv("vine-submit", "-e", env, "-"), "", error=VineSubmitError)

    def status(self):
        """The parsed object of `vine-status --json`."""
        p = self._run(self._argv("vine-status", "--json"))
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            raise VineCommandError("vine-status --json printed no JSON object: %s" % e,
                                   None, p.returncode, p.stderr) from None

    def have(self, name):
        """Whether the program is there to run."""
        if self.bin_dir:
            return os.access(os.path.join(self.bin_dir, name), os.X_OK)
        return shutil.which(name) is not None

    def cancel(self, ids):
        """Cancel tasks (vine-cancel ID...): ready ones never run, running
        ones are stopped on their workers."""
        if ids:
            self._run(self._argv("vine-cancel", *[str(i) for i in ids]), ok=(0, 1))

    def collect(self, outdir, ids=()):
        """Lay out the finished tasks that outdir holds nothing for yet and
        that were not delivered before, and have the state drop their
        results (`vine-collect -n -d -o`): each result is then kept once,
        in outdir, until the caller removes it (delivered()).  Returns their
        ids.  ids: only these tasks (a state shared with other task lists
        keeps theirs).  Exit 1 only means that not every task is done and
        succeeded."""
        p = self._run(self._argv("vine-collect", "-q", "-n", "-d", "-o", outdir,
                                 *[str(i) for i in ids]), ok=(0, 1))
        return [line.strip() for line in p.stdout.splitlines() if line.strip()]


def live_workers(obj):
    """The workers of a vine-status --json object that can run tasks now:
    alive, lease not past, with cores."""
    if not isinstance(obj, dict) or not isinstance(obj.get("workers"), list):
        return []
    now = obj.get("time")
    out = []
    for w in obj["workers"]:
        if not isinstance(w, dict) or w.get("state") != "alive":
            continue
        if not isinstance(w.get("cores"), int) or w["cores"] <= 0:
            continue
        exp = w.get("expires")
        if isinstance(now, (int, float)) and isinstance(exp, (int, float)) and exp < now:
            continue
        out.append(w)
    return out


def running_ids(obj):
    """The ids (as text) of the tasks the workers of a vine-status --json
    object are running."""
    ids = set()
    if isinstance(obj, dict) and isinstance(obj.get("workers"), list):
        for w in obj["workers"]:
            if isinstance(w, dict) and isinstance(w.get("running"), list):
                ids.update(str(i) for i in w["running"])
    return ids


def task_counts(obj):
    """The task counts by state of a vine-status --json object ({} if none)."""
    tasks = obj.get("tasks") if isinstance(obj, dict) else None
    if isinstance(tasks, dict):
        counts = tasks.get("counts", tasks)
        if isinstance(counts, dict):
            return {k: v for k, v in counts.items() if isinstance(v, int)}
    return {}


def status_signature(obj):
    """Something that changes when a task reaches a final state, from a
    vine-status --json object; None when the object has no usable task
    information (then the caller collects on every poll)."""
    if not isinstance(obj, dict):
        return None
    tasks = obj.get("tasks")
    if isinstance(tasks, dict):
        counts = tasks.get("counts", tasks)
        if isinstance(counts, dict):
            return tuple(sorted((k, v) for k, v in counts.items()
                                if k not in MOVING_STATES and isinstance(v, int)))
    if isinstance(tasks, list):
        final = []
        for t in tasks:
            if not isinstance(t, dict):
                return None
            state = t.get("state")
            if state in TERMINAL_STATES:
                final.append((str(t.get("id")), state))
        return tuple(sorted(final))
    return None


class Outcome:
    """What vine-collect left for one task: exit is the exit record as text
    (None when the task has not finished), exit_code its integer form when it
    is one, result the path of the runner's result file if it came back."""

    def __init__(self, exit, result, stderr):
        self.exit = exit
        self.result = result
        self.stderr = stderr

    @property
    def exit_code(self):
        try:
            return int(self.exit)
        except (TypeError, ValueError):
            return None


def read_task_dir(taskdir, result_name):
    """Read DIR/<task-id>/ as written by vine-collect -o: it is final once
    its `exit` file exists.  Returns an Outcome, or None if not final."""
    try:
        with open(os.path.join(taskdir, "exit"), "r", errors="replace") as f:
            exit = f.read().strip()
    except FileNotFoundError:
        return None
    result = None
    # returned files are "in" the task directory; accept one level of nesting
    for root, dirs, files in os.walk(taskdir):
        if result_name in files:
            result = os.path.join(root, result_name)
            break
        if root != taskdir:
            dirs[:] = []
    return Outcome(exit, result, read_tail(os.path.join(taskdir, "stderr")))


def delivered(taskdir):
    """Remove a task's directory of results once read: vine-collect -d has
    had the state drop them already, and never writes a delivered task
    again, so no copy is left anywhere."""
    shutil.rmtree(taskdir, ignore_errors=True)


def read_tail(path, size=STDERR_TAIL):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            n = f.tell()
            f.seek(max(0, n - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
