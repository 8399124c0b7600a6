"""A cron schedule fires on the weekdays cron means (0 and 7 Sunday, 1 Monday), everywhere the
program plans by it: the scheduler's trigger, replays, the count of a replay, the editor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lookback_gui.core.project import parse_project
from lookback_gui.core.pull.replay import count_replay_times, replay_times
from lookback_gui.core.timing.cron import cron_trigger, weekday_field


def _weekdays(expression: str, days: int = 14) -> list[str]:
    trigger = cron_trigger(expression, UTC)
    moment, fired = datetime(2026, 12, 6, tzinfo=UTC), []  # a Sunday
    end = moment + timedelta(days=days)
    while True:
        moment = trigger.get_next_fire_time(None, moment + timedelta(seconds=1))
        if moment is None or moment >= end:
            return sorted(set(fired), key=["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].index)
        fired.append(moment.strftime("%a"))


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0", ["Sun"]),
        ("7", ["Sun"]),
        ("6,0", ["Sun", "Sat"]),
        ("5-7", ["Sun", "Fri", "Sat"]),
        ("0-2", ["Sun", "Mon", "Tue"]),
        ("*/2", ["Sun", "Tue", "Thu", "Sat"]),
        ("1/3", ["Mon", "Thu"]),
        ("MON-FRI", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("sat,sun", ["Sun", "Sat"]),
        ("*", ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]),
    ],
)
def test_weekdays_are_those_cron_means(field, days):
    assert _weekdays(f"0 6 * * {field}") == days


def test_a_weekday_out_of_range_is_refused():
    for field in ("8", "3-1", "1-9"):
        with pytest.raises(ValueError, match="day of week"):
            weekday_field(field)


def test_replays_and_their_count_fire_on_weekdays_only(tmp_path):
    project = parse_project(
        '[sources.s]\ntype = "duckdb"\npath = "s.duckdb"\n\n[metrics.m]\nsource = "s"\n'
        'grain = "day"\nlookback = "7d"\nschedule = "0 6 * * 1-5"\n'
        'sql = "SELECT $as_of AS bucket, 1 AS n"\n',
        tmp_path / "lookback.toml",
    )
    config = project.metrics["m"]
    start, end = datetime(2026, 11, 1), datetime(2026, 12, 1)  # November 2026: 21 weekdays
    times = replay_times(config, start, end)
    assert {t.strftime("%a") for t in times} == {"Mon", "Tue", "Wed", "Thu", "Fri"}
    assert len(times) == 21 == count_replay_times(config, start, end)
