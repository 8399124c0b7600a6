"""What the chart says about itself: axes, ticks, legend and marks."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import numpy as np
import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QSettings

import lookback_gui.ui  # noqa: F401
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store
from lookback_gui.ui.main_window import MainWindow
from tests.helpers import make_orders, project_text
from tests.test_ui import open_and_wait


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.resize(1200, 800)
    yield win
    win.close_session(wait=True)


def three_days_revised_today(tmp_path):
    """Orders on the last three days; today's bucket (still partial) revised by a second pull."""
    today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    make_orders(
        tmp_path / "shop.duckdb",
        [
            (1, today - timedelta(days=2), "DE", 1.0),
            (2, today - timedelta(days=1), "DE", 2.0),
            (3, today, "DE", 3.0),
        ],
    )
    path = tmp_path / "lookback.toml"
    path.write_text(project_text(lookback='"3d"'))
    project = load_project(path)
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store)
        con = duckdb.connect(str(tmp_path / "shop.duckdb"))
        con.execute("INSERT INTO orders VALUES (4, current_date::TIMESTAMP, 'DE', 4.0)")
        con.close()
        run_pull(project, "daily_orders", store)
    return path


def drawn(qtbot, window):
    chart = window.chart
    qtbot.waitUntil(lambda: chart._data is not None and chart._data.drawing is not None, timeout=10000)
    qtbot.waitUntil(lambda: window.bridge.pending == 0 and not chart._fit_later.isActive(), timeout=10000)
    return chart


def test_a_daily_chart_has_day_ticks_with_the_year_and_a_labelled_value_axis(qtbot, window, tmp_path):
    open_and_wait(qtbot, window, three_days_revised_today(tmp_path), start_scheduler=False)
    chart = drawn(qtbot, window)
    chart.plot.grab()  # the axis learns its font when painted
    (x0, x1), _ = chart.plot.getViewBox().viewRange()
    levels = chart.axis.tickValues(x0, x1, chart.axis.width() or 1000)
    assert levels and all(spacing >= 86400 * 0.99 for spacing, _ in levels)
    labels = [text for spacing, values in levels for text in chart.axis.tickStrings(values, 1, spacing)]
    assert labels and all(":" not in text for text in labels)  # no hours on a daily chart
    assert chart.plot.getAxis("left").labelText == chart._data.measure
    assert chart.plot.getAxis("left").tickStrings([12000.0, 14000.0], 1, 2000) == ["12,000", "14,000"]
    bottom = chart.plot.getAxis("bottom").labelText
    assert "UTC" in bottom and str(datetime.now().year) in bottom


def test_a_bucket_both_partial_and_revised_keeps_both_marks(qtbot, window, tmp_path):
    open_and_wait(qtbot, window, three_days_revised_today(tmp_path), start_scheduler=False)
    chart = drawn(qtbot, window)
    today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    tips_revised = [chart._tip(0, 0, p.data()) for p in chart.revised_points.points()]
    tips_partial = [chart._tip(0, 0, p.data()) for p in chart.partial_points.points()]
    day = f"{today:%Y-%m-%d}"
    assert any(t.startswith(day) for t in tips_revised)
    assert any(t.startswith(day) for t in tips_partial)


def test_first_reported_is_in_the_legend_while_it_is_shown(qtbot, window, tmp_path):
    open_and_wait(qtbot, window, three_days_revised_today(tmp_path), start_scheduler=False)
    chart = drawn(qtbot, window)

    def names() -> list[str]:
        return [label.text for _sample, label in chart.legend.items]

    assert "first reported" not in names() and "revised" in names()
    chart.first_line.setChecked(True)
    assert "first reported" in names()
    chart.first_line.setChecked(False)
    assert "first reported" not in names()


def test_export_png_has_a_title_and_the_legend_and_starts_in_the_project_folder(qtbot, window, tmp_path):
    from PySide6.QtGui import QImage

    open_and_wait(qtbot, window, three_days_revised_today(tmp_path), start_scheduler=False)
    chart = drawn(qtbot, window)
    assert chart.export_folder() == tmp_path
    title = chart.title_text()
    assert title.startswith("daily_orders — ") and "country=DE" in title
    out = tmp_path / "chart.png"
    assert chart.export_image(str(out))
    image = QImage(str(out))
    assert image.height() > chart.plot.height()  # the title and legend lines are added


