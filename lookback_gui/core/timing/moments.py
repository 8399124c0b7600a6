"""Moments: points in time, as opposed to buckets (calendar periods in a metric's zone).

The store keeps a run's moments (as-of, known time, start and end) as naive wall-clock times in
its metric's zone, and log lines in the zone of the computer that wrote them. JSON gives every
moment with its UTC offset, so runs of metrics in different zones sort and compare correctly;
tables print moments in the local zone of the computer, and say so (:func:`local_zone_note`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def aware(moment: datetime | None, zone: str | None) -> datetime | None:
    """``moment`` (naive, wall-clock time in ``zone``; None: UTC) with its zone attached; an
    aware moment stays as it is."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=_zone(zone))


def machine_aware(moment: datetime | None) -> datetime | None:
    """``moment`` (naive, wall-clock time of this computer, as log lines are written) with
    this computer's zone attached."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.astimezone()


def iso(moment: datetime | None, zone: str | None = None) -> str | None:
    """ISO 8601 with the UTC offset (``2026-10-30T12:00:00+01:00``)."""
    found = aware(moment, zone)
    return found.isoformat() if found is not None else None


def local(moment: datetime | None, zone: str | None = None) -> datetime | None:
    """``moment`` (naive in ``zone``, or aware) as a naive time in this computer's zone, for
    a table."""
    found = aware(moment, zone)
    return found.astimezone().replace(tzinfo=None) if found is not None else None


def offset_text(delta: timedelta | None) -> str:
    """A UTC offset as ``+01:00``."""
    minutes = int((delta or timedelta(0)).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def local_zone_note() -> str:
    """What a table says about its moments: ``times in local zone (UTC+01:00)``."""
    return f"times in local zone (UTC{offset_text(datetime.now().astimezone().utcoffset())})"
