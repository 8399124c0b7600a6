"""The comparison's series: loaded through the chart's model, stacked where the measure is
additive, and each drawn as one layer of curves, markers and nowcast in its own colour."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from lookback_gui.core.insight.additivity import Additivity, measure_additivity
from lookback_gui.core.project import MetricConfig
from lookback_gui.core.store import Store
from lookback_gui.ui.chart_model import (
    MARKER_SIZE_PX,
    ChartData,
    bucket_detail,
    curve_for_view,
    describe_point,
    in_view,
    load_chart,
    measure_nowcast,
    series_id,
    thin_markers,
)
from lookback_gui.ui.models import fmt_series

# Okabe & Ito (2008), "Color Universal Design": told apart with every common colour-vision
# deficiency. Black is the ink of the dark theme's background, so it is swapped for white there.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
MAX_COMPARED = len(PALETTE)  # more colours than these are no longer told apart
TOP_DEFAULT = 5
ADDITIVE_RULE = (
    "A measure is additive unless its name or its SQL expression says avg, "
    "average, mean, ratio, rate, pct, percent, share, median, percentile, "
    "quantile or distinct, takes min or max, or divides by a column."
)


def series_colours(dark: bool = False) -> tuple[str, ...]:
    """The palette of the compared series, in order, for a light or dark background."""
    return tuple("#FFFFFF" if dark and c == "#000000" else c for c in PALETTE)


@dataclass(frozen=True)
class Comparison:
    """What a comparison draw needs, loaded off the GUI thread.

    Attributes:
        metric, measure: what is compared.
        series: one ChartData per compared series, in the order asked for.
        offered: every (dims, measure, size) the metric offers, largest first per measure.
        additivity: whether the measure's series may be stacked, and why not.
        as_of_run, as_known_at: the state of the store shown (both None: the latest).
    """

    metric: str
    measure: str
    series: tuple[ChartData, ...]
    offered: list[tuple[dict[str, Any], str, float]] = field(default_factory=list)
    additivity: Additivity = field(default_factory=lambda: Additivity(True))
    as_of_run: int | None = None
    as_known_at: datetime | None = None

    @property
    def has_nowcast(self) -> bool:
        return any(s.nowcast for s in self.series)

    @property
    def provisional(self) -> tuple[float, float] | None:
        return self.series[0].provisional if self.series else None

    @property
    def provisional_label(self) -> str:
        return self.series[0].provisional_label if self.series else ""


def load_comparison(
    store: Store,
    config: MetricConfig,
    measure: str | None,
    chosen: Sequence[dict[str, Any]] | None,
    top: int = TOP_DEFAULT,
    settle: int | None = None,
    as_of_run: int | None = None,
    as_known_at: datetime | None = None,
) -> Comparison:
    """The series ``chosen`` of ``measure`` (or, with None, its ``top`` largest), each as the
    chart loads it: current, as known after run ``as_of_run`` or as known at ``as_known_at``
    (the chart's *As known after*). Current values come with their nowcast where the chart
    draws one (``settle`` known), from one pass over the history for all of them. Series that
    no longer exist are left out; at most MAX_COMPARED are loaded. Runs on a worker."""

    def one(dims: dict[str, Any] | None, of: str | None) -> ChartData:
        return load_chart(
            store, config.name, of, dims, as_of_run, config, settle, as_known_at, with_nowcast=False
        )

    first = one(dict(chosen[0]) if chosen else None, measure)
    measure = first.measure
    additivity = measure_additivity(measure, config.sql) if measure else Additivity(True)
    offered = first.series
    of_measure = [dims for dims, m, _size in offered if m == measure]
    if chosen is None:
        wanted = of_measure[: max(1, min(top, MAX_COMPARED))]
    else:
        ids = {series_id(d) for d in of_measure}
        wanted = [dict(d) for d in chosen if series_id(d) in ids][:MAX_COMPARED]
    datas = []
    for dims in wanted:
        if dims == first.dims and first.drawing is not None:
            datas.append(first)
        else:
            datas.append(one(dims, measure))
    datas = [d for d in datas if d.drawing is not None]
    if datas and settle is not None and as_of_run is None and as_known_at is None:
        expected = measure_nowcast(store, config, measure)
        datas = [dataclasses.replace(d, nowcast=expected.get(series_id(d.dims), {})) for d in datas]
    return Comparison(config.name, measure, tuple(datas), offered, additivity, as_of_run, as_known_at)


def stacked_levels(series: Sequence[ChartData]) -> tuple[np.ndarray, np.ndarray]:
    """The buckets of any of ``series`` (ascending, epoch seconds) and, per series, the top of
    its band when stacked: row k is the sum of the values of series 0..k at each bucket (a
    bucket a series lacks, or where it was removed, adds nothing)."""
    drawn = [s for s in series if s.drawing is not None]
    if not drawn:
        return np.array([]), np.zeros((0, 0))
    x = np.unique(np.concatenate([s.drawing.x for s in drawn if s.drawing is not None]))
    levels = np.zeros((len(drawn), len(x)))
    for k, data in enumerate(drawn):
        assert data.drawing is not None
        at = np.searchsorted(x, data.drawing.x)
        levels[k, at] = np.nan_to_num(data.arrays["value"], nan=0.0)
    return x, np.cumsum(levels, axis=0)


def point_tip(data: ChartData, index: Any) -> str:
    """The tooltip of a marker of a compared series: the bucket's value and its history.

    A plain function, not a method of the widget: a marker's tip is held by the marker, and a
    tip bound to the widget would put the widget in a reference cycle with its own plot items,
    left to the cycle collector, which deletes a Qt widget and its items in an order Qt does
    not survive (``__cxa_pure_virtual`` in ``QWidget::destroy``)."""
    if index is None or data.drawing is None:
        return ""
    a, i = data.arrays, int(index)
    label = str(a["bucket"][i].astype("datetime64[s]")).replace("T", " ")
    label = label.removesuffix(" 00:00:00").removesuffix(":00")
    first, versions, last_run, removed, partial = bucket_detail(a, i)
    return describe_point(
        label, data.dims, data.measure, float(a["value"][i]), first, versions, last_run, removed, partial
    )


class SeriesLayer:
    """The items of one compared series: its curve (in the legend), the band under it when
    stacked, and its revised, partial and removed markers, all in the series' colour.

    Attributes:
        data: the series' ChartData.
        colour: its colour.
        curve: its line, the item the legend entry toggles.
    """

    def __init__(self, plot: pg.PlotItem, data: ChartData, colour: str):
        self.data = data
        self.colour = colour
        self._plot = plot
        self.stacked = False
        self._marks: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.line: tuple[np.ndarray, np.ndarray] = (np.array([]), np.array([]))
        self.bottom: np.ndarray | None = None  # the bottom of its band, when stacked
        pen = pg.mkPen(colour, width=2)
        self.curve = pg.PlotDataItem(pen=pen, name=fmt_series(data.dims))
        self.base = pg.PlotDataItem(pen=pg.mkPen(None))
        self.band = pg.FillBetweenItem(
            self.base,
            self.curve,
            brush=pg.mkBrush(QColor(colour).red(), QColor(colour).green(), QColor(colour).blue(), 110),
        )
        self.band.setZValue(-6)
        outline = QColor(colour).darker(140)
        hover = pg.mkPen("k", width=2)

        def tip_of(_x: float, _y: float, index: Any) -> str:
            return point_tip(data, index)

        self.revised = pg.ScatterPlotItem(
            hoverable=True,
            tip=tip_of,
            hoverPen=hover,
            symbol="d",
            size=MARKER_SIZE_PX,
            pen=pg.mkPen(outline),
            brush=pg.mkBrush(colour),
        )
        self.partial = pg.ScatterPlotItem(
            hoverable=True,
            tip=tip_of,
            hoverPen=hover,
            symbol="o",
            size=15,
            pen=pg.mkPen(colour, width=2),
            brush=pg.mkBrush(None),
        )
        self.removed = pg.ScatterPlotItem(
            hoverable=True,
            tip=tip_of,
            hoverPen=hover,
            symbol="x",
            size=MARKER_SIZE_PX,
            pen=pg.mkPen(outline, width=2),
            brush=pg.mkBrush(colour),
        )
        # its nowcast: a dashed line through the expected values, a band between the intervals
        self.expected = pg.PlotDataItem(pen=pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine))
        self.expected_low = pg.PlotDataItem(pen=pg.mkPen(None))
        self.expected_high = pg.PlotDataItem(pen=pg.mkPen(None))
        self.expected_band = pg.FillBetweenItem(
            self.expected_low,
            self.expected_high,
            brush=pg.mkBrush(QColor(colour).red(), QColor(colour).green(), QColor(colour).blue(), 45),
        )
        self.expected_band.setZValue(-7)
        self.items: tuple[pg.GraphicsObject, ...] = (
            self.band,
            self.curve,
            self.revised,
            self.partial,
            self.removed,
            self.expected,
            self.expected_band,
        )
        for item in self.items:
            plot.addItem(item)

    def draw(self, level: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> None:
        """Draw the series as it is (``level`` None) or stacked: ``level`` is the buckets,
        the bottom and the top of its band. Its nowcast is drawn as it is only: the expected
        values of a stack's lower bands would lift every band above them."""
        drawing = self.data.drawing
        assert drawing is not None
        self.stacked = level is not None
        self._draw_nowcast(drawing.x if level is None else None)
        if level is None:
            self.line = (drawing.x, self.data.arrays["value"])
            self.bottom = None
            self.base.setData([], [])
            self.band.setVisible(False)
        else:
            x, bottom, top = level
            self.line, self.bottom = (x, top), bottom
            self.band.setVisible(self.curve.isVisible())
        self._marks = {}
        for kind in ("revised", "partial", "removed"):
            where, xs, ys = drawing.marks[kind]
            if level is not None:  # on the top of its band
                ys = level[2][np.searchsorted(level[0], xs)]
            self._marks[kind] = (where, xs, ys)

    def _draw_nowcast(self, x: np.ndarray | None) -> None:
        """From the newest value before the provisional buckets through their expected values
        (nothing when ``x`` is None or the series has no nowcast), as the chart draws it."""
        expected = self.data.nowcast
        if x is None or not expected:
            for item in (self.expected, self.expected_low, self.expected_high):
                item.setData([], [])
            return
        xs = np.array(sorted(expected))
        ys = np.array([expected[v][0] for v in xs])
        lows = np.array([np.nan if expected[v][1] is None else expected[v][1] for v in xs])
        highs = np.array([np.nan if expected[v][2] is None else expected[v][2] for v in xs])
        before = int(np.searchsorted(x, xs[0])) - 1
        value = self.data.arrays["value"]
        if before >= 0 and np.isfinite(value[before]):  # joined to the last settled value
            xs, ys = np.r_[x[before], xs], np.r_[value[before], ys]
            lows, highs = np.r_[value[before], lows], np.r_[value[before], highs]
        self.expected.setData(xs, ys)
        band = ~np.isnan(lows) & ~np.isnan(highs)
        self.expected_low.setData(xs[band], lows[band])
        self.expected_high.setData(xs[band], highs[band])

    def fit(self, x_range: tuple[float, float], columns: float) -> None:
        """The curve (and band) for a view of ``x_range`` that is ``columns`` pixels wide:
        the points in view, or their envelope where there are more than pixels (see
        curve_for_view), so a long series costs the GUI thread no more than a short one."""
        x, y = self.line
        if self.bottom is None:
            self.curve.setData(*curve_for_view(x, y, x_range, columns), connect="finite")
            return
        # a band: one bucket per pixel column where there are more (the envelope's zigzag,
        # filled, costs Qt seconds a frame); a spike narrower than a pixel shows once zoomed in
        lo, hi = in_view(x, x_range)
        lo, hi = max(lo - 1, 0), min(hi + 1, len(x))
        step = max(1, (hi - lo) // max(int(columns), 1))
        at = np.r_[np.arange(lo, hi, step), hi - 1] if hi > lo else np.arange(0)
        at = np.unique(at)
        self.curve.setData(x[at], y[at])
        self.base.setData(x[at], self.bottom[at])

    def place_markers(
        self, x_range: tuple[float, float], y_range: tuple[float, float], size_px: tuple[float, float]
    ) -> int:
        """Set the markers in view, thinned as the chart thins them where they would pile up
        (a long series has more revised buckets than the screen has room for); returns how
        many were set."""
        count = 0
        for item, kind in ((self.revised, "revised"), (self.partial, "partial"), (self.removed, "removed")):
            where, xs, ys = self._marks[kind]
            chosen = thin_markers(xs, ys, x_range, y_range, size_px)
            item.setData(x=xs[chosen], y=ys[chosen], data=where[chosen])
            count += len(chosen)
        return count

    def set_visible(self, shown: bool) -> None:
        for item in self.items:
            item.setVisible(shown)
        self.band.setVisible(shown and self.stacked)

    def remove(self) -> None:
        for item in self.items:
            self._plot.removeItem(item)

    def pen_colour(self) -> str:
        return str(self.curve.opts["pen"].color().name())