def test_the_nowcast_has_one_legend_entry_however_often_the_chart_reloads(qtbot, window, tmp_path):
    import dataclasses

    open_and_wait(qtbot, window, three_days_revised_today(tmp_path), start_scheduler=False)
    chart = drawn(qtbot, window)
    x = chart._data.drawing.x
    # the newest bucket expected to settle higher, with an interval around it
    data = dataclasses.replace(chart._data, nowcast={float(x[-1]): (10.0, 8.0, 12.0)})
    for _ in range(50):
        chart._show_nowcast(data)
    names = [label.text for _sample, label in chart.legend.items]
    assert names.count("expected (nowcast)") == 1
    chart._show_nowcast(dataclasses.replace(data, nowcast={}))
    assert "expected (nowcast)" not in [label.text for _sample, label in chart.legend.items]


def test_the_series_totals_are_those_of_the_time_chosen(qtbot, window, tmp_path):
    open_and_wait(qtbot, window, three_days_revised_today(tmp_path), start_scheduler=False)
    chart = drawn(qtbot, window)
    chart.measure_box.setCurrentText("revenue")
    qtbot.waitUntil(lambda: chart._data.measure == "revenue" and window.bridge.pending == 0, timeout=10000)
    assert chart.series_box.currentText().endswith("(10)")  # 1 + 2 + 3 + 4 now
    chart.as_of_box.setCurrentIndex(chart.as_of_box.findData(1))
    qtbot.waitUntil(lambda: chart._data.as_of_run == 1 and window.bridge.pending == 0, timeout=10000)
    assert chart.series_box.currentText().endswith("(6)")  # as known after run 1: 1 + 2 + 3


def test_an_export_is_named_after_the_series_and_time_on_show(qtbot, window, tmp_path):
    open_and_wait(qtbot, window, three_days_revised_today(tmp_path), start_scheduler=False)
    chart = drawn(qtbot, window)
    assert chart.export_name(".csv") == f"daily_orders-{chart._data.measure}-country=DE.csv"
    chart.as_of_box.setCurrentIndex(chart.as_of_box.findData(1))
    qtbot.waitUntil(lambda: chart._data.as_of_run == 1 and window.bridge.pending == 0, timeout=10000)
    assert chart.export_name(".png").endswith("-country=DE-run1.png")


@pytest.mark.parametrize("width", [300, 700, 2400])
def test_day_ticks_keep_the_first_of_the_month_and_never_run_together(qtbot, width):
    from datetime import UTC

    from PySide6.QtGui import QFont, QFontMetrics

    from lookback_gui.ui.chart_axes import LABEL_PX, BucketAxis

    axis = BucketAxis()
    axis.grain_s = 86400
    axis.fontMetrics = QFontMetrics(QFont())  # as the axis learns it when painted
    lo = datetime(2026, 11, 15, tzinfo=UTC).timestamp()
    hi = datetime(2026, 12, 10, tzinfo=UTC).timestamp()
    (level,) = axis.tickValues(lo, hi, width)
    spacing, values = level
    labels = axis.tickStrings(values, 1, spacing)
    assert len(labels) == len(set(labels)) <= width // LABEL_PX
    if width >= 2400:  # room for every day: the 1st of December among them
        assert "Dec 01" in labels


def test_the_empty_chart_shows_the_last_days_not_1970(qtbot, window):
    (x0, x1), _ = window.chart.plot.getViewBox().viewRange()
    assert x1 - x0 >= 6 * 86400 and x1 > datetime(2026, 1, 1).timestamp()


def test_the_whole_series_in_view_holds_its_nowcast_and_its_interval(qtbot, window, tmp_path):
    """All of the series in view (the chart's first frame): the nowcast's dashed line and band
    do not run past the top, though the expected value and its interval lie above every value."""
    import dataclasses

    open_and_wait(qtbot, window, three_days_revised_today(tmp_path), start_scheduler=False)
    chart = drawn(qtbot, window)
    x = chart._data.drawing.x
    top = float(np.nanmax(chart._data.arrays["value"]))
    data = dataclasses.replace(chart._data, nowcast={float(x[-1]): (top * 3, top * 2, top * 5)})
    chart._drawn_key = None  # drawn anew: all of it in view
    chart._show(data)
    low, high = chart.plot.getViewBox().viewRange()[1]
    assert high >= top * 5 and low <= float(np.nanmin(chart._data.arrays["value"]))
