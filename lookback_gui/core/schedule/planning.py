"""What a scheduled metric owes: the catch-up pull and the back-fills before it, the failed
windows to retry, and the gap fills too large to run without a confirmation.

The planning takes the time as an argument, so it is tested without waiting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from lookback_gui.core.project import MetricConfig, Project
from lookback_gui.core.pull import MAX_BACKFILL_CHUNKS, PullControl, backfill_windows, run_pull
from lookback_gui.core.sources import SourceConnections
from lookback_gui.core.store import CatchUpFacts, RunRecord, Store
from lookback_gui.core.store.events import Observer
from lookback_gui.core.timing.cron import cron_trigger
from lookback_gui.core.timing.windows import Window, compute_window


@dataclass(frozen=True)
class PlannedPull:
    """One pull the scheduler owes: why, and for which window."""

    trigger: str
    window: Window


def local_time(moment: datetime, config: MetricConfig) -> datetime:
    """``moment`` (aware) as the naive local time of the metric's time zone."""
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
