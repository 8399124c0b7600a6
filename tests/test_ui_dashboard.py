"""The dashboard: a grid of small charts, live after every run of their metric, saved with the
project, each opening full size in the Chart tab."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence

import lookback_gui.ui  # noqa: F401
from lookback_gui.core.project import DashboardChart, load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store
from lookback_gui.ui.main_window import MainWindow
from tests.helpers import make_orders, project_text, ts

SECOND = '''
[metrics.weekly_orders]
source = "shop"
grain = "week"
lookback = "4w"
retries = 0
sql = """
SELECT date_trunc('week', ordered_at) AS bucket, count(*) AS orders FROM orders
WHERE ordered_at >= $window_start AND ordered_at < $window_end GROUP BY ALL
"""
'''


@pytest.fixture
def window(qtbot, tmp_path: Path):
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    yield win
    win.close_session(wait=True)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    make_orders(
        tmp_path / "shop.duckdb",
        [
            (1, ts("2026-10-25T10:00"), "DE", 10.0),
            (2, ts("2026-10-26T10:00"), "FR", 4.0),
            (3, ts("2026-10-28T10:00"), "DE", 7.0),
            (4, ts("2026-10-29T10:00"), "DE", 2.0),
        ],
    )
    path = tmp_path / "lookback.toml"
    path.write_text(project_text() + SECOND)
    project = load_project(path)
    with Store(project.store_path) as store:
        for metric in project.metrics:
            run_pull(project, metric, store, as_of=ts("2026-10-30T12:00"))
    return path


def open_dashboard(qtbot, window: MainWindow, path: Path) -> None:
    with qtbot.waitSignal(window.opened, timeout=20000):
        window.open_project(path, start_scheduler=False)
    shortcut = [a for a in window.findChildren(QAction) if a.shortcut() == QKeySequence("Ctrl+D")]
    assert [a.text() for a in shortcut] == ["&Dashboard"]  # View → Dashboard, Ctrl+D
    shortcut[0].trigger()
    assert window.tabs.currentWidget() is window.dashboard
    qtbot.waitUntil(
        lambda: (
            len(window.dashboard.tiles) == len(window.project.metrics)
            and all(t.data is not None for t in window.dashboard.tiles)
            and window.bridge.pending == 0
        ),
        timeout=20000,
    )  # no second load on its way


def test_without_a_dashboard_table_there_is_one_live_chart_per_metric(qtbot, window, shop):
    open_dashboard(qtbot, window, shop)
    dashboard = window.dashboard
    daily, weekly = dashboard.tiles
    assert (daily.chart.metric, weekly.chart.metric) == ("daily_orders", "weekly_orders")
    assert daily.data.drawing is not None and daily.region.isVisible()
    assert daily.data.provisional is not None  # the lookback of the last pull, shaded
    runs_before = {run for run, _label in daily.data.runs}
    weekly_before = weekly.data

    # a run of daily_orders reloads its chart, and only its chart
    project, store = window.project, window.store
    with qtbot.waitSignal(
        dashboard.loaded, timeout=20000, check_params_cb=lambda metric: metric == "daily_orders"
    ):
        run = run_pull(project, "daily_orders", store, as_of=ts("2026-10-30T13:00"), observer=window.bridge)
    assert run.id not in runs_before
    assert run.id in {r for r, _label in daily.data.runs}
    assert weekly.data is weekly_before


def test_charts_added_and_removed_are_saved_in_the_project_file(qtbot, window, shop):
    open_dashboard(qtbot, window, shop)
    chart, dashboard = window.chart, window.dashboard
    window.select_metric("daily_orders")
    qtbot.waitUntil(
        lambda: (
            chart._data is not None
            and chart._data.metric == "daily_orders"
            and chart._data.drawing is not None
        ),
        timeout=20000,
    )
    fr = chart.series_box.findData('{"country": "FR"}')
    measure = chart.measure_box.currentText()
    chart.series_box.setCurrentIndex(fr)
    qtbot.waitUntil(lambda: chart._data.dims == {"country": "FR"}, timeout=20000)

    dashboard.add_shown.trigger()
    expected = [
        DashboardChart("daily_orders"),
        DashboardChart("weekly_orders"),
        DashboardChart("daily_orders", measure, {"country": "FR"}),
    ]
    assert list(load_project(shop).dashboard.charts) == expected
    qtbot.waitUntil(
        lambda: len(dashboard.tiles) == 3 and all(t.data is not None for t in dashboard.tiles), timeout=20000
    )
    assert dashboard.tiles[2].data.dims == {"country": "FR"}

    dashboard.columns_box.setValue(3)
    assert load_project(shop).dashboard.columns == 3
    dashboard.tiles[0].remove_requested.emit()
    assert list(load_project(shop).dashboard.charts) == expected[1:]
    qtbot.waitUntil(lambda: [t.chart for t in dashboard.tiles] == expected[1:], timeout=20000)


@pytest.mark.qt_log_ignore("propagateSizeHints")  # the offscreen platform says so
def test_clicking_a_chart_opens_it_full_size_in_the_chart_tab(qtbot, window, shop):
    path = shop
    path.write_text(
        path.read_text() + '\n[dashboard]\ncharts = [{ metric = "weekly_orders" },'
        ' { metric = "daily_orders", measure = "revenue", series = '
        '{ country = "FR" } }]\n'
    )
    open_dashboard(qtbot, window, path)
    tile = window.dashboard.tiles[1]
    assert (tile.data.measure, tile.data.dims) == ("revenue", {"country": "FR"})
    window.show()
    qtbot.waitExposed(tile.plot)
    qtbot.mouseClick(tile.plot.viewport(), Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is window.chart
    assert window.selected_metric_name() == "daily_orders"
    chart = window.chart
    qtbot.waitUntil(
        lambda: (
            chart._data is not None
            and chart._data.metric == "daily_orders"
            and chart._data.dims == {"country": "FR"}
        ),
        timeout=20000,
    )
    assert chart._data.measure == "revenue"
    assert chart.series_box.currentData() == '{"country": "FR"}'


def test_a_hidden_dashboard_makes_and_loads_nothing_until_it_is_shown(qtbot, window, shop):
    with qtbot.waitSignal(window.opened, timeout=20000):
        window.open_project(shop, start_scheduler=False)
    qtbot.waitUntil(lambda: window.bridge.pending == 0, timeout=20000)
    dashboard = window.dashboard
    assert dashboard.tiles == []  # not even its small charts are made: they cost the open
    window.tabs.setCurrentWidget(dashboard)  # shown: made and loaded now
    qtbot.waitUntil(
        lambda: (
            len(dashboard.tiles) == len(window.project.metrics)
            and all(tile.data is not None for tile in dashboard.tiles)
        ),
        timeout=20000,
    )
