"""Threshold alerts after a run judge the latest complete bucket without reading the metric's
whole history: the answer is the one the whole history gives (the rule as DESIGN states it,
written here over ``store.history``), for runs of the present and backfills of the past."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store
from lookback_gui.core.timing.windows import Window
from tests.helpers import make_orders, project_text, ts


def judged_from_history(
    store: Store, metric: str, measure: str, series: dict[str, Any]
) -> tuple[datetime | None, list[tuple[dict[str, Any], Any]]]:
    """The latest complete bucket of the measure (the latest of all when none is complete),
    and its values, from every value of the metric."""
    rows = [
        r
        for r in store.history(metric)
        if r.measure == measure
        and r.value is not None
        and all(str(r.dims.get(k)) == str(v) for k, v in series.items())
    ]
    if not rows:
        return None, []
    complete = [r for r in rows if not r.partial] or rows
    latest = max(r.bucket for r in complete)
    return latest, [(dict(r.dims), r.value) for r in complete if r.bucket == latest]


@pytest.fixture
def shop(tmp_path, write_project):
    rows = [
        (i, ts(f"2026-10-{d:02d}T10:00"), c, float(i))
        for i, (d, c) in enumerate([(d, c) for d in range(1, 30) for c in ("DE", "FR", "ÜS")], start=1)
    ]
    make_orders(tmp_path / "shop.duckdb", rows)
    project = load_project(write_project(project_text()))
    with Store(project.store_path) as store:
        yield project, store


def test_the_latest_complete_values_are_those_of_the_whole_history(shop):
    project, store = shop
    cases = [
        ("orders", {}),
        ("revenue", {"country": "DE"}),
        ("orders", {"country": "ÜS"}),
        ("orders", {"country": "XX"}),
        ("nothing", {}),
    ]
    # nothing stored yet
    assert store.latest_values("daily_orders", "orders", {}, since=ts("2026-10-01")) == (None, [])
    # the present, then a backfill of the past: its window's start is far before the latest
    # complete bucket, which lies in later runs' windows
    for as_of, window in [
        (ts("2026-10-20T12:00"), None),
        (ts("2026-10-29T12:00"), None),
        (ts("2026-10-29T12:00"), Window(ts("2026-10-02"), ts("2026-10-09"), ts("2026-10-09"), None)),
    ]:
        run = run_pull(project, "daily_orders", store, as_of=as_of, window=window, clock=lambda at=as_of: at)  # type: ignore[misc]
        assert run.status == "succeeded", run.error
        for measure, series in cases:
            expected = judged_from_history(store, "daily_orders", measure, series)
            for since in (run.window_start, None, ts("2026-11-30")):
                assert store.latest_values("daily_orders", measure, series, since=since) == expected, (
                    measure,
                    series,
                    since,
                )


def test_only_partial_values_are_judged_when_none_is_complete(tmp_path, write_project):
    make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-29T10:00"), "DE", 2.0)])
    project = load_project(write_project(project_text(lookback='"1d"')))
    with Store(project.store_path) as store:
        run = run_pull(
            project, "daily_orders", store, as_of=ts("2026-10-29T12:00"), clock=lambda: ts("2026-10-29T12:00")
        )
        assert store.history("daily_orders")[0].partial
        assert (
            store.latest_values("daily_orders", "orders", {}, since=run.window_start)
            == judged_from_history(store, "daily_orders", "orders", {})
            == (ts("2026-10-29"), [({"country": "DE"}, 1)])
        )


def test_a_threshold_after_a_run_does_not_read_the_whole_history(tmp_path, write_project, monkeypatch):
    make_orders(
        tmp_path / "shop.duckdb",
        [
            (1, ts("2026-10-28T10:00"), "DE", 2.0),
            (2, ts("2026-10-27T10:00"), "DE", 2.0),
            (3, ts("2026-10-27T11:00"), "DE", 2.0),
        ],
    )
    rule = (
        '[[metrics.daily_orders.alerts]]\nkind = "threshold"\nmeasure = "orders"\n'
        'below = 2\nseries = { country = "DE" }\n'
    )
    project = load_project(write_project(project_text() + rule))
    with Store(project.store_path) as store:

        def whole_history(*args: object, **kwargs: object) -> None:
            raise AssertionError("the alert read the whole history")

        monkeypatch.setattr(store, "history", whole_history)
        run_pull(
            project, "daily_orders", store, as_of=ts("2026-10-29T12:00"), clock=lambda: ts("2026-10-29T12:00")
        )
        assert [(s.state, s.message) for s in store.alert_states()] == [
            ("firing", "orders at 2026-10-28 00:00:00: country=DE: 1 < 2")
        ]
