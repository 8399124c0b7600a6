"""The window follows events: a finished run reloads what it changed and nothing else, keeps
what the user set, and opening and closing a project never block the GUI thread."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import numpy as np
import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QSettings

import lookback_gui.ui  # noqa: F401
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store
from lookback_gui.core.store import events as ev
from lookback_gui.ui.main_window import FALLBACK_REFRESH_MS, MainWindow
from lookback_gui.ui.session import Session
from tests.helpers import DAILY_SQL, make_orders, project_text
from tests.test_ui import open_and_wait, recent_shop

TWO_METRICS = project_text() + (
    '\n[metrics.revenue]\nsource = "shop"\ngrain = "day"\nlookback = "7d"\nretries = 0\n'
    f'sql = """\n{DAILY_SQL.strip()}\n"""\n'
)


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    yield win
    win.close_session(wait=True)


def busy_shop(tmp_path: Path) -> Path:
    """Orders on each of the last six days, so a chart has something to zoom into."""
    from datetime import datetime, timedelta

    today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    rows = [(i, today - timedelta(days=d, hours=-10), "DE", 10.0 + d) for i, d in enumerate(range(1, 7))]
    return make_orders(tmp_path / "shop.duckdb", rows)


def two_metric_project(tmp_path: Path) -> Path:
    busy_shop(tmp_path)
    path = tmp_path / "lookback.toml"
    path.write_text(TWO_METRICS)
    project = load_project(path)
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store)
        run_pull(project, "revenue", store)
    return path


def choose_measure(qtbot, chart, measure: str) -> None:
    """Show ``measure`` on ``chart`` and wait until it is drawn."""
    qtbot.waitUntil(
        lambda: chart.measure_box.findText(measure) >= 0 and chart._data is not None, timeout=10000
    )
    if chart._data.measure == measure and chart.measure_box.currentText() == measure:
        return
    with qtbot.waitSignal(chart.loaded, timeout=10000, check_params_cb=lambda d: d.measure == measure):
        chart.measure_box.setCurrentText(measure)


def zoom_in(qtbot, window) -> list[list[float]]:
    chart = window.chart
    qtbot.waitUntil(lambda: chart._data is not None and chart._data.drawing is not None, timeout=10000)
    qtbot.waitUntil(lambda: window.bridge.pending == 0, timeout=10000)
    x = chart._data.drawing.x
    view = chart.plot.getViewBox()
    with qtbot.waitSignal(view.sigRangeChanged, timeout=5000):
        view.setRange(xRange=(float(x[1]), float(x[3])), yRange=(0.0, 3.0), padding=0)
    return [list(r) for r in view.targetRange()]


def add_order(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "shop.duckdb"))
    con.execute(
        "INSERT INTO orders SELECT 99, ordered_at + INTERVAL 1 MINUTE, 'DE', 1.0 "
        "FROM orders WHERE order_id = 2"
    )
    con.close()


def test_a_pull_of_the_metric_shown_keeps_the_zoom_measure_and_series(qtbot, window, tmp_path):
    path = two_metric_project(tmp_path)
    open_and_wait(qtbot, window, path)
    window.select_metric("daily_orders")
    chart = window.chart
    qtbot.waitUntil(lambda: chart._data is not None and chart._data.metric == "daily_orders", timeout=10000)
    choose_measure(qtbot, chart, "revenue")
    zoomed = zoom_in(qtbot, window)
    add_order(tmp_path)
    with qtbot.waitSignal(
        chart.loaded, timeout=20000, check_params_cb=lambda d: int(d.arrays["versions"].max()) == 2
    ):
        window.run_now()
    assert chart.measure_box.currentText() == "revenue"
    assert np.allclose(chart.plot.getViewBox().targetRange(), zoomed)
    # the newest run is offered under "as known after", and "latest" is still chosen
    assert chart.as_of_box.currentData() is None
    assert chart.as_of_box.findData(3) >= 0


def test_a_pull_of_another_metric_leaves_the_chart_alone(qtbot, window, tmp_path):
    path = two_metric_project(tmp_path)
    open_and_wait(qtbot, window, path)
    window.select_metric("daily_orders")
    zoomed = zoom_in(qtbot, window)
    drawn: list[object] = []
    window.chart.loaded.connect(drawn.append)
    with qtbot.waitSignals(
        [window.bridge.core_event, window.refreshed],
        timeout=20000,
        check_params_cbs=[lambda e: isinstance(e, ev.RunFinished), None],
    ):
        window.scheduler.run_now("revenue")
    qtbot.waitUntil(lambda: window.runs_model.record(0).status == "succeeded", timeout=10000)
    qtbot.waitUntil(lambda: window.bridge.pending == 0, timeout=10000)
    assert drawn == []
    assert np.allclose(window.chart.plot.getViewBox().targetRange(), zoomed)


def test_runs_that_no_event_announced_appear_at_the_slow_refresh(qtbot, window, tmp_path):
    path = two_metric_project(tmp_path)
    open_and_wait(qtbot, window, path, start_scheduler=False)
    assert 10_000 <= FALLBACK_REFRESH_MS <= 15_000 and window._fallback.isActive()
    window.select_metric("daily_orders")
    qtbot.waitUntil(lambda: window.chart._data is not None, timeout=10000)
    qtbot.waitUntil(lambda: window.bridge.pending == 0, timeout=10000)
    add_order(tmp_path)
    run = run_pull(window.project, "daily_orders", window.store)  # no scheduler, no event
    with qtbot.waitSignal(
        window.chart.loaded, timeout=20000, check_params_cb=lambda d: int(d.arrays["versions"].max()) == 2
    ):
        window._fallback.timeout.emit()
    qtbot.waitUntil(lambda: window.runs_model.record(0).id == run.id, timeout=10000)


def test_opening_and_closing_a_project_plan_and_join_off_the_gui_thread(qtbot, window, tmp_path, monkeypatch):
    from lookback_gui.core.schedule import scheduler as scheduler_module

    threads: dict[str, str] = {}
    plan = scheduler_module.plan_catch_up
    shutdown = scheduler_module.Scheduler.shutdown

    def planning(*args, **kwargs):
        threads["plan"] = threading.current_thread().name
        return plan(*args, **kwargs)

    def joining(self, *args, **kwargs):
        threads["shutdown"] = threading.current_thread().name
        return shutdown(self, *args, **kwargs)

    monkeypatch.setattr(scheduler_module, "plan_catch_up", planning)
    monkeypatch.setattr(scheduler_module.Scheduler, "shutdown", joining)
    recent_shop(tmp_path)
    path = tmp_path / "lookback.toml"
    path.write_text(project_text(extra='every = "1h"'))
    open_and_wait(qtbot, window, path)
    window.close_session(wait=True)
    main = threading.main_thread().name
    assert threads.get("plan") not in (None, main)
    assert threads.get("shutdown") not in (None, main)


def test_a_session_opens_and_closes_without_widgets(tmp_path):
    recent_shop(tmp_path)
    path = tmp_path / "lookback.toml"
    path.write_text(project_text(extra='every = "1h"'))
    events: list[object] = []
    session = Session.open(path, events.append, paused=True)
    try:
        assert session.scheduler.running and session.paused
        assert session.scheduler.running_metrics() == []  # paused: no catch-up pull
        assert session.project.metrics["daily_orders"].every is not None
    finally:
        session.close()
    Store(tmp_path / "lookback.duckdb").close()  # closed: it opens again


def test_switching_projects_leaves_nothing_of_the_old_one_on_screen(qtbot, window, tmp_path):
    first = tmp_path / "first"
    first.mkdir()
    path = two_metric_project(first)
    open_and_wait(qtbot, window, path, start_scheduler=False)
    qtbot.waitUntil(
        lambda: window.chart._data is not None and window.runs_model.rowCount() == 2, timeout=10000
    )
    window.tabs.setCurrentWidget(window.runs_log)
    log = window.runs_log
    log.view.selectRow(0)
    qtbot.waitUntil(lambda: "Run " in log.detail.toPlainText(), timeout=10000)
    old_range = window.chart.plot.getViewBox().viewRange()

    empty = tmp_path / "empty" / "lookback.toml"
    empty.parent.mkdir()
    empty.write_text('[store]\npath = "lookback.duckdb"\n')
    open_and_wait(qtbot, window, empty)
    qtbot.waitUntil(lambda: window.bridge.pending == 0, timeout=10000)
    assert log.detail.toPlainText() == ""
    assert window.metric_runs.detail.toPlainText() == ""
    assert window.runs_model.rowCount() == 0
    chart = window.chart
    assert chart.measure_box.count() == chart.series_box.count() == 0
    assert chart.status.text() == "no metric selected"
    assert window.chart.plot.getViewBox().viewRange()[0] != old_range[0]


def test_the_series_box_shows_current_totals_after_a_run(qtbot, window, tmp_path):
    path = two_metric_project(tmp_path)
    open_and_wait(qtbot, window, path)
    window.select_metric("daily_orders")
    chart = window.chart
    qtbot.waitUntil(lambda: chart.series_box.count() == 1, timeout=10000)
    qtbot.waitUntil(lambda: window.bridge.pending == 0, timeout=10000)
    before = chart.series_box.itemText(0)
    add_order(tmp_path)
    with qtbot.waitSignal(
        chart.loaded, timeout=20000, check_params_cb=lambda d: int(d.arrays["versions"].max()) == 2
    ):
        window.run_now()
    assert chart.series_box.itemText(0) != before
    total = sum(s for d, m, s in chart._data.series if m == chart._data.measure)
    assert chart.series_box.itemText(0).endswith(f"({total:,.0f})") or chart.series_box.itemText(0).endswith(
        f"({total:,.2f})"
    )


def test_a_pull_keeps_the_selected_revision(qtbot, window, tmp_path):
    from datetime import datetime, timedelta

    today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    busy_shop(tmp_path)
    path = tmp_path / "lookback.toml"
    path.write_text(project_text())
    project = load_project(path)
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store)
        add_order(tmp_path)
        run_pull(project, "daily_orders", store)
    open_and_wait(qtbot, window, path)
    window.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: window.revisions_model.rowCount() == 2, timeout=10000)
    view = window.revisions_view
    view.selectRow(1)
    chosen = window.revisions_filter.mapToSource(view.currentIndex()).row()
    key = window.revisions_model.record(chosen).revision
    con = duckdb.connect(str(tmp_path / "shop.duckdb"))
    con.execute("INSERT INTO orders VALUES (100, ?, 'DE', 5.0)", [today - timedelta(days=3)])
    con.close()
    window.run_now()
    qtbot.waitUntil(lambda: window.revisions_model.rowCount() == 4, timeout=20000)
    row = window.revisions_filter.mapToSource(view.currentIndex()).row()
    assert row >= 0 and window.revisions_model.record(row).revision == key


def test_an_edit_of_the_project_file_made_elsewhere_reaches_the_tree(qtbot, window, tmp_path):
    import os

    path = two_metric_project(tmp_path)
    open_and_wait(qtbot, window, path, start_scheduler=False)
    assert [i.text(0) for i in window.tree.metric_items()] == ["daily_orders", "revenue"]
    path.write_text(path.read_text().replace("[metrics.revenue]", "[metrics.sales]"))
    later = path.stat().st_mtime + 5
    os.utime(path, (later, later))
    with qtbot.waitSignal(
        window.bridge.core_event, timeout=10000, check_params_cb=lambda e: isinstance(e, ev.Notice)
    ):
        window.scheduler.reload_if_changed()  # as its tick does every few seconds
    assert [i.text(0) for i in window.tree.metric_items()] == ["daily_orders", "sales"]
    assert window.project is window.scheduler.project


def test_the_chart_shows_the_values_as_known_at_a_date(qtbot, window, tmp_path):
    from datetime import datetime

    from PySide6.QtCore import QDateTime

    make_orders(tmp_path / "shop.duckdb", [(1, datetime(2026, 10, 25, 10), "DE", 10.0)])
    path = tmp_path / "lookback.toml"
    path.write_text(project_text())
    project = load_project(path)
    first, second = datetime(2026, 10, 30, 12), datetime(2026, 10, 30, 18)
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store, as_of=first, clock=lambda: first)
        con = duckdb.connect(str(tmp_path / "shop.duckdb"))  # a second order: revenue 10 → 11
        con.execute("INSERT INTO orders VALUES (2, '2026-10-25 11:00', 'DE', 1.0)")
        con.close()
        run_pull(project, "daily_orders", store, as_of=second, clock=lambda: second)
    open_and_wait(qtbot, window, path)
    window.select_metric("daily_orders")
    chart = window.chart
    choose_measure(qtbot, chart, "revenue")
    assert chart._data.arrays["value"].tolist() == [11.0]

    with qtbot.waitSignal(chart.loaded, timeout=10000, check_params_cb=lambda d: d.as_known_at is not None):
        chart.as_of_box.setCurrentIndex(chart.as_of_box.findText("a date and time…"))
    assert chart.known_at_edit.isVisibleTo(chart)
    assert chart.known_at_edit.dateTime().toPython() == second  # the newest run's known time
    with qtbot.waitSignal(
        chart.loaded, timeout=10000, check_params_cb=lambda d: d.as_known_at == datetime(2026, 10, 30, 15)
    ):
        chart.known_at_edit.setDateTime(QDateTime(datetime(2026, 10, 30, 15)))
    assert chart._data.arrays["value"].tolist() == [10.0]  # as known between the two pulls
    assert "as known at 2026-10-30 15:00" in chart.status.text()
    assert "as known at 2026-10-30 15:00" in chart.title_text()
    with qtbot.waitSignal(chart.loaded, timeout=10000, check_params_cb=lambda d: d.as_of_run == 1):
        chart.as_of_box.setCurrentIndex(chart.as_of_box.findData(1))
    assert not chart.known_at_edit.isVisibleTo(chart)
    assert chart._data.arrays["value"].tolist() == [10.0]


def test_the_first_look_at_the_runs_does_not_start_the_charts_first_load_over(qtbot, tmp_path, monkeypatch):
    from lookback_gui.ui import chart as chart_module
    from lookback_gui.ui.main_window import _settings_key

    path = two_metric_project(tmp_path)
    loads: list[str] = []
    real = chart_module.load_chart

    def counted(store, metric, *args, **kwargs):
        loads.append(metric)
        return real(store, metric, *args, **kwargs)

    monkeypatch.setattr(chart_module, "load_chart", counted)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue(f"view/{_settings_key(path)}/metric", "daily_orders")  # shown last time
    win = MainWindow(settings)
    qtbot.addWidget(win)
    try:
        with qtbot.waitSignals([win.refreshed, win.chart.loaded], timeout=20000):
            win.open_project(path, start_scheduler=False)
        qtbot.waitUntil(lambda: win.bridge.pending == 0, timeout=10000)
        assert loads == ["daily_orders"]
        assert win.chart._data.drawing is not None
    finally:
        win.close_session(wait=True)


def test_a_run_announced_while_the_chart_loads_is_shown_once_the_load_arrives(
    qtbot, window, tmp_path, monkeypatch
):
    from lookback_gui.ui import chart as chart_module

    path = two_metric_project(tmp_path)
    open_and_wait(qtbot, window, path, start_scheduler=False)
    window.select_metric("daily_orders")
    chart = window.chart
    qtbot.waitUntil(lambda: chart._data is not None and window.bridge.pending == 0, timeout=10000)
    release = threading.Event()
    real = chart_module.load_chart

    def read_then_wait(*args, **kwargs):
        data = real(*args, **kwargs)  # read before the run below commits
        release.wait(10)
        return data

    monkeypatch.setattr(chart_module, "load_chart", read_then_wait)
    drawn: list[object] = []
    chart.loaded.connect(drawn.append)
    chart.refresh()
    add_order(tmp_path)
    run = run_pull(window.project, "daily_orders", window.store)
    window.metric_views.metric_changed("daily_orders", run.id)  # as its event would
    monkeypatch.setattr(chart_module, "load_chart", real)
    release.set()
    qtbot.waitUntil(lambda: len(drawn) == 2, timeout=10000)
    # the load on its way was read before the run; then it is loaded again for it
    assert max(r for r, _ in drawn[0].runs) < run.id and drawn[0].drawing.revised == 0
    assert drawn[1].drawing.revised == 1
    assert max(r for r, _ in drawn[1].runs) == run.id


def test_the_runs_log_shows_its_first_page_before_the_rest_of_the_first_snapshot(
    qtbot, window, tmp_path, monkeypatch
):
    path = two_metric_project(tmp_path)
    release = threading.Event()
    real = Store.last_successful_run

    def slow(self, metric):
        release.wait(10)  # the rest of the snapshot: each metric's newest successful run
        return real(self, metric)

    monkeypatch.setattr(Store, "last_successful_run", slow)
    refreshed: list[bool] = []
    window.refreshed.connect(lambda: refreshed.append(True))
    window.open_project(path, start_scheduler=False)
    qtbot.waitUntil(lambda: window.runs_model.rowCount() == 2, timeout=10000)
    assert refreshed == []
    release.set()
    qtbot.waitUntil(lambda: bool(refreshed), timeout=10000)
    assert window.runs_model.rowCount() == 2
