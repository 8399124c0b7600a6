"""Durations as users write them in the project file: ``"90s"``, ``"15m"``, ``"36h"``, ``"7d"``, ``"4w"``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "min": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_PATTERN = re.compile(r"^\s*(\d+)\s*(s|min|m|h|d|w)\s*$")


def parse_duration(text: str) -> timedelta:
    """Return the duration ``text`` names; raise ValueError with a readable reason otherwise."""
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(
            f"'{text}' is not a duration (a whole number and a unit: s, m, h, d or w, like \"15m\")"
        )
    try:
        return int(match.group(1)) * _UNITS[match.group(2)]
    except OverflowError:
        raise ValueError(f"'{text}' is too long a duration") from None


def format_duration(delta: timedelta) -> str:
    """The shortest exact spelling of ``delta`` in the units :func:`parse_duration` reads."""
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
