"""The open project: its configuration, its store and its scheduler, opened and closed off the
GUI thread.

:class:`Session` is plain Python (no Qt): opening one reads the project file, opens the store
and starts the scheduler, whose catch-up planning reads the whole run history; closing one
cancels the running pulls and waits for them. Both block, so the app runs them on a thread of
:class:`SessionHost`, one after the other, and learns the outcome through its signals.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal

from lookback_gui.core.applog import log_unexpected
from lookback_gui.core.errors import LookbackError, StoreBusyError
from lookback_gui.core.project import Project, load_project
from lookback_gui.core.schedule.scheduler import Scheduler
from lookback_gui.core.sources import SourceConnections
from lookback_gui.core.store import Store, open_store
from lookback_gui.core.store.events import Event, Notice, Observer
from lookback_gui.core.store.lock import WAIT_S
from lookback_gui.ui.bridge import alive, gui_invoker


class Session:
    """One open project.

    Attributes:
        project: the configuration in force (re-read by :meth:`reload`).
        store: the project's store, open.
        scheduler: the project's scheduler; started unless the session was opened without it.
        scheduled_elsewhere: why the schedule does not run here (another process runs the
            project's scheduler), or None. Pulls asked for by hand run here either way.
    """

    def __init__(self, project: Project, store: Store, scheduler: Scheduler):
        self.project = project
        self.store = store
        self.scheduler = scheduler
        self.scheduled_elsewhere: str | None = None
        self._observer: Observer | None = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        observer: Observer,
        *,
        start_scheduler: bool = True,
        paused: bool = False,
        wait_s: float = WAIT_S,
        connections: SourceConnections | None = None,
    ) -> Session:
        """Load the project at ``path``, open its store and start its scheduler (paused, and
        without catching up, when ``paused``). Blocks, also while another process uses the
        store (a Notice says so; up to ``wait_s`` seconds); raises LookbackError.
        ``connections`` (the app's) gives the scheduler's pulls their source databases."""
        project = load_project(path)
        store = open_store(
            project.store, wait_s=wait_s, waiting=lambda message: observer(Notice("warning", message))
        )
        scheduler: Scheduler | None = None
        try:
            scheduler = Scheduler(project, store, connections=connections)
            session = cls(project, store, scheduler)
            session._observer = observer
            scheduler.events.subscribe(observer)
            if start_scheduler:
                try:
                    scheduler.start(catch_up=not paused)
                except StoreBusyError as exc:  # one scheduler per project: pulls by hand only
                    session.scheduled_elsewhere = str(exc)
                else:
                    if paused:
                        scheduler.pause()
        except BaseException:
            if scheduler is not None:  # its threads end before the store closes
                scheduler.shutdown(grace_s=0)
            store.close()
            raise
        return session

    def take_over_schedule(self) -> bool:
        """Run the schedule here if the process that ran it has stopped (or died, or on a team
        store stopped renewing its lease); True once it runs here. Blocks briefly."""
        if self.scheduled_elsewhere is None:
            return True
        try:
            self.scheduler.start(catch_up=True)
        except StoreBusyError as exc:
            self.scheduled_elsewhere = str(exc)
            return False
        self.scheduled_elsewhere = None
        return True

    @property
    def paused(self) -> bool:
        return self.scheduler.paused

    def pause(self) -> None:
        if self.scheduler.running:  # a scheduler that was never started has nothing to pause
            self.scheduler.pause()

    def resume(self) -> None:
        """Resume the schedule (quick: no store read); :meth:`catch_up`, run off the GUI
        thread, then pulls what the pause missed."""
        if self.scheduler.paused:
            self.scheduler.resume(catch_up=False)

    def catch_up(self) -> None:
        """Pull what the schedule owes now (reads the run history: blocks)."""
        if self.scheduler.running and not self.scheduler.paused:
            self.scheduler.catch_up()

    def reload(self) -> Project:
        """Re-read the project file after an edit; raise LookbackError if it no longer loads."""
        project = load_project(self.project.path)
        if not self.scheduler.reload_if_changed():
            self.scheduler.project = project
        self.project = self.scheduler.project  # one configuration for the views and the pulls
        return self.project

    def close(self) -> None:
        """Cancel the running pulls, wait for them to record it and for every thread of the
        scheduler to end, then close the store (once its readers are done). Blocks."""
        if self._observer is not None:
            self.scheduler.events.unsubscribe(self._observer)
        self.scheduler.shutdown(grace_s=0)
        self.store.close()


class _SessionThread:
    """The session thread and the one session open on it: plain Python, so that the session
    thread, the pull threads and the host's ``destroyed`` handler never touch a QObject that
    may be deleted meanwhile. Outcomes go to the host through the application's invoker
    (:func:`~lookback_gui.ui.bridge.gui_invoker`) and are dropped once it is gone."""

    def __init__(self, host: SessionHost, connections: SourceConnections | None):
        self.host = weakref.ref(host)
        self.call = gui_invoker().call
        self.connections = connections
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="session")
        self.lock = threading.Lock()
        self.wanted = 0  # the newest request, as the session thread sees it (under lock)
        self.live: Session | None = None  # the open session; only the session thread sets it
        self.shut = False

    def to_host(self, name: str, *args: object) -> None:
        """Call the host's method ``name`` on the GUI thread, unless the host is gone then."""
        host = self.host

        def call() -> None:
            receiver = host()
            if receiver is not None and alive(receiver):
                getattr(receiver, name)(*args)

        self.call.emit(call)

    def want(self, request: int) -> None:
        with self.lock:
            self.wanted = request

    def close_live(self) -> None:
        """Close the open session (on the session thread)."""
        with self.lock:
            live, self.live = self.live, None
        if live is not None:
            live.close()

    def open(
        self, request: int, path: str | os.PathLike[str], start_scheduler: bool, paused: bool, wait_s: float
    ) -> Session | None:
        """Close the open session, then open the one at ``path`` (on the session thread)."""

        def observe(event: Event) -> None:  # on pull threads, and on the GUI thread (Run now)
            self.to_host("_relay", request, event)

        self.close_live()
        session = Session.open(
            path,
            observe,
            start_scheduler=start_scheduler,
            paused=paused,
            wait_s=wait_s,
            connections=self.connections,
        )
        with self.lock:
            current = request == self.wanted
            if current:
                self.live = session
        if not current:  # overtaken while it opened: nobody will show it
            session.close()
            return None
        return session

    def shutdown(self) -> None:
        """Close the open session and the one still opening; return once they are closed and
        the session thread has ended. Called again, it does nothing."""
        with self.lock:
            if self.shut:
                return
            self.shut = True
            self.wanted = -1  # a session still opening is overtaken: it closes itself
        try:
            self.pool.submit(self.close_live)
        except RuntimeError:  # the interpreter is exiting: its pool threads have ended
            self.close_live()
        self.pool.shutdown(wait=True)


class SessionHost(QObject):
    """Owns every session the window opens: opens and closes them on a thread of its own, in
    the order asked, and closes each one it opened.

    The session thread keeps the one session that is open; each request closes it before
    doing anything else, so a session is closed by the request after the one that opened it,
    whatever the GUI thread did meanwhile. Only the newest request counts: a session whose
    opening was overtaken by another request (another project chosen, the window closed) is
    closed on the session thread at once and never shown, and events of a session that is no
    longer current are dropped. Events of the current session go to ``observer`` on the GUI
    thread. :meth:`shutdown` returns once every session is closed and its threads joined; a
    host deleted without it (its window deleted without being closed) does the same as it
    goes.

    Signals:
        opened(object): the Session asked for last is open.
        failed(str): it could not be opened (one clear sentence).
        closed(): the session closed by :meth:`close` is closed.
    """

    opened = Signal(object)
    failed = Signal(str)
    closed = Signal()

    def __init__(
        self,
        observer: Callable[[Event], object],
        parent: QObject | None = None,
        connections: SourceConnections | None = None,
    ):
        super().__init__(parent)
        self._observer = observer
        self._thread = _SessionThread(self, connections)
        self._request = 0
        self.session: Session | None = None
        self._thens: dict[int, Callable[[], object]] = {}
        self._tokens = 0
        thread = self._thread
        self.destroyed.connect(lambda *_: thread.shutdown())

    def open(
        self,
        path: str | os.PathLike[str],
        *,
        start_scheduler: bool = True,
        paused: bool = False,
        wait_s: float = WAIT_S,
    ) -> Future[Any]:
        """Close the current session (if any) and open the project at ``path``."""
        self.session = None
        request = self._next_request()
        thread = self._thread
        return self._run(request, lambda: thread.open(request, path, start_scheduler, paused, wait_s))

    def close(self) -> Future[Any]:
        """Close the current session."""
        self.session = None
        return self._run(self._next_request(), self._thread.close_live)

    def run(self, fn: Callable[[], Any], then: Callable[[], object] | None = None) -> None:
        """Run ``fn`` on the session thread, after what is already queued there; then call
        ``then`` on the GUI thread (unless the host has gone)."""
        thread = self._thread
        if thread.shut:
            return
        token = 0
        if then is not None:  # kept here: the session thread holds nothing of the GUI's
            self._tokens += 1
            token = self._tokens
            self._thens[token] = then
        request = self._request

        def work() -> None:
            try:
                fn()
            except LookbackError as exc:
                thread.to_host("_relay", request, Notice("error", str(exc)))
            except Exception as exc:
                log_unexpected("a task on the session thread", exc)
            if token:
                thread.to_host("_call", token)

        thread.pool.submit(work)

    def shutdown(self) -> None:
        """Close every session (the current one, and one still opening) and wait until it is
        closed and its threads are joined."""
        self.session = None
        self._next_request()
        self._thens.clear()
        self._thread.shutdown()

    def _next_request(self) -> int:
        self._request += 1
        self._thread.want(self._request)
        return self._request

    def _run(self, request: int, work: Callable[[], Any]) -> Future[Any]:
        thread = self._thread
        if thread.shut:  # the app is going: nothing is open any more, nothing will open
            done: Future[Any] = Future()
            done.set_result(None)
            return done

        def run() -> Any:
            try:
                result = work()
            except LookbackError as exc:
                thread.to_host("_deliver", request, False, str(exc))
                return None
            except Exception as exc:  # a bug: its traceback goes to the log, the user is told
                thread.to_host(
                    "_deliver", request, False, log_unexpected("opening or closing a project", exc)
                )
                return None
            thread.to_host("_deliver", request, True, result)
            return result

        return thread.pool.submit(run)

    def _deliver(self, request: int, ok: bool, payload: object) -> None:
        if request != self._request:
            return  # overtaken: the session thread closes what this request opened
        if not ok:
            self.failed.emit(str(payload))
        elif isinstance(payload, Session):
            self.session = payload
            self.opened.emit(payload)
        else:
            self.closed.emit()

    def _relay(self, request: int, event: object) -> None:
        if request == self._request:
            self._observer(event)  # type: ignore[arg-type]

    def _call(self, token: int) -> None:
        then = self._thens.pop(token, None)
        if then is not None:
            then()
