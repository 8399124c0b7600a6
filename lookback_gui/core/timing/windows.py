"""Time buckets and lookback windows.

All bucket arithmetic happens on naive wall-clock times in the metric's time zone: a day bucket
runs from local midnight to the next local midnight, so at daylight-saving changes it is 23 or 25
hours long, exactly as an analyst reading a daily report expects.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from lookback_gui.core.timing.durations import parse_duration


class Grain(enum.StrEnum):
    """The size of one bucket."""

    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


# Timestamps a user gives, and the span of a lookback, stay well inside what datetime and DuckDB
# can count: a window or backfill near year 1 or 9999 would overflow.
EARLIEST = datetime(1900, 1, 1)
LATEST = datetime(2200, 1, 1)
_RANGE_TEXT = "timestamps lie between 1900-01-01 and 2199-12-31"
MAX_LOOKBACK = timedelta(days=36525)  # 100 years

_FIXED = {
    Grain.MINUTE: timedelta(minutes=1),
    Grain.HOUR: timedelta(hours=1),
    Grain.DAY: timedelta(days=1),
    Grain.WEEK: timedelta(weeks=1),
}


def bucket_start(moment: datetime, grain: Grain) -> datetime:
    """The start of the bucket that contains ``moment`` (a naive local time)."""
    if grain is Grain.MINUTE:
        return moment.replace(second=0, microsecond=0)
    if grain is Grain.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain is Grain.DAY:
        return day
    if grain is Grain.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def add_buckets(start: datetime, grain: Grain, count: int) -> datetime:
    """``start`` moved by ``count`` buckets (negative goes back); ``start`` should be aligned."""
    if grain is Grain.MONTH:
        months = start.year * 12 + (start.month - 1) + count
        return start.replace(year=months // 12, month=months % 12 + 1)
    return start + count * _FIXED[grain]


def buckets_between(start: datetime, end: datetime, grain: Grain) -> int:
    """How many whole buckets lie in [start, end); both must be aligned."""
    if grain is Grain.MONTH:
        return (end.year - start.year) * 12 + (end.month - start.month)
    return int((end - start) / _FIXED[grain])


def lookback_buckets(lookback: int | str, grain: Grain) -> int:
    """The lookback as a number of buckets; raise ValueError when it is not a whole number."""
    if isinstance(lookback, bool):
        raise ValueError('the lookback must be a duration like "7d" or a number of buckets')
    if isinstance(lookback, int):
        if lookback < 1:
            raise ValueError(f"the lookback must be at least 1 bucket, not {lookback}")
        return _bounded(lookback, grain)
    if grain is Grain.MONTH:
        raise ValueError(
            f"'{lookback}' is a duration, but months differ in length: "
            "give a month grain its lookback as a number of buckets (lookback = 3)"
        )
    duration = parse_duration(lookback)
    size = _FIXED[grain]
    if duration <= timedelta(0):
        raise ValueError(f"the lookback must be longer than zero, not '{lookback}'")
    if duration % size:
        raise ValueError(f"'{lookback}' is not a whole number of {grain.value} buckets")
    return _bounded(duration // size, grain)


def _bounded(buckets: int, grain: Grain) -> int:
    span = buckets * 31 if grain is Grain.MONTH else None
    too_long = span > MAX_LOOKBACK.days if span is not None else buckets > MAX_LOOKBACK // _FIXED[grain]
    if too_long:
        raise ValueError(
            f"a lookback of {buckets} {grain.value} buckets is too long: it may span "
            f"at most 100 years ({MAX_LOOKBACK // _FIXED.get(grain, timedelta(days=31))}"
            f" {grain.value} buckets)"
        )
    return buckets


@dataclass(frozen=True)
class Window:
    """The buckets one pull covers.

    Attributes:
        start: the first bucket's start (inclusive).
        end: the end (exclusive): the start of the bucket after the last one.
        as_of: the moment the pull is as of (naive, metric time zone).
        partial_start: the start of the still-incomplete current bucket, if the window has one.
    """

    start: datetime
    end: datetime
    as_of: datetime
    partial_start: datetime | None


def compute_window(
    as_of: datetime, grain: Grain, buckets: int, complete_buckets_only: bool = False
) -> Window:
    """The lookback window of ``buckets`` buckets for a pull as of ``as_of`` (naive local)."""
    current = bucket_start(as_of, grain)
    if complete_buckets_only:
        end = current
        partial = None
    else:
        end = add_buckets(current, grain, 1)
        partial = current
    start = add_buckets(end, grain, -buckets)
    return Window(start=start, end=end, as_of=as_of, partial_start=partial)


def local_now(zone: ZoneInfo) -> datetime:
    """Now as a naive wall-clock time in ``zone``."""
    return datetime.now(UTC).astimezone(zone).replace(tzinfo=None, microsecond=0)


def parse_timestamp(text: str, zone: ZoneInfo) -> datetime:
    """Read a user's timestamp as a naive time in ``zone``.

    Accepted: ISO 8601 (with an offset it is converted to the zone; without one it is taken as
    local time), a date, ``now``, or a time relative to now like ``-2d`` or ``-36h``.
    """
    cleaned = text.strip()
    if not cleaned:
        raise ValueError(
            "an empty text is not a timestamp (use ISO 8601 like 2026-10-30T12:00, "
            "a date like 2026-10-30, now, or a time relative to now like -2d)"
        )
    if cleaned.lower() == "now":
        return local_now(zone)
    if cleaned.startswith("-") and cleaned[1:2].isdigit():
        try:
            return _in_range(local_now(zone) - parse_duration(cleaned[1:]), text)
        except OverflowError:
            raise ValueError(f"'{text}' is out of range: {_RANGE_TEXT}") from None
        except ValueError as exc:
            if "out of range" in str(exc) or "too long" in str(exc):
                raise
            raise ValueError(f"'{text}' is not a time relative to now (like -2d or -36h)") from None
    try:
        if len(cleaned) == 10:
            day = date.fromisoformat(cleaned)
            moment = datetime(day.year, day.month, day.day)
        else:
            moment = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"'{text}' is not a timestamp (use ISO 8601 like 2026-10-30T12:00, a date like "
            "2026-10-30, now, or a time relative to now like -2d)"
        ) from None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(zone).replace(tzinfo=None)
        except OverflowError:
            raise ValueError(f"'{text}' is out of range: {_RANGE_TEXT}") from None
    return _in_range(moment, text)


def _in_range(moment: datetime, text: str) -> datetime:
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"'{text}' is out of range: {_RANGE_TEXT}")
    return moment


def format_lookback(buckets: int, grain: Grain) -> int | str:
    """A lookback of ``buckets`` as the project file writes it (a duration, or a count)."""
    unit = {Grain.MINUTE: "m", Grain.HOUR: "h", Grain.DAY: "d", Grain.WEEK: "w"}.get(grain)
    return f"{buckets}{unit}" if unit else buckets
