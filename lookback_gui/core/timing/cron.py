"""Cron schedules as cron means them, made into APScheduler triggers.

APScheduler 3's ``CronTrigger.from_crontab`` counts the weekdays of the fifth field from 0 =
Monday, where cron counts from 0 (and 7) = Sunday: ``0 6 * * 1-5`` would fire Tuesday to
Saturday. Here the weekday field is turned into weekday names first (which both read alike),
so every part of the program that plans by a cron expression fires on the days cron means.
"""

from __future__ import annotations

import re
from datetime import tzinfo

from apscheduler.triggers.cron import CronTrigger

_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _days(part: str) -> list[int]:
    """The cron weekdays (0 = Sunday) that one comma-separated part of the field names."""
    match = re.fullmatch(r"(\*|\d+|\d+-\d+)(?:/(\d+))?", part)
    if match is None:
        raise ValueError(f"day of week: cannot read '{part}'")
    span, step = match.group(1), int(match.group(2) or 1)
    if step < 1:
        raise ValueError(f"day of week: the step of '{part}' must be at least 1")
    if span == "*":
        first, last = 0, 6
    elif "-" in span:
        first, last = (int(v) for v in span.split("-"))
    else:
        first = last = int(span)
        if match.group(2):  # "1/2": from Monday on, every other day
            last = 6
    if not (0 <= first <= 7 and 0 <= last <= 7) or first > last:
        raise ValueError(f"day of week: '{part}' is not a range of 0-7 (0 and 7 are Sunday)")
    return [day % 7 for day in range(first, last + 1, step)]


def weekday_field(field: str) -> str:
    """The fifth cron field in weekday names (``1-5`` → ``mon,tue,wed,thu,fri``); a field
    written in names already (``MON-FRI``) is left as it is."""
    if not any(c.isdigit() for c in field) and field != "*" and not field.startswith("*/"):
        return field  # names, or '?': both schedulers read them alike
    if field == "*":
        return "*"
    days: list[int] = []
    for part in field.split(","):
        days.extend(_days(part))
    return ",".join(_NAMES[day] for day in sorted(set(days)))


def cron_trigger(expression: str, timezone: tzinfo | str) -> CronTrigger:
    """The trigger of a 5-field cron expression, weekdays counted as cron counts them."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError("a cron expression has 5 fields: minute hour day month weekday")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=weekday_field(weekday), timezone=timezone
    )
