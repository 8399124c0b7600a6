"""The scheduler: recurring pulls in the background that never leave a gap.

One APScheduler job per scheduled metric fires into a small worker pool; at most one pull runs
per metric (a fire while one runs is coalesced) and per source (default one at a time). At start,
and when the wall clock jumps (a laptop wakes up), every metric whose last scheduled time passed
without a successful pull gets one catch-up pull, after back-filling the buckets that no
successful pull covered. The planning takes a clock, so it is tested without waiting.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from lookback_gui.core.applog import log_unexpected, where_details_are
from lookback_gui.core.errors import LookbackError
from lookback_gui.core.project import MetricConfig, Project, load_project
from lookback_gui.core.pull import (
    MAX_BACKFILL_CHUNKS,
    PullControl,
    backfill_windows,
    run_pull,
    run_windows,
)
from lookback_gui.core.sources import SourceConnections
from lookback_gui.core.store import CatchUpFacts, RunRecord, Store
from lookback_gui.core.store.catalog import CatalogLease
from lookback_gui.core.store.events import Fanout, GapFillHeld, Notice, Observer, Progress
from lookback_gui.core.timing.cron import cron_trigger
from lookback_gui.core.timing.windows import Window, compute_window

Clock = Callable[[], datetime]  # aware UTC now
AUDIT_SUFFIX = "::audit"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PlannedPull:
    """One pull the scheduler owes: why, and for which window."""

    trigger: str
    window: Window


def trigger_for(config: MetricConfig) -> CronTrigger | IntervalTrigger | None:
    """The APScheduler trigger of a metric's ``schedule`` or ``every``, in its time zone."""
    if config.schedule:
        return cron_trigger(config.schedule, config.zone)
    if config.every:
        return IntervalTrigger(seconds=int(config.every.total_seconds()), timezone=config.zone)
    return None


def _local(moment: datetime, config: MetricConfig) -> datetime:
    return moment.astimezone(config.zone).replace(tzinfo=None)


def is_due(config: MetricConfig, last_seen: datetime, now: datetime) -> bool:
    """Whether a scheduled time passed after ``last_seen``, the latest moment a successful pull
    saw (both naive local)."""
    if config.every:
        return now - last_seen >= config.every
    if config.schedule:
        trigger = cron_trigger(config.schedule, config.zone)
        after = last_seen.replace(tzinfo=config.zone) + timedelta(seconds=1)
        fire = trigger.get_next_fire_time(None, after)
        return fire is not None and fire <= now.replace(tzinfo=config.zone)
    return False


def plan_catch_up(
    config: MetricConfig, store: Store, now: datetime, facts: CatchUpFacts | None = None
) -> list[PlannedPull]:
    """What a scheduled metric owes at ``now`` (naive local): back-fills, then one catch-up.

    Both go by coverage (the buckets successful pulls saw complete, see *Knowledge time*), never
    by a run's place in the log: a backfill or replay of the past neither makes the present look
    pulled nor covers a bucket it saw partial. The buckets owed lie between the first bucket
    any pull found data for (an empty pull of the time before the data starts is no anchor)
    and the start of the window the catch-up pull will cover; each is back-filled with what is
    known now.

    ``facts`` are the metric's runs as :meth:`Store.catch_up_facts` gives them, when the
    caller read them for the whole project at once.
    """
    if facts is None:
        first, last_seen = store.pull_extent(config.name)
    else:
        first, last_seen = facts.first, facts.last_seen
    current = compute_window(now, config.grain, config.buckets, config.complete_buckets_only)
    if last_seen is None:
        return [PlannedPull("catch-up", current)]
    if not is_due(config, last_seen, now):
        return []
    plans = []
    if first is not None:
        cursor = first  # a one-bucket lookback covers nothing: it starts at the first data
        coverage = store.coverage(config.name) if facts is None else facts.coverage
        for start, end in [*coverage, (current.start, current.start)]:
            hole_end = min(start, current.start)
            if cursor < hole_end:
                plans += [PlannedPull("backfill", w) for w in backfill_windows(config, cursor, hole_end, now)]
            cursor = max(cursor, end)
    plans.append(PlannedPull("catch-up", current))
    return plans


def failed_windows(store: Store, metric: str) -> list[RunRecord]:
    """Failed runs of ``metric`` whose window no later successful run has covered (one
    set-based query: a long run history is not walked run by run)."""
    return store.uncovered_failures(metric)


def retry_failed(
    project: Project,
    store: Store,
    metric: str | None = None,
    observer: Observer | None = None,
    clock: Callable[[], datetime] | None = None,
    control: PullControl | None = None,
    connections: SourceConnections | None = None,
) -> list[RunRecord]:
    """Re-run exactly the windows of failed runs not covered since; oldest first. Once
    ``control`` is cancelled, no further window is started."""
    names = [metric] if metric else list(project.metrics)
    runs: list[RunRecord] = []
    owed = store.uncovered_failures(metric)  # every metric's at once
    for name in names:
        config = project.metric(name)
        for failed in (r for r in owed if r.metric == name):
            if control is not None and control.cancelled:
                return runs
            assert failed.window_start and failed.window_end and failed.as_of
            window = Window(
                start=failed.window_start,
                end=failed.window_end,
                as_of=failed.as_of,
                partial_start=failed.partial_start,
            )
            runs.append(
                run_pull(
                    project,
                    config,
                    store,
                    trigger="retry",
                    window=window,
                    observer=observer or (lambda e: None),
                    clock=clock,
                    control=control,
                    connections=connections,
                )
            )
    return runs


