"""The one place where results cross from worker threads into Qt.

:class:`Bridge` lives on the GUI thread. Core events (emitted on worker threads) and the results
of background tasks reach it on the GUI thread. A newer task with the same key supersedes an
older one: the older result is dropped when it arrives. A result whose receiver is gone (its
owner deleted, or the bridge shut down or deleted) is dropped too.

Worker threads never emit a signal of an object that may be deleted meanwhile (a window, its
bridge, its session host): they hand a call to the invoker (:func:`gui_invoker`), whose one object
lives as long as the application, and the call checks on the GUI thread whether its receiver
still exists.

Signals:
    core_event(object): a core event (frozen dataclass) from the scheduler or a pull.
"""

from __future__ import annotations

import functools
import itertools
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from lookback_gui.core.applog import log_unexpected
from lookback_gui.core.errors import LookbackError
from lookback_gui.ui.collector import collect_on_gui_thread

Done = Callable[[Any], object]
Failed = Callable[[str], None]


class _Invoker(QObject):
    """Calls on the GUI thread what worker threads hand it; a child of the application, so it
    outlives every window, bridge and session host whose threads use it."""

    call = Signal(object)

    def __init__(self, app: QCoreApplication):
        super().__init__(app)
        self.setObjectName("lookback-gui-invoker")
        self.call.connect(self._call, Qt.ConnectionType.QueuedConnection)

    @Slot(object)
    def _call(self, fn: Callable[[], object]) -> None:
        fn()


def gui_invoker() -> _Invoker:
    """The application's invoker (made on first use, which must be on the GUI thread)."""
    app = QCoreApplication.instance()
    if app is None:
        raise RuntimeError("no QApplication: the GUI thread is not known yet")
    invoker = app.findChild(_Invoker, "lookback-gui-invoker")
    if isinstance(invoker, _Invoker):
        return invoker
    if QThread.currentThread() != app.thread():
        raise RuntimeError("the invoker is made on the GUI thread")
    return _Invoker(app)


def alive(obj: QObject | None) -> bool:
    """Whether ``obj`` (a QObject, or None for no owner) has not been deleted."""
    return obj is None or shiboken6.isValid(obj)


def _stop(pool: ThreadPoolExecutor, stopped: threading.Event) -> None:
    """Drop what is still to come, and wait for the tasks under way."""
    stopped.set()
    pool.shutdown(wait=True, cancel_futures=True)


class _Tasks:
    """What a bridge knows about its tasks, kept apart from the QObject so that worker threads
    and the bridge's ``destroyed`` handler never touch a deleted object.

    Only the bridge holds it: worker threads and the ``destroyed`` handler (which Qt keeps
    for as long as the bridge lives) hold none of the callbacks, whose closures hold widgets
    and their window, so that a window dropped by Python is freed even while a task runs."""

    def __init__(self, bridge: Bridge, workers: int):
        self.bridge = weakref.ref(bridge)  # worker threads hold no reference of a QObject
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ui-task")
        self.stopped = threading.Event()
        self.generation: dict[str, int] = {}
        self.callbacks: dict[tuple[str, int], tuple[Done, Failed | None, QObject | None]] = {}
        self.pending = 0

    @property
    def closed(self) -> bool:
        return self.stopped.is_set()

    def shutdown(self) -> None:
        """Drop every result still on its way, and wait for the tasks under way."""
        self.callbacks.clear()
        _stop(self.pool, self.stopped)

    def relay(self, event: object) -> None:
        """On the GUI thread: a core event from a worker, unless the bridge is gone."""
        bridge = self.bridge()
        if bridge is not None and not self.closed and alive(bridge):
            bridge.core_event.emit(event)

    def deliver(self, key: str, generation: int, ok: bool, payload: object) -> None:
        """On the GUI thread: hand a result to its callback, unless it is no longer wanted."""
        self.pending -= 1
        on_done, on_error, owner = self.callbacks.pop((key, generation), (None, None, None))
        if self.closed or on_done is None or generation != self.generation.get(key):
            return  # superseded by a newer request, or nobody waits for it any more
        if not alive(owner):
            return  # its widget was deleted meanwhile
        if ok:
            on_done(payload)
        elif on_error is not None:
            on_error(str(payload))


