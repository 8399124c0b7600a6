"""What the app keeps between uses, and how it fits the desktop it runs on."""

from __future__ import annotations

import os
from datetime import datetime

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QSettings
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

import lookback_gui.ui  # noqa: F401
from lookback_gui.core.store import events as ev
from lookback_gui.ui.main_window import MainWindow
from tests.test_ui import open_and_wait
from tests.test_ui_live import choose_measure, two_metric_project


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def new_window(qtbot, settings) -> MainWindow:
    window = MainWindow(settings)
    qtbot.addWidget(window)
    return window


def test_the_selected_metric_tab_and_measure_come_back_on_reopen(qtbot, settings, tmp_path):
    path = two_metric_project(tmp_path)
    window = new_window(qtbot, settings)
    open_and_wait(qtbot, window, path, start_scheduler=False)
    window.select_metric("revenue")
    chart = window.chart
    qtbot.waitUntil(lambda: chart._data is not None and chart._data.metric == "revenue", timeout=10000)
    choose_measure(qtbot, chart, "revenue")
    window.select_metric("daily_orders")
    qtbot.waitUntil(lambda: chart._data is not None and chart._data.metric == "daily_orders", timeout=10000)
    choose_measure(qtbot, chart, "orders")
    window.select_metric("revenue")  # the measure chosen for it is chosen again
    qtbot.waitUntil(lambda: chart._data is not None and chart._data.metric == "revenue", timeout=10000)
    assert chart.measure_box.currentText() == "revenue"
    window.select_metric("daily_orders")  # the measure chosen for it is chosen again
    qtbot.waitUntil(lambda: chart._data is not None and chart._data.metric == "daily_orders", timeout=10000)
    assert chart.measure_box.currentText() == "orders"
    window.select_metric("revenue")
    window.tabs.setCurrentWidget(window.runs_log)
    window.quitting = True
    window.close()

    again = new_window(qtbot, settings)
    open_and_wait(qtbot, again, path, start_scheduler=False)
    assert again.selected_metric_name() == "revenue"
    assert again.tabs.currentWidget() is again.runs_log
    qtbot.waitUntil(lambda: again.chart._data is not None, timeout=10000)
    assert again.chart.measure_box.currentText() == "revenue"
    again.close_session(wait=True)


