"""The development model's small parts against their references (no store needed)."""

from __future__ import annotations

import numpy as np
import pytest

from lookback_gui.core.insight import development

stats = pytest.importorskip("scipy.stats")


def test_the_t_quantile_is_students():
    df = np.array([1, 2, 3, 5, 10, 29, 30, 31, 45, 100, 10_000])
    assert development.t_quantile(df) == pytest.approx(stats.t.ppf(0.9, df), rel=1e-6)


def test_an_interval_through_a_step_of_one_pair_is_as_wide_as_t_with_one_degree():
    """Mack's sigma of an age with one pair is extrapolated: the value developed through it is
    as unsure as a t interval with one degree of freedom, not a normal one."""
    expected, se = np.array([100.0, 100.0]), np.array([10.0, 10.0])
    pairs = np.array([[9, 1], [9, 9]])
    df = development.degrees_of_freedom(np.array([0, 0]), pairs)
    assert list(df) == [1, 8]
    low, high = development.interval(expected, se, 1.0, df)
    normal_low, normal_high = development.interval(expected, se)
    assert high[0] - low[0] > 2 * (normal_high[0] - normal_low[0])
    assert normal_high[1] - normal_low[1] < high[1] - low[1] < 1.1 * (normal_high[1] - normal_low[1])


def test_a_few_pair_factor_is_the_measured_one_where_the_curve_is_not_checked():
    """Before, an age with fewer than MIN_PAIRS pairs took the curve's factor alone, even where
    the curve rested on two points (and so could not have missed any)."""
    tri = np.array(
        [
            [100.0, 200.0, 260.0, 290.0, 300.0],
            [100.0, 210.0, 270.0, 300.0, np.nan],
            [100.0, 190.0, 250.0, np.nan, np.nan],
            [100.0, 205.0, np.nan, np.nan, np.nan],
            [100.0, np.nan, np.nan, np.nan, np.nan],
        ]
    )
    factors = development.chain_ladder(tri, np.zeros(5, dtype=np.int64), 1)
    assert factors.curve[0].tolist() == [False, False, True, True]
    assert factors.factor[0] == pytest.approx(factors.measured[0])


def test_the_chart_follows_the_development_also_when_nothing_was_revised(tmp_path):
    """Before, a settle age of 0 (no value ever changed) was taken as "not measured", and the
    chart shaded the whole lookback as provisional while the nowcast said every bucket was as
    it would stay."""
    from datetime import datetime, timedelta

    from lookback_gui.core.insight.nowcast import chart_settle_age, nowcast
    from lookback_gui.core.project import load_project
    from lookback_gui.core.pull import run_pull
    from lookback_gui.core.store import Store
    from tests.helpers import DAILY_SQL, make_orders, project_text

    make_orders(
        tmp_path / "shop.duckdb",
        [(i, datetime(2026, 3, 1, 10) + timedelta(days=d), "DE", 10.0) for i, d in enumerate(range(9))],
    )  # one a day, all before each noon pull
    sql = DAILY_SQL.replace("GROUP BY ALL", "  AND $as_of IS NOT NULL\nGROUP BY ALL")
    (tmp_path / "lookback.toml").write_text(project_text(sql=sql))
    project = load_project(tmp_path / "lookback.toml")
    config = project.metrics["daily_orders"]
    with Store(project.store_path) as store:
        run = run_pull(project, config, store, as_of=datetime(2026, 3, 6, 12))
        assert run.status == "succeeded", run.error
        assert chart_settle_age(store, config) is None  # one pull: nothing measured yet
        for day in (7, 8, 9):
            run = run_pull(project, config, store, as_of=datetime(2026, 3, day, 12))
            assert run.status == "succeeded", run.error
        assert chart_settle_age(store, config) == 0
        assert nowcast(store, config).settle_age == 0
