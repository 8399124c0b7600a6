"""Scheduling: catch-up and gap planning with an injected clock, the worker pool, cancel,
retry-failed, alerts and the headless daemon."""

from __future__ import annotations

import io
import itertools
import json
import signal
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from lookback_gui.cli import main
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.schedule.scheduler import Scheduler, plan_catch_up, retry_failed
from lookback_gui.core.sources import SourceConnections
from lookback_gui.core.store import Store
from lookback_gui.core.store.events import Notice, RunFinished
from lookback_gui.core.timing.windows import Window
from tests.helpers import PROCESS_S, lookback_daemon, lookback_process, make_orders, project_text, ts

SCHEDULED = 'schedule = "0 6 * * *"\ntimezone = "UTC"'


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    rows = [(i, ts("2026-09-01T10:00") + timedelta(days=i), "DE", 1.0) for i in range(70)]
    return make_orders(tmp_path / "shop.duckdb", rows)


def window(start: str, end: str) -> Window:
    return Window(start=ts(start), end=ts(end), as_of=ts(end), partial_start=None)


def test_a_scheduled_metric_never_pulled_is_pulled_at_start(write_project, shop):
    project = load_project(write_project(extra=SCHEDULED))
    with Store(project.store_path) as store:
        plans = plan_catch_up(project.metrics["daily_orders"], store, ts("2026-10-30T12:00"))
    assert [(p.trigger, p.window.start, p.window.end) for p in plans] == [
        ("catch-up", ts("2026-10-24"), ts("2026-10-31"))
    ]


def test_no_catch_up_when_no_scheduled_time_passed(write_project, shop):
    project = load_project(write_project(extra=SCHEDULED))
    config = project.metrics["daily_orders"]
    with Store(project.store_path) as store:
        run_pull(project, config, store, as_of=ts("2026-10-30T06:00"))
        assert plan_catch_up(config, store, ts("2026-10-31T05:59")) == []
        plans = plan_catch_up(config, store, ts("2026-10-31T06:01"))
        assert [p.trigger for p in plans] == ["catch-up"]


def test_a_gap_shorter_than_the_lookback_needs_one_catch_up(write_project, shop):
    project = load_project(write_project(extra=SCHEDULED))
    config = project.metrics["daily_orders"]
    with Store(project.store_path) as store:
        run_pull(project, config, store, as_of=ts("2026-10-27T06:00"))
        plans = plan_catch_up(config, store, ts("2026-10-30T12:00"))
        assert [(p.trigger, p.window.start) for p in plans] == [("catch-up", ts("2026-10-24"))]


def test_a_gap_longer_than_the_lookback_backfills_every_uncovered_bucket(write_project, shop):
    project = load_project(write_project(extra=SCHEDULED))
    config = project.metrics["daily_orders"]
    with Store(project.store_path) as store:
        # covers [09-25, 10-01) complete, 10-01 partial
        run_pull(project, config, store, as_of=ts("2026-10-01T06:00"), clock=lambda: ts("2026-10-01T06:00"))
        plans = plan_catch_up(config, store, ts("2026-10-30T12:00"))
        assert [p.trigger for p in plans] == ["backfill"] * 4 + ["catch-up"]
        fills = [(p.window.start, p.window.end) for p in plans[:-1]]
        assert fills[0][0] == ts("2026-10-01")  # the bucket that was still partial is owed
        assert fills[-1][1] == ts("2026-10-24") == plans[-1].window.start
        assert all(a[1] == b[0] for a, b in itertools.pairwise(fills))
        # run the plan: afterwards every bucket from the first pull to now is covered
        for plan in plans:
            run = run_pull(
                project,
                config,
                store,
                trigger=plan.trigger,
                window=plan.window,
                clock=lambda: ts("2026-10-30T12:00"),
            )
            assert run.status == "succeeded", run.error
        spans = store.coverage("daily_orders")
        assert spans == [(ts("2026-09-25"), ts("2026-10-30"))]
        assert plan_catch_up(config, store, ts("2026-10-30T12:00")) == []


def test_a_hole_left_by_a_failed_chunk_is_back_filled(write_project, shop):
    project = load_project(write_project(extra=SCHEDULED))
    config = project.metrics["daily_orders"]
    with Store(project.store_path) as store:
        run_pull(project, config, store, trigger="backfill", window=window("2026-10-01", "2026-10-08"))
        run_pull(project, config, store, trigger="backfill", window=window("2026-10-15", "2026-10-22"))
        run_pull(project, config, store, as_of=ts("2026-10-28T06:00"))
        plans = plan_catch_up(config, store, ts("2026-10-30T12:00"))
        assert [(p.trigger, p.window.start, p.window.end) for p in plans] == [
            ("backfill", ts("2026-10-08"), ts("2026-10-15")),
            ("catch-up", ts("2026-10-24"), ts("2026-10-31")),
        ]


