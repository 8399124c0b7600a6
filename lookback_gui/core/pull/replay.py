"""Replay: run a metric's own schedule over the past, each pull as of its scheduled time.

Only SQL that replays its source with ``$as_of`` can say what a pull at a past moment would have
seen, so only such a metric can be replayed. Each pull is known at its scheduled time (see the
store's *Knowledge time*), so a replay fills in the revision history the metric would have had
and never changes what later pulls knew.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from lookback_gui.core.errors import UsageError
from lookback_gui.core.project import MetricConfig, Project
from lookback_gui.core.pull.backfill import run_windows
from lookback_gui.core.pull.control import PullControl
from lookback_gui.core.sources import SourceConnections
from lookback_gui.core.store import RunRecord, Store, uses_as_of
from lookback_gui.core.store.events import Observer, ignore
from lookback_gui.core.timing.cron import cron_trigger, weekday_field
from lookback_gui.core.timing.windows import Window, compute_window, local_now

TRIGGER = "replay"


def replay_times(
    config: MetricConfig, start: datetime, end: datetime, *, snapshots: bool = False
) -> list[datetime]:
    """The metric's scheduled times in [start, end) (naive local times).

    ``every`` counts from ``start``; a cron schedule fires at its own times. Raises UsageError
    for a metric without a schedule or whose SQL does not use ``$as_of`` (unless its source
    reads a table's snapshot as of each pull: ``snapshots``).
    """
    _check_replayable(config, snapshots)
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
        trigger = cron_trigger(config.schedule, config.zone)
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


def _check_replayable(config: MetricConfig, snapshots: bool = False) -> None:
    if not uses_as_of(config.sql) and not snapshots:
        raise UsageError(
            f"metric {config.name}: its SQL does not use $as_of, so a pull cannot see the "
            "source as it was at a past moment; use 'lookback backfill' to pull the past as "
            "the source is now"
        )
    if not config.every and not config.schedule:
        raise UsageError(f"metric {config.name} has no schedule ('schedule' or 'every') to replay")


def count_replay_times(config: MetricConfig, start: datetime, end: datetime, snapshots: bool = False) -> int:
    """How many scheduled times :func:`replay_times` finds in [start, end), counted without
    listing them (a century of a five-minute schedule is counted at once).

    ``every`` is counted exactly; a cron schedule by its times per day on each day it fires,
    and exactly on the first and last day (a change of daylight saving time may add or drop
    one). Raises UsageError as :func:`replay_times` does.
    """
    _check_replayable(config, snapshots)
    if end <= start:
        return 0
    if config.every:
        step = config.every
        return -(-(end - start) // step)  # ceiling
    assert config.schedule is not None
    start = max(start, EPOCH)  # the cron trigger has no times before 1970
    if end <= start:
        return 0
    first_day = datetime.combine(start.date(), time()) + timedelta(days=1)
    last_day = datetime.combine(end.date(), time())
    if last_day <= first_day:
        return len(replay_times(config, start, end))
    count = len(replay_times(config, start, first_day)) + len(replay_times(config, last_day, end))
    minute, hour, dom, month, dow = config.schedule.split()
    per_day = len(_cron_values(minute, 0, 59)) * len(_cron_values(hour, 0, 23))
    days = (last_day - first_day).days
    if (dom, month, dow) == ("*", "*", "*"):
        return count + per_day * days
    fires_on = _days_it_fires(config, dom, month, dow)
    day = first_day.date()
    for _ in range(days):
        count += per_day * fires_on(day)
        day += timedelta(days=1)
    return count


EPOCH = datetime(1970, 1, 1)
_WEEKDAYS = {name: index for index, name in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}


def _same_kind_of_day(day: date) -> date:
    """A day of 1972-1999 with the same month, day of month and weekday as ``day`` (every
    such combination occurs within 28 years, February 29th included)."""
    for year in range(1972, 2000):
        with contextlib.suppress(ValueError):
            same = date(year, day.month, day.day)
            if same.weekday() == day.weekday():
                return same
    return day


_NAMES = {
    name: index
    for index, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


def _cron_values(field: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    """The values one field of a (valid) cron expression takes: ``*``, ``a``, ``a-b``,
    ``*/n``, ``a-b/n``, ``a/n`` and lists of them."""
    values: set[int] = set()
    for part in field.lower().split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = low, high
        else:
            a, _, b = span.partition("-")
            known = names if names is not None else _NAMES
            first = int(known.get(a, a))
            last = int(known.get(b, b)) if b else (high if step_text else first)
        values.update(range(first, last + 1, step))
    return values


def _days_it_fires(config: MetricConfig, dom: str, month: str, dow: str) -> Callable[[date], int]:
    """Whether the cron schedule fires on a day at all (1 or 0): its day of month, month and
    weekday must all match, as the scheduler's trigger reads them (weekdays as cron counts
    them, 0 and 7 Sunday, or their names). A field this reading does not know is left to the
    trigger itself."""
    try:
        days, months = _cron_values(dom, 1, 31), _cron_values(month, 1, 12)
        weekdays = _cron_values(weekday_field(dow), 0, 6, _WEEKDAYS)
    except ValueError:
        trigger = cron_trigger(config.schedule or "", config.zone)
        cache: dict[tuple[int, int, int], int] = {}

        def asked(day: date) -> int:
            key = (day.month, day.day, day.weekday())
            if key not in cache:
                same = _same_kind_of_day(day)
                begin = datetime.combine(same, time()).replace(tzinfo=config.zone)
                fire = trigger.get_next_fire_time(None, begin)
                cache[key] = int(fire is not None and fire.astimezone(config.zone).date() == same)
            return cache[key]

        return asked

    def fires_on(day: date) -> int:
        return int(day.day in days and day.month in months and day.weekday() in weekdays)

    return fires_on


def replay_windows(
    config: MetricConfig,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
    *,
    snapshots: bool = False,
) -> list[Window]:
    """The windows of a replay of [start, end): one per scheduled time, never after ``now``.

    ``snapshots``: the metric's source reads a table's snapshot as of each pull
    (``snapshot_as_of``), which replays it as ``$as_of`` SQL does."""
    now = now or local_now(config.zone)
    return [
        compute_window(moment, config.grain, config.buckets, config.complete_buckets_only)
        for moment in replay_times(config, start, min(end, now), snapshots=snapshots)
    ]


def replay(
    project: Project,
    metric: MetricConfig | str,
    store: Store,
    windows: list[Window],
    *,
    control: PullControl | None = None,
    observer: Observer = ignore,
    on_run: Callable[[int, int, RunRecord], None] | None = None,
    clock: Callable[[], datetime] | None = None,
    connections: SourceConnections | None = None,
) -> list[RunRecord]:
    """Pull each of ``windows`` (from :func:`replay_windows`) in order, as trigger ``replay``;
    a failed pull does not stop the others, cancelling stops the rest."""
    config = project.metric(metric) if isinstance(metric, str) else metric
    return run_windows(
        project,
        config,
        store,
        [(TRIGGER, w) for w in windows],
        control=control,
        observer=observer,
        on_run=on_run,
        clock=clock,
        connections=connections,
    )
