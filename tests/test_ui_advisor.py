"""The Advisor tab's pages: policies tried on the history, the nowcast's backtest, the triangle."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6.QtWidgets")

import lookback_gui.ui  # noqa: F401
from lookback_gui.ui.advisor_tab import PolicyModel
from tests.test_advisor import build
from tests.test_ui import open_and_wait, settings, window  # noqa: F401  (fixtures)


def test_the_advisor_pages_show_the_policies_the_nowcast_and_the_triangle(
    qtbot,
    qtmodeltester,
    window,  # noqa: F811
    tmp_path,
):
    project, _events = build(
        tmp_path,
        (0.80, 0.199, 0.001),
        (3, 9.5),
        7,
        per_day=1000,
        lookback=7,
        audit_every=7,
        audit_factor=2,
        tail_from=8.5,
    )
    open_and_wait(qtbot, window, project.path, start_scheduler=False)
    advisor = window.advisor
    with qtbot.waitSignal(advisor.loaded, timeout=30000, check_params_cb=lambda a: a.enough_history):
        window.tabs.setCurrentWidget(advisor)
    advice = advisor.advice
    rec = advice.recommendation
    # the sentence names the tail; Apply would also add the audit that catches it
    assert "arrives after" in advisor.sentence.text()
    assert f'audit_every = "{rec["audit_every"]}"' in advisor.sentence.text()

    # Policies: one row per candidate, the recommended one selected and in bold
    model = advisor.policy_model
    qtmodeltester.check(model)
    assert model.rowCount() == len(advice.candidates)
    selected = advisor.policy_view.currentIndex()
    assert model.rows[selected.row()]["policy"] == rec["policy"]
    from PySide6.QtCore import QPointF, Qt

    assert model.data(model.index(selected.row(), 0), Qt.ItemDataRole.FontRole).bold()
    current = next(r for r in range(model.rowCount()) if model.rows[r]["current"])
    assert model.data(model.index(current, 0)).endswith("(current)")
    names = [label.text for _sample, label in advisor.errors_plot.getPlotItem().legend.items]
    assert any(n.startswith("current: ") for n in names)
    assert any(n.startswith("recommended: ") for n in names)
    advisor.policy_view.selectRow(0)  # another policy joins the chart
    names = [label.text for _sample, label in advisor.errors_plot.getPlotItem().legend.items]
    assert f"selected: {model.rows[0]['policy']}" in names

    # Nowcast: the backtest's errors by age and how often the interval held
    backtest = advice.nowcast_backtest
    # the coverage of the intervals the nowcast shows (widened by the history), and Mack's
    assert (
        f"held the settled value {backtest['calibrated_coverage'] * 100:.2f} %"
        in advisor.nowcast_label.text()
    )
    curves = advisor.nowcast_plot.getPlotItem().listDataItems()
    assert [c.name() for c in curves] == ["current value (raw)", "nowcast"]
    assert list(curves[1].getData()[1]) == [b["nowcast_error_pct"] for b in backtest["by_age"]]

    # Triangle: bucket × age, the share known; the future blank
    triangle = advisor.triangle
    image = advisor.triangle_image.image
    assert image.shape == triangle.share.shape
    assert image.shape[0] >= 80  # the buckets watched from their start
    assert np.isnan(image[-1, 1:]).all() and not np.isnan(image[0]).any()
    assert np.nanmax(image) == pytest.approx(100)
    assert image[0, 0] < 90 < image[0, 5]  # most of a day arrives after its first pull
    # buckets not settled yet are unknown (grey, with a tooltip), not ~100 % at age 0
    unsettled = ~triangle.settled
    assert unsettled.any() and triangle.settled.any()
    assert np.isnan(image[unsettled]).all()
    grey = advisor.triangle_unknown.image
    known = ~np.isnan(triangle.share)
    assert (grey[..., 3][unsettled[:, None] & known] > 0).all()
    assert (grey[..., 3][~unsettled[:, None] | ~known] == 0).all()
    young = int(np.flatnonzero(unsettled)[0])
    scene = advisor.triangle_plot.getPlotItem().vb.mapViewToScene(QPointF(0, young))
    advisor._triangle_hover(scene)
    assert "not settled yet" in advisor.triangle_plot.toolTip()

    # one format for shares: two decimals in every share column
    import re

    for r in range(model.rowCount()):
        for c in (1, 2, 3):
            assert re.fullmatch(r"(\d+\.\d\d %|–)", model.data(model.index(r, c))), (r, c)
    # the last header is not cut: the column is at least as wide as its text
    header = advisor.policy_view.horizontalHeader()
    last = model.columnCount() - 1
    text = model.headerData(last, Qt.Orientation.Horizontal)
    assert header.sectionSize(last) >= header.fontMetrics().horizontalAdvance(text)

    # Apply writes the lookback and the audit
    asked: list[str] = []
    advisor.confirm = lambda question: asked.append(question) is None
    with qtbot.waitSignal(advisor.applied, timeout=5000):
        advisor.apply_button.click()
    assert f"Audit every {rec['audit_every']} over {rec['audit_factor']} times" in asked[0]
    saved = project.path.read_text()
    assert f'lookback = "{rec["lookback"]}"' in saved
    assert f"audit_factor = {rec['audit_factor']}" in saved


def test_the_policy_model_is_empty_before_advice(qtmodeltester):
    model = PolicyModel()
    qtmodeltester.check(model)
    assert model.rowCount() == 0


def test_the_chart_draws_the_nowcast_of_the_provisional_buckets(qtbot, window, tmp_path):  # noqa: F811
    from lookback_gui.core.insight.nowcast import nowcast
    from lookback_gui.core.store import Store

    project, _events = build(tmp_path, (0.70, 0.25, 0.05), (2, 10), 7)
    with Store(project.store_path) as store:
        expected = nowcast(store, project.metrics["daily_orders"])
    open_and_wait(qtbot, window, project.path, start_scheduler=False)
    chart = window.chart
    with qtbot.waitSignal(chart.loaded, timeout=30000, check_params_cb=lambda d: bool(d.nowcast)):
        window.select_metric("daily_orders")
    data = chart._data
    assert len(data.nowcast) == len(expected.rows) >= 8  # one series, one measure
    xs, ys = chart.nowcast_curve.getData()
    # from the newest settled bucket's value through each provisional bucket's expected value
    assert list(ys[1:]) == [r.expected for r in expected.rows]
    assert xs[0] < min(data.nowcast)
    low, high = chart.nowcast_low.getData()[1], chart.nowcast_high.getData()[1]
    assert (low[1:] <= ys[1:]).all() and (ys[1:] <= high[1:]).all()
    assert "expected (nowcast)" in [label.text for _s, label in chart.legend.items]
    last = expected.rows[-1]
    from lookback_gui.ui.chart import expected_text

    assert expected_text(41200, 39800, 42900) == "expected to settle at 41,200 (39,800–42,900)"
    assert (
        expected_text(36765.4, 34390.28, 41341.38) == "expected to settle at 36,800 (34,400–41,300)"
    )  # no more digits than an estimate has
    tip = chart._nowcast_tip(0, 0, max(data.nowcast))
    assert tip.endswith(expected_text(last.expected, last.low, last.high))
    marker = [t for t in chart.marker_tips() if "expected to settle at" in t]
    assert marker, chart.marker_tips()


def test_a_threshold_judged_on_the_nowcast_shows_its_bound_and_the_expected_value(qtbot, window, tmp_path):  # noqa: F811
    import pyqtgraph as pg

    from lookback_gui.core.insight.nowcast import nowcast
    from lookback_gui.core.numbers import fmt_number as fmt
    from lookback_gui.core.store import Store
    from lookback_gui.ui.chart import expected_text

    project, _events = build(tmp_path, (0.70, 0.25, 0.05), (2, 10), 7)
    with Store(project.store_path) as store:
        expected = nowcast(store, project.metrics["daily_orders"])
        latest, _values = store.latest_values("daily_orders", "events", {})
    judged = next(r for r in expected.rows if r.bucket == latest and r.measure == "events")
    assert judged.high is not None
    bound = round(judged.high) + 5  # the whole interval lies below it: the rule fires
    with project.path.open("a") as handle:
        handle.write(
            f'\n[[metrics.daily_orders.alerts]]\nkind = "threshold"\nname = "few events"'
            f'\nmeasure = "events"\nbelow = {bound}\njudge = "expected"\n'
            '\n[[metrics.daily_orders.alerts]]\nkind = "threshold"\nmeasure = "events"'
            '\nabove = 1\njudge = "latest"\n'
        )
    from datetime import datetime

    from lookback_gui.core.insight.alerts import evaluate_alerts
    from lookback_gui.core.project import load_project

    config = load_project(project.path).metrics["daily_orders"]
    with Store(project.store_path) as store:  # the alert itself says what the chart shows
        fired = evaluate_alerts(config, store, datetime.now(), kinds=("threshold",), commands=False)
    few = [a for a in fired if a.rule == "few events"]
    assert [a.state for a in few] == ["firing"]
    assert f"expected to settle at {fmt(judged.expected)}" in few[0].message
    open_and_wait(qtbot, window, project.path, start_scheduler=False)
    chart = window.chart
    with qtbot.waitSignal(chart.loaded, timeout=30000, check_params_cb=lambda d: bool(d.nowcast)):
        window.select_metric("daily_orders")
    marks = chart._data.thresholds
    # the rule judged on the latest value has no mark of this kind
    assert [(m.rule, m.side, m.bound) for m in marks] == [("few events", "below", bound)]
    mark = marks[0]
    assert mark.firing and mark.expected == (judged.expected, judged.low, judged.high)
    assert expected_text(judged.expected, judged.low, judged.high) in mark.text
    items = chart.plot.getPlotItem().items
    lines = [i for i in items if isinstance(i, pg.InfiniteLine) and i.angle == 0]
    assert [line.value() for line in lines] == [bound]
    assert "few events: below" in lines[0].label.toPlainText()
    bars = [i for i in items if isinstance(i, pg.ErrorBarItem)]
    assert len(bars) == 1
    opts = bars[0].opts
    assert list(opts["x"]) == [mark.x] and list(opts["y"]) == [judged.expected]
    assert opts["y"][0] - opts["bottom"][0] == pytest.approx(judged.low)
    assert opts["y"][0] + opts["top"][0] == pytest.approx(judged.high)
    # the view holds the bound
    low, high = chart.plot.getViewBox().viewRange()[1]
    assert low <= bound <= high


def test_the_metric_editor_tries_its_alert_rules_on_the_history(qtbot, window, tmp_path):  # noqa: F811
    from datetime import timedelta

    from lookback_gui.core.insight.alerts import try_rule
    from lookback_gui.core.pull import run_pull
    from lookback_gui.core.store import Store
    from lookback_gui.ui.editors import MetricEditor
    from tests.test_advisor import START
    from tests.test_advisor_history import RULES, small_project

    project = small_project(tmp_path, RULES)
    with Store(project.store_path) as store:
        for day in range(20):
            run_pull(project, "daily_orders", store, as_of=START + timedelta(days=day, hours=12))
    open_and_wait(qtbot, window, project.path, start_scheduler=False)
    metric = window.project.metrics["daily_orders"]
    editor = MetricEditor(window.project, window.bridge, metric, window, store=window.store)
    qtbot.addWidget(editor)
    assert editor.try_button.isEnabled()
    editor.try_button.click()
    qtbot.waitUntil(lambda: "would have fired" in editor.try_info.text(), timeout=20000)
    expected = [try_rule(metric, window.store, rule) for rule in metric.alerts]
    lines = editor.try_info.text().splitlines()
    assert [line.split(": would")[0] for line in lines] == ["threshold#1", "old days restated"]
    for line, trial in zip(lines, expected, strict=True):
        assert f"would have fired {trial['firings']} time(s) over 20 pull(s)" in line
    assert expected[0]["runs_firing"] < 20
    # the rules as edited, not as saved: a threshold every day stays below holds after every
    # pull, one episode that never resolves
    editor.rules.setPlainText(editor.rules.toPlainText().replace("below = 40", "below = 1000"))
    editor.try_button.click()
    qtbot.waitUntil(
        lambda: editor.try_info.text().startswith("threshold#1: would have fired 1 time(s)"), timeout=20000
    )
    assert "below = 40" in project.path.read_text()  # nothing was saved


def test_settling_curves_that_lie_on_each_other_are_told_apart(qtbot, window):  # noqa: F811
    """Orders and revenue of the demo settle alike: before, the second curve hid under the
    first; now it is drawn as hollow rings around it and named so."""
    from lookback_gui.core.insight.advisor import Advice

    curve = [
        {"age_buckets": a, "share_present": {"orders": s, "revenue": s + 0.1, "refunds": s / 2}}
        for a, s in enumerate([40.0, 80.0, 95.0, 100.0])
    ]
    advice = Advice(
        metric="m",
        grain="day",
        lookback_buckets=7,
        revisions_observed=100,
        runs_observed=30,
        enough_history=True,
        message="a lookback of 4 day",
        settling_curve=curve,
    )
    advisor = window.advisor
    advisor._show(advice)
    items = advisor.plot.getPlotItem().listDataItems()
    names = [i.name() for i in items]
    assert names == ["orders", "refunds", "revenue (on the curve of orders)"]
    rings = items[2].opts
    assert rings["symbolBrush"] is None and rings["symbolSize"] > items[0].opts["symbolSize"]
