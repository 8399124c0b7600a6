"""The one place where results cross from worker threads into Qt.

:class:`Bridge` lives on the GUI thread. Core events (emitted on worker threads) and the results
of background tasks reach it as signals, so Qt queues them onto the GUI thread. A newer task with
the same key supersedes an older one: the older result is dropped when it arrives.

Signals:
    core_event(object): a core event (frozen dataclass) from the scheduler or a pull.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from lookback_gui.core.applog import log_unexpected
from lookback_gui.core.errors import LookbackError

Done = Callable[[Any], object]
Failed = Callable[[str], None]


class Bridge(QObject):
    """Runs callables off the GUI thread and hands results and events back on it."""

    core_event = Signal(object)
    _finished = Signal(str, int, bool, object)

    def __init__(self, workers: int = 3, parent: QObject | None = None):
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ui-task")
        self._generation: dict[str, int] = {}
        self._callbacks: dict[tuple[str, int], tuple[Done, Failed | None]] = {}
        self._counter = itertools.count(1)
        self._finished.connect(self._deliver)
        self.pending = 0
        self.closed = False

    def __call__(self, event: object) -> None:
        """Observer for core events; safe to call from any thread."""
        self.core_event.emit(event)

    def submit(self, key: str | None, fn: Callable[[], Any], on_done: Done,
               on_error: Failed | None = None) -> Future[Any]:
        """Run ``fn`` on a worker; call ``on_done(result)`` or ``on_error(message)`` on the GUI
        thread, unless a newer task with the same ``key`` was submitted meanwhile."""
        if self.closed:
            future: Future[Any] = Future()
            future.cancel()
            return future
        key = key or f"task-{next(self._counter)}"
        generation = self._generation.get(key, 0) + 1
        self._generation[key] = generation
        self._callbacks[(key, generation)] = (on_done, on_error)
        self.pending += 1

        def run() -> Any:
            try:
                result = fn()
            except LookbackError as exc:
                self._finished.emit(key, generation, False, str(exc))
                return None
            except Exception as exc:  # a bug: its traceback goes to the log, the user is told
                self._finished.emit(key, generation, False,
                                    log_unexpected(f"background task {key}", exc))
                return None
            self._finished.emit(key, generation, True, result)
            return result

        return self._pool.submit(run)

    @Slot(str, int, bool, object)
    def _deliver(self, key: str, generation: int, ok: bool, payload: object) -> None:
        self.pending -= 1
        on_done, on_error = self._callbacks.pop((key, generation), (None, None))
        if generation != self._generation.get(key) or on_done is None:
            return  # superseded by a newer request
        if ok:
            on_done(payload)
        elif on_error is not None:
            on_error(str(payload))

    def shutdown(self) -> None:
        self.closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
