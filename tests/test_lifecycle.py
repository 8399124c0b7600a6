"""Every object that owns threads or connections has one owner that closes it, and closing
waits for what uses it: the store, the scheduler, the prepared source databases, the sessions
of a window."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lookback_gui.core.errors import StoreError
from lookback_gui.core.project import load_project
from lookback_gui.core.schedule.scheduler import Scheduler
from lookback_gui.core.sources import SourceConnections
from lookback_gui.core.store import Store
from tests.helpers import project_text

EVERY_SECOND = project_text().replace('lookback = "7d"', 'lookback = "7d"\nevery = "1s"')


def threads_now() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


def test_closing_the_store_waits_for_a_read_under_way(project):
    store = Store(load_project(project).store_path)
    db = store._db
    inside, go, result = threading.Event(), threading.Event(), []

    def reader() -> None:
        try:
            with db.reading() as cur:
                inside.set()
                go.wait(30)
                result.append(cur.execute("SELECT count(*) FROM runs").fetchone())
        except Exception as exc:
            result.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    assert inside.wait(30)
    closer = threading.Thread(target=store.close)
    closer.start()
    # the store says it is closed to new readers before the one under way is done
    with pytest.raises(StoreError, match="is closed"):
        for _ in range(10_000):
            db.read("SELECT 1")
            closer.join(0.01)
    assert closer.is_alive()  # still waiting for the reader
    go.set()
    thread.join(30)
    closer.join(30)
    assert not closer.is_alive()
    assert result == [(0,)]  # the read under way got its answer, not "No open result set"
    with pytest.raises(StoreError, match=r"store .* is closed"):
        store.runs(limit=1)


def test_closing_the_store_ends_its_watcher(project):
    before = threads_now()
    store = Store(load_project(project).store_path)
    watchers = [t for t in threads_now() - before if t.name == "store-watch"]
    assert len(watchers) == 1
    store.close()
    assert not watchers[0].is_alive()


def test_a_scheduler_that_shut_down_leaves_no_thread_and_no_prepared_database(tmp_path, write_project):
    from tests.helpers import make_orders, ts

    make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-25T10:00"), "DE", 10.0)])
    path = write_project(EVERY_SECOND)
    before = threads_now()
    with SourceConnections() as connections:
        project = load_project(path)
        with Store(project.store_path) as store:
            scheduler = Scheduler(project, store, connections=connections)
            scheduler.start(catch_up=True)
            future = scheduler.run_now("daily_orders")
            if future is not None:
                future.result(60)
            assert scheduler.wait_idle(60)
            scheduler.shutdown(grace_s=0)
            # the databases made ready for its pull threads went with them
            assert connections.ready_count() == 0
            left = {
                t for t in threads_now() - before if t.name != "store-watch" and t.name != "duckdb-closer"
            }
            assert left == set(), sorted(t.name for t in left)


def test_resuming_reads_no_store_on_the_calling_thread_and_catches_up_once(
    tmp_path, write_project, monkeypatch
):
    from lookback_gui.core.store import Store as StoreClass
    from lookback_gui.ui.session import Session
    from tests.helpers import make_orders, ts

    make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-25T10:00"), "DE", 10.0)])
    path = write_project(EVERY_SECOND)
    calls: list[str] = []
    original = StoreClass.catch_up_facts

    def spy(self: StoreClass, *args: object, **kwargs: object) -> object:
        calls.append(threading.current_thread().name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StoreClass, "catch_up_facts", spy)
    session = Session.open(path, lambda event: None, paused=True)
    try:
        assert calls == []
        session.resume()  # what the GUI thread calls: no store read
        assert calls == [] and not session.paused
        worker = threading.Thread(target=session.catch_up, name="session-test")
        worker.start()
        worker.join(60)
        assert calls == ["session-test"]
    finally:
        session.close()


def test_a_window_closed_while_its_project_opens_closes_that_session(qtbot, tmp_path, write_project):
    pytest.importorskip("PySide6.QtWidgets")
    from PySide6.QtCore import QSettings

    import lookback_gui.ui  # noqa: F401
    from lookback_gui.ui.main_window import MainWindow
    from tests.helpers import make_orders, ts

    make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-25T10:00"), "DE", 10.0)])
    path = write_project(EVERY_SECOND)
    before = threads_now()
    with SourceConnections() as connections:
        window = MainWindow(
            QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), connections=connections
        )
        window.open_project(path)  # still opening when the window goes
        window.close()
        left = threads_now() - before
        assert not [t for t in left if t.name != "duckdb-closer"], sorted(t.name for t in left)
        window.deleteLater()
    # the store was closed, so another owner can open it now
    Store(load_project(path).store_path).close()


def test_switching_projects_closes_the_one_still_opening(qtbot, tmp_path):
    pytest.importorskip("PySide6.QtWidgets")
    from PySide6.QtCore import QSettings

    import lookback_gui.ui  # noqa: F401
    from lookback_gui.ui.main_window import MainWindow
    from tests.helpers import make_orders, ts

    paths: list[Path] = []
    for name in ("a", "b", "c"):
        folder = tmp_path / name
        folder.mkdir()
        make_orders(folder / "shop.duckdb", [(1, ts("2026-10-25T10:00"), "DE", 10.0)])
        (folder / "lookback.toml").write_text(EVERY_SECOND)
        paths.append(folder / "lookback.toml")
    before = threads_now()
    window = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    for path in paths[:-1]:
        window.open_project(path)
    with qtbot.waitSignal(window.opened, timeout=60000):
        window.open_project(paths[-1])
    assert window.project is not None and window.project.path == paths[-1]
    # exactly one session is open: one store watcher, one scheduler
    qtbot.waitUntil(
        lambda: len([t for t in threads_now() - before if t.name == "store-watch"]) == 1, timeout=30000
    )
    window.close()
    assert not [t for t in threads_now() - before if t.name == "store-watch"]


def test_an_observer_may_ask_the_scheduler_what_runs_when_a_fire_is_coalesced(tmp_path, write_project):
    """The window's observer runs on the GUI thread when Run now is coalesced into a running
    pull, and asks the scheduler which pulls run: that must not wait for itself."""
    from lookback_gui.core.store.events import Notice, RunStarted
    from tests.helpers import make_orders, ts

    make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-25T10:00"), "DE", 10.0)])
    project = load_project(write_project())
    started, go, heard = threading.Event(), threading.Event(), []
    with Store(project.store_path) as store:
        scheduler = Scheduler(project, store)

        def observer(event: object) -> None:
            if isinstance(event, RunStarted):
                started.set()
                go.wait(60)  # the first pull stays running until the second is asked for
            elif isinstance(event, Notice) and "coalesced" in event.message:
                heard.append(scheduler.running_metrics())

        scheduler.events.subscribe(observer)
        assert scheduler.run_now("daily_orders") is not None
        assert started.wait(60)
        second = threading.Thread(target=scheduler.run_now, args=("daily_orders",), daemon=True)
        second.start()
        second.join(30)
        go.set()
        assert not second.is_alive(), "run_now waits for itself"
        assert heard == [["daily_orders"]]
        assert scheduler.wait_idle(60)
        scheduler.shutdown(grace_s=0)
