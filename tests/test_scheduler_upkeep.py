"""The scheduler after downtime with a one-bucket lookback, while paused, at resume, and when a
planned pull fails with a bug: planning with an injected clock, the real worker pool."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.schedule.scheduler import PlannedPull, plan_catch_up
from lookback_gui.core.store import Store
from lookback_gui.core.store.events import Notice
from lookback_gui.core.timing.windows import Window
from tests.helpers import PROCESS_S, make_orders, ts
from tests.test_scheduler import SCHEDULED, running


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    rows = [(i, ts("2026-09-01T10:00") + timedelta(days=i), "DE", 1.0) for i in range(70)]
    return make_orders(tmp_path / "shop.duckdb", rows)


def test_a_one_bucket_lookback_is_back_filled_after_downtime(write_project, shop):
    project = load_project(write_project(extra=SCHEDULED, lookback="1"))
    config = project.metrics["daily_orders"]
    with Store(project.store_path) as store:
        # a pull as of 10-25 06:00 sees only the partial bucket 10-25
        assert (
            run_pull(
                project, config, store, as_of=ts("2026-10-25T06:00"), clock=lambda: ts("2026-10-25T06:00")
            ).status
            == "succeeded"
        )
        plans = plan_catch_up(config, store, ts("2026-10-30T12:00"))
        assert [p.trigger for p in plans] == ["backfill"] * 5 + ["catch-up"]
        fills = [(p.window.start, p.window.end) for p in plans[:-1]]
        assert fills[0] == (ts("2026-10-25"), ts("2026-10-26"))  # the partial bucket is owed
        assert fills[-1][1] == ts("2026-10-30") == plans[-1].window.start
        for plan in plans:
            assert (
                run_pull(
                    project,
                    config,
                    store,
                    trigger=plan.trigger,
                    window=plan.window,
                    clock=lambda: ts("2026-10-30T12:00"),
                ).status
                == "succeeded"
            )
        assert plan_catch_up(config, store, ts("2026-10-30T12:30")) == []
        plans = plan_catch_up(config, store, ts("2026-11-02T12:00"))
        assert [(p.trigger, p.window.start) for p in plans] == [
            ("backfill", ts("2026-10-30")),
            ("backfill", ts("2026-10-31")),
            ("backfill", ts("2026-11-01")),
            ("catch-up", ts("2026-11-02")),
        ]


def test_pausing_keeps_the_project_file_in_sync(write_project, shop):
    path = write_project(extra=SCHEDULED)
    project = load_project(path)
    reloaded = threading.Event()
    with Store(project.store_path) as store, running(project, store, catch_up=False) as (scheduler, recorder):
        scheduler.events.subscribe(
            lambda e: reloaded.set() if isinstance(e, Notice) and "reloaded" in e.message else None
        )
        scheduler.pause()
        assert scheduler.paused
        path.write_text(path.read_text().replace('"0 6 * * *"', '"30 7 * * *"'))
        assert reloaded.wait(PROCESS_S), "a paused scheduler stopped watching the project file"
        assert scheduler.project.metrics["daily_orders"].schedule == "30 7 * * *"
        assert scheduler.run_now("daily_orders") is not None  # run now still works
        assert scheduler.wait_idle(timeout=PROCESS_S)
        assert [r.trigger for r in recorder.finished()] == ["manual"]


def test_pausing_keeps_freshness_alerts(write_project, shop):
    path = write_project(extra=SCHEDULED)
    path.write_text(
        path.read_text() + '\n[[metrics.daily_orders.alerts]]\nkind = "freshness"\nmax_age = "1h"\n'
    )
    project = load_project(path)
    fired = threading.Event()
    later = lambda: datetime.now(UTC) + timedelta(hours=2)  # noqa: E731
    with Store(project.store_path) as store:
        assert run_pull(project, "daily_orders", store, as_of=ts("2026-10-30T12:00")).status == "succeeded"
    with (
        Store(project.store_path) as store,
        running(project, store, catch_up=False, clock=later) as (scheduler, recorder),
    ):
        scheduler.events.subscribe(lambda e: fired.set() if type(e).__name__ == "AlertChanged" else None)
        scheduler.pause()
        assert fired.wait(PROCESS_S), "a paused scheduler stopped checking freshness"


def test_resume_catches_up_what_was_owed(write_project, shop):
    project = load_project(write_project(extra=SCHEDULED))
    clock = lambda: datetime(2026, 10, 30, 12, 0, tzinfo=UTC)  # noqa: E731
    with (
        Store(project.store_path) as store,
        running(project, store, catch_up=False, clock=clock) as (scheduler, recorder),
    ):
        scheduler.pause()
        assert scheduler.catch_up() == []  # paused: nothing starts
        scheduler.resume()
        assert scheduler.wait_idle(timeout=PROCESS_S)
        assert [(r.trigger, r.status) for r in recorder.finished()] == [("catch-up", "succeeded")]


def test_a_bug_in_one_planned_pull_does_not_drop_the_rest(write_project, shop):
    project = load_project(write_project(extra=SCHEDULED))
    broke = []

    def clock() -> datetime:
        # the first time a pull asks the time on a worker thread, the clock fails: a bug
        if threading.current_thread().name.startswith("pull") and not broke:
            broke.append(True)
            raise RuntimeError("the clock broke")
        return datetime(2026, 10, 30, 12, 0, tzinfo=UTC)

    def window(start: str, end: str) -> Window:
        return Window(start=ts(start), end=ts(end), as_of=ts(end), partial_start=None)

    with (
        Store(project.store_path) as store,
        running(project, store, catch_up=False, clock=clock) as (scheduler, recorder),
    ):
        future = scheduler.submit(
            "daily_orders",
            [
                PlannedPull("backfill", window("2026-10-10", "2026-10-17")),
                PlannedPull("backfill", window("2026-10-17", "2026-10-24")),
                PlannedPull(
                    "catch-up",
                    Window(
                        start=ts("2026-10-24"),
                        end=ts("2026-10-31"),
                        as_of=ts("2026-10-30T12:00"),
                        partial_start=ts("2026-10-30"),
                    ),
                ),
            ],
        )
        assert future is not None
        assert scheduler.wait_idle(timeout=PROCESS_S)
        assert broke
        runs = recorder.finished()
        assert [(r.trigger, r.window_start) for r in runs] == [
            ("backfill", ts("2026-10-17")),
            ("catch-up", ts("2026-10-24")),
        ]
        errors = [e.message for e in recorder.events if isinstance(e, Notice) and e.level == "error"]
        assert any("internal error in a backfill pull: RuntimeError: the clock broke" in m for m in errors)
