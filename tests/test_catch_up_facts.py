"""Catch-up planning reads the runs of every metric in one go: what it reads is, metric by
metric, what ``pull_extent`` and ``coverage`` say, and the plans are the same."""

from __future__ import annotations

import random
from datetime import timedelta

from lookback_gui.core.project import load_project
from lookback_gui.core.schedule import scheduler
from lookback_gui.core.store import CatchUpFacts, Store
from tests.helpers import project_text, ts


def fill(store: Store, count: int, seed: int, metrics: list[str]) -> None:
    pick = random.Random(seed)
    rows = []
    for run_id in range(1, count + 1):
        end = ts("2026-10-01") + timedelta(days=pick.randrange(30))
        start = end - timedelta(days=pick.choice([1, 3, 7]))
        known = end - timedelta(hours=pick.choice([0, 12, 24, 36, 200]))
        settled = min(end, max(start, known.replace(hour=0)))
        status = pick.choice(["failed", "succeeded", "succeeded", "succeeded"])
        rows.append(
            (
                run_id,
                pick.choice(metrics),
                "schedule",
                status,
                start,
                end,
                known if status == "succeeded" else None,
                settled if status == "succeeded" else None,
            )
        )
    with store.reading() as cur:
        cur.executemany(
            "INSERT INTO runs (id, metric, trigger, status, window_start, window_end,"
            " known_at, settled_end) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def test_the_facts_of_every_metric_are_those_read_one_by_one(tmp_path, write_project):
    text = "".join(
        project_text(metric=m, extra='every = "6h"').split("\n\n", 2)[2] + "\n" for m in ("b", "c")
    )
    project = load_project(write_project(project_text(metric="a", extra='every = "6h"') + "\n" + text))
    for seed in range(4):
        path = tmp_path / f"s{seed}.duckdb"
        with Store(path) as store:
            fill(store, 300, seed, ["a", "b", "c"] if seed else ["a"])
            facts = store.catch_up_facts()
            assert sorted(facts) == (["a", "b", "c"] if seed else ["a"])
            for metric in ("a", "b", "c"):
                one = facts.get(metric, CatchUpFacts(None, None, []))
                assert (one.first, one.last_seen) == (
                    store.pull_extent(metric) if seed or metric == "a" else (None, None)
                )
                assert one.coverage == store.coverage(metric)
                config = project.metrics[metric]
                for now in (ts("2026-10-20T12:00"), ts("2026-11-05T00:00")):
                    assert scheduler.plan_catch_up(config, store, now, one) == scheduler.plan_catch_up(
                        config, store, now
                    )
