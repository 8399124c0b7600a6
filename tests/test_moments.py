"""Moments carry their offset (DESIGN, *JSON shapes*): ``as_of``, ``known_at``, ``started_at``,
``finished_at``, ``since`` and log ``at`` are ISO 8601 with their UTC offset in JSON, so runs of
metrics in different zones sort and compare correctly; tables print moments in the computer's
zone and say so. Buckets stay calendar periods without offset."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta

import pytest

from tests.helpers import DAILY_SQL, make_orders, run_cli

OFFSET = re.compile(r"[+-]\d\d:\d\d$")

TWO_ZONES = f'''
[store]
path = "lookback.duckdb"

[sources.shop]
type = "duckdb"
path = "shop.duckdb"

[metrics.berlin]
source = "shop"
grain = "day"
lookback = "7d"
timezone = "Europe/Berlin"
sql = """{DAILY_SQL}"""

[[metrics.berlin.alerts]]
kind = "threshold"
measure = "orders"
above = 0
judge = "latest"

[metrics.utc]
source = "shop"
grain = "day"
lookback = "7d"
sql = """{DAILY_SQL}"""
'''


@pytest.fixture
def kolkata(monkeypatch):
    """This computer's zone is Asia/Kolkata (UTC+05:30) for the test."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_moments_in_json_have_offsets_and_tables_say_their_zone(tmp_path, monkeypatch, kolkata):
    now = datetime.now()
    make_orders(
        tmp_path / "shop.duckdb",
        [(1, now - timedelta(days=2), "DE", 1.0), (2, now - timedelta(days=1), "FR", 2.0)],
    )
    (tmp_path / "lookback.toml").write_text(TWO_ZONES)
    monkeypatch.chdir(tmp_path)
    assert run_cli("pull", "berlin")[0] == 0
    assert run_cli("pull", "utc")[0] == 0

    runs = json.loads(run_cli("runs", "--json")[1])
    assert [r["metric"] for r in runs] == ["utc", "berlin"]
    for run in runs:
        for key in ("as_of", "known_at", "started_at", "finished_at"):
            assert OFFSET.search(run[key]), (key, run[key])
        for key in ("window_start", "window_end"):  # buckets: calendar periods, no offset
            assert not OFFSET.search(run[key]) and run[key].endswith("T00:00:00")
    utc, berlin = runs
    assert berlin["started_at"].endswith("+01:00") and utc["started_at"].endswith("+00:00")
    # the Berlin run started first, and its moments say so however the zones differ
    assert datetime.fromisoformat(berlin["started_at"]) <= datetime.fromisoformat(utc["started_at"])

    table = run_cli("runs")[1].splitlines()
    assert table[0].startswith("times in local zone (UTC+05:30)")
    local_as_of = datetime.fromisoformat(berlin["as_of"]).astimezone().strftime("%Y-%m-%d %H:%M")
    assert any(line.split()[0] == str(berlin["id"]) and local_as_of in line for line in table)

    shown = json.loads(run_cli("show", str(berlin["id"]), "--json")[1])
    assert all(line["at"].endswith("+05:30") for line in shown["log"])  # written here
    text = run_cli("show", str(berlin["id"]))[1]
    assert "times in local zone (UTC+05:30)" in text.splitlines()[0]

    [state] = json.loads(run_cli("alerts", "--json")[1])
    assert state["since"].endswith("+01:00")  # stored in Berlin time
    assert "times in local zone (UTC+05:30)" in run_cli("alerts")[1]

    make_orders(
        tmp_path / "shop.duckdb",
        [
            (1, now - timedelta(days=2), "DE", 1.0),
            (2, now - timedelta(days=1), "FR", 2.0),
            (3, now - timedelta(days=1), "FR", 2.0),
        ],
    )
    assert run_cli("pull", "berlin")[0] == 0
    [revision, _] = json.loads(run_cli("revisions", "berlin", "--json")[1])
    assert revision["known_at"].endswith("+01:00") and not OFFSET.search(revision["bucket"])
    newest = json.loads(run_cli("runs", "--json", "--limit", "1")[1])[0]
    assert datetime.fromisoformat(revision["known_at"]) == datetime.fromisoformat(newest["known_at"])
