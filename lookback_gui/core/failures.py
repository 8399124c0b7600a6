"""One place that decides what a failure of a pull means: try again, give up, or stop.

The retry loop of a pull, the source connection and the error messages all ask :func:`classify`,
so an error is never retried in one place and refused in another; the store asks
:func:`store_trouble`, :func:`catalog_lost` and :func:`is_conflict` what DuckDB's messages mean
(every marker text is in this module); :class:`RetryPolicy` says when
a pull tries again, and after how long.

- ``transient``: the source could not be reached now (file missing or locked, connection refused
  or lost), or the team store's catalog went away or a commit raced another process's
  (:class:`~lookback_gui.core.errors.TransientStoreError`); trying again later may work.
- ``permanent``: retrying cannot fix it — a SQL mistake, a server that refused the query
  (``division by zero``, a missing table), or a refused login (retrying a wrong password invites
  an account lockout).
- ``cancelled``: the user or a shutdown stopped the pull.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import duckdb

from lookback_gui.core.errors import CancelledError, PullError, TransientStoreError

Failure = Literal["transient", "permanent", "cancelled"]

# A server refused the login (wrong or missing password, unknown user).
_LOGIN_REFUSED_MARKERS = (
    "password authentication failed",
    "access denied",
    "no password supplied",
    "authentication failed",
    'role "',
)
# A server answered, and said no: retrying sends the same question again.
_PERMANENT_MARKERS = (
    *_LOGIN_REFUSED_MARKERS,
    "failed to prepare",
    "failed to execute",
    "failed to run",
    "error:  ",
    "you have an error in your sql syntax",
    "doesn't exist",
    "division by zero",
    "permission denied for",
)
# The server (or file) could not be reached, or the connection went away.
_TRANSIENT_MARKERS = (
    "could not set lock",
    "connection refused",
    "server closed the connection",
    "lost connection",
    "gone away",
    "can't connect",
    "could not connect",
    "connection to server",
    "timeout expired",
    "could not translate host name",
    "could not resolve",  # a host name no DNS answers for now (object storage: Azure, HTTP)
)


def classify(error: BaseException) -> Failure:
    """Whether ``error`` is transient, permanent or a cancellation."""
    if isinstance(error, CancelledError | KeyboardInterrupt | duckdb.InterruptException):
        return "cancelled"
    if isinstance(error, PullError):
        return "transient" if error.transient else "permanent"
    if isinstance(error, TransientStoreError):
        return "transient"
    text = str(error).lower()
    if "interrupted" in text and isinstance(error, RuntimeError | duckdb.Error):
        return "cancelled"
    if is_login_refused(error):
        return "permanent"
    if any(m in text for m in _TRANSIENT_MARKERS):
        return "transient"
    if any(m in text for m in _PERMANENT_MARKERS):
        return "permanent"
    if isinstance(error, duckdb.IOException | duckdb.ConnectionException | duckdb.HTTPException):
        return "transient"
    return "permanent"


def is_login_refused(error: BaseException) -> bool:
    """Whether ``error`` is a server refusing the login (wrong or missing password, unknown
    user)."""
    text = str(error).lower()
    return any(m in text for m in _LOGIN_REFUSED_MARKERS)


# What DuckDB says of a store file it cannot open or read as it is.
_DAMAGE_MARKERS = ("corrupt", "checksum")
_LOCK_MARKERS = ("could not set lock", "conflicting lock")
_NOT_A_DATABASE_MARKERS = ("not a valid duckdb", "unable to open")
# A session with the team store's catalog database (PostgreSQL) went away.
CATALOG_LOST_MARKERS = (
    "server closed the connection",
    "no connection to the server",
    "terminating connection",
    "connection to server",
    "could not receive data from server",
    "could not send data to server",
    "ssl syscall error",
    "connection is closed",
    "current transaction is aborted",
    "database has been invalidated",
)

StoreTrouble = Literal["damaged", "locked", "not a database"]


def store_trouble(error: BaseException) -> StoreTrouble | None:
    """What a DuckDB error on opening or reading a store file says of the file: damaged, locked
    by another process, not a DuckDB database; None for anything else."""
    text = str(error).lower()
    if any(m in text for m in _DAMAGE_MARKERS):
        return "damaged"
    if any(m in text for m in _LOCK_MARKERS):
        return "locked"
    if any(m in text for m in _NOT_A_DATABASE_MARKERS):
        return "not a database"
    return None


def is_damage(error: BaseException) -> bool:
    """Whether DuckDB found a store file damaged."""
    return store_trouble(error) == "damaged"


def catalog_lost(error: BaseException) -> bool:
    """Whether ``error`` says that a session with the team store's catalog database went away."""
    text = str(error).lower()
    return isinstance(error, duckdb.FatalException) or any(m in text for m in CATALOG_LOST_MARKERS)


def is_conflict(error: BaseException) -> bool:
    """Whether ``error`` is DuckLake refusing a commit that raced another (retrying succeeds)."""
    return isinstance(error, duckdb.TransactionException) or (
        isinstance(error, duckdb.Error) and "transaction conflict" in str(error).lower()
    )


def is_transient(error: BaseException) -> bool:
    """Whether retrying may fix ``error``."""
    return classify(error) == "transient"


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed attempt is tried again: only after a transient failure, at most
    ``retries`` times, each after a random wait (full jitter) of up to ``base_s`` seconds
    doubled for each attempt so far, and never more than ``max_s``.

    Attributes:
        retries: how many more attempts after the first (0: one attempt only).
    """

    retries: int
    base_s: float
    max_s: float

    def delay(
        self, error: BaseException, attempts: int, draw: Callable[[float, float], float] = random.uniform
    ) -> float | None:
        """How long to wait before trying again after attempt number ``attempts`` failed
        with ``error``; None when it is not tried again."""
        if classify(error) != "transient" or attempts > self.retries:
            return None
        return draw(0, min(self.max_s, self.base_s * 2 ** (attempts - 1)))