# what worker threads queue for the GUI thread holds the bridge's tasks weakly: a window
# whose pulls keep speaking would otherwise be kept alive by its own queued events


def _deliver(tasks: weakref.ref[_Tasks], key: str, generation: int, ok: bool, payload: object) -> None:
    owner = tasks()
    if owner is not None:  # else the bridge, and all that waited on it, is gone
        owner.deliver(key, generation, ok, payload)


def _relay(tasks: weakref.ref[_Tasks], event: object) -> None:
    owner = tasks()
    if owner is not None:
        owner.relay(event)


class Bridge(QObject):
    """Runs callables off the GUI thread and hands results and events back on it.

    Attributes:
        pending: tasks submitted whose result has not been handed back (or dropped) yet.
        closed: :meth:`shutdown` was called (or the bridge was deleted): nothing runs any more.
    """

    core_event = Signal(object)

    def __init__(self, workers: int = 3, parent: QObject | None = None):
        super().__init__(parent)
        collect_on_gui_thread()  # Qt objects of the GUI are never destroyed on our workers
        self._invoker = gui_invoker()
        self._tasks = _Tasks(self, workers)
        self._counter = itertools.count(1)
        pool, stopped = self._tasks.pool, self._tasks.stopped
        # deleted without shutdown() (its window deleted without being closed): its workers
        # still end, and what they return is dropped
        self.destroyed.connect(lambda *_: _stop(pool, stopped))

    @property
    def pending(self) -> int:
        return self._tasks.pending

    @property
    def closed(self) -> bool:
        return self._tasks.closed

    def __call__(self, event: object) -> None:
        """Observer for core events; safe to call from any thread."""
        if QThread.currentThread() == self.thread():
            self.core_event.emit(event)
            return
        self._invoker.call.emit(functools.partial(_relay, weakref.ref(self._tasks), event))

    def submit(
        self,
        key: str | None,
        fn: Callable[[], Any],
        on_done: Done,
        on_error: Failed | None = None,
        owner: QObject | None = None,
    ) -> Future[Any]:
        """Run ``fn`` on a worker; call ``on_done(result)`` or ``on_error(message)`` on the GUI
        thread, unless a newer task with the same ``key`` was submitted meanwhile, or ``owner``
        (by default the object ``on_done`` is a method of) was deleted meanwhile."""
        tasks = self._tasks
        if tasks.closed:
            future: Future[Any] = Future()
            future.cancel()
            return future
        if owner is None and isinstance(getattr(on_done, "__self__", None), QObject):
            owner = on_done.__self__  # type: ignore[attr-defined]
        key = key or f"task-{next(self._counter)}"
        generation = tasks.generation.get(key, 0) + 1
        tasks.generation[key] = generation
        tasks.callbacks[(key, generation)] = (on_done, on_error, owner)
        tasks.pending += 1
        call, tasks_ref = self._invoker.call, weakref.ref(tasks)

        def run() -> Any:
            try:
                result = fn()
            except LookbackError as exc:
                outcome: tuple[bool, object] = (False, str(exc))
                result = None
            except Exception as exc:  # a bug: its traceback goes to the log, the user is told
                outcome = (False, log_unexpected(f"background task {key}", exc))
                result = None
            else:
                outcome = (True, result)
            call.emit(functools.partial(_deliver, tasks_ref, key, generation, *outcome))
            return result

        try:
            return tasks.pool.submit(run)
        except RuntimeError:  # shut down meanwhile (by the bridge's deletion)
            tasks.pending -= 1
            tasks.callbacks.pop((key, generation), None)
            future = Future()
            future.cancel()
            return future

    def shutdown(self) -> None:
        """Stop: results still on their way are dropped; returns once the tasks under way have
        ended."""
        self._tasks.shutdown()