def test_the_pause_belongs_to_its_project_and_the_action_says_resume(qtbot, settings, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    window = new_window(qtbot, settings)
    paused_path = two_metric_project(first)
    paused_path.write_text(
        paused_path.read_text().replace('lookback = "7d"', 'lookback = "7d"\nevery = "1h"')
    )
    open_and_wait(qtbot, window, paused_path)
    assert window.pause_action.text() == "&Pause scheduler"
    with qtbot.waitSignal(window.refreshed, timeout=10000):
        window.pause_action.trigger()
    assert window.scheduler.paused
    assert {row.next_run for row in window.health_model.records()} == {"paused"}
    assert window.pause_action.text() == "Resume scheduler"
    assert window.pause_button.text() == "Resume scheduler"
    open_and_wait(qtbot, window, two_metric_project(second))  # another project: not paused
    assert not window.scheduler.paused and not window.pause_action.isChecked()
    assert window.scheduler_label.text() != "scheduler paused"
    assert window.pause_action.text() == "&Pause scheduler"
    open_and_wait(qtbot, window, paused_path)  # the paused one again: still paused
    assert window.scheduler.paused and window.pause_action.isChecked()
    assert window.scheduler_label.text() == "scheduler paused"
    window.pause_action.trigger()
    assert not window.scheduler.paused
    assert window.pause_action.text() == "&Pause scheduler"
    window.close_session(wait=True)

    again = new_window(qtbot, settings)  # the next start: resumed, as it was left
    open_and_wait(qtbot, again, paused_path)
    assert not again.scheduler.paused
    again.close_session(wait=True)


def test_the_measure_chosen_belongs_to_its_project(qtbot, settings, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    one, other = two_metric_project(first), two_metric_project(second)
    window = new_window(qtbot, settings)
    chart = window.chart
    open_and_wait(qtbot, window, one, start_scheduler=False)
    window.select_metric("revenue")
    qtbot.waitUntil(lambda: chart._data is not None and chart._data.metric == "revenue", timeout=10000)
    choose_measure(qtbot, chart, "orders")
    open_and_wait(qtbot, window, other, start_scheduler=False)
    window.select_metric("revenue")  # the same metric's name in another project
    qtbot.waitUntil(lambda: chart._data is not None and chart._data.metric == "revenue", timeout=10000)
    qtbot.waitUntil(lambda: chart.measure_box.count() > 0, timeout=10000)
    assert chart.measure_box.currentText() == "revenue"  # its first measure, not the other's
    open_and_wait(qtbot, window, one, start_scheduler=False)
    window.select_metric("revenue")
    qtbot.waitUntil(lambda: chart._data is not None and chart._data.metric == "revenue", timeout=10000)
    qtbot.waitUntil(lambda: chart.measure_box.count() > 0, timeout=10000)
    assert chart.measure_box.currentText() == "orders"
    window.close_session(wait=True)


def test_without_a_tray_alerts_show_in_the_window(qtbot, settings, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QSystemTrayIcon

    monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: False))
    window = new_window(qtbot, settings)
    assert window.tray is None and not window.tray_action.isVisible()
    assert window.tray_action not in [
        a for m in window.menuBar().actions() for a in m.menu().actions() if a.isVisible()
    ]
    window.bridge(
        ev.AlertChanged(
            metric="daily_orders",
            rule="few orders",
            kind="threshold",
            state="firing",
            since=None,
            message="orders 3 below 10",
        )
    )
    qtbot.waitUntil(lambda: window.alert_bar.isVisibleTo(window), timeout=5000)
    assert "few orders" in window.alert_bar.text.text()
    assert "orders 3 below 10" in window.alert_bar.text.text()


def test_the_revisions_tab_filters(qtbot, settings, tmp_path):
    from tests.test_ui import _store_with_history

    store, project = _store_with_history(tmp_path)
    store.close()
    window = new_window(qtbot, settings)
    open_and_wait(qtbot, window, project.path, start_scheduler=False)
    window.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: window.revisions_model.rowCount() == 2, timeout=10000)
    window.revisions_find.setText("revenue")
    qtbot.waitUntil(lambda: window.revisions_filter.rowCount() == 1, timeout=5000)
    window.revisions_find.setText("")
    qtbot.waitUntil(lambda: window.revisions_filter.rowCount() == 2, timeout=5000)
    window.close_session(wait=True)


def test_the_dark_theme_sets_a_dark_palette_on_qt_and_the_charts(qtbot, settings):
    window = new_window(qtbot, settings)
    try:
        window.set_theme("dark")
        app = QApplication.instance()
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 100
        assert window.chart.plot.backgroundBrush().color().lightness() < 100
        window.set_theme("light")
        assert app.palette().color(QPalette.ColorRole.Window).lightness() > 180
        assert window.chart.plot.backgroundBrush().color().lightness() > 180
    finally:
        window.set_theme("system")


def test_a_fresh_demo_is_a_new_project_each_time(tmp_path, monkeypatch):
    from lookback_gui.core import demo
    from lookback_gui.core.demo import fresh_demo
    from lookback_gui.ui.app import build_parser

    monkeypatch.setattr(demo, "seed_history", lambda project, progress=None: None)
    first, second = fresh_demo(tmp_path), fresh_demo(tmp_path)
    assert first != second and first.exists() and second.exists()
    args = build_parser().parse_args(["--demo", "--fresh"])
    assert args.demo and args.fresh


def test_pausing_a_project_opened_without_its_scheduler_is_harmless(qtbot, settings, tmp_path):
    window = new_window(qtbot, settings)
    open_and_wait(qtbot, window, two_metric_project(tmp_path), start_scheduler=False)
    window.pause_action.trigger()
    window.pause_action.trigger()
    assert window.scheduler_label.text() == "scheduler stopped"
    window.close_session(wait=True)


