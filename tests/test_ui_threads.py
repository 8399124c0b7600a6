"""Qt objects live and die on the GUI thread: reference cycles are collected there, results of
worker threads reach only widgets that still exist, and a window that goes away without being
closed still closes its sessions."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

import lookback_gui.ui  # noqa: F401
from lookback_gui.ui.bridge import Bridge

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")  # the offscreen platform says so


def test_a_cycle_of_qt_objects_is_collected_on_the_gui_thread(qtbot):
    """A worker thread that allocates enough to trigger Python's cycle collector does not
    destroy the GUI's Qt objects (a running timer of a freed object crashes Qt later)."""
    bridge = Bridge()  # any part of the UI that runs work on threads
    ended_on: list[str] = []
    gc.collect()
    timer = QTimer()
    timer.start(60_000)
    timer.cycle = [timer]  # garbage only the cycle collector frees
    weakref.finalize(timer, lambda: ended_on.append(threading.current_thread().name))
    del timer
    kept: list[object] = []

    def allocate() -> None:  # more new container objects than the collector's threshold
        kept.append([[] for _ in range(20 * gc.get_threshold()[0])])

    worker = threading.Thread(target=allocate, name="worker")
    worker.start()
    worker.join(30)
    qtbot.waitUntil(lambda: bool(ended_on), timeout=10_000)
    assert ended_on == [threading.main_thread().name]
    bridge.shutdown()


@pytest.mark.parametrize("view", ["compare", "dashboard"])
def test_a_load_that_completes_after_its_widget_was_deleted_is_dropped(qtbot, project, monkeypatch, view):
    """The bridge outlives the widget (it is shared): the result of a load still on its way
    when the widget is deleted reaches nothing of it."""
    from lookback_gui.core.project import load_project
    from lookback_gui.core.pull import run_pull
    from lookback_gui.core.store import Store
    from lookback_gui.ui import compare, dashboard
    from tests.helpers import ts

    config = load_project(project)
    store = Store(config.store_path)
    run_pull(config, "daily_orders", store, as_of=ts("2026-10-30T12:00"))
    go, started = threading.Event(), threading.Event()
    module, name = (compare, "load_comparison") if view == "compare" else (dashboard, "load_metric_charts")
    load = getattr(module, name)

    def held(*args: object, **kwargs: object) -> object:
        started.set()
        go.wait(30)
        return load(*args, **kwargs)

    monkeypatch.setattr(module, name, held)
    bridge = Bridge()
    try:
        if view == "compare":
            widget: QWidget = compare.CompareWidget(bridge)
            widget.show()
            widget.set_metric(store, config.metrics["daily_orders"])
        else:
            widget = dashboard.DashboardWidget(bridge)
            widget.show()
            widget.set_project(store, config)
        assert started.wait(30)  # the load is under way
        gone = threading.Event()
        widget.destroyed.connect(lambda *_: gone.set())
        widget.deleteLater()
        qtbot.waitUntil(gone.is_set, timeout=10_000)
        go.set()
        qtbot.waitUntil(lambda: bridge.pending == 0, timeout=30_000)  # delivered, or dropped
    finally:
        go.set()
        bridge.shutdown()
        store.close()


def threads_now() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


@pytest.mark.parametrize("how", ["deleteLater", "dropped"])
def test_a_window_deleted_without_being_closed_closes_its_session(qtbot, tmp_path, write_project, how):
    """Deleted with deleteLater() only, or dropped by Python, the window's session still
    closes: its scheduler's, store's and session's threads end and its store can be opened
    again."""
    from PySide6.QtCore import QSettings

    from lookback_gui.core.project import load_project
    from lookback_gui.core.store import Store
    from lookback_gui.ui.main_window import MainWindow
    from tests.helpers import make_orders, project_text, ts

    make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-25T10:00"), "DE", 10.0)])
    path = write_project(project_text().replace('lookback = "7d"', 'lookback = "7d"\nevery = "1s"'))
    before = threads_now()
    window = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    with qtbot.waitSignal(window.opened, timeout=60_000):
        window.open_project(path)
    window.select_metric("daily_orders")  # its views hold the window's methods: the advisor
    window.tabs.setCurrentWidget(window.advisor)  # is given reload_project when it is shown
    started = {t.name for t in threads_now() - before}
    assert "store-watch" in started and any(n.startswith("session") for n in started), started
    ended = threading.Event()
    window.destroyed.connect(lambda *_: ended.set())
    if how == "deleteLater":
        window.deleteLater()
    else:
        del window

    def gone() -> bool:  # the deleteLater() ran; the collector freed the window's cycles
        gc.collect()
        return ended.is_set()

    qtbot.waitUntil(gone, timeout=10_000)
    left = threads_now() - before
    assert not left, sorted(t.name for t in left)
    Store(load_project(path).store_path).close()  # nothing holds the store any more


