"""The Advisor tab's charts: the settling curve of each measure, the largest error by age of the
policies picked, and the nowcast's error by age beside the raw provisional value's."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt

COLOURS = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828"]
# curves of several measures often lie on top of each other: each gets its own symbol and dash
SYMBOLS = ["o", "t", "s", "d", "x"]
STYLES = [
    Qt.PenStyle.SolidLine,
    Qt.PenStyle.DashLine,
    Qt.PenStyle.DotLine,
    Qt.PenStyle.DashDotLine,
    Qt.PenStyle.DashDotDotLine,
]

# a curve that lies within this many percentage points of an earlier one is drawn hollow
# around it and named so, or it would hide under it
SAME_CURVE_PP = 0.5


def make_plot(name: str, bottom: str, left: str) -> pg.PlotWidget:
    """A plot named ``name`` for screen readers, with a light grid and its axes' labels."""
    plot = pg.PlotWidget()
    plot.setAccessibleName(name)
    plot.setBackground(None)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setLabel("bottom", bottom)
    plot.setLabel("left", left)
    return plot


def plot_settling(plot: pg.PlotWidget, curve: list[dict[str, Any]]) -> None:
    """The share of the final value present by age, one curve per measure; a curve that lies on
    an earlier one is drawn as hollow rings around it, and named so."""
    measures = sorted({m for p in curve for m in p["share_present"]})
    drawn: list[tuple[str, dict[int, float]]] = []
    for index, measure in enumerate(measures):
        points = {
            p["age_buckets"]: p["share_present"][measure]
            for p in curve
            if p["share_present"].get(measure) is not None
        }
        if not points:
            continue
        same = next(
            (
                name
                for name, other in drawn
                if other.keys() == points.keys()
                and all(abs(other[a] - v) <= SAME_CURVE_PP for a, v in points.items())
            ),
            None,
        )
        colour = COLOURS[index % len(COLOURS)]
        style = STYLES[index % len(STYLES)]
        if same is None:  # its own curve: filled symbols
            plot.plot(
                list(points),
                list(points.values()),
                name=measure,
                symbol=SYMBOLS[index % len(SYMBOLS)],
                symbolSize=8,
                symbolBrush=colour,
                symbolPen=colour,
                pen=pg.mkPen(colour, width=2, style=style),
            )
        else:  # on an earlier curve: hollow rings around its points, and said so
            plot.plot(
                list(points),
                list(points.values()),
                name=f"{measure} (on the curve of {same})",
                symbol="o",
                symbolSize=15,
                symbolBrush=None,
                symbolPen=pg.mkPen(colour, width=2),
                pen=pg.mkPen(colour, width=2, style=style),
            )
        drawn.append((measure, points))


def plot_policy_errors(plot: pg.PlotWidget, picked: list[tuple[dict[str, Any], str, str]]) -> None:
    """The largest error by age of each picked policy (its row, its name in the legend, its
    colour), in place of what the plot showed."""
    plot.clear()
    legend = plot.getPlotItem().legend or plot.addLegend(offset=(-10, 10))
    legend.clear()
    for index, (row, name, colour) in enumerate(picked):
        points = [
            (e["age_buckets"], e["max_error_pct"])
            for e in row["max_error_by_age"]
            if e["max_error_pct"] is not None
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            plot.plot(
                list(xs),
                list(ys),
                name=name,
                stepMode=None,
                pen=pg.mkPen(colour, width=2, style=STYLES[index % len(STYLES)]),
                symbol=SYMBOLS[index % len(SYMBOLS)],
                symbolSize=6,
                symbolBrush=colour,
                symbolPen=colour,
            )


def plot_nowcast(plot: pg.PlotWidget, by_age: list[dict[str, Any]]) -> None:
    """The mean error by age of the nowcast and of the raw provisional value."""
    legend = plot.getPlotItem().legend or plot.addLegend(offset=(-10, 10))
    legend.clear()
    ages = [b["age_buckets"] for b in by_age]
    plot.plot(
        ages,
        [b["raw_error_pct"] for b in by_age],
        name="current value (raw)",
        pen=pg.mkPen("#c62828", width=2, style=Qt.PenStyle.DashLine),
        symbol="t",
        symbolSize=7,
        symbolBrush="#c62828",
        symbolPen="#c62828",
    )
    plot.plot(
        ages,
        [b["nowcast_error_pct"] for b in by_age],
        name="nowcast",
        pen=pg.mkPen("#1565c0", width=3),
        symbol="o",
        symbolSize=7,
        symbolBrush="#1565c0",
        symbolPen="#1565c0",
    )