def hold_large_gap_fill(plans: list[PlannedPull]) -> tuple[list[PlannedPull], list[PlannedPull]]:
    """The plans to run now, and the gap fill held back until it is confirmed: a gap fill of
    more than :data:`MAX_BACKFILL_CHUNKS` pulls waits (only the catch-up pull runs)."""
    fills = [p for p in plans if p.trigger == "backfill"]
    if len(fills) <= MAX_BACKFILL_CHUNKS:
        return plans, []
    return [p for p in plans if p.trigger != "backfill"], fills


def held_message(metric: str, held: list[PlannedPull]) -> str:
    """What the scheduler says of a gap fill it holds back, with the command that runs it."""
    start, end = held[0].window.start, held[-1].window.end
    return (
        f"{metric}: the gap fill would make {len(held)} pulls (more than "
        f"{MAX_BACKFILL_CHUNKS}) for [{start.isoformat(sep=' ')}, "
        f"{end.isoformat(sep=' ')}); it waits: run 'lookback backfill "
        f"{metric} --from {start.isoformat()} --to {end.isoformat()} --yes' "
        "to fill it; only the catch-up pull runs now"
    )


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
        self._job_specs: dict[str, tuple[object, ...]] = {}  # each job's schedule, to tell a change
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
        self._aps.add_job(self._tick, IntervalTrigger(seconds=self.TICK_S), id="__tick__")
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
        """Bring the jobs in line with the project: a job whose schedule did not change keeps
        its trigger and so its next fire time (saving the project file, however often, never
        delays a pull); only new jobs and changed schedules get new timers."""
        wanted: dict[str, tuple[CronTrigger | IntervalTrigger, tuple[object, ...]]] = {}
        for config in self.project.metrics.values():
            trigger = trigger_for(config)
            if trigger is not None:
                wanted[config.name] = (trigger, (config.schedule, config.every, config.timezone))
        for config in self.project.metrics.values():
            if config.audit_every is not None:
                wanted[f"{config.name}{AUDIT_SUFFIX}"] = (
                    IntervalTrigger(seconds=int(config.audit_every.total_seconds()), timezone=config.zone),
                    ("audit", config.audit_every, config.timezone),
                )
        present = {job.id for job in self._aps.get_jobs()}
        for job_id in present:
            if job_id != "__tick__" and job_id not in wanted:
                self._aps.remove_job(job_id)
                self._job_specs.pop(job_id, None)
        for job_id, (trigger, spec) in wanted.items():
            if job_id in present and self._job_specs.get(job_id) == spec:
                continue  # the same schedule: its timer runs on
            audit = job_id.endswith(AUDIT_SUFFIX)
            name = job_id.removesuffix(AUDIT_SUFFIX)
            self._aps.add_job(
                self._fire_audit if audit else self._fire,
                trigger,
                args=[name],
                id=job_id,
                replace_existing=True,
            )
            self._job_specs[job_id] = spec
            if name in self._paused_metrics or self._paused_all:
                self._aps.pause_job(job_id)

    def _fire(self, metric: str) -> None:
        config = self.project.metrics.get(metric)
        if config is None:
            return
        now = _local(self._clock(), config)
        window = compute_window(now, config.grain, config.buckets, config.complete_buckets_only)
        self.submit(metric, [PlannedPull("schedule", window)])

    def _fire_audit(self, metric: str) -> None:
        from lookback_gui.core.insight.advisor import audit_window

        config = self.project.metrics.get(metric)
        if config is None or metric in self._paused_metrics or self._paused_all:
            return
        self.submit(metric, [PlannedPull("audit", audit_window(config, _local(self._clock(), config)))])

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
        now = as_of or _local(self._clock(), config)
        window = compute_window(now, config.grain, config.buckets, config.complete_buckets_only)
        return self.submit(metric, [PlannedPull(trigger, window)])

    def backfill(
        self, metric: str, start: datetime, end: datetime, as_known_then: bool = False
    ) -> Future[None] | None:
        """Back-fill [start, end) of ``metric`` with what is known now (or, ``as_known_then``,
        each chunk as of its own end)."""
        config = self.project.metric(metric)
        now = _local(self._clock(), config)
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
                            clock=lambda: _local(self._clock(), config),
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
                config, self.store, _local(self._clock(), config), known.get(config.name, none)
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

    def _pull_jobs(self, metric: str | None = None) -> list[str]:
        return [
            job.id
            for job in self._aps.get_jobs()
            if job.id != "__tick__" and (metric is None or job.id in (metric, f"{metric}{AUDIT_SUFFIX}"))
        ]

    def pause(self, metric: str | None = None) -> None:
        """Stop starting pulls (of ``metric``, or of every metric). The scheduler's own upkeep
        goes on: project-file re-sync, freshness alerts and noticing a clock jump."""
        if metric is None:
            self._paused_all = True
        else:
            self._paused_metrics.add(metric)
        for job_id in self._pull_jobs(metric):
            self._aps.pause_job(job_id)

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
        for job_id in self._pull_jobs(metric):
            if job_id.removesuffix(AUDIT_SUFFIX) not in self._paused_metrics:
                self._aps.resume_job(job_id)
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
        out: dict[str, datetime | None] = {}
        for job in self._aps.get_jobs():
            if job.id != "__tick__" and not job.id.endswith(AUDIT_SUFFIX):
                out[job.id] = getattr(job, "next_run_time", None)
        return out

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
        self._check_freshness()

    def _check_freshness(self) -> None:
        from lookback_gui.core.insight.alerts import evaluate_alerts

        for config in self.project.metrics.values():
            if any(rule.kind == "freshness" for rule in config.alerts):
                try:
                    evaluate_alerts(
                        config,
                        self.store,
                        _local(self._clock(), config),
                        project_dir=self.project.directory,
                        observer=self.events,
                        kinds=("freshness",),
                    )
                except LookbackError as exc:
                    self._say("error", f"{config.name}: freshness alert: {exc}", config.name)

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
