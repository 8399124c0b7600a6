"""A metric's schedule in plain words with its next three fire times, as the metric editor shows
it under the schedule."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QLocale


def describe_schedule(kind: str, text: str, timezone: str) -> str:
    """The schedule (``kind`` "manual only", "cron" or "every", with its ``text``) in plain
    words with its next three fire times in ``timezone``, or why it is wrong."""
    text = text.strip()
    if kind == "manual only":
        return "pulled only when you ask (Run now)"
    if not text:
        return ""
    try:
        zone = zoneinfo.ZoneInfo(timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "unknown time zone"
    from apscheduler.triggers.interval import IntervalTrigger

    from lookback_gui.core.timing.cron import cron_trigger
    from lookback_gui.core.timing.durations import parse_duration

    try:
        if kind == "cron":
            from cron_descriptor import ExpressionDescriptor, Options

            if len(text.split()) != 5:
                raise ValueError("a cron expression has 5 fields: minute hour day month weekday")
            trigger: Any = cron_trigger(text, zone)
            options = Options()
            # the locale's clock: 06:00 where it has a 24-hour one, 06:00 AM where not
            options.use_24hour_time_format = (
                "a" not in QLocale().timeFormat(QLocale.FormatType.ShortFormat).lower()
            )
            words = ExpressionDescriptor(text, options).get_description()
        else:
            every = parse_duration(text)
            if every.total_seconds() <= 0:
                raise ValueError("must be longer than zero")
            trigger = IntervalTrigger(seconds=int(every.total_seconds()), timezone=zone)
            words = f"every {text}"
    except Exception as exc:
        return f"✗ {exc}"
    now = datetime.now(UTC).astimezone(zone)
    fires = []
    previous = None
    for _ in range(3):
        fire = trigger.get_next_fire_time(previous, now if previous is None else previous)
        if fire is None:
            break
        if previous is not None and fire <= previous:
            break
        fires.append(fire)
        previous = fire
        now = fire
    return f"{words}; next: " + ", ".join(f.strftime("%a %Y-%m-%d %H:%M") for f in fires)
