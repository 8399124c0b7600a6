"""The scheduler: recurring pulls in the background that never leave a gap.

One APScheduler job per scheduled metric fires into a small worker pool; at most one pull runs
per metric (a fire while one runs is coalesced) and per source (default one at a time). At start,
and when the wall clock jumps (a laptop wakes up), every metric whose last scheduled time passed
without a successful pull gets one catch-up pull, after back-filling the buckets that no
successful pull covered. The planning (:mod:`planning`) takes the time as an argument, so it
is tested without waiting.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from lookback_gui.core.applog import log_unexpected, where_details_are
from lookback_gui.core.errors import LookbackError
from lookback_gui.core.project import Project, load_project
from lookback_gui.core.pull import PullControl, backfill_windows, run_windows
from lookback_gui.core.schedule.jobs import AUDIT_SUFFIX, TICK_JOB, Jobs, trigger_for
from lookback_gui.core.schedule.planning import (
    PlannedPull,
    failed_windows,
    held_message,
    hold_large_gap_fill,
    is_due,
    local_time,
    plan_catch_up,
    retry_failed,
)
from lookback_gui.core.schedule.upkeep import check_freshness
from lookback_gui.core.sources import SourceConnections
from lookback_gui.core.store import CatchUpFacts, Store
from lookback_gui.core.store.catalog import CatalogLease
from lookback_gui.core.store.events import Fanout, GapFillHeld, Notice, Progress
from lookback_gui.core.timing.windows import compute_window

__all__ = [
    "AUDIT_SUFFIX",
    "Clock",
    "PlannedPull",
    "Scheduler",
    "failed_windows",
    "held_message",
    "hold_large_gap_fill",
    "is_due",
    "plan_catch_up",
    "retry_failed",
    "trigger_for",
    "utc_now",
]

Clock = Callable[[], datetime]  # aware UTC now


def utc_now() -> datetime:
    return datetime.now(UTC)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


class Scheduler:
    """Runs a project's scheduled pulls on worker threads.

    Attributes:
        project: the configuration in force (the last one that loaded without error).
        events: subscribe observers here; they are called on worker threads.
    """

    TICK_S = 1.0
    RELOAD_EVERY_S = 2.0
    JUMP_S = 90.0

    def __init__(
        self,
        project: Project,
        store: Store,
        *,
        workers: int = 2,
        per_source: int = 1,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        connections: SourceConnections | None = None,
    ):
        self.project = project
        self.store = store
        self._connections = connections
        self.events = Fanout()
        self._clock = clock
        self._monotonic = monotonic
        self._per_source = per_source
        self._workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pull")
        self._aps = BackgroundScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}
        )
        self._jobs = Jobs(self._aps)
        self._lock = threading.Lock()
        self._running: dict[str, PullControl] = {}
        self._futures: set[Future[None]] = set()
        self._sources: dict[str, threading.BoundedSemaphore] = {}
        self._paused_metrics: set[str] = set()
        self._paused_all = False
        self._stopping = threading.Event()
        self._project_mtime = _mtime(self.project.path)
        self._last_reload_check = 0.0
        self._last_tick: tuple[datetime, float] | None = None
        self._held: dict[str, list[PlannedPull]] = {}  # gap fills that wait for a confirmation
        self.last_error: str | None = None
        self._lease = store.scheduler_lease()
        if isinstance(self._lease, CatalogLease):
            self._lease.lost = self._lease_lost

    # -- life cycle -----------------------------------------------------------------------

    def start(self, catch_up: bool = True) -> None:
        """Start firing the project's schedules (and catch up what is owed).

        One process at a time runs a project's scheduler: raises StoreBusyError naming the one
        that does. Pulls asked for by hand (:meth:`run_now`, :meth:`backfill`) work either way.
        """
        self._lease.take()
        self._sync_jobs()
        self._aps.add_job(self._tick, IntervalTrigger(seconds=self.TICK_S), id=TICK_JOB)
        self._aps.start()
        if catch_up:
            self.catch_up()

    def _lease_lost(self, message: str) -> None:
        """Another process took the scheduling lease over (this one was cut off from the team
        store's catalog for too long): stop firing here; pulls by hand still work."""
        self.last_error = message
        with contextlib.suppress(Exception):
            self._aps.pause()
        self._say("error", message + "; scheduled pulls stop here")

    def shutdown(self, grace_s: float = 10.0) -> None:
        """Stop firing, give running pulls ``grace_s`` seconds, then cancel them. Returns once
        every thread of the scheduler (APScheduler's, its jobs', the pulls') has ended."""
        self._stopping.set()
        if self._aps.running:  # a job still running (a tick, a fire) only submits or reads
            self._aps.shutdown(wait=True)
        deadline = time.monotonic() + grace_s
        with self._lock:
            pending = list(self._futures)
        for future in pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(Exception):  # a pull's failure is recorded in its run
                future.result(timeout=remaining)
        self.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._connections is not None:  # the databases made ready for its pull threads
            self._connections.prune()
        self._lease.give_back()

    @property
    def running(self) -> bool:
        return self._aps.running and not self._stopping.is_set()

    # -- jobs -----------------------------------------------------------------------------

    def _sync_jobs(self) -> None:
        """Bring the jobs in line with the project (see :meth:`Jobs.sync`)."""
        self._jobs.sync(self.project, self._fire, self._fire_audit, self._paused_metrics, self._paused_all)

    def _fire(self, metric: str) -> None:
        config = self.project.metrics.get(metric)
        if config is None:
            return
        now = local_time(self._clock(), config)
        window = compute_window(now, config.grain, config.buckets, config.complete_buckets_only)
        self.submit(metric, [PlannedPull("schedule", window)])

    def _fire_audit(self, metric: str) -> None:
        from lookback_gui.core.insight.advisor import audit_window

        config = self.project.metrics.get(metric)
        if config is None or metric in self._paused_metrics or self._paused_all:
            return
        self.submit(metric, [PlannedPull("audit", audit_window(config, local_time(self._clock(), config)))])

    def submit(self, metric: str, plans: list[PlannedPull]) -> Future[None] | None:
        """Run ``plans`` for ``metric`` on a worker, unless a pull of it is already running."""
        if self._stopping.is_set() or not plans:
            return None
        with self._lock:
            busy = metric in self._running
            if not busy:
                control = PullControl()
                self._running[metric] = control
                future = self._pool.submit(self._work, metric, plans, control)
                self._futures.add(future)
        if busy:  # said without the lock: an observer may ask the scheduler (running_metrics)
            self._say(
                "info",
                f"{metric}: a pull is already running; this {plans[0].trigger} fire is coalesced into it",
                metric,
            )
            return None
        future.add_done_callback(self._futures.discard)
        return future

    def run_now(
        self, metric: str, trigger: str = "manual", as_of: datetime | None = None
    ) -> Future[None] | None:
        config = self.project.metric(metric)
        now = as_of or local_time(self._clock(), config)
        window = compute_window(now, config.grain, config.buckets, config.complete_buckets_only)
        return self.submit(metric, [PlannedPull(trigger, window)])

    def backfill(
        self, metric: str, start: datetime, end: datetime, as_known_then: bool = False
    ) -> Future[None] | None:
        """Back-fill [start, end) of ``metric`` with what is known now (or, ``as_known_then``,
        each chunk as of its own end)."""
        config = self.project.metric(metric)
        now = local_time(self._clock(), config)
        return self.submit(
            metric,
            [
                PlannedPull("backfill", w)
                for w in backfill_windows(config, start, end, now, as_known_then=as_known_then)
            ],
        )

    def _work(self, metric: str, plans: list[PlannedPull], control: PullControl) -> None:
        try:
            config = self.project.metrics.get(metric)
            if config is None:
                return
            gate = self._source_gate(config.source)
            fills = [(p.trigger, p.window) for p in plans if p.trigger == "backfill"]
            rest = [(p.trigger, p.window) for p in plans if p.trigger != "backfill"]
            source = self.project.sources[config.source]
            for batch, workers in ((fills, min(self._workers, source.concurrency)), (rest, 1)):
                # one pull at a time runs alone, so that a failure of one (even a bug) does not
                # drop the rest of the plan; parallel pulls all run to the end anyway
                for part in [batch] if workers > 1 else [[item] for item in batch]:
                    if not part or control.cancelled:
                        continue
                    try:
                        run_windows(
                            self.project,
                            config,
                            self.store,
                            part,
                            workers=workers,
                            control=control,
                            observer=self.events,
                            gate=gate,
                            clock=lambda: local_time(self._clock(), config),
                            connections=self._connections,
                        )
                    except LookbackError as exc:
                        self._say("error", f"{metric}: {exc}", metric)
                    except Exception as exc:
                        log_unexpected(f"a {part[0][0]} pull of {metric}", exc)
                        self._say(
                            "error",
                            f"{metric}: internal error in a {part[0][0]} pull: "
                            f"{type(exc).__name__}: {exc} ({where_details_are()}); "
                            "the rest of the plan goes on",
                            metric,
                        )
        except LookbackError as exc:
            self._say("error", f"{metric}: {exc}", metric)
        except Exception as exc:  # nobody reads this worker's future: the log keeps it
            self._say("error", f"{metric}: " + log_unexpected(f"a planned pull of {metric}", exc), metric)
        finally:
            with self._lock:
                self._running.pop(metric, None)
        if self._connections is not None and not self._stopping.is_set():
            self._connections.prepare()  # this worker's next pull starts at once

    def _source_gate(self, source: str) -> threading.BoundedSemaphore:
        with self._lock:
            if source not in self._sources:
                config = self.project.sources.get(source)
                limit = max(self._per_source, config.concurrency if config else 1)
                self._sources[source] = threading.BoundedSemaphore(limit)
            return self._sources[source]

    # -- catch-up -------------------------------------------------------------------------

    def catch_up(self) -> list[str]:
        """Submit what every scheduled metric owes now; return the metrics that got work."""
        return self._catch_up()

    def _catch_up(self, only: str | None = None) -> list[str]:
        started: list[str] = []
        if self._paused_all:
            return started  # owed pulls are caught up at resume
        known = self.store.catch_up_facts()  # every metric's runs in one read
        none = CatchUpFacts(None, None, [])
        for config in self.project.metrics.values():
            if not config.scheduled or config.name in self._paused_metrics:
                continue
            if only is not None and config.name != only:
                continue
            plans = plan_catch_up(
                config, self.store, local_time(self._clock(), config), known.get(config.name, none)
            )
            if not plans:
                continue
            plans, held = hold_large_gap_fill(plans)
            fills = sum(p.trigger == "backfill" for p in plans)
            if held:
                with self._lock:
                    self._held[config.name] = held
                message = held_message(config.name, held)
                self._say("warning", message, config.name)
                self.events(
                    GapFillHeld(config.name, len(held), held[0].window.start, held[-1].window.end, message)
                )
            if fills:
                self._say(
                    "info",
                    f"{config.name}: back-filling {fills} chunk(s) that no pull "
                    "covered, then one catch-up pull",
                    config.name,
                )
            if self.submit(config.name, plans) is not None:
                started.append(config.name)
        return started

    def held_gap_fill(self, metric: str) -> int:
        """How many pulls the gap fill of ``metric`` that waits for a confirmation makes."""
        with self._lock:
            return len(self._held.get(metric, []))

    def fill_held_gap(self, metric: str) -> Future[None] | None:
        """Run the gap fill of ``metric`` that waited for a confirmation (the app asked)."""
        with self._lock:
            held = self._held.pop(metric, [])
        return self.submit(metric, held) if held else None

    # -- control --------------------------------------------------------------------------

    def pause(self, metric: str | None = None) -> None:
        """Stop starting pulls (of ``metric``, or of every metric). The scheduler's own upkeep
        goes on: project-file re-sync, freshness alerts and noticing a clock jump."""
        if metric is None:
            self._paused_all = True
        else:
            self._paused_metrics.add(metric)
        self._jobs.pause(metric)

    def resume(self, metric: str | None = None, catch_up: bool = True) -> None:
        """Start pulls again, first catching up what was owed while paused (unless
        ``catch_up`` is False: the caller then calls :meth:`catch_up` where a store read may
        block, never on a GUI thread)."""
        if metric is None:
            self._paused_all = False
        else:
            self._paused_metrics.discard(metric)
        if self._paused_all:
            return
        self._jobs.resume(metric, self._paused_metrics)
        if catch_up and self._aps.running:
            self._catch_up(only=metric)

    @property
    def paused(self) -> bool:
        return self._paused_all

    def cancel(self, metric: str | None = None) -> None:
        """Cancel the running pull of ``metric``, or all of them."""
        with self._lock:
            controls = [c for m, c in self._running.items() if metric in (None, m)]
        for control in controls:
            control.cancel()

    def running_metrics(self) -> list[str]:
        with self._lock:
            return list(self._running)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no pull runs (for tests and shutdown); return whether it got idle."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self._futures)
            if not pending:
                return True
            for future in pending:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    future.result(timeout=remaining)
                except TimeoutError:
                    return False
                except Exception:  # a pull's failure is recorded in its run
                    continue

    def next_fire_times(self) -> dict[str, datetime | None]:
        return self._jobs.next_fire_times()

    # -- periodic work --------------------------------------------------------------------

    def _tick(self) -> None:
        with self._lock:
            running = list(self._running.items())
        for metric, control in running:
            percent = control.progress()
            if percent is not None:
                self.events(Progress(run_id=control.run_id or 0, metric=metric, percent=percent))
        mono = self._monotonic()
        if mono - self._last_reload_check >= self.RELOAD_EVERY_S:
            self._last_reload_check = mono
            self.reload_if_changed()
        wall = self._clock()
        if self._last_tick is not None:
            wall_delta = (wall - self._last_tick[0]).total_seconds()
            mono_delta = mono - self._last_tick[1]
            if wall_delta - mono_delta > self.JUMP_S:
                self._say("info", f"the clock jumped {wall_delta - mono_delta:.0f} s (woke up?): catching up")
                self.catch_up()
        self._last_tick = (wall, mono)
        check_freshness(self.project, self.store, self._clock, self.events)

    def reload_if_changed(self) -> bool:
        """Re-read the project file if it changed; keep the last good one if it is broken."""
        mtime = _mtime(self.project.path)
        if mtime == self._project_mtime:
            return False
        self._project_mtime = mtime
        try:
            project = load_project(self.project.path)
        except LookbackError as exc:
            self.last_error = str(exc)
            self._say(
                "error", f"the project file no longer loads; keeping the last good configuration: {exc}"
            )
            return False
        self.last_error = None
        self.project = project
        self._sync_jobs()
        self._say("info", f"project file reloaded: {len(project.metrics)} metric(s)")
        return True

    def _say(self, level: str, message: str, metric: str | None = None) -> None:
        self.events(Notice(level=level, message=message, metric=metric))
