"""The demo project shows the advisor's answers on its first start."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta

import pytest

from lookback_gui.cli import main
from lookback_gui.core.demo import seed_history, write_demo
from lookback_gui.core.insight.nowcast import revision_triangle
from lookback_gui.core.project import load_project
from lookback_gui.core.store import Store


@pytest.mark.slow
def test_the_seeded_demo_has_policies_a_tail_a_nowcast_and_a_triangle(tmp_path):
    now = datetime(2026, 11, 30, 20, 0)
    path = write_demo(tmp_path / "demo", now=now)
    seed_history(path, now=now)

    def run(*args: str) -> dict:
        out = io.StringIO()
        assert main([*args, "--project", str(path), "--json"], out=out) == 0
        return json.loads(out.getvalue())

    advice = run("advise", "daily_orders")
    assert advice["enough_history"]
    assert len(advice["candidates"]) > 10
    assert advice["recommendation"]["tail"] is not None  # 3 % of the orders are a week late
    # the lookback "catching 99 %" holds 99 % of the final value by the development
    assert advice["recommendation"]["verified"], advice["message"]
    assert advice["recommendation"]["development_share"] >= 0.99
    backtest = advice["nowcast_backtest"]
    # coverage: how often Mack's 80 % interval alone held the settled value on the demo's own
    # history; calibrated_coverage: how often the intervals the nowcast shows (widened by that
    # history where it held too rarely, never narrowed) did
    assert backtest["intervals"] > 500 and 0.6 <= backtest["coverage"] <= 0.95
    assert backtest["widen"] >= 1 and 0.70 <= backtest["calibrated_coverage"] <= 0.90
    assert backtest["by_age"][0]["age_buckets"] == 0
    nowcast = run("nowcast", "daily_orders")
    assert nowcast["buckets"] and all(b["expected"] is not None for b in nowcast["buckets"])
    assert {b["dims"]["country"] for b in nowcast["buckets"]} == {"DE", "FR", "US", "GB"}
    project = load_project(path)
    with Store(project.store_path) as store:
        triangle = revision_triangle(store, project.metrics["daily_orders"])
    assert triangle.share.shape[0] >= 40 and triangle.measures == ("orders", "revenue")
    out = io.StringIO()
    assert (
        main(
            [
                "vintages",
                "daily_orders",
                "--measure",
                "orders",
                "--series",
                "country=DE",
                "--csv",
                "--project",
                str(path),
            ],
            out=out,
        )
        == 0
    )
    assert len(out.getvalue().splitlines()[0].split(",")) == 1 + 43  # 42 days and today


@pytest.mark.slow
def test_the_demo_nowcasts_its_youngest_hours_near_what_an_hour_settles_at(tmp_path):
    """The hourly metric is pulled at least once an hour in the demo's history, as its
    schedule pulls it: its development then knows how much of an hour's revenue is in by each
    age, and the nowcast of the hours just ended lies near what an hour settles at, with an
    interval of the same order. (Pulled every six hours, the development put the arrival of
    the partial hour's revenue at the next pull, and the nowcast of the youngest hours was 6
    to 8 times what an hour settles at, with intervals up to 10^9.)"""
    import duckdb

    from lookback_gui.core.insight.nowcast import nowcast

    now = datetime(2026, 11, 30, 20, 0)
    path = write_demo(tmp_path / "demo", now=now)
    seed_history(path, now=now)
    project = load_project(path)
    config = project.metrics["hourly_revenue"]
    with Store(project.store_path) as store:
        result = nowcast(store, config)
    con = duckdb.connect(str(project.store_path), read_only=True)
    try:
        [(settled,)] = con.execute(
            "SELECT median(value) FROM current WHERE metric = 'hourly_revenue' AND bucket < ?",
            [now.replace(minute=0) - timedelta(hours=config.buckets)],
        ).fetchall()
    finally:
        con.close()
    young = [row for row in result.rows if 1 <= row.age <= 6]
    assert len(young) == 6, result.message
    for row in young:
        assert row.expected is not None and 0.5 * settled <= row.expected <= 2 * settled, row
        assert row.high is not None and row.high <= 5 * settled, row
