"""How a running pull is cancelled and how far it got: :class:`PullControl`."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import datetime

import duckdb

from lookback_gui.core.errors import (
    CancelledError,
)

Clock = Callable[[], datetime]


class PullControl:
    """Lets another thread cancel a pull and read its progress.

    Cancelling interrupts the running query (DuckDB ``interrupt()``) and wakes a retry wait; the
    run then ends ``cancelled`` with nothing committed.
    """

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._children: list[PullControl] = []
        self.run_id: int | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def child(self) -> PullControl:
        """A control for one of several pulls running at once; cancelling this cancels it."""
        control = PullControl()
        with self._lock:
            self._children.append(control)
        if self.cancelled:
            control.cancel()
        return control

    def cancel(self) -> None:
        self._cancelled.set()
        with self._lock:
            children = list(self._children)
        for child in children:
            child.cancel()
        with self._lock:
            if self._con is not None:
                with contextlib.suppress(duckdb.Error):
                    self._con.interrupt()

    def attach(self, con: duckdb.DuckDBPyConnection | None) -> None:
        with self._lock:
            self._con = con

    def progress(self) -> float | None:
        """The running query's progress in percent, when DuckDB knows it."""
        with self._lock:
            if self._con is None:
                return None
            try:
                value = self._con.query_progress()
            except duckdb.Error:
                return None
        return value if value is not None and value >= 0 else None

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when cancelled; raise CancelledError if cancelled."""
        if self._cancelled.wait(seconds):
            raise CancelledError("cancelled")

    def check(self) -> None:
        if self._cancelled.is_set():
            raise CancelledError("cancelled")