class Recorder:
    def __init__(self) -> None:
        self.events: list[object] = []
        self.lock = threading.Lock()

    def __call__(self, event: object) -> None:
        with self.lock:
            self.events.append(event)

    def finished(self) -> list:
        with self.lock:
            return [e.run for e in self.events if isinstance(e, RunFinished)]


@contextmanager
def running(project, store, catch_up: bool = True, **options) -> Iterator[tuple]:
    """A started scheduler and a recorder of its events; shut down at the end."""
    scheduler = Scheduler(project, store, **options)
    recorder = Recorder()
    scheduler.events.subscribe(recorder)
    scheduler.start(catch_up=catch_up)
    try:
        yield scheduler, recorder
    finally:
        scheduler.shutdown(grace_s=1)


def test_scheduler_catches_up_at_start_and_runs_now(write_project, shop):
    project = load_project(write_project(extra=SCHEDULED))
    clock = lambda: datetime(2026, 10, 30, 12, 0, tzinfo=UTC)  # noqa: E731
    with Store(project.store_path) as store, running(project, store, clock=clock) as (scheduler, recorder):
        assert scheduler.wait_idle(timeout=PROCESS_S)
        runs = recorder.finished()
        assert [(r.trigger, r.status) for r in runs] == [("catch-up", "succeeded")]
        assert scheduler.next_fire_times()["daily_orders"] is not None
        scheduler.run_now("daily_orders")
        assert scheduler.wait_idle(timeout=PROCESS_S)
        assert [r.trigger for r in recorder.finished()] == ["catch-up", "manual"]


class CountingConnections(SourceConnections):
    """Source databases that note the threads that readied and took them."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared_on: list[str] = []
        self.taken_on: list[str] = []

    def prepare(self) -> None:
        self.prepared_on.append(threading.current_thread().name)
        super().prepare()

    def take(self) -> duckdb.DuckDBPyConnection:
        self.taken_on.append(threading.current_thread().name)
        return super().take()


def test_a_worker_readies_its_next_source_database_after_its_pulls(write_project, shop):
    project = load_project(write_project(extra=SCHEDULED))
    clock = lambda: datetime(2026, 10, 30, 12, 0, tzinfo=UTC)  # noqa: E731
    with (
        Store(project.store_path) as store,
        CountingConnections() as connections,
        running(project, store, clock=clock, connections=connections) as (scheduler, recorder),
    ):
        assert scheduler.wait_idle(timeout=PROCESS_S)
        scheduler.run_now("daily_orders")
        assert scheduler.wait_idle(timeout=PROCESS_S)
        assert [r.status for r in recorder.finished()] == ["succeeded", "succeeded"]
        assert len(connections.taken_on) == 2
        assert connections.prepared_on  # by the workers, on their own threads
        assert all(name.startswith("pull") for name in connections.prepared_on)


SLOW_SQL = (
    "SELECT date_trunc('day', ordered_at) AS bucket, count(*) AS orders "
    "FROM orders, range(3000000000) GROUP BY ALL"
)


def test_a_fire_while_a_pull_runs_is_coalesced_and_cancel_commits_nothing(write_project, shop):
    project = load_project(write_project(sql=SLOW_SQL))
    with Store(project.store_path) as store:
        started = threading.Event()
        with running(project, store, catch_up=False) as (scheduler, recorder):
            scheduler.events.subscribe(lambda e: started.set() if type(e).__name__ == "RunStarted" else None)
            assert scheduler.run_now("daily_orders") is not None
            assert started.wait(PROCESS_S)
            assert scheduler.run_now("daily_orders") is None
            assert any(isinstance(e, Notice) and "coalesced" in e.message for e in recorder.events)
            scheduler.cancel("daily_orders")
            assert scheduler.wait_idle(timeout=PROCESS_S)
            [run] = recorder.finished()
            assert run.status == "cancelled"
            assert store.history("daily_orders") == []


def test_an_observer_may_ask_the_scheduler_when_told_a_fire_was_coalesced(write_project, shop):
    """The app's status bar asks which metrics run when the scheduler says something; it must
    not find the scheduler's lock held by the very call that said it (the app hung so)."""
    project = load_project(write_project(sql=SLOW_SQL))
    with Store(project.store_path) as store:
        started = threading.Event()
        asked: list[list[str]] = []
        with running(project, store, catch_up=False) as (scheduler, recorder):

            def observe(event: object) -> None:
                if type(event).__name__ == "RunStarted":
                    started.set()
                if isinstance(event, Notice) and "coalesced" in event.message:
                    asked.append(scheduler.running_metrics())

            scheduler.events.subscribe(observe)
            assert scheduler.run_now("daily_orders") is not None
            assert started.wait(PROCESS_S)
            fire = threading.Thread(target=scheduler.run_now, args=("daily_orders",), daemon=True)
            fire.start()
            fire.join(PROCESS_S)
            assert not fire.is_alive(), "the scheduler deadlocked on its own lock"
            assert asked == [["daily_orders"]]
            scheduler.cancel("daily_orders")
            assert scheduler.wait_idle(timeout=PROCESS_S)


