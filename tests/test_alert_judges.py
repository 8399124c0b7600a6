"""Threshold alerts judge what will settle (DESIGN, *Alerts*): ``judge = "expected"`` (the
default) fires on a provisional bucket only when its nowcast's whole 80 % interval lies beyond
the bound; ``settled`` judges the newest settled bucket; ``latest`` the newest complete bucket
as it stands. ``alerts --try`` says how often each would have fired, and how often falsely."""

from __future__ import annotations

import json
import random
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lookback_gui.core.errors import ProjectError
from lookback_gui.core.insight.alerts import evaluate_alerts
from lookback_gui.core.insight.nowcast import nowcast
from lookback_gui.core.numbers import fmt_number
from lookback_gui.core.project import load_project, parse_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store
from tests.helpers import run_cli
from tests.test_knowledge_time import arrived_orders

START = datetime(2026, 10, 1)
DAYS = 40

PROJECT = textwrap.dedent('''
    [store]
    path = "lookback.duckdb"

    [sources.shop]
    type = "duckdb"
    path = "shop.duckdb"

    [metrics.orders]
    source = "shop"
    grain = "day"
    lookback = "6d"
    retries = 0
    sql = """
    SELECT date_trunc('day', ordered_at) AS bucket, count(*) AS orders
    FROM orders WHERE ordered_at >= $window_start AND ordered_at < $window_end
      AND arrived_at <= $as_of
    GROUP BY ALL
    """
''')

RULE = """
[[metrics.orders.alerts]]
kind = "threshold"
name = "{name}"
measure = "orders"
below = {below}
{judge}
"""


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """100 orders a day; 30-50 % of them arrive two days late; one pull a day at noon."""
    folder = tmp_path_factory.mktemp("judges")
    rng = random.Random(7)
    rows = []
    for day in range(DAYS + 3):
        late = rng.randint(30, 50)
        for i in range(100):
            ordered = START + timedelta(days=day, minutes=10 * i)
            arrived = ordered + (timedelta(days=2) if i < late else timedelta(minutes=1))
            rows.append((len(rows), ordered, arrived, "DE", 1.0))
    arrived_orders(folder / "shop.duckdb", rows)
    (folder / "lookback.toml").write_text(PROJECT)
    project = load_project(folder / "lookback.toml")
    with Store(project.store_path) as store:
        for day in range(DAYS):
            moment = START + timedelta(days=day, hours=20)
            run = run_pull(project, "orders", store, as_of=moment, clock=lambda m=moment: m)
            assert run.status == "succeeded", run.error
    return folder / "lookback.toml"


def with_rules(path: Path, *rules: str) -> Path:
    path.write_text(PROJECT + "".join(rules))
    return path


def judged(path: Path, name: str) -> str | None:
    project = load_project(path)
    config = project.metrics["orders"]
    with Store(project.store_path) as store:
        now = START + timedelta(days=DAYS, hours=1)
        for state in evaluate_alerts(config, store, now):
            if state.rule == name:
                return state.message
    return None


def test_judge_is_checked_by_the_project_file(tmp_path):
    text = PROJECT + RULE.format(name="x", below=1, judge='judge = "eventually"')
    with pytest.raises(ProjectError, match=r"judge.*unknown judge 'eventually'"):
        parse_project(text, tmp_path / "lookback.toml")
    rule = (
        parse_project(PROJECT + RULE.format(name="x", below=1, judge=""), tmp_path / "lookback.toml")
        .metrics["orders"]
        .alerts[0]
    )
    assert rule.judge == "expected"


def test_a_provisional_bucket_fires_only_when_its_whole_interval_is_beyond(history):
    project = load_project(history)
    with Store(project.store_path) as store:
        cast = nowcast(store, project.metrics["orders"])
    yesterday = START + timedelta(days=DAYS - 2)
    [row] = [r for r in cast.rows if r.bucket == yesterday]
    assert row.value < 75 and row.low <= 100 <= row.high  # short now, settles near 100
    # the newest complete bucket is short of 80 as it stands, not as it will settle
    path = with_rules(
        history,
        RULE.format(name="latest", below=80, judge='judge = "latest"'),
        RULE.format(name="expected", below=80, judge=""),
        RULE.format(name="settled", below=80, judge='judge = "settled"'),
        RULE.format(name="far", below=int(row.high) + 10, judge=""),
    )
    messages = {}
    project = load_project(path)
    with Store(project.store_path) as store:
        now = START + timedelta(days=DAYS, hours=1)
        for state in evaluate_alerts(project.metrics["orders"], store, now):
            messages[state.rule] = state.message
    assert messages["latest"].endswith("< 80")
    assert "expected" not in messages and "settled" not in messages
    assert messages["far"] == (
        f"orders at {yesterday.isoformat(sep=' ')}: all orders expected to settle at "
        f"{fmt_number(row.expected)} [{fmt_number(row.low)}, {fmt_number(row.high)}] < "
        f"{int(row.high) + 10}"
    )


def test_alerts_try_says_how_often_each_judge_fired_and_how_often_falsely(history):
    with_rules(history, RULE.format(name="few", below=80, judge=""))
    code, out, err = run_cli("alerts", "--project", str(history), "--try", "orders", "few", "--json")
    assert code == 0, err
    trial = json.loads(out)
    judges = trial["judges"]
    assert trial["judge"] == "expected" and set(judges) == {"expected", "settled", "latest"}
    # as it stands the newest complete bucket is short after every pull: every one a false
    # alarm, since every day settles at 100
    assert judges["latest"]["runs_firing"] >= DAYS - 3
    assert judges["latest"]["false_alarms"] >= DAYS - 8
    assert judges["expected"]["false_alarms"] <= 2
    assert judges["settled"]["runs_firing"] == 0
    code, out, err = run_cli("alerts", "--project", str(history), "--try", "orders", "few")
    assert code == 0, err
    assert "false alarms" in out and "latest" in out
