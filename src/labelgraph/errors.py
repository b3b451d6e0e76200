"""The errors a user causes: a bad file, a wrong argument, classes that do not match.

Every subpackage raises these for problems in what it was given (never for its own bugs), with a message that names the
file or argument and the problem. The ``labelgraph`` command prints them as one line (``labelgraph: error: ...``,
exit status 2); any other exception is a bug and keeps its traceback. This module imports nothing from the package.
"""

from __future__ import annotations


class LabelgraphError(Exception):
    """A problem in the user's input, not in labelgraph; the message names where and what."""


class InvalidInputError(LabelgraphError, ValueError):
    """A value, file content or argument that is wrong (a ``ValueError`` too, for callers that catch those)."""


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM): long commands keep what they completed and exit with status 143.

    A ``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception`` on the way takes it for a failure
    to record and carry on from. Raised from a signal handler it can surface inside a C extension as another error;
    ``requested`` (the signal, once one arrived) tells that error apart from a real one."""

    requested: int | None = None
