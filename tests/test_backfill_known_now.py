"""A backfill loads the past as the source holds it now (DESIGN, *The command line*:
``backfill``); ``--as-known-then`` keeps each chunk as of its own end; the scheduler's gap fill
after downtime loads the gap as known now too."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from lookback_gui.core.project import load_project
from lookback_gui.core.pull import backfill
from lookback_gui.core.schedule.scheduler import plan_catch_up
from lookback_gui.core.store import Store
from tests.helpers import run_cli, ts
from tests.test_knowledge_time import PROJECT, arrived_orders

LATE = [  # (id, ordered_at, arrived_at, country, amount): the second order of 10-05 is late
    (1, ts("2026-10-05T10:00"), ts("2026-10-05T11:00"), "DE", 10.0),
    (2, ts("2026-10-05T12:00"), ts("2026-10-06T09:00"), "DE", 5.0),
    (3, ts("2026-10-09T08:00"), ts("2026-10-09T08:30"), "DE", 1.0),
]


@pytest.fixture
def late(tmp_path: Path):
    (tmp_path / "lookback.toml").write_text(PROJECT)
    arrived_orders(tmp_path / "shop.duckdb", LATE)
    return load_project(tmp_path / "lookback.toml")


def orders(store: Store, bucket: str) -> object:
    return next(
        r.value for r in store.history("replayed") if r.bucket == ts(bucket) and r.measure == "orders"
    )


def test_a_backfill_loads_the_past_as_the_source_holds_it_now(late):
    now = ts("2026-10-20T12:00")
    with Store(late.store_path) as store:
        runs = backfill(late, "replayed", store, ts("2026-10-03"), ts("2026-10-06"), clock=lambda: now)
        assert [(r.status, r.as_of, r.known_at) for r in runs] == [("succeeded", now, now)]
        assert orders(store, "2026-10-05") == 2  # not the 1 known at the chunk's end
        assert not any(r.partial for r in store.history("replayed"))


def test_as_known_then_pulls_each_chunk_as_of_its_end(late):
    now = ts("2026-10-20T12:00")
    with Store(late.store_path) as store:
        runs = backfill(
            late, "replayed", store, ts("2026-10-03"), ts("2026-10-06"), clock=lambda: now, as_known_then=True
        )
        assert [(r.as_of, r.known_at) for r in runs] == [(ts("2026-10-06"),) * 2]
        assert orders(store, "2026-10-05") == 1


def test_the_gap_fill_after_downtime_loads_the_gap_as_known_now(late):
    config = dataclasses.replace(late.metrics["replayed"], every=timedelta(hours=6))
    first = ts("2026-10-05T12:00")
    with Store(late.store_path) as store:
        from lookback_gui.core.pull import run_pull

        assert run_pull(late, config, store, as_of=first, clock=lambda: first).status == ("succeeded")
        now = ts("2026-10-20T12:00")
        plans = plan_catch_up(config, store, now)
        fills = [p.window for p in plans if p.trigger == "backfill"]
        assert fills and all(w.as_of == now for w in fills)


def test_the_command_line_says_which_backfill_it_makes(late, monkeypatch):
    monkeypatch.chdir(late.directory)
    code, out, err = run_cli("backfill", "replayed", "--from", "2026-10-03", "--to", "2026-10-06")
    assert code == 0, err
    assert "1 chunk(s) of up to 3 day bucket(s), one pull each, each with what is known now" in out
    code, out, err = run_cli(
        "backfill", "replayed", "--from", "2026-10-03", "--to", "2026-10-06", "--as-known-then"
    )
    assert code == 0, err
    assert "each as of its own end (--as-known-then)" in out
    code, out, err = run_cli("runs", "--json")
    import json

    as_ofs = [r["as_of"][:10] for r in json.loads(out)]
    assert as_ofs[0] == "2026-10-06" and as_ofs[1] != "2026-10-06"