def test_broken_project_file_keeps_the_last_good_configuration(write_project, shop):
    path = write_project(extra=SCHEDULED)
    project = load_project(path)
    with Store(project.store_path) as store:
        scheduler = Scheduler(project, store)
        path.write_text(path.read_text().replace('grain = "day"', 'grain = "fortnight"'))
        assert scheduler.reload_if_changed() is False
        assert "fortnight" in (scheduler.last_error or "")
        assert scheduler.project.metrics["daily_orders"].grain.value == "day"
        path.write_text(
            path.read_text()
            .replace('grain = "fortnight"', 'grain = "day"')
            .replace('"0 6 * * *"', '"30 7 * * *"')
        )
        assert scheduler.reload_if_changed() is True
        assert scheduler.project.metrics["daily_orders"].schedule == "30 7 * * *"
        scheduler.shutdown(grace_s=0)


def test_retry_failed_reruns_exactly_the_uncovered_failed_windows(write_project, tmp_path):
    project = load_project(write_project())
    config = project.metrics["daily_orders"]
    with Store(project.store_path) as store:
        failed = run_pull(
            project, config, store, trigger="backfill", window=window("2026-10-01", "2026-10-08")
        )
        assert failed.status == "failed"  # shop.duckdb does not exist yet
        make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-03T10:00"), "DE", 2.0)])
        runs = retry_failed(project, store)
        assert [(r.trigger, r.status, r.window_start, r.window_end) for r in runs] == [
            ("retry", "succeeded", ts("2026-10-01"), ts("2026-10-08"))
        ]
        assert retry_failed(project, store) == []


ALERTS = """
[[metrics.daily_orders.alerts]]
kind = "threshold"
name = "few orders"
measure = "orders"
below = 2
series = { country = "DE" }
command = "{python} -c 'import sys; open(\\"fired.jsonl\\", \\"a\\").write(sys.stdin.read() + \\"\\\\n\\")'"

[[metrics.daily_orders.alerts]]
kind = "failure"

[[metrics.daily_orders.alerts]]
kind = "restatement"
older_than = 2
change_pct = 5
"""


def test_alerts_fire_once_per_episode_and_resolve(write_project, tmp_path):
    shop = make_orders(
        tmp_path / "shop.duckdb",
        [(1, ts("2026-10-29T10:00"), "DE", 2.0), (2, ts("2026-10-25T10:00"), "DE", 2.0)],
    )
    path = write_project(project_text() + ALERTS.replace("{python}", sys.executable))
    project = load_project(path)
    as_of = ts("2026-10-30T12:00")
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store, as_of=as_of)
        run_pull(project, "daily_orders", store, as_of=as_of)
        states = {s.rule: s for s in store.alert_states()}
        assert list(states) == ["few orders"]
        assert states["few orders"].state == "firing"
        assert "orders at 2026-10-29 00:00:00: country=DE: 1 < 2" in states["few orders"].message
        lines = (tmp_path / "fired.jsonl").read_text().splitlines()
        assert len(lines) == 1  # once per episode, not on every run
        assert list(json.loads(lines[0])) == ["metric", "rule", "kind", "state", "since", "message"]

        con = duckdb.connect(str(shop))
        con.execute(
            "INSERT INTO orders VALUES (3, '2026-10-29 11:00', 'DE', 1.0), (4, '2026-10-25 11:00', 'DE', 1.0)"
        )
        con.close()
        run_pull(project, "daily_orders", store, as_of=as_of)
        states = {s.rule: s for s in store.alert_states()}
        assert states["few orders"].state == "resolved"
        assert states["restatement#3"].state == "firing"
        assert len((tmp_path / "fired.jsonl").read_text().splitlines()) == 2

        shop.unlink()
        run_pull(project, "daily_orders", store, as_of=as_of)
        out = io.StringIO()
        assert main(["alerts", "--json", "--project", str(path)], out=out) == 0
        listed = json.loads(out.getvalue())
        assert listed[0]["state"] == "firing"
        assert {a["rule"]: a["state"] for a in listed}["failure#2"] == "firing"


