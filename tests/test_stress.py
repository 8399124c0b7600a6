"""Windows opened, projects switched, closed, and windows closed and deleted at random moments
while scheduled pulls run: the app never crashes, and every thread a window started has ended
once it is closed, or deleted or dropped without being closed. Part of the default run (marked ``slow`` and
``stress``); about 45 s (``LOOKBACK_STRESS_S``)."""

from __future__ import annotations

import gc
import os
import random
import re
import shutil
import threading
import time
import weakref
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QSettings

import lookback_gui.ui  # noqa: F401
from lookback_gui.core.demo import write_demo
from lookback_gui.core.sources import SourceConnections
from lookback_gui.core.store.database import Database
from lookback_gui.ui.main_window import MainWindow

DURATION_S = float(os.environ.get("LOOKBACK_STRESS_S", "45"))
WINDOWS = 3


def every_second_demo(folder: Path) -> Path:
    """The demo project with every metric pulled every second."""
    write_demo(folder)
    path = folder / "lookback.toml"
    text = re.sub(r'^(schedule|every) = "[^"]*".*$', 'every = "1s"', path.read_text(), flags=re.M)
    path.write_text(text.replace('audit_every = "1d"', 'audit_every = "2s"'))
    return path


@pytest.mark.slow
@pytest.mark.stress
@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")  # offscreen: shown
def test_stress(qtbot, tmp_path, monkeypatch):
    # each window has projects of its own (the app has one window; a project is open in one
    # window of a process at a time)
    first = every_second_demo(tmp_path / "demo")
    projects: dict[int, list[Path]] = {}
    for slot in range(WINDOWS):
        for name in ("a", "b"):
            shutil.copytree(first.parent, tmp_path / f"{slot}{name}")
            projects.setdefault(slot, []).append(tmp_path / f"{slot}{name}" / "lookback.toml")
    # no store read on the GUI thread: every use of a store says which thread it is on
    gui_reads: list[str] = []
    original = Database._connection

    def watched(self: Database):  # type: ignore[no-untyped-def]
        if threading.current_thread() is threading.main_thread():
            gui_reads.append("".join(__import__("traceback").format_stack(limit=8)))
        return original(self)

    monkeypatch.setattr(Database, "_connection", watched)
    seed = int(os.environ.get("LOOKBACK_STRESS_SEED", str(time.time_ns())))
    pick = random.Random(seed)
    before = {t for t in threading.enumerate() if t.is_alive()}
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    connections = SourceConnections()
    windows: dict[int, MainWindow] = {}
    dropped: list[weakref.ref[MainWindow]] = []
    opened = [0]
    deadline = time.monotonic() + DURATION_S
    steps = 0
    try:
        while time.monotonic() < deadline:
            steps += 1
            action = pick.choice(
                [
                    "new",
                    "open",
                    "open",
                    "close-project",
                    "close-window",
                    "delete-window",
                    "drop-window",
                    "run",
                    "pause",
                ]
            )
            free = [slot for slot in range(WINDOWS) if slot not in windows]
            if (action == "new" or not windows) and free:
                slot = pick.choice(free)
                window = MainWindow(settings, connections=connections)
                window.opened.connect(lambda _: opened.__setitem__(0, opened[0] + 1))
                window.show()
                windows[slot] = window
                window.open_project(pick.choice(projects[slot]))
            elif not windows:
                pass
            elif action == "open":
                slot = pick.choice(list(windows))
                windows[slot].open_project(pick.choice(projects[slot]))
            elif action == "close-project":
                pick.choice(list(windows.values())).close_project()
            elif action == "close-window":
                window = windows.pop(pick.choice(list(windows)))
                window.quitting = True
                window.close()
                window.deleteLater()
            elif action == "delete-window":  # deleted without close(): its session still closes
                windows.pop(pick.choice(list(windows))).deleteLater()
            elif action == "drop-window":  # dropped by Python, unclosed: the collector frees it
                dropped.append(weakref.ref(windows.pop(pick.choice(list(windows)))))
            elif action == "run":
                window = pick.choice(list(windows.values()))
                if window.project is not None:
                    window.select_metric(pick.choice(list(window.project.metrics)))
                    window.run_now()
            elif action == "pause":
                pick.choice(list(windows.values())).pause_action.trigger()
            window = None  # the dict holds the windows; a dropped one is nobody's
            # a random moment: let the event loop deliver what arrived meanwhile (openings,
            # runs, chart loads) for a while, short or long
            qtbot.wait(pick.choice([0, 1, 5, 20, 50, 200, 600]))
    finally:
        for window in windows.values():
            window.quitting = True
            window.close()
            window.deleteLater()
        window = None
        qtbot.wait(50)  # the deleteLater()s run, and what the event loop still had to deliver

        def all_freed() -> bool:  # what the collector's timer does, at once
            gc.collect()
            return all(ref() is None for ref in dropped)

        qtbot.waitUntil(all_freed, timeout=60_000)
        connections.close()
    left = {t for t in threading.enumerate() if t.is_alive()} - before
    assert not left, (seed, sorted(t.name for t in left))
    assert opened[0] > 0, (seed, steps)  # projects did open, and were used
    assert not gui_reads, (seed, len(gui_reads), gui_reads[0])
