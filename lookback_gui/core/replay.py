"""Replay: run a metric's own schedule over the past, each pull as of its scheduled time.

Only SQL that replays its source with ``$as_of`` can say what a pull at a past moment would have
seen, so only such a metric can be replayed. Each pull is known at its scheduled time (see the
store's *Knowledge time*), so a replay fills in the revision history the metric would have had
and never changes what later pulls knew.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from lookback_gui.core.errors import UsageError
from lookback_gui.core.events import Observer, ignore
from lookback_gui.core.project import MetricConfig, Project
from lookback_gui.core.pull import PullControl, run_windows
from lookback_gui.core.sources import SourceConnections
from lookback_gui.core.store import RunRecord, Store, uses_as_of
from lookback_gui.core.windows import Window, compute_window, local_now

TRIGGER = "replay"


def replay_times(config: MetricConfig, start: datetime, end: datetime, *,
                 snapshots: bool = False) -> list[datetime]:
    """The metric's scheduled times in [start, end) (naive local times).

    ``every`` counts from ``start``; a cron schedule fires at its own times. Raises UsageError
    for a metric without a schedule or whose SQL does not use ``$as_of`` (unless its source
    reads a table's snapshot as of each pull: ``snapshots``).
    """
    if not uses_as_of(config.sql) and not snapshots:
        raise UsageError(
            f"metric {config.name}: its SQL does not use $as_of, so a pull cannot see the "
            "source as it was at a past moment; use 'lookback backfill' to pull the past as "
            "the source is now")
    if config.every:
        step = config.every
        if step <= timedelta(0):
            raise UsageError(f"metric {config.name}: 'every' must be positive to replay")
        times = []
        moment = start
        while moment < end:
            times.append(moment)
            moment += step
        return times
    if config.schedule:
        trigger = CronTrigger.from_crontab(config.schedule, timezone=config.zone)
        times = []
        fire = trigger.get_next_fire_time(None, start.replace(tzinfo=config.zone))
        while fire is not None:
            local = fire.astimezone(config.zone).replace(tzinfo=None)
            if local >= end:
                break
            times.append(local)
            fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        return times
    raise UsageError(f"metric {config.name} has no schedule ('schedule' or 'every') to replay")


def replay_windows(config: MetricConfig, start: datetime, end: datetime,
                   now: datetime | None = None, *, snapshots: bool = False) -> list[Window]:
    """The windows of a replay of [start, end): one per scheduled time, never after ``now``.

    ``snapshots``: the metric's source reads a table's snapshot as of each pull
    (``snapshot_as_of``), which replays it as ``$as_of`` SQL does."""
    now = now or local_now(config.zone)
    return [compute_window(moment, config.grain, config.buckets, config.complete_buckets_only)
            for moment in replay_times(config, start, min(end, now), snapshots=snapshots)]


def replay(project: Project, metric: MetricConfig | str, store: Store, windows: list[Window], *,
           control: PullControl | None = None, observer: Observer = ignore,
           on_run: Callable[[int, int, RunRecord], None] | None = None,
           clock: Callable[[], datetime] | None = None,
           connections: SourceConnections | None = None) -> list[RunRecord]:
    """Pull each of ``windows`` (from :func:`replay_windows`) in order, as trigger ``replay``;
    a failed pull does not stop the others, cancelling stops the rest."""
    config = project.metric(metric) if isinstance(metric, str) else metric
    return run_windows(project, config, store, [(TRIGGER, w) for w in windows],
                       control=control, observer=observer, on_run=on_run, clock=clock,
                       connections=connections)
