"""The log file: every unexpected error's traceback, from every thread, and the stacks of a
native crash (faulthandler), in the platform's log folder."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lookback_gui.core import applog
from lookback_gui.core.project import load_project
from lookback_gui.core.schedule.scheduler import PlannedPull, Scheduler
from lookback_gui.core.store import Store
from lookback_gui.core.timing.windows import Window
from tests.helpers import make_orders, project_text, ts

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[Path]:
    path = applog.enable_logging(tmp_path / "log")
    try:
        yield path
    finally:
        applog.disable_logging()


def child(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python process whose platform folders are under ``tmp_path``."""
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, text=True, capture_output=True, timeout=120
    )


def default_log(tmp_path: Path) -> Path:
    return tmp_path / "state" / "lookback-gui" / "log" / "lookback-gui.log"


def test_the_log_lives_in_the_platform_log_folder(tmp_path):
    done = child(
        """
        from lookback_gui.core.applog import enable_logging
        print(enable_logging())
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == default_log(tmp_path)
    assert "log opened" in default_log(tmp_path).read_text()


def test_a_native_crash_leaves_its_stack_in_the_log(tmp_path):
    done = child(
        """
        import os, signal
        from lookback_gui.core.applog import enable_logging
        enable_logging()
        def crash_here():
            os.kill(os.getpid(), signal.SIGSEGV)
        crash_here()
        """,
        tmp_path,
    )
    assert done.returncode == -signal.SIGSEGV
    text = default_log(tmp_path).read_text()
    assert "Fatal Python error: Segmentation fault" in text
    assert "in crash_here" in text


def test_uncaught_errors_of_every_thread_are_logged_with_their_traceback(tmp_path):
    done = child(
        """
        import threading
        from lookback_gui.core.applog import enable_logging
        enable_logging()
        def work():
            raise ValueError("a worker broke")
        thread = threading.Thread(target=work, name="worker-7")
        thread.start()
        thread.join()
        raise KeyError("the main thread broke")
        """,
        tmp_path,
    )
    assert done.returncode == 1
    text = default_log(tmp_path).read_text()
    assert "uncaught ValueError in thread worker-7" in text
    assert "in work\nValueError: a worker broke" in text
    assert "uncaught KeyError on the main thread" in text
    assert "Traceback (most recent call last)" in text
    assert "KeyError: 'the main thread broke'" in done.stderr  # and said as usual


def test_a_scheduler_worker_that_raises_leaves_its_traceback_in_the_log(tmp_path, write_project, logged):
    make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-25T10:00"), "DE", 10.0)])
    project = load_project(write_project())
    notices: list[str] = []

    def clock() -> datetime:
        if threading.current_thread().name.startswith("pull"):
            raise RuntimeError("the clock broke")
        return datetime(2026, 10, 30, 12, 0, tzinfo=UTC)

    with Store(project.store_path) as store:
        scheduler = Scheduler(project, store, clock=clock)
        scheduler.events.subscribe(lambda e: notices.append(getattr(e, "message", "")))
        window = Window(
            start=ts("2026-10-24"), end=ts("2026-10-31"), as_of=ts("2026-10-30T12:00"), partial_start=None
        )
        assert scheduler.submit("daily_orders", [PlannedPull("catch-up", window)]) is not None
        assert scheduler.wait_idle(60)
        scheduler.shutdown(grace_s=0)
    text = logged.read_text()
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: the clock broke" in text
    assert any(f"details in {logged}" in n for n in notices)  # the notice says where


def test_a_background_task_that_raises_says_where_its_traceback_is(qtbot, logged):
    from lookback_gui.ui.bridge import Bridge

    bridge = Bridge()
    errors: list[str] = []

    def broken() -> None:
        raise ZeroDivisionError("no runs to divide by")

    bridge.submit("broken", broken, lambda _: None, errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=30000)
    bridge.shutdown()
    assert errors == [f"unexpected ZeroDivisionError: no runs to divide by (details in {logged})"]
    text = logged.read_text()
    assert "background task broken: unexpected ZeroDivisionError" in text
    assert "in broken" in text and "Traceback" in text


def test_help_opens_the_log_folder(qtbot, tmp_path, logged):
    from PySide6.QtCore import QObject, QSettings, QUrl, Slot
    from PySide6.QtGui import QDesktopServices

    import lookback_gui.ui  # noqa: F401
    from lookback_gui.ui.main_window import MainWindow

    class Opener(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.urls: list[QUrl] = []

        @Slot(QUrl)
        def open(self, url: QUrl) -> None:
            self.urls.append(url)

    opener = Opener()
    QDesktopServices.setUrlHandler("file", opener, "open")
    try:
        window = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
        qtbot.addWidget(window)
        help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
        action = next(a for a in help_menu.actions() if a.text() == "Open &log folder")
        action.trigger()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [Path(u.toLocalFile()) for u in opener.urls] == [logged.parent]


def test_lookback_schedule_logs_the_traceback_of_an_unexpected_error(tmp_path, write_project, monkeypatch):
    from lookback_gui import cli
    from lookback_gui.core.schedule import scheduler as scheduler_module

    make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-25T10:00"), "DE", 10.0)])
    path = write_project(project_text().replace('lookback = "7d"', 'lookback = "7d"\nevery = "1h"'))

    def broken(*args: object, **kwargs: object) -> None:  # a bug in the pull
        raise RuntimeError("a bug in the pull")

    monkeypatch.setattr(scheduler_module, "run_windows", broken)
    out, err = io.StringIO(), io.StringIO()

    def stop_when_logged() -> None:
        for _ in range(1200):
            if "RuntimeError: a bug in the pull" in out.getvalue():
                break
            threading.Event().wait(0.05)
        signal.raise_signal(signal.SIGINT)

    stopper = threading.Thread(target=stop_when_logged)
    stopper.start()
    try:
        code = cli.main(["schedule", "--project", str(path)], out, err)
    finally:
        stopper.join()
        log = applog.log_file()
        applog.disable_logging()
    assert code == 0, err.getvalue()
    lines = out.getvalue()
    assert "Traceback (most recent call last)" in lines
    assert "RuntimeError: a bug in the pull" in lines
    # the same file as the app's, in the platform's log folder (XDG_STATE_HOME: see conftest)
    assert log == Path(os.environ["XDG_STATE_HOME"]) / "lookback-gui" / "log" / "lookback-gui.log"
    assert "RuntimeError: a bug in the pull" in log.read_text()
