"""Exceptions a VineExecutor future can complete with (besides the remote
function's own exception, which is re-raised as itself)."""


class VineExecutorError(Exception):
    """Base class of the executor's own errors."""


class VineCommandError(VineExecutorError):
    """A vine program could not be run or failed (vine-submit, vine-status,
    vine-collect).  argv, status and stderr say which and why."""

    def __init__(self, message, argv=None, status=None, stderr=""):
        super().__init__(message)
        self.argv = argv
        self.status = status
        self.stderr = stderr


class VineSubmitError(VineCommandError):
    """vine-submit refused a batch: none of its calls became tasks."""


class VineTaskFailure(VineExecutorError):
    """The task ended without a result: the runner failed to load the call,
    was killed (timeout, signal, node lost past its retries) or exited
    non-zero.  exit is vine-collect's exit record, stderr the tail of the
    task's stderr."""

    def __init__(self, task_id, exit, stderr, reason):
        msg = "vine task %s ended without a result: %s" % (task_id, reason)
        if exit is not None:
            msg += " (exit %s)" % exit
        tail = (stderr or "").strip()
        if tail:
            msg += "\n--- task stderr (tail) ---\n" + tail
        super().__init__(msg)
        self.task_id = task_id
        self.exit = exit
        self.stderr = stderr


class VineRemoteError(VineExecutorError):
    """The remote function raised an exception that could not be rebuilt on
    this side (its class is not importable here, or it does not pickle).
    exc_type, message and remote_traceback describe it."""

    def __init__(self, exc_type, message, remote_traceback):
        super().__init__("%s: %s" % (exc_type, message))
        self.exc_type = exc_type
        self.message = message
        self.remote_traceback = remote_traceback


class VineShutdownError(VineExecutorError):
    """The executor was shut down before the call finished."""


class RemoteTraceback(Exception):
    """Attached as __cause__ of a re-raised remote exception so that a
    printed traceback shows where it happened on the node (the pattern of
    concurrent.futures.ProcessPoolExecutor)."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text

    def __str__(self):
        return '\n"""\n%s"""' % self.text