def test_daemon_pulls_on_schedule_and_stops_cleanly_on_sigterm(write_project, shop, tmp_path):
    path = write_project(extra='every = "2s"\nallow_empty = true')
    lines = []
    with lookback_daemon("schedule", "--project", str(path)) as daemon:
        for line in daemon.stdout:
            lines.append(line)
            if sum("succeeded" in x for x in lines) >= 2 or "failed" in line:
                break
        second = lookback_process("schedule", "--project", str(path))
        _, second_err = second.communicate(timeout=PROCESS_S)
        assert second.returncode == 1
        assert "cannot start the scheduler" in second_err
        assert f"PID {daemon.pid}" in second_err
        daemon.send_signal(signal.SIGTERM)
        rest, err = daemon.communicate(timeout=PROCESS_S)
    assert daemon.returncode == 0, err
    text = "".join(lines) + rest
    assert "(catch-up)" in text and "(schedule)" in text
    assert text.rstrip().endswith("scheduler stopped")
    with Store(tmp_path / "lookback.duckdb") as store:
        assert all(r.status == "succeeded" for r in store.runs())


def test_schedule_log_names_metric_sql_errors(write_project, shop):
    """A metric whose SQL breaks does not stop the others."""
    text = project_text(extra=SCHEDULED) + textwrap.dedent("""
        [metrics.broken]
        source = "shop"
        grain = "day"
        lookback = "7d"
        retries = 0
        schedule = "0 6 * * *"
        sql = "SELECT ordered_at AS bucket, count(*) AS n FROM orderz GROUP BY ALL"
    """)
    project = load_project(write_project(text))
    clock = lambda: datetime(2026, 10, 30, 12, 0, tzinfo=UTC)  # noqa: E731
    with Store(project.store_path) as store:
        with running(project, store, clock=clock) as (scheduler, recorder):
            assert scheduler.wait_idle(timeout=PROCESS_S)
        runs = {r.metric: r for r in recorder.finished()}
        assert runs["daily_orders"].status == "succeeded"
        assert runs["broken"].status == "failed" and "orderz" in runs["broken"].error


def test_a_wall_clock_jump_triggers_one_catch_up(write_project, shop):
    """A laptop that wakes up: wall time moved far more than the monotonic clock."""
    project = load_project(write_project(extra=SCHEDULED))
    wall = [datetime(2026, 10, 30, 12, 0, tzinfo=UTC)]
    mono = [1000.0]
    with (
        Store(project.store_path) as store,
        running(project, store, clock=lambda: wall[0], monotonic=lambda: mono[0]) as (scheduler, recorder),
    ):
        assert scheduler.wait_idle(timeout=PROCESS_S)
        scheduler._tick()
        mono[0] += 1.0
        wall[0] += timedelta(seconds=1)
        scheduler._tick()
        assert scheduler.wait_idle(timeout=PROCESS_S)
        assert [r.trigger for r in recorder.finished()] == ["catch-up"]
        # asleep for three days: the clock jumps, the monotonic clock barely moves
        mono[0] += 1.0
        wall[0] += timedelta(days=3)
        scheduler._tick()
        assert scheduler.wait_idle(timeout=PROCESS_S)
        assert [r.trigger for r in recorder.finished()] == ["catch-up", "catch-up"]
        assert any(isinstance(e, Notice) and "clock jumped" in e.message for e in recorder.events)


def test_sigterm_during_a_pull_cancels_it_after_the_grace_period(write_project, shop, tmp_path):
    path = write_project(sql=SLOW_SQL, extra='every = "1h"')
    with lookback_daemon("schedule", "--project", str(path)) as daemon:
        for line in daemon.stdout:
            if "started (catch-up)" in line:
                break
        daemon.send_signal(signal.SIGTERM)
        rest, err = daemon.communicate(timeout=PROCESS_S)
    assert daemon.returncode == 0, err
    assert "running pulls get 10 s before they are cancelled" in rest
    assert "cancelled" in rest
    with Store(tmp_path / "lookback.duckdb") as store:
        [run] = store.runs()
        assert run.status == "cancelled"
        assert store.history("daily_orders") == []
