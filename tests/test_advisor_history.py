"""Nowcast, vintages and alert rules tried on the stored history, on generated sources."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

import numpy as np
import pytest

from lookback_gui.cli import main
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store
from lookback_gui.core.store.events import AlertChanged
from tests.helpers import project_text
from tests.test_advisor import DAYS, SQL, START, build, generate

RULES = """
[[metrics.daily_orders.alerts]]
kind = "threshold"
measure = "events"
below = 40
judge = "latest"  # as it stood after each pull: what the try replays exactly

[[metrics.daily_orders.alerts]]
kind = "restatement"
name = "old days restated"
older_than = 2
change_pct = 4
"""


def small_project(tmp_path, rules: str = ""):
    generate(tmp_path / "shop.duckdb", 50, (0.6, 0.3, 0.1), (2, 6), 3)
    path = tmp_path / "lookback.toml"
    path.write_text(project_text(sql=SQL, lookback='"4d"') + rules)
    return load_project(path)


def test_vintages_are_the_values_as_known_on_each_date(tmp_path):
    project = small_project(tmp_path)
    with Store(project.store_path) as store:
        for day in range(14):
            for hour in (6, 18):  # two pulls a day: a cell is the later one
                run_pull(project, "daily_orders", store, as_of=START + timedelta(days=day, hours=hour))
    out = io.StringIO()
    assert main(["vintages", "daily_orders", "--project", str(project.path), "--csv"], out=out) == 0
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    header = rows[0]
    assert header[0] == "bucket"
    assert header[1:] == [(START + timedelta(days=d)).date().isoformat() for d in range(14)]
    with Store(project.store_path) as store:
        for col, day in enumerate(header[1:], start=1):
            end = datetime.fromisoformat(day) + timedelta(days=1) - timedelta(microseconds=1)
            known = {r.bucket: r.value for r in store.history("daily_orders", as_known_at=end)}
            for row in rows[1:]:
                bucket = datetime.fromisoformat(row[0])
                expected = known.get(bucket)
                assert row[col] == ("" if expected is None else str(expected)), (day, row[0])
    # each bucket's row grows to the right while its lookback holds it, then stays
    assert any(len({c for c in row[1:] if c}) > 2 for row in rows[1:])


def test_vintages_sum_the_series_asked_for_and_refuse_a_missing_measure(tmp_path):
    project = small_project(tmp_path)
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store, as_of=START + timedelta(days=5, hours=12))
    err = io.StringIO()
    assert (
        main(
            ["vintages", "daily_orders", "--project", str(project.path), "--measure", "orders", "--csv"],
            out=io.StringIO(),
            err=err,
        )
        == 2
    )
    assert err.getvalue().startswith("error: metric daily_orders has no measure 'orders'")
    err = io.StringIO()
    assert (
        main(
            ["vintages", "daily_orders", "--project", str(project.path), "--series", "country", "--csv"],
            out=io.StringIO(),
            err=err,
        )
        == 2
    )
    assert "KEY=VALUE" in err.getvalue()


def test_alert_rules_tried_on_history_fire_as_often_as_they_did(tmp_path):
    project = small_project(tmp_path, RULES)
    changes: list[AlertChanged] = []
    with Store(project.store_path) as store:
        for day in range(20):
            run_pull(
                project,
                "daily_orders",
                store,
                as_of=START + timedelta(days=day, hours=12),
                observer=lambda e: changes.append(e) if isinstance(e, AlertChanged) else None,
            )
    fired = {"threshold#1": 0, "old days restated": 0}
    for change in changes:
        if change.state == "firing":
            fired[change.rule] += 1
    assert fired["old days restated"] > 0
    for reference, label in (("threshold#1", "threshold#1"), ("old days restated", "old days restated")):
        out = io.StringIO()
        assert (
            main(
                ["alerts", "--try", "daily_orders", reference, "--project", str(project.path), "--json"],
                out=out,
            )
            == 0
        )
        trial = json.loads(out.getvalue())
        assert trial["rule"] == label
        assert trial["runs_evaluated"] == 20
        assert trial["firings"] == fired[label], (label, trial)
        assert trial["runs_firing"] >= trial["firings"]
    err = io.StringIO()
    assert (
        main(
            ["alerts", "--try", "daily_orders", "freshness#9", "--project", str(project.path)],
            out=io.StringIO(),
            err=err,
        )
        == 2
    )
    assert "no alert rule 'freshness#9'" in err.getvalue()


def test_nowcast_lists_the_provisional_buckets_with_their_expected_value(tmp_path):
    project, events = build(tmp_path, (0.70, 0.25, 0.05), (2, 10), 7)
    out = io.StringIO()
    assert main(["nowcast", "daily_orders", "--project", str(project.path), "--json"], out=out) == 0
    data = json.loads(out.getvalue())
    settle = data["settle_age_buckets"]
    assert settle >= 8
    rows = data["buckets"]
    assert {r["age_buckets"] for r in rows} == set(range(settle))
    # the truth: every generated event of the bucket, arrived or not
    day = 86400
    counts = np.bincount((events[0] - events[0].min() // day * day) // day)
    first = int((START - datetime(1970, 1, 1)).total_seconds()) // day
    raw_miss = model_miss = 0.0
    held = 0
    for row in rows:
        truth = counts[int(datetime.fromisoformat(row["bucket"]).timestamp()) // day - first]
        assert row["low"] <= row["expected"] <= row["high"]
        assert row["expected"] >= row["value"]  # counts only grow as events arrive
        assert row["basis"] in ("series", "pooled")
        raw_miss += abs(row["value"] - truth)
        model_miss += abs(row["expected"] - truth)
        held += row["low"] <= truth <= row["high"]
    assert model_miss < raw_miss / 2  # what is left is mostly the counts' own noise
    assert held >= len(rows) // 2
    out = io.StringIO()
    assert main(["nowcast", "daily_orders", "--project", str(project.path)], out=out) == 0
    assert f"values settle after {settle} day(s)" in out.getvalue()
    assert settle < DAYS


@pytest.mark.parametrize("command", ["nowcast", "vintages"])
def test_a_metric_without_history_is_said_plainly(tmp_path, command):
    project = small_project(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    code = main([command, "daily_orders", "--project", str(project.path)], out=out, err=err)
    if command == "nowcast":
        assert code == 0 and "no history yet" in out.getvalue()
    else:
        assert code == 2 and "has no values in the store yet" in err.getvalue()


def test_the_bucket_in_progress_seen_at_another_time_of_day_is_left_out(tmp_path):
    project, _events = build(tmp_path, (0.70, 0.25, 0.05), (2, 10), 7)
    # every earlier day was last seen at noon; now one at 23:00
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store, as_of=START + timedelta(days=DAYS - 1, hours=23))
    out = io.StringIO()
    assert main(["nowcast", "daily_orders", "--project", str(project.path), "--json"], out=out) == 0
    data = json.loads(out.getvalue())
    ages = {r["age_buckets"] for r in data["buckets"]}
    assert 0 not in ages and 1 in ages
    assert "the bucket in progress is left out" in data["message"]
