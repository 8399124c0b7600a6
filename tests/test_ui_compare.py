"""The comparison chart: several series of a measure in their own colours, with their revision
markers and the provisional region; a legend that hides and shows them; stacked only where the
measure is additive, the stack's top being the sum of the series at every bucket."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence

import lookback_gui.ui  # noqa: F401
from lookback_gui.core.insight.additivity import Additivity
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.chart_model import MAX_MARKERS, ChartData, epoch_seconds, prepare_drawing
from lookback_gui.ui.compare import CompareWidget
from lookback_gui.ui.compare_series import PALETTE, Comparison, load_comparison, stacked_levels
from lookback_gui.ui.main_window import MainWindow
from tests.helpers import DAILY_SQL, make_orders, project_text, ts

ROWS = [  # GB has no order on 10-26 and 10-28: its series lacks those buckets
    (1, ts("2026-10-25T10:00"), "DE", 10.0),
    (2, ts("2026-10-25T11:00"), "FR", 4.0),
    (3, ts("2026-10-25T12:00"), "GB", 3.0),
    (4, ts("2026-10-26T10:00"), "DE", 7.0),
    (5, ts("2026-10-26T10:00"), "DE", 2.0),
    (6, ts("2026-10-26T11:00"), "FR", 5.0),
    (7, ts("2026-10-27T09:00"), "GB", 8.0),
    (8, ts("2026-10-28T10:00"), "DE", 1.0),
    (9, ts("2026-10-28T10:00"), "FR", 6.0),
    (10, ts("2026-10-29T10:00"), "GB", 2.0),
    (11, ts("2026-10-29T10:00"), "DE", 9.0),
    (14, ts("2026-10-30T08:00"), "DE", 1.0),
]
LATE = [  # arrive after the first pull: DE's and FR's 10-28 are revised
    (12, ts("2026-10-28T15:00"), "DE", 4.0),
    (13, ts("2026-10-28T16:00"), "FR", 1.0),
]
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")  # the offscreen platform says so

AVERAGES = '''
[metrics.typical_basket]
source = "shop"
grain = "day"
lookback = "7d"
retries = 0
sql = """
SELECT date_trunc('day', ordered_at) AS bucket, country, avg(amount) AS basket
FROM orders WHERE ordered_at >= $window_start AND ordered_at < $window_end GROUP BY ALL
"""
'''


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """Three countries, pulled twice: the second pull revises DE's and FR's 10-28."""
    make_orders(tmp_path / "shop.duckdb", ROWS)
    path = tmp_path / "lookback.toml"
    # what was known at the pull's as-of: its versions are known then, and 10-30 is partial
    path.write_text(
        project_text(sql=DAILY_SQL.replace("GROUP BY", "AND ordered_at <= $as_of GROUP BY")) + AVERAGES
    )
    project = load_project(path)
    with Store(project.store_path) as store:
        for metric in project.metrics:
            run_pull(project, metric, store, as_of=ts("2026-10-30T12:00"))
        make_orders(tmp_path / "shop.duckdb", ROWS + LATE)
        run_pull(project, "daily_orders", store, as_of=ts("2026-10-30T13:00"))
    return path


@pytest.fixture
def bridge(qtbot):
    bridge = Bridge()
    yield bridge
    bridge.shutdown()


@pytest.fixture
def compare(qtbot, bridge, shop):
    """A comparison widget, shown, over the shop's store (open for the test)."""
    project = load_project(shop)
    store = Store(project.store_path)
    widget = CompareWidget(bridge)
    qtbot.addWidget(widget)
    widget.resize(1000, 600)
    widget.project, widget.store = project, store  # for the tests
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    store.close()


def show(qtbot, widget: CompareWidget, metric: str, measure: str | None = None) -> None:
    with qtbot.waitSignal(widget.loaded, timeout=20000):
        widget.set_metric(widget.store, widget.project.metrics[metric])
    if measure is not None and widget.measure_box.currentText() != measure:
        with qtbot.waitSignal(widget.loaded, timeout=20000):
            widget.measure_box.setCurrentText(measure)


def current_values(store: Store, measure: str, country: str) -> dict[float, float]:
    a = store.chart_data("daily_orders", measure, {"country": country})
    return dict(zip(epoch_seconds(a["bucket"]).tolist(), a["value"].tolist(), strict=True))


