"""Errors that are shown to the user as one clear sentence.

Anything derived from :class:`LookbackError` is a known failure with a message fit for a person
(the command line prints it after ``error:``, the app shows it in the window). Any other exception
is a bug and is reported with its traceback.
"""

from __future__ import annotations


class LookbackError(Exception):
    """A failure the user can act on; ``str(err)`` is the whole message."""


class ProjectError(LookbackError):
    """The project file is missing, does not parse, or does not validate.

    Attributes:
        path: the project file.
        line: the 1-based line the problem is on, or None when it is about the whole file.
        key: the dotted key the problem is about, or None.
        reason: what is wrong, without the location.
    """

    def __init__(self, path: str, reason: str, line: int | None = None, key: str | None = None):
        self.path = path
        self.line = line
        self.key = key
        self.reason = reason
        where = path if line is None else f"{path}:{line}"
        what = f"{key}: {reason}" if key else reason
        super().__init__(f"{where}: {what}")


class UsageError(LookbackError):
    """A command was called with something that does not exist or does not fit (exit status 2)."""


class StoreError(LookbackError):
    """The store cannot be opened or written."""


class StoreBusyError(StoreError):
    """The store file is held by another process.

    Attributes:
        pid: that process's id, when DuckDB named it.
    """

    def __init__(self, message: str, pid: int | None):
        super().__init__(message)
        self.pid = pid


class TransientStoreError(StoreError):
    """The store could not be read or written just now, and trying again may work: the team
    store's catalog database dropped this process's sessions, or a commit raced another
    process's conflicting commit."""


class PullError(LookbackError):
    """A pull failed; ``transient`` says whether trying again may help."""

    transient = False


class TransientSourceError(PullError):
    """The source could not be reached now (file missing or locked, connection refused)."""

    transient = True


class QueryError(PullError):
    """The metric's SQL is refused or fails in a way that retrying cannot fix."""


class QualityError(PullError):
    """A quality check with severity ``error`` failed; nothing was committed."""


class CancelledError(PullError):
    """The pull was cancelled by the user or by a shutdown."""
