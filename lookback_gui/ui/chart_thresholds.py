"""How the chart draws a threshold rule judged on the nowcast: its bound as a horizontal line,
and the bucket it judges now with the expected value and the interval it is judged by.

The items are made here and owned by the chart, which removes them with its other marks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from lookback_gui.ui.chart_model import ThresholdMark, expected_text
from lookback_gui.ui.models import fmt_number

FIRING = "#c62828"
QUIET = "#ef6c00"


def threshold_items(
    marks: Sequence[ThresholdMark], bucket_s: float, background: str = "#ffffff"
) -> list[Any]:
    """The graphics items of ``marks`` (``bucket_s``: a bucket's width in seconds, for the
    width of the interval's caps; ``background``: the chart's, behind the labels); each item's
    tooltip says what the rule judges."""
    behind = QColor(background)
    behind.setAlpha(210)
    items: list[Any] = []
    judged: set[tuple[float, tuple[float, float | None, float | None]]] = set()
    for mark in marks:
        colour = FIRING if mark.firing else QUIET
        line = pg.InfiniteLine(
            pos=mark.bound,
            angle=0,
            movable=False,
            pen=pg.mkPen(colour, width=1.5, style=Qt.PenStyle.DashDotLine),
            label=f"{mark.rule}: {mark.side} {fmt_number(mark.bound)}",
            labelOpts={"position": 0.03, "color": colour, "anchors": [(0, 1), (0, 1)]},
        )
        line.setToolTip(mark.text)
        items.append(line)
        expected = mark.expected
        if mark.x is None or expected is None or (mark.x, expected) in judged:
            continue
        judged.add((mark.x, expected))
        value, low, high = expected
        if low is not None and high is not None:
            bar = pg.ErrorBarItem(
                x=np.array([mark.x]),
                y=np.array([value]),
                top=np.array([high - value]),
                bottom=np.array([value - low]),
                beam=0.5 * bucket_s,
                pen=pg.mkPen(colour, width=2),
            )
            bar.setToolTip(mark.text)
            bar.setZValue(5)
            items.append(bar)
        point = pg.ScatterPlotItem(
            x=[mark.x],
            y=[value],
            symbol="star",
            size=16,
            pen=pg.mkPen(colour),
            brush=pg.mkBrush(colour),
            hoverable=True,
            tip=lambda x, y, data, t=mark.text: t,
        )
        point.setZValue(6)
        items.append(point)
        label = pg.TextItem(
            f"{mark.rule}: {expected_text(value, low, high)}",
            color=colour,
            anchor=(1.05, 1.1),
            fill=pg.mkBrush(behind),
        )
        label.setPos(mark.x, value)
        items.append(label)
    return items
