"""Window arithmetic: the contract in DESIGN.md, DST days, week and month edges."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lookback_gui.core.timing.windows import (
    Grain,
    bucket_start,
    compute_window,
    lookback_buckets,
    parse_timestamp,
)


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_design_example_day_7d():
    window = compute_window(dt("2026-10-30T12:00"), Grain.DAY, lookback_buckets("7d", Grain.DAY))
    assert (window.start, window.end) == (dt("2026-10-24"), dt("2026-10-31"))
    assert window.partial_start == dt("2026-10-30")


def test_complete_buckets_only_ends_at_current_bucket():
    window = compute_window(dt("2026-10-30T12:00"), Grain.DAY, 7, complete_buckets_only=True)
    assert (window.start, window.end) == (dt("2026-10-23"), dt("2026-10-30"))
    assert window.partial_start is None


@pytest.mark.parametrize(
    ("as_of", "grain", "lookback", "start", "end"),
    [
        ("2026-10-30T12:34:56", Grain.MINUTE, "15m", "2026-10-30T12:20", "2026-10-30T12:35"),
        ("2026-10-30T12:34", Grain.HOUR, "36h", "2026-10-29T01:00", "2026-10-30T13:00"),
        # ISO weeks start on Monday; 2026-10-30 is a Friday
        ("2026-10-30T12:00", Grain.WEEK, "4w", "2026-10-05", "2026-11-02"),
        ("2026-11-01T23:59", Grain.WEEK, 2, "2026-10-19", "2026-11-02"),  # Sunday
        ("2026-11-02T00:00", Grain.WEEK, 1, "2026-11-02", "2026-11-09"),  # Monday midnight
        # months across a year end
        ("2026-01-15T00:00", Grain.MONTH, 3, "2025-11-01", "2026-02-01"),
        ("2026-12-31T23:59", Grain.MONTH, 12, "2026-01-01", "2027-01-01"),
        ("2024-02-29T10:00", Grain.DAY, 2, "2024-02-28", "2024-03-01"),
    ],
)
def test_window_edges(as_of, grain, lookback, start, end):
    window = compute_window(dt(as_of), grain, lookback_buckets(lookback, grain))
    assert (window.start, window.end) == (dt(start), dt(end))


def test_as_of_exactly_on_a_bucket_start_includes_that_bucket_as_partial():
    window = compute_window(dt("2026-10-30T00:00"), Grain.DAY, 7)
    assert window.end == dt("2026-10-31")
    assert window.partial_start == dt("2026-10-30")


@pytest.mark.parametrize(
    ("day", "hours"),
    [("2026-03-29", 23), ("2026-10-25", 25), ("2026-06-01", 24)],
)
def test_day_buckets_follow_the_local_calendar_across_dst(day, hours):
    """A day bucket in Europe/Berlin spans 23 or 25 real hours at the DST changes."""
    zone = ZoneInfo("Europe/Berlin")
    as_of = parse_timestamp(f"{day}T12:00:00+00:00", zone)
    window = compute_window(as_of, Grain.DAY, 1)
    assert window.start == dt(day)
    utc = ZoneInfo("UTC")
    real = window.end.replace(tzinfo=zone).astimezone(utc) - window.start.replace(tzinfo=zone).astimezone(utc)
    assert real == timedelta(hours=hours)


def test_as_of_with_offset_is_converted_to_the_metric_zone():
    zone = ZoneInfo("America/New_York")
    as_of = parse_timestamp("2026-10-31T02:30:00Z", zone)
    assert as_of == dt("2026-10-30T22:30")
    window = compute_window(as_of, Grain.DAY, 7)
    assert window.end == dt("2026-10-31")


def test_relative_as_of():
    zone = ZoneInfo("UTC")
    moment = parse_timestamp("-2d", zone)
    now = parse_timestamp("now", zone)
    assert timedelta(days=2) - timedelta(seconds=5) < now - moment <= timedelta(days=2, seconds=5)


@pytest.mark.parametrize(
    ("lookback", "grain", "expected"),
    [
        ("7d", Grain.DAY, 7),
        ("36h", Grain.HOUR, 36),
        ("4w", Grain.WEEK, 4),
        ("28d", Grain.WEEK, 4),
        ("2h", Grain.MINUTE, 120),
        (3, Grain.MONTH, 3),
        ("1d", Grain.HOUR, 24),
    ],
)
def test_lookback_in_buckets(lookback, grain, expected):
    assert lookback_buckets(lookback, grain) == expected


@pytest.mark.parametrize(
    ("lookback", "grain", "message"),
    [
        ("36h", Grain.DAY, "not a whole number of day buckets"),
        ("10d", Grain.WEEK, "not a whole number of week buckets"),
        ("90s", Grain.MINUTE, "not a whole number of minute buckets"),
        ("3w", Grain.MONTH, "number of buckets"),
        (0, Grain.DAY, "at least 1 bucket"),
        ("seven days", Grain.DAY, "is not a duration"),
    ],
)
def test_bad_lookbacks(lookback, grain, message):
    with pytest.raises(ValueError, match=message):
        lookback_buckets(lookback, grain)


def test_bucket_start_week_is_monday():
    assert bucket_start(dt("2026-11-08T23:00"), Grain.WEEK) == dt("2026-11-02")
