"""``retry-failed`` finds the failed windows not covered since in one query over the runs; the
answer is the one a walk over the run log gives (written here from DESIGN: a failed run counts
until a later successful run's window holds its window; one retry per window)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from lookback_gui.core.schedule import scheduler
from lookback_gui.core.store import RunRecord, Store
from tests.helpers import ts


def walked(runs: list[RunRecord]) -> list[int]:
    runs = sorted(runs, key=lambda r: r.id)
    out: list[int] = []
    seen: set[tuple[datetime | None, datetime | None]] = set()
    for index, run in enumerate(runs):
        if run.status != "failed" or run.window_start is None or run.window_end is None:
            continue
        if any(
            later.status == "succeeded"
            and later.window_start is not None
            and later.window_end is not None
            and later.window_start <= run.window_start
            and later.window_end >= run.window_end
            for later in runs[index + 1 :]
        ):
            continue
        if (run.window_start, run.window_end) not in seen:
            seen.add((run.window_start, run.window_end))
            out.append(run.id)
    return out


def fill(store: Store, count: int, seed: int) -> None:
    pick = random.Random(seed)
    base = ts("2026-01-01")
    rows = []
    for run_id in range(1, count + 1):
        start = base + timedelta(days=pick.randrange(40))
        end = start + timedelta(days=pick.choice([1, 2, 7]))
        metric = pick.choice(["a", "b"])
        status = pick.choice(["failed", "succeeded", "succeeded", "cancelled", "running"])
        if pick.random() < 0.05:
            start = end = None  # a run that failed before it had a window
        rows.append((run_id, metric, "schedule", status, start, end))
    with store.reading() as cur:
        cur.executemany(
            "INSERT INTO runs (id, metric, trigger, status, window_start, "
            "window_end) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )


def test_the_uncovered_failures_are_those_a_walk_over_the_log_finds(tmp_path):
    for seed in range(5):
        with Store(tmp_path / f"store{seed}.duckdb") as store:
            fill(store, 400, seed)
            for metric in ("a", "b", "none"):
                expected = walked(store.runs(metric=metric))
                found = [r.id for r in scheduler.failed_windows(store, metric)]
                assert found == expected, (seed, metric)
                assert seed or metric == "none" or expected  # the data has some
            every = sorted(walked(store.runs(metric="a")) + walked(store.runs(metric="b")))
            assert [r.id for r in store.uncovered_failures()] == every


def test_the_failed_windows_are_found_without_walking_the_runs(tmp_path, monkeypatch):
    with Store(tmp_path / "store.duckdb") as store:
        fill(store, 50, 1)

        def every_run(*args: object, **kwargs: object) -> None:
            raise AssertionError("walked the whole run log")

        monkeypatch.setattr(store, "runs", every_run)
        assert scheduler.failed_windows(store, "a")
