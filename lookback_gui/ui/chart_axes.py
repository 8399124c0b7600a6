"""The axes of a chart of buckets: time that ticks no finer than the grain and names the
years in view, and values in the app's one number format."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg

from lookback_gui.ui.chart_model import in_view
from lookback_gui.ui.models import fmt_number

# the room one time label takes on the axis ("Nov 17", "23:00", "Dec 2026" and the gap after it)
LABEL_PX = 90

GRAIN_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400, "month": 28 * 86400}


class BucketAxis(pg.DateAxisItem):
    """The time axis of a chart of buckets: no ticks between bucket starts (a daily chart has
    no 06:00), and the year(s) in view in its label (:meth:`years`).

    Attributes:
        grain_s: the shortest bucket of the grain in seconds, or None for any tick.
        buckets: the bucket starts (epoch seconds) of the series shown, for ticks when the
            view is narrower than one of the axis's own tick steps.
    """

    def __init__(self) -> None:
        super().__init__(orientation="bottom")
        self.utcOffset = 0  # buckets are wall-clock times of the metric's zone
        self.grain_s: float | None = None
        self.buckets: np.ndarray = np.empty(0)

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[Any]:
        levels = super().tickValues(minVal, maxVal, size)
        if not self.grain_s:
            return levels
        most = max(1, int(size / LABEL_PX))
        kept = [(spacing, values) for spacing, values in levels if spacing >= self.grain_s * 0.99]
        if kept:
            # one level, labelled in the finest one's form: each coarser level's ticks (the 1st
            # of a month) are left out of the finer levels, so they join them here; thinned to
            # what fits, since labels of several levels drawn at once run into each other
            merged = sorted({float(v) for _spacing, values in kept for v in values})
            if len(merged) > most:
                merged = merged[:: int(np.ceil(len(merged) / most))]
            return [(kept[-1][0], merged)]
        lo, hi = in_view(self.buckets, (minVal, maxVal))
        buckets = self.buckets[lo:hi]
        if len(buckets) > most:
            buckets = buckets[:: int(np.ceil(len(buckets) / most))]
        return [(self.grain_s, [float(v) for v in buckets])]

    def years(self, x_range: tuple[float, float]) -> str:
        """The year, or first and last year, of ``x_range``."""
        from datetime import UTC, datetime

        try:
            first, last = (datetime.fromtimestamp(v, UTC).year for v in x_range)
        except (OverflowError, ValueError, OSError):
            return ""
        return str(first) if first == last else f"{first}–{last}"

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        from datetime import UTC, datetime

        if spacing >= 365 * 86400 * 0.99:
            form = "%Y"
        elif spacing >= 28 * 86400 * 0.99:
            form = "%b %Y"
        elif spacing >= 86400 * 0.99:
            form = "%b %d"
        elif spacing >= 60:
            form = "%H:%M"
        else:
            form = "%H:%M:%S"
        out = []
        for value in values:
            try:
                out.append(datetime.fromtimestamp(value, UTC).strftime(form))
            except (OverflowError, ValueError, OSError):
                out.append("")
        return out


class ValueAxis(pg.AxisItem):
    """The value axis, its numbers in the app's one format (12,000 rather than 12000)."""

    def __init__(self) -> None:
        super().__init__(orientation="left")
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        if spacing >= 1:
            return [fmt_number(round(v * scale)) for v in values]
        return [fmt_number(v * scale) for v in values]