def test_a_window_whose_schedule_runs_in_another_process_says_so_and_offers_no_pause(
    qtbot, settings, tmp_path
):
    from lookback_gui.ui.session import Session

    path = two_metric_project(tmp_path)
    other = Session.open(path, lambda _event: None, paused=True)  # holds the project's schedule
    try:
        window = new_window(qtbot, settings)
        open_and_wait(qtbot, window, path)
        assert window.session.scheduled_elsewhere is not None
        assert window.scheduler_label.text().startswith("schedule runs in another process (")
        assert f"PID {os.getpid()}" in window.scheduler_label.text()
        assert not window.pause_action.isEnabled()
        assert not window.pause_button.isVisibleTo(window)
        window.close_session(wait=True)
        assert not window.pause_action.isEnabled()  # and none with no project open
        assert window.scheduler_label.text() == "no project"
    finally:
        other.close()


def test_a_demo_stopped_while_it_is_built_is_never_reopened_half_built(tmp_path):
    from lookback_gui.core.demo import build_demo, write_demo
    from lookback_gui.core.project import load_project
    from lookback_gui.core.pull import run_pull
    from lookback_gui.core.store import open_store

    def one_pull_then_stopped(project_path):
        project = load_project(project_path)
        with open_store(project.store) as store:
            run_pull(project, "daily_orders", store)
        raise KeyboardInterrupt  # the app closed while the demo was seeded

    folder = tmp_path / "demo"
    with pytest.raises(KeyboardInterrupt):
        build_demo(folder, write_demo, one_pull_then_stopped)
    assert not folder.exists() and list(tmp_path.iterdir()) == []
    # a process killed outright leaves its building folder behind: the next build clears it
    stale = tmp_path / ".demo.building-999999"
    write_demo(stale)

    def both_metrics(project_path):
        project = load_project(project_path)
        with open_store(project.store) as store:
            for name in ("daily_orders", "hourly_revenue"):
                run_pull(project, name, store)

    build_demo(folder, write_demo, both_metrics)
    assert [path.name for path in tmp_path.iterdir()] == ["demo"]
    project = load_project(folder / "lookback.toml")
    with open_store(project.store) as store:
        assert {run.metric for run in store.runs()} == {"daily_orders", "hourly_revenue"}


def test_the_demo_data_begins_with_a_whole_day(tmp_path):
    import duckdb

    from lookback_gui.core.demo import write_demo

    write_demo(tmp_path / "demo", now=datetime(2026, 12, 7, 15, 37))
    con = duckdb.connect(str(tmp_path / "demo" / "shop.duckdb"), read_only=True)
    (first,) = con.execute("SELECT min(ordered_at) FROM orders").fetchone()
    days = con.execute(
        "SELECT count(*) FROM orders GROUP BY date_trunc('day', ordered_at)"
        " ORDER BY date_trunc('day', ordered_at) LIMIT 2"
    ).fetchall()
    con.close()
    assert (first.hour, first.minute) == (0, 0)
    assert days[0][0] > 0.95 * days[1][0]  # as full as the day after it


def test_the_demo_being_built_shows_its_progress_until_it_is_done(qtbot, settings, tmp_path):
    import threading

    from lookback_gui.core.demo import ensure_demo
    from lookback_gui.ui.demo_progress import DemoProgress

    window = new_window(qtbot, settings)
    building = DemoProgress(window)
    assert building.bar.parent() is not None and building.bar.maximum() == 0  # busy at first
    assert "writing the shop's orders" in window.statusBar().currentMessage()
    steps: list[tuple[int, int]] = []
    building.step.connect(lambda done, total: steps.append((done, total)))
    done = threading.Event()
    # seeded on another thread, as the app does: the steps reach the bar on the GUI thread
    worker = threading.Thread(
        target=lambda: (ensure_demo(tmp_path / "demo", progress=building.step.emit), done.set())
    )
    worker.start()
    qtbot.waitUntil(lambda: bool(steps) and steps[-1][0] == steps[-1][1], timeout=120000)
    worker.join()
    assert done.is_set()
    total = steps[-1][1]
    assert [s for s, _t in steps] == list(range(1, total + 1))
    assert building.bar.maximum() == total and building.bar.value() == total
    assert window.statusBar().currentMessage() == "preparing the demo project: six weeks of pulls, 100 %…"
    building.finish()
    assert building.bar.parent() is None and window.statusBar().currentMessage() == ""
