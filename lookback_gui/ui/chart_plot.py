"""The plot of the chart's series: its curves (current and first reported), markers, nowcast,
provisional region and moment lines, and what of them the view shows as it moves and zooms."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from lookback_gui.ui.chart_axes import BucketAxis
from lookback_gui.ui.chart_items import (
    HOVER_PEN,
    marker_items,
    moment_lines,
    provisional_items,
    styled_plot,
    with_bounds,
    with_nowcast,
)
from lookback_gui.ui.chart_model import (
    ENVELOPE_COLUMNS,
    ChartData,
    curve_for_view,
    first_values,
    in_view,
    thin_markers,
)
from lookback_gui.ui.chart_nowcast import NowcastLayer
from lookback_gui.ui.chart_thresholds import threshold_items
from lookback_gui.ui.theme import chart_colours, nowcast_colours

MAX_PLAIN_POINTS = 2000  # plain buckets get a dot when at most this many are in view
CURVE_PEN = pg.mkPen("#1565c0", width=2)
# With more buckets in view than this the curve is drawn as its envelope (per pixel column the
# lowest and highest value), a dense band either way; a pen wider than one pixel would cost Qt's
# raster engine about 14 ms more per frame there.
THICK_CURVE_UP_TO = 20_000
THIN_CURVE_PEN = pg.mkPen("#1565c0", width=1)

Range = tuple[float, float]


def with_headroom(low: float, high: float) -> Range:
    """``low`` to ``high`` with headroom above the highest value for the provisional label."""
    return low, high + 0.12 * ((high - low) or abs(high) or 1)


class ChartPlot:
    """The chart's plot and its items, drawing the ChartData ``data``.

    The markers' tooltip is ``tip`` (given a bucket's index as its ``data``); a widget that
    gives one of its methods gives it through ``slots.weak_callback``.

    Attributes:
        data: the ChartData drawn (None before the first, or once cleared).
        plot, legend, axis: the plot widget, its legend and its time axis.
        curve, first_curve: the current and the first reported values.
        extent: an unseen item spanning the whole series (the view's "auto range").
        marker_items: plain, revised, partial and removed markers, in that order.
        nowcast: the NowcastLayer.
        region, region_label: the provisional region and its label.
        first_shown: whether the first reported values are drawn.
    """

    def __init__(self, tip: Callable[[float, float, Any], str]):
        self.data: ChartData | None = None
        self.first_shown = False
        self._first_values: np.ndarray | None = None
        self._marks: list[Any] = []  # the moments marked, the thresholds' lines
        self.axis = BucketAxis()
        self.plot, self.legend = styled_plot(self.axis)
        self.curve = self.plot.plot(name="current", pen=CURVE_PEN)
        # the curves hold only what the view shows (see curve_for_view); this invisible item
        # spans the whole series, so that "auto range" still shows all of it
        self.extent = self.plot.plot(pen=pg.mkPen(0, 0, 0, 0))  # drawn, but not seen
        self.first_curve = self.plot.plot(
            name="first reported", pen=pg.mkPen("#9e9e9e", width=1, style=Qt.PenStyle.DashLine)
        )
        self.first_curve.setVisible(False)
        self.legend.removeItem(self.first_curve)  # in the legend while it is shown
        self.marker_items = marker_items(tip)
        for item in self.marker_items:
            self.plot.addItem(item)
        self.nowcast = NowcastLayer(self.plot, self.legend, HOVER_PEN)
        self.region, self.region_label = provisional_items(self.plot)

    def view_range(self) -> tuple[Range, Range]:
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        return (x0, x1), (y0, y1)

    def show_series(self, data: ChartData, grain_s: int | None) -> None:
        """Make ``data`` (which has a drawing) the series drawn: its axes and extent; its curves
        and markers follow with :meth:`show_all` or :meth:`keep_view`."""
        assert data.drawing is not None
        self.data = data
        x = data.drawing.x
        self._first_values = None
        self.axis.buckets = x
        self.axis.grain_s = grain_s
        self.plot.setLabel("left", data.measure)
        self.legend.setVisible(True)
        self.extent.setData([float(x[0]), float(x[-1])], list(data.drawing.y_range))

    def show_all(self) -> list[list[float]]:
        """All of the series in view, from what the worker prepared (its envelope); returns
        the view's target range."""
        assert self.data is not None and self.data.drawing is not None
        drawing = self.data.drawing
        full = (float(drawing.x[0]), float(drawing.x[-1]))
        view = self.plot.getViewBox()
        y_range = with_bounds(with_nowcast(drawing.y_range, self.data), self.data)
        view.setRange(xRange=full, yRange=with_headroom(*y_range))
        target = [list(r) for r in view.targetRange()]
        # once the view has its final range and size, fit_to_view follows it
        self.show_curves(full, drawing.envelope)
        self.place_markers(full, drawing.y_range)
        return target

    def keep_view(self) -> None:
        """The series' curves and markers in the view as it is (the user's zoom or pan)."""
        x_range, y_range = self.view_range()
        self.show_curves(x_range)
        self.place_markers(x_range, y_range)

    def show_range(self, x_range: Range) -> list[list[float]]:
        """``x_range`` in view, the values in it (and their nowcast) filling the height;
        returns the view's target range."""
        data = self.data
        assert data is not None and data.drawing is not None
        lo, hi = in_view(data.drawing.x, x_range)
        shown = [data.arrays["value"][lo:hi]]
        if data.nowcast:
            expected = [
                v
                for xv, n in data.nowcast.items()
                for v in n
                if v is not None and x_range[0] <= xv <= x_range[1]
            ]
            shown.append(np.array(expected))
        ys = np.concatenate(shown)
        ys = ys[np.isfinite(ys)]
        low, high = (float(ys.min()), float(ys.max())) if len(ys) else data.drawing.y_range
        view = self.plot.getViewBox()
        view.setRange(xRange=x_range, yRange=with_headroom(low, high), padding=0)
        return [list(r) for r in view.targetRange()]

    def show_marks(self, data: ChartData, step: float) -> None:
        """The lines of ``data``'s moments and thresholds (``step``: a bucket's seconds)."""
        for mark in self._marks:
            self.plot.removeItem(mark)
        background = self.plot.backgroundBrush().color().name()
        self._marks = [*moment_lines(data), *threshold_items(data.thresholds, step, background)]
        for mark in self._marks:
            self.plot.addItem(mark)

    def show_provisional(self, data: ChartData) -> None:
        """The provisional region of ``data`` shaded and labelled, if it has one."""
        if data.provisional:
            self.region.setRegion(data.provisional)
            self.region.setVisible(True)
            self.region_label.setText(data.provisional_label)
            self.place_region_label()
        else:
            self.region.setVisible(False)
            self.region_label.setVisible(False)

    def place_markers(self, x_range: Range | None = None, y_range: Range | None = None) -> None:
        """Set the markers for the view (its current range unless given): those in view,
        thinned where they would pile up; plain buckets get a dot only when few are in view."""
        drawing = self.data.drawing if self.data is not None else None
        if drawing is None:
            return
        view = self.plot.getViewBox()
        if x_range is None or y_range is None:
            x_range, y_range = self.view_range()
        size = (view.width() or 1000.0, view.height() or 600.0)
        lo, hi = in_view(drawing.x, x_range)
        plain = self.marker_items[0]
        if hi - lo <= MAX_PLAIN_POINTS:
            a = self.data.arrays if self.data is not None else {}
            where = np.setdiff1d(np.arange(lo, hi), a["marked"], assume_unique=True)
            plain.setData(x=drawing.x[where], y=a["value"][where], data=where)
        else:
            plain.setData(x=[], y=[])
        for item, kind in zip(self.marker_items[1:], ("revised", "partial", "removed"), strict=True):
            where, xs, ys = drawing.marks[kind]
            chosen = thin_markers(xs, ys, x_range, y_range, size)
            item.setData(x=xs[chosen], y=ys[chosen], data=where[chosen])

    def fit_to_view(self, zone: str) -> None:
        """After the view moved or zoomed: its part of the curves, and its markers."""
        if self.data is None or self.data.drawing is None:
            return
        x_range, _ = self.view_range()
        self.show_curves(x_range)
        self.place_markers()
        self.place_region_label()
        self.label_time_axis(zone)

    def place_region_label(self) -> None:
        """The provisional label at the top of the view, in the headroom above the values,
        at the region's right end (or the view's, when that is further left)."""
        if self.data is None or not self.data.provisional:
            return
        (x0, x1), (_y0, y1) = self.view_range()
        start, end = self.data.provisional
        self.region_label.setVisible(start < x1 and end > x0)  # only beside its region
        self.region_label.setPos(min(end, x1), y1)
        legend = self.legend.sceneBoundingRect()
        if legend.intersects(self.region_label.sceneBoundingRect()):  # below the legend, then
            below = self.plot.getViewBox().mapSceneToView(legend.bottomLeft())
            self.region_label.setPos(min(end, x1), below.y())

    def label_time_axis(self, zone: str) -> None:
        """The time axis names the year(s) in view and the metric's ``zone``."""
        x_range, _ = self.view_range()
        years = self.axis.years(x_range) if self.data is not None else ""
        self.plot.setLabel("bottom", f"{years}  bucket start ({zone})".strip())

    def show_curves(self, x_range: Range, envelope: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """The current-value curve (``envelope`` if given) and, while it is shown, the
        first-reported one, for the view ``x_range``."""
        assert self.data is not None and self.data.drawing is not None
        x, value = self.data.drawing.x, self.data.arrays["value"]
        columns = self.plot.getViewBox().width() or ENVELOPE_COLUMNS
        xs, ys = envelope if envelope is not None else curve_for_view(x, value, x_range, columns)
        lo, hi = in_view(x, x_range)
        many = hi - lo > THICK_CURVE_UP_TO
        self.curve.setData(xs, ys, connect="finite", pen=THIN_CURVE_PEN if many else CURVE_PEN)
        if self.first_shown:
            if self._first_values is None:
                self._first_values = first_values(self.data.arrays)
            self.first_curve.setData(
                *curve_for_view(x, self._first_values, x_range, columns), connect="finite"
            )
        else:
            self.first_curve.setData([], [])

    def show_first(self, shown: bool) -> None:
        """The first reported values drawn (and in the legend) or not."""
        self.first_shown = shown
        self.first_curve.setVisible(shown)
        self.legend.removeItem(self.first_curve)
        if shown:
            self.legend.addItem(self.first_curve, "first reported")

    def clear(self, everything: bool) -> None:
        """Nothing drawn; ``everything``: no series either, no marks, and the last days in
        view (nothing of an earlier metric or project stays on show)."""
        if everything:
            self.data = None
            for mark in self._marks:
                self.plot.removeItem(mark)
            self._marks = []
            self.plot.setLabel("left", "")
            self.legend.setVisible(False)
            self.axis.grain_s = None
            self.show_empty_range()
        self.curve.setData([], [])
        self.first_curve.setData([], [])
        self.extent.setData([], [])
        for item in self.marker_items:
            item.setData(x=[], y=[])
        self.region.setVisible(False)
        self.region_label.setVisible(False)
        self.nowcast.clear()

    def show_empty_range(self) -> None:
        """The last seven days in view, with nothing drawn."""
        now = time.time()
        self.extent.setData([], [])
        self.plot.getViewBox().setRange(xRange=(now - 7 * 86400, now), yRange=(0, 1))

    def apply_palette(self, dark: bool) -> None:
        """Background, axes, grid and nowcast in the colours of the dark or light theme."""
        background, ink, grid = chart_colours(dark)
        self.plot.setBackground(background)
        self.legend.setBrush(
            pg.mkBrush(QColor(background).red(), QColor(background).green(), QColor(background).blue(), 200)
        )
        self.legend.setLabelTextColor(ink)
        for _sample, label in self.legend.items:  # the labels already there keep their colour
            label.setText(label.text, color=ink)
        self.region_label.setColor("#ffd54f" if dark else "#8d6e00")
        self.nowcast.apply_palette(*nowcast_colours(dark), background)
        for side in ("bottom", "left"):
            axis = self.plot.getAxis(side)
            axis.setPen(pg.mkPen(ink))
            axis.setTextPen(pg.mkPen(ink))
            axis.setTickPen(pg.mkPen(grid))