def _shown_with_data(view: str, project_path: object) -> QWidget:
    """A chart or comparison widget of its own (no window), shown, with series drawn."""
    from lookback_gui.core.insight.additivity import Additivity
    from lookback_gui.core.project import load_project
    from lookback_gui.ui.chart import ChartWidget
    from lookback_gui.ui.compare import CompareWidget
    from lookback_gui.ui.compare_series import Comparison
    from tests.test_ui_compare import long_series

    bridge = Bridge()
    metric = load_project(project_path).metrics["daily_orders"]
    series = (long_series("DE", 300), long_series("FR", 300))
    widget: QWidget
    if view == "compare":
        widget = CompareWidget(bridge)
        widget._metric = metric  # drawn as it is, without a load
        widget._show(Comparison("daily_orders", "orders", series, [], Additivity(True)))
    else:
        widget = ChartWidget(bridge)
        widget._metric = metric
        widget._show(series[0])
    widget.resize(900, 500)
    widget.show()
    return widget


@pytest.mark.parametrize("view", ["chart", "compare"])
def test_a_chart_dropped_by_python_is_freed_at_once(qtbot, project, view):
    """A chart's items hold nothing of the widget (a marker's tooltip, the range picker's
    view): dropped, the widget is freed at once, not left in a cycle to the cycle collector,
    which takes a widget apart in an order Qt does not survive (see the next test)."""
    widget = _shown_with_data(view, project)
    qtbot.waitExposed(widget)
    dropped = weakref.ref(widget)
    enabled = gc.isenabled()
    gc.disable()
    try:
        del widget
        assert dropped() is None
    finally:
        if enabled:
            gc.enable()


CYCLE_SCRIPT = """
import gc, sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from tests.test_ui_threads import _shown_with_data
widget = _shown_with_data(sys.argv[1], sys.argv[2])
app.processEvents()
widget.cycle = widget  # in a reference cycle: only the cycle collector frees it
del widget
gc.collect()
app.processEvents()
print("collected")
"""


@pytest.mark.parametrize("view", ["chart", "compare"])
def test_a_chart_in_a_reference_cycle_is_collected_without_a_crash(project, view):
    """Whatever cycle a chart ends up in, the collector frees it whole: the process lives."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", CYCLE_SCRIPT, view, str(project)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "collected" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize("kind", ["source", "metric", "advisor"])
def test_an_editor_dropped_by_python_is_freed_at_once(qtbot, project, kind):
    """No slot and no attribute of an editor (or of the advisor) holds the editor itself:
    dropped, it is freed at once, never left in a cycle to the cycle collector."""
    from lookback_gui.core.project import load_project
    from lookback_gui.ui.advisor_tab import AdvisorWidget
    from lookback_gui.ui.editors import MetricEditor, SourceEditor

    config = load_project(project)
    bridge = Bridge()
    widget: QWidget
    if kind == "source":
        widget = SourceEditor(config, bridge, config.sources["shop"])
    elif kind == "metric":
        widget = MetricEditor(config, bridge, config.metrics["daily_orders"])
    else:
        widget = AdvisorWidget(bridge)
    widget.show()
    qtbot.waitExposed(widget)
    dropped = weakref.ref(widget)
    enabled = gc.isenabled()
    gc.disable()
    try:
        del widget
        assert dropped() is None
    finally:
        if enabled:
            gc.enable()
        bridge.shutdown()