def test_several_series_are_drawn_each_in_its_own_colour_with_its_marks(qtbot, compare):
    show(qtbot, compare, "daily_orders", "orders")
    data = compare._data
    assert data.measure == "orders" and data.additivity.additive
    countries = [layer.data.dims["country"] for layer in compare.layers]
    assert sorted(countries) == ["DE", "FR", "GB"]  # the largest, all three here
    colours = [layer.pen_colour().upper() for layer in compare.layers]
    assert colours == list(PALETTE[:3])  # three pens, three colours of the palette
    for layer in compare.layers:
        country = layer.data.dims["country"]
        xs, ys = layer.curve.getOriginalDataset()
        assert dict(zip(xs.tolist(), ys.tolist(), strict=True)) == current_values(
            compare.store, "orders", country
        )
        revised = layer.revised.getData()[0].tolist()
        expected = [float(epoch_seconds(np.array([np.datetime64("2026-10-28")]))[0])]
        assert revised == (expected if country in ("DE", "FR") else [])
        assert layer.revised.opts["brush"].color().name().upper() == layer.colour
        if country == "DE":  # a marker's tooltip: the bucket of its series, and its history
            tip = layer.revised.opts["tip"](0, 0, layer.revised.data["data"][0])
            assert tip.startswith("2026-10-28  (country=DE, orders)")
            assert "first reported: 1" in tip and "value: 2" in tip
        # DE's 10-30 was still filling when pulled
        assert (len(layer.partial.getData()[0]) == 1) is (country == "DE")
    assert compare.region.isVisible() and data.provisional is not None
    # one legend entry per series, named by it, however often the comparison reloads
    for _ in range(3):
        with qtbot.waitSignal(compare.loaded, timeout=20000):
            compare.metric_changed("daily_orders", None)
    assert sorted(label.text for _s, label in compare.legend.items) == [
        "country=DE",
        "country=FR",
        "country=GB",
    ]


def click_legend_entry(qtbot, compare: CompareWidget, text: str) -> None:
    sample = next(s for s, label in compare.legend.items if label.text == text)
    view = compare.plot
    centre = view.mapFromScene(sample.mapToScene(sample.boundingRect().center()))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(centre))


def test_a_legend_entry_hides_its_series_and_shows_it_again(qtbot, compare):
    show(qtbot, compare, "daily_orders", "orders")
    fr = next(layer for layer in compare.layers if layer.data.dims == {"country": "FR"})
    others = [layer for layer in compare.layers if layer is not fr]
    click_legend_entry(qtbot, compare, "country=FR")
    assert not any(item.isVisible() for item in fr.items)
    assert not compare.is_shown({"country": "FR"})
    assert all(layer.curve.isVisible() and layer.revised.isVisible() for layer in others)
    # a reload after a run keeps it hidden
    with qtbot.waitSignal(compare.loaded, timeout=20000):
        compare.metric_changed("daily_orders", None)
    fr = next(layer for layer in compare.layers if layer.data.dims == {"country": "FR"})
    assert not fr.curve.isVisible()
    click_legend_entry(qtbot, compare, "country=FR")
    assert fr.curve.isVisible() and fr.revised.isVisible() and compare.is_shown(fr.data.dims)


def test_stacked_the_top_of_each_band_is_the_sum_of_the_series_up_to_it(qtbot, compare):
    show(qtbot, compare, "daily_orders", "orders")
    assert compare.stacked_box.isEnabled()
    compare.stacked_box.setChecked(True)
    store = compare.store
    values = {
        layer.data.dims["country"]: current_values(store, "orders", layer.data.dims["country"])
        for layer in compare.layers
    }
    buckets = sorted(set().union(*values.values()))
    running = dict.fromkeys(buckets, 0.0)
    for layer in compare.layers:  # in stacking order: each band ends on the running sum
        for bucket in buckets:
            running[bucket] += values[layer.data.dims["country"]].get(bucket, 0.0)
        xs, ys = layer.curve.getOriginalDataset()
        assert xs.tolist() == buckets
        assert ys.tolist() == [running[b] for b in buckets]
        assert layer.band.isVisible()
    total = {b: sum(v.get(b, 0.0) for v in values.values()) for b in buckets}
    assert running == total  # the top line: the sum of every series at each bucket
    # a series hidden from the legend leaves the stack: the top is the sum of those shown
    click_legend_entry(qtbot, compare, "country=DE")
    top = compare.layers[-1] if compare.layers[-1].data.dims != {"country": "DE"} else compare.layers[-2]
    xs, ys = top.curve.getOriginalDataset()
    shown = [v for c, v in values.items() if c != "DE"]
    assert ys.tolist() == [sum(v.get(b, 0.0) for v in shown) for b in xs.tolist()]


def test_a_measure_that_is_not_additive_cannot_be_stacked(qtbot, compare):
    show(qtbot, compare, "typical_basket")
    assert compare._data.measure == "basket" and not compare._data.additivity.additive
    assert not compare.stacked_box.isEnabled()
    tip = compare.stacked_box.toolTip()
    assert "basket cannot be stacked" in tip and "avg(...)" in tip and "additive unless" in tip
    compare.stacked_box.setChecked(True)  # even if it were ticked, nothing is summed
    for layer in compare.layers:
        xs, ys = layer.curve.getOriginalDataset()
        a = compare.store.chart_data("typical_basket", "basket", layer.data.dims)
        assert ys.tolist() == a["value"].tolist() and not layer.band.isVisible()


