"""vine_parsl - a Parsl executor that runs apps as vine tasks.

    from vine_parsl import VineExecutor

See share/doc/parsl.md for a complete Parsl configuration.  Importing this
package does not need Parsl: without it VineExecutor has the same methods on
a plain base class and can be driven directly (start, submit, shutdown).
"""

from .errors import (RemoteTraceback, VineCommandError, VineExecutorError,
                     VineRemoteError, VineShutdownError, VineSubmitError,
                     VineTaskFailure)
from .executor import HAVE_PARSL, VineExecutor, VineResourceSpecError

__all__ = ["VineExecutor", "VineExecutorError", "VineCommandError", "VineSubmitError",
           "VineTaskFailure", "VineRemoteError", "VineShutdownError",
           "VineResourceSpecError", "RemoteTraceback", "HAVE_PARSL"]
