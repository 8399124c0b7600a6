"""The chart's nowcast: a dashed line from the last settled value through the expected values of
the provisional buckets, a band between their intervals, and a point per bucket whose tooltip
tells what it is expected to settle at."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from lookback_gui.ui.chart_model import ChartData, expected_text
from lookback_gui.ui.models import fmt_series
from lookback_gui.ui.slots import weak_callback


class NowcastLayer:
    """The nowcast items of a chart's plot; the curve is in the legend while it shows.

    Attributes:
        curve: the dashed line through the expected values.
        low, high: the (unseen) edges of the band.
        band: the band between the expected values' intervals.
        points: a point per provisional bucket, hoverable for its expected value.
    """

    def __init__(self, plot: pg.PlotWidget, legend: pg.LegendItem, hover: Any):
        self._legend = legend
        self._data: ChartData | None = None
        nowcast_pen = pg.mkPen("#6a1b9a", width=2, style=Qt.PenStyle.DashLine)
        self.curve = plot.plot(name="expected (nowcast)", pen=nowcast_pen)
        legend.removeItem(self.curve)  # in the legend while it is shown
        self.low = pg.PlotDataItem(pen=pg.mkPen(None))
        self.high = pg.PlotDataItem(pen=pg.mkPen(None))
        self.band = pg.FillBetweenItem(self.low, self.high, brush=pg.mkBrush(106, 27, 154, 45))
        self.band.setZValue(-5)
        plot.addItem(self.band)
        self.points = pg.ScatterPlotItem(
            hoverable=True,
            tip=weak_callback(self.tip, ""),
            hoverPen=hover,
            symbol="o",
            size=7,
            pen=pg.mkPen("#6a1b9a"),
            brush=pg.mkBrush(255, 255, 255, 220),
        )
        plot.addItem(self.points)

    def tip(self, x: float, y: float, data: Any) -> str:
        """The tooltip of the point of the bucket starting at ``data`` (epoch seconds)."""
        shown = self._data
        if shown is None or data is None:
            return ""
        expected = shown.nowcast.get(float(data))
        if not expected:
            return ""
        bucket = np.datetime64(int(float(data) * 1e6), "us").astype("datetime64[s]")
        label = str(bucket).replace("T", " ").removesuffix(" 00:00:00").removesuffix(":00")
        return f"{label}  ({fmt_series(shown.dims)}, {shown.measure})\n" + expected_text(*expected)

    def show(self, data: ChartData | None) -> None:
        """The nowcast of ``data``: joined to the newest bucket that is not provisional; nothing
        when it has none."""
        self._data = data
        drawing = data.drawing if data is not None else None
        if data is None or not data.nowcast or drawing is None:
            self.clear()
            self._legend.removeItem(self.curve)
            return
        xs = np.array(sorted(data.nowcast))
        ys = np.array([data.nowcast[x][0] for x in xs])
        lows = np.array([np.nan if data.nowcast[x][1] is None else data.nowcast[x][1] for x in xs])
        highs = np.array([np.nan if data.nowcast[x][2] is None else data.nowcast[x][2] for x in xs])
        before = np.searchsorted(drawing.x, xs[0]) - 1
        if before >= 0:  # start from the newest bucket that is not provisional
            anchor_x, anchor_y = drawing.x[before], float(data.arrays["value"][before])
            line_x, line_y = np.r_[anchor_x, xs], np.r_[anchor_y, ys]
            lows, highs = np.r_[anchor_y, lows], np.r_[anchor_y, highs]
        else:
            line_x, line_y = xs, ys
        self.curve.setData(line_x, line_y)
        band = ~np.isnan(lows) & ~np.isnan(highs)
        self.low.setData(line_x[band], lows[band])
        self.high.setData(line_x[band], highs[band])
        self.points.setData(x=xs, y=ys, data=xs)
        # the legend holds samples of its items, not the items: compare what they show
        if self.curve not in [sample.item for sample, _label in self._legend.items]:
            self._legend.addItem(self.curve, "expected (nowcast)")

    def clear(self) -> None:
        """Nothing drawn (the legend entry stays until the next :meth:`show`)."""
        for item in (self.curve, self.low, self.high):
            item.setData([], [])
        self.points.setData(x=[], y=[])

    def apply_palette(self, line: QColor, band: QColor, background: str) -> None:
        """The nowcast in the theme's ``line`` and ``band`` colours, its points filled with
        the plot's ``background``."""
        self.curve.setPen(pg.mkPen(line, width=2, style=Qt.PenStyle.DashLine))
        self.band.setBrush(pg.mkBrush(band))
        self.points.setPen(pg.mkPen(line))
        self.points.setBrush(pg.mkBrush(background))