def test_the_series_are_picked_in_the_list_or_as_the_largest(qtbot, compare):
    show(qtbot, compare, "daily_orders", "orders")
    compare.top_box.setValue(1)
    with qtbot.waitSignal(compare.loaded, timeout=20000):
        compare.top_button.click()
    assert [layer.data.dims for layer in compare.layers] == [{"country": "DE"}]  # the largest
    gb = next(
        i
        for i in range(compare.series_list.count())
        if compare.series_list.item(i).data(Qt.ItemDataRole.UserRole) == {"country": "GB"}
    )
    with qtbot.waitSignal(compare.loaded, timeout=20000):
        compare.series_list.item(gb).setCheckState(Qt.CheckState.Checked)
    assert [layer.data.dims for layer in compare.layers] == [{"country": "DE"}, {"country": "GB"}]


def test_stacked_levels_add_up_series_with_different_buckets(compare):
    config = compare.project.metrics["daily_orders"]
    data = load_comparison(compare.store, config, "revenue", None)
    x, levels = stacked_levels(data.series)
    total = np.zeros(len(x))
    for series in data.series:
        at = np.searchsorted(x, series.drawing.x)
        total[at] += series.arrays["value"]
    assert np.array_equal(levels[-1], total)


def test_the_window_compares_the_selected_metric_and_a_run_reloads_it(qtbot, tmp_path, shop):
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()  # the comparison loads while it is on show
    try:
        with qtbot.waitSignal(window.opened, timeout=20000):
            window.open_project(shop, start_scheduler=False)
        window.select_metric("daily_orders")
        qtbot.waitUntil(lambda: window.chart._data is not None, timeout=20000)
        window.chart.measure_box.setCurrentText("orders")  # the measure the Chart tab shows
        action = [a for a in window.findChildren(QAction) if a.shortcut() == QKeySequence("Ctrl+Shift+C")]
        with qtbot.waitSignal(window.compare.loaded, timeout=20000):
            action[0].trigger()
        assert window.tabs.currentWidget() is window.compare
        assert window.compare._data.measure == "orders"
        before = window.compare._data
        with qtbot.waitSignal(window.compare.loaded, timeout=20000):
            run_pull(
                window.project,
                "daily_orders",
                window.store,
                as_of=ts("2026-10-30T14:00"),
                observer=window.bridge,
            )
        assert window.compare._data is not before
        assert window.compare._data.metric == "daily_orders"
    finally:
        window.close_session(wait=True)


def test_the_comparison_shows_the_time_the_chart_tab_chose(qtbot, tmp_path, shop):
    """*As known after* run 1 on the Chart tab: the Compare tab shows every series as known
    after run 1 too, and says so; back to the latest, the latest."""
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    try:
        with qtbot.waitSignal(window.opened, timeout=20000):
            window.open_project(shop, start_scheduler=False)
        window.select_metric("daily_orders")
        chart = window.chart
        qtbot.waitUntil(lambda: chart._data is not None and chart.as_of_box.findData(1) >= 0, timeout=20000)
        with qtbot.waitSignal(chart.loaded, timeout=20000, check_params_cb=lambda d: d.as_of_run == 1):
            chart.as_of_box.setCurrentIndex(chart.as_of_box.findData(1))
        with qtbot.waitSignal(window.compare.loaded, timeout=20000):
            window.tabs.setCurrentWidget(window.compare)
        data = window.compare._data
        assert data.as_of_run == 1 and "as known after run 1" in window.compare.status.text()
        store = window.store
        for layer in window.compare.layers:
            then = store.chart_data("daily_orders", data.measure, layer.data.dims, 1)
            assert list(layer.line[1]) == then["value"].tolist()
        de = next(layer for layer in window.compare.layers if layer.data.dims["country"] == "DE")
        now = store.chart_data("daily_orders", data.measure, {"country": "DE"})
        assert list(de.line[1]) != now["value"].tolist()  # DE's 10-28 was revised by run 3

        window.tabs.setCurrentIndex(0)  # the Chart tab
        with qtbot.waitSignal(chart.loaded, timeout=20000, check_params_cb=lambda d: d.as_of_run is None):
            chart.as_of_box.setCurrentIndex(0)  # latest
        with qtbot.waitSignal(window.compare.loaded, timeout=20000):
            window.tabs.setCurrentWidget(window.compare)
        assert window.compare._data.as_of_run is None
        de = next(layer for layer in window.compare.layers if layer.data.dims["country"] == "DE")
        assert list(de.line[1]) == now["value"].tolist()
    finally:
        window.close_session(wait=True)


