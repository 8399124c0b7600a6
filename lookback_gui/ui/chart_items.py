"""The chart's items as they are made: the styled plot with its legend, the markers of plain,
revised, partial and removed buckets, the shaded provisional region, and the lines of the
moments marked (schema changes, new definitions)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt

from lookback_gui.ui.chart_axes import BucketAxis, ValueAxis
from lookback_gui.ui.chart_model import MARKER_SIZE_PX, ChartData

REVISED = pg.mkBrush("#ef6c00")
NORMAL = pg.mkBrush("#1565c0")
REMOVED_PEN = pg.mkPen("#c62828", width=2)
PARTIAL_PEN = pg.mkPen("#1565c0", width=2)
GRID_PEN = pg.mkPen("#e3e3e3")  # opaque: alpha-blended grid lines cost Qt ~10 ms a frame
HOVER_PEN = pg.mkPen("k", width=2)


def styled_plot(axis: BucketAxis) -> tuple[pg.PlotWidget, pg.LegendItem]:
    """The chart's plot, ``axis`` at the bottom, with an opaque light grid of major and minor
    ticks, and its legend in one row at the top."""
    plot = pg.PlotWidget(axisItems={"bottom": axis, "left": ValueAxis()})
    # one row at the top, in the headroom above the values (like the provisional label)
    legend = plot.addLegend(
        offset=(10, 2),
        brush=pg.mkBrush(255, 255, 255, 200),
        labelTextColor="#303030",
        colCount=5,
        verSpacing=-6,
    )
    plot.setAccessibleName("Metric chart")
    plot.showGrid(x=True, y=True)
    plot.setBackground(None)
    plot.getAxis("left").setWidth(72)
    for side in ("bottom", "left"):  # major and minor ticks, an opaque light grid
        side_axis = plot.getAxis(side)
        # labels of the minor level too while they fit (pyqtgraph drops them at 60 % fill)
        side_axis.setStyle(
            maxTickLevel=1, tickAlpha=255, textFillLimits=[(0, 0.95), (2, 0.85), (4, 0.5), (6, 0.2)]
        )
        side_axis.setTickPen(GRID_PEN)
        side_axis.setZValue(-200)  # below the plot's items (the view box is at -100)
    return plot, legend


def marker_items(tip: Callable[[float, float, Any], str]) -> tuple[pg.ScatterPlotItem, ...]:
    """The markers of plain, revised, partial and removed buckets, each with tooltip ``tip``
    (it gets the bucket's index as its ``data``)."""
    plain = pg.ScatterPlotItem(
        hoverable=True, tip=tip, hoverPen=HOVER_PEN, symbol="o", size=5, pen=pg.mkPen(None), brush=NORMAL
    )
    revised = pg.ScatterPlotItem(
        hoverable=True,
        tip=tip,
        hoverPen=HOVER_PEN,
        symbol="d",
        size=MARKER_SIZE_PX,
        pen=pg.mkPen("#bf360c"),
        brush=REVISED,
        name="revised",
    )
    partial = pg.ScatterPlotItem(
        hoverable=True,
        tip=tip,
        hoverPen=HOVER_PEN,
        symbol="o",
        size=17,
        pen=PARTIAL_PEN,
        brush=pg.mkBrush(None),
        name="partial (still incomplete)",
    )
    removed = pg.ScatterPlotItem(
        hoverable=True,
        tip=tip,
        hoverPen=HOVER_PEN,
        symbol="x",
        size=MARKER_SIZE_PX,
        pen=REMOVED_PEN,
        brush=pg.mkBrush("#c62828"),
        name="removed",
    )
    return plain, revised, partial, removed


def provisional_items(plot: pg.PlotWidget) -> tuple[pg.LinearRegionItem, pg.TextItem]:
    """The shaded provisional region (inside the lookback) and its label, both hidden."""
    region = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(255, 193, 7, 40), pen=pg.mkPen(None))
    region.setZValue(-10)
    region.setVisible(False)
    plot.addItem(region)
    # anchored at the region's right end: the region ends at the newest bucket, so a label
    # that started at its left would run out of the plot whenever the region is narrow
    label = pg.TextItem("provisional (inside the lookback)", color="#8d6e00", anchor=(1, 0))
    plot.addItem(label)
    label.setVisible(False)
    return region, label


def moment_lines(data: ChartData) -> list[pg.InfiniteLine]:
    """A vertical line at each schema change and new definition of ``data``, its tooltip the
    details."""
    lines = []
    for moments, label, colour, style, height in (
        (data.schema_changes, "schema change", "#6a1b9a", Qt.PenStyle.DotLine, 0.9),
        (data.definition_changes, "new definition", "#00695c", Qt.PenStyle.DashLine, 0.8),
    ):
        for at, text in moments:
            line = pg.InfiniteLine(
                pos=at,
                angle=90,
                pen=pg.mkPen(colour, style=style),
                label=label,
                labelOpts={"position": height, "color": colour},
            )
            line.setToolTip(text)
            lines.append(line)
    return lines


def with_bounds(y_range: tuple[float, float], data: ChartData) -> tuple[float, float]:
    """``y_range`` widened to the thresholds' bounds that lie near it (a bound far away from
    every value would squash the series into a line)."""
    low, high = y_range
    span = (high - low) or abs(high) or 1.0
    for mark in data.thresholds:
        if low - span <= mark.bound <= high + span:
            low, high = min(low, mark.bound), max(high, mark.bound)
    return low, high


def with_nowcast(y_range: tuple[float, float], data: ChartData) -> tuple[float, float]:
    """``y_range`` widened to the nowcast's expected values and their intervals, so that the
    dashed line and its band stay in view (as the comparison chart and a chosen range keep
    them)."""
    low, high = y_range
    expected = [v for n in data.nowcast.values() for v in n if v is not None and math.isfinite(v)]
    if not expected:
        return low, high
    return min(low, min(expected)), max(high, max(expected))