def test_each_compared_series_shows_its_nowcast_and_none_when_stacked(qtbot, bridge, tmp_path):
    from datetime import UTC, datetime, timedelta

    from lookback_gui.core.demo import history_plan, write_demo
    from lookback_gui.core.pull.seeding import seed
    from lookback_gui.ui.chart_model import series_nowcast

    now = (datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)).replace(microsecond=0)
    project = load_project(write_demo(tmp_path / "demo", now=now))
    store = Store(project.store_path)
    try:
        seed(project, store, history_plan(project, now, days=20))
        config = project.metrics["daily_orders"]
        widget = CompareWidget(bridge)
        qtbot.addWidget(widget)
        widget.resize(1000, 600)
        widget.settling = lambda _name: 10
        widget.show()
        qtbot.waitExposed(widget)
        with qtbot.waitSignal(widget.loaded, timeout=30000):
            widget.set_metric(store, config)
        if widget.measure_box.currentText() != "orders":
            with qtbot.waitSignal(widget.loaded, timeout=30000):
                widget.measure_box.setCurrentText("orders")
        assert len(widget.layers) == 4 and widget._data.has_nowcast
        for layer in widget.layers:
            expected = series_nowcast(store, config, "orders", layer.data.dims)
            assert expected and layer.data.nowcast == expected
            xs, ys = layer.expected.getData()
            assert list(ys[-len(expected) :]) == [expected[x][0] for x in sorted(expected)]
            assert list(xs[-len(expected) :]) == sorted(expected)
            assert layer.expected.opts["pen"].color().name() == layer.pen_colour()
            low, high = layer.expected_low.getData()[1], layer.expected_high.getData()[1]
            assert (low <= ys).all() and (ys <= high).all()
        assert "nowcast" in widget.status.text()
        # the view holds the nowcast's intervals
        top = max(float(layer.expected_high.getData()[1].max()) for layer in widget.layers)
        assert widget.plot.getViewBox().viewRange()[1][1] >= top
        widget.stacked_box.setChecked(True)
        for layer in widget.layers:
            xs = layer.expected.getData()[0]
            assert xs is None or len(xs) == 0
        assert "the nowcast is drawn overlaid only" in widget.status.text()
    finally:
        store.close()


def long_series(country: str, buckets: int) -> ChartData:
    """A minute series of ``buckets`` buckets, every one of them revised once."""
    bucket = np.datetime64("2026-01-01T00:00") + np.arange(buckets).astype("timedelta64[m]")
    value = np.sin(np.arange(buckets) / 50.0) * 100 + 200
    every = np.arange(buckets)
    arrays = {
        "bucket": bucket,
        "value": value,
        "marked": every,
        "first_value": value - 1,
        "versions": np.full(buckets, 2),
        "last_run": np.full(buckets, 2),
        "removed": np.zeros(buckets, bool),
        "partial": np.zeros(buckets, bool),
    }
    return ChartData("m", "orders", {"country": country}, arrays, [], drawing=prepare_drawing(arrays))


def test_markers_of_long_series_are_thinned_to_the_view(qtbot, compare):
    compare._metric = compare.project.metrics["daily_orders"]  # drawn as it, without a load
    series = (long_series("DE", 200_000), long_series("FR", 200_000))
    compare._show(Comparison("daily_orders", "orders", series, [], Additivity(True)))
    width = compare.plot.getViewBox().width()
    for layer in compare.layers:  # the whole of each: no more than the screen can show
        assert 0 < len(layer.revised.getData()[0]) <= MAX_MARKERS
        assert len(layer.curve.getOriginalDataset()[0]) <= 3 * width  # 2 a column, and a tail
    compare.stacked_box.setChecked(True)
    for layer in compare.layers:  # a band: a bucket per pixel column, its top on the sum
        xs, ys = layer.curve.getOriginalDataset()
        assert 0 < len(xs) <= width + 4
    top_x, top_y = compare.layers[-1].curve.getOriginalDataset()
    at = np.searchsorted(series[0].drawing.x, top_x)
    assert np.allclose(top_y, sum(s.arrays["value"][at] for s in series))
    compare.stacked_box.setChecked(False)
    x = series[0].drawing.x
    compare.plot.getViewBox().setRange(xRange=(x[1000], x[1100]), padding=0)
    qtbot.waitUntil(
        lambda: all(layer.revised.getData()[0].max() <= x[1100] for layer in compare.layers), timeout=10000
    )
    for layer in compare.layers:  # zoomed in: every one in view
        shown = layer.revised.getData()[0]
        assert set(x[1000:1101].tolist()) <= set(shown.tolist()) and len(shown) <= 110
