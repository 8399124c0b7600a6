"""The comparison chart: several series of one measure of a metric, overlaid or stacked.

Each series is loaded through the chart's model (:func:`~lookback_gui.ui.chart_model.load_chart`),
off the GUI thread, and drawn in its own colour of a palette that colour-blind eyes tell apart
(Okabe and Ito's), with its revised, partial and removed buckets marked in that colour. The
metric's provisional region is shaded behind them. Clicking a series' entry in the legend hides
it or shows it again; the series are picked in a list, or as the N largest.

Stacked, the series are drawn as bands on top of each other, so the top line is their sum at
every bucket; that is offered only for an additive measure (see
:mod:`lookback_gui.core.insight.additivity`). A finished run of the metric reloads the comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from lookback_gui.core.project import MetricConfig
from lookback_gui.core.store import Store
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.chart_axes import GRAIN_SECONDS, BucketAxis, ValueAxis
from lookback_gui.ui.chart_model import (
    series_id,
    when_text,
)
from lookback_gui.ui.collector import delete_when_dropped
from lookback_gui.ui.compare_series import (
    ADDITIVE_RULE,
    MAX_COMPARED,
    TOP_DEFAULT,
    Comparison,
    SeriesLayer,
    load_comparison,
    series_colours,
    stacked_levels,
)
from lookback_gui.ui.models import fmt_number, fmt_series
from lookback_gui.ui.slots import weakly
from lookback_gui.ui.theme import chart_colours, is_dark


class CompareWidget(QWidget):
    """The Compare tab: several series of one measure of the selected metric.

    Signals:
        loaded(object): a Comparison was drawn (tests wait on it).
    """

    loaded = Signal(object)

    def __init__(self, bridge: Bridge, parent: QWidget | None = None):
        super().__init__(parent)
        self._bridge = bridge
        self._store: Store | None = None
        self._metric: MetricConfig | None = None
        self._data: Comparison | None = None
        self._stale = False
        self._updating = False
        self._chosen: list[dict[str, Any]] | None = None  # None: the top N
        self._hidden: set[str] = set()  # series hidden from the legend
        self._drawn_key: tuple[Any, ...] | None = None
        self.layers: list[SeriesLayer] = []
        self.settling: Callable[[str], int | None] = lambda _name: None  # the window gives it
        # the measure the Chart tab shows, compared until another is chosen here
        self.measure_hint: Callable[[], str] = lambda: ""
        # the Chart tab's "As known after": (run, moment), both None for the latest
        self.as_known: Callable[[], tuple[int | None, datetime | None]] = lambda: (None, None)
        self._as_known_loaded: tuple[int | None, datetime | None] = (None, None)

        self.measure_box = QComboBox(accessibleName="Compared measure")
        self.top_box = QSpinBox(
            accessibleName="How many of the largest series",
            minimum=1,
            maximum=MAX_COMPARED,
            value=TOP_DEFAULT,
        )
        self.top_button = QPushButton("Show the largest", accessibleName="Show the largest series")
        self.top_button.setToolTip(
            "compare the largest series of the measure (by the sum of their current values)"
        )
        self.stacked_box = QCheckBox("Stacked", accessibleName="Stack the series")
        self.status = QLabel(wordWrap=True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.series_list = QListWidget(accessibleName="Series to compare")
        self.series_list.setToolTip(f"tick the series to compare (at most {MAX_COMPARED})")

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Measure"))
        bar.addWidget(self.measure_box)
        bar.addWidget(self.top_box)
        bar.addWidget(self.top_button)
        bar.addWidget(self.stacked_box)
        bar.addStretch(1)

        self.axis = BucketAxis()
        self.plot = pg.PlotWidget(axisItems={"bottom": self.axis, "left": ValueAxis()})
        self.plot.setAccessibleName("Comparison chart")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.getAxis("left").setWidth(72)
        self.legend = self.plot.addLegend(offset=(10, 2), colCount=4, verSpacing=-6)
        self.legend.sigSampleClicked.connect(self._sample_clicked)
        self.region = pg.LinearRegionItem(
            movable=False, brush=pg.mkBrush(255, 193, 7, 40), pen=pg.mkPen(None)
        )
        self.region.setZValue(-10)
        self.region.setVisible(False)
        self.plot.addItem(self.region)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.series_list)
        splitter.addWidget(self.plot)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([220, 760])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)

        self.measure_box.currentIndexChanged.connect(self._measure_changed)
        self.series_list.itemChanged.connect(self._ticked)
        self.top_button.clicked.connect(self.show_top)
        self.stacked_box.toggled.connect(weakly(self._draw_layers))
        self._place_later = QTimer(self, singleShot=True, interval=15)  # a burst of zoom steps
        self._place_later.timeout.connect(self.fit_to_view)
        self.plot.getViewBox().sigRangeChanged.connect(self._range_changed)
        self.apply_palette()
        self._clear("no metric selected")

    def __del__(self) -> None:
        delete_when_dropped(self)  # dropped while Qt still has it: deleted whole (see there)

    def _range_changed(self) -> None:
        self._place_later.start()

    # -- context --------------------------------------------------------------------------

    def set_metric(self, store: Store | None, metric: MetricConfig | None) -> None:
        """Compare the series of ``metric`` (the largest of its first measure, at first)."""
        if (
            store is self._store
            and metric is not None
            and self._metric is not None
            and metric.name == self._metric.name
        ):
            self._metric = metric  # the same metric, perhaps edited
        else:
            self._store, self._metric = store, metric
            self._chosen, self._hidden = None, set()
            self._updating = True
            self.measure_box.clear()
            self._updating = False
        self._stale = True
        if self._metric is None:
            self._clear("no metric selected")
        elif self.isVisible():
            self.reload()

    def metric_changed(self, name: str, _run_id: object = None) -> None:
        """A run of ``name`` committed new values: reload when it is the metric compared."""
        if self._metric is not None and name == self._metric.name:
            self._stale = True
            if self.isVisible():
                self.reload()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if (self._stale or self.as_known() != self._as_known_loaded) and self._metric is not None:
            self.reload()

    def show_top(self) -> None:
        """Compare the N largest series of the measure (N from the box beside the button)."""
        self._chosen = None
        self.reload()

    def choose(self, series: Sequence[dict[str, Any]]) -> None:
        """Compare exactly ``series`` (each a dict of dimension values)."""
        self._chosen = [dict(d) for d in series][:MAX_COMPARED]
        self.reload()

    def reload(self) -> None:
        store, config = self._store, self._metric
        if store is None or config is None:
            self._clear("no metric selected")
            return
        self._stale = False
        measure = self.measure_box.currentText() or self.measure_hint() or None
        chosen, top = self._chosen, self.top_box.value()
        settle = self.settling(config.name)
        self._as_known_loaded = as_of_run, as_known_at = self.as_known()
        self.status.setText("loading…")
        self._bridge.submit(
            "compare",
            lambda: load_comparison(store, config, measure, chosen, top, settle, as_of_run, as_known_at),
            self._show,
            self._failed,
        )

    # -- drawing --------------------------------------------------------------------------

    def _failed(self, message: str) -> None:
        self._clear(f"cannot load the comparison: {message}")

    def _clear(self, message: str) -> None:
        for layer in self.layers:
            layer.remove()
        self.layers = []
        self.legend.clear()
        self.region.setVisible(False)
        self.status.setText(message)

    def _show(self, data: Comparison) -> None:
        if self._metric is None or data.metric != self._metric.name:
            return  # a load for a metric no longer shown
        self._data = data
        self._show_choices(data)
        additive = data.additivity.additive
        self.stacked_box.setEnabled(additive)
        if additive:
            self.stacked_box.setToolTip(
                f"{data.measure} is additive: stacked, the top line is "
                "the sum of the series shown at each bucket"
            )
        else:
            self.stacked_box.setChecked(False)
            self.stacked_box.setToolTip(
                f"{data.measure} cannot be stacked: it is not additive ({data.additivity.reason}),"
                f" so a sum of its series would mean nothing. {ADDITIVE_RULE}"
            )
        self._draw_layers()
        self.loaded.emit(data)

    def _show_choices(self, data: Comparison) -> None:
        self._updating = True
        measures = list(dict.fromkeys(m for _d, m, _s in data.offered))
        if [self.measure_box.itemText(i) for i in range(self.measure_box.count())] != measures:
            self.measure_box.clear()
            self.measure_box.addItems(measures)
        self.measure_box.setCurrentText(data.measure)
        compared = {series_id(s.dims) for s in data.series}
        self.series_list.clear()
        for dims, measure, size in data.offered:
            if measure != data.measure:
                continue
            item = QListWidgetItem(f"{fmt_series(dims)}  ({fmt_number(size)})")
            item.setData(Qt.ItemDataRole.UserRole, dims)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if series_id(dims) in compared else Qt.CheckState.Unchecked
            )
            self.series_list.addItem(item)
        self._updating = False

    def _draw_layers(self) -> None:
        """The series of the comparison, overlaid or stacked, in the palette's colours."""
        data = self._data
        for layer in self.layers:
            layer.remove()
        self.layers = []
        self.legend.clear()
        if data is None or self._metric is None:
            return
        if not data.series:
            self.region.setVisible(False)
            self.status.setText("no values yet: run a pull (Ctrl+R)")
            return
        colours = series_colours(is_dark())
        for k, series in enumerate(data.series):
            layer = SeriesLayer(self.plot.getPlotItem(), series, colours[k % len(colours)])
            self.layers.append(layer)
        stacked = self.stacked_box.isChecked() and data.additivity.additive
        shown = [layer for layer in self.layers if series_id(layer.data.dims) not in self._hidden]
        levels = None
        if stacked:
            x, tops = stacked_levels([layer.data for layer in shown])
            levels = {
                id(layer): (x, tops[k - 1] if k else np.zeros(len(x)), tops[k])
                for k, layer in enumerate(shown)
            }
        for layer in self.layers:
            hidden = series_id(layer.data.dims) in self._hidden
            layer.draw(levels.get(id(layer)) if levels is not None else None)
            layer.set_visible(not hidden)
        # the plot put each named curve in the legend as it was added, in the series' order;
        # a click on the label toggles as one on the sample does
        for sample, label in self.legend.items:
            label.mouseClickEvent = sample.mouseClickEvent
        self.plot.setLabel("left", data.measure + (" (stacked)" if stacked else ""))
        self.axis.buckets = np.unique(
            np.concatenate(
                [layer.data.drawing.x for layer in shown if layer.data.drawing is not None] or [np.array([])]
            )
        )
        self.axis.grain_s = GRAIN_SECONDS.get(self._metric.grain.value)
        self.plot.setLabel("bottom", f"bucket start ({self._metric.timezone})")
        if data.provisional:
            self.region.setRegion(data.provisional)
            self.region.setToolTip(data.provisional_label)
        self.region.setVisible(data.provisional is not None)
        # a new choice of series shows all of it; a reload of the same keeps the user's view
        key = (
            data.metric,
            data.measure,
            tuple(series_id(s.dims) for s in data.series),
            stacked,
            tuple(sorted(self._hidden)) if stacked else (),
            data.as_of_run,
            data.as_known_at,
        )
        if key != self._drawn_key:
            self._show_all(shown)
        self._drawn_key = key
        self.fit_to_view()
        self._place_later.stop()  # just fitted to this view
        revised = sum(s.drawing.revised for s in data.series if s.drawing is not None)
        removed = sum(s.drawing.removed for s in data.series if s.drawing is not None)
        n_hidden = len(self.layers) - len(shown)
        how = "stacked: the top line is their sum" if stacked else "overlaid"
        if data.has_nowcast:
            how += (
                "; the nowcast is drawn overlaid only"
                if stacked
                else "; dashed: each series' expected settled values (nowcast)"
            )
        self.status.setText(
            f"{len(data.series)} series of {data.measure}"
            + (f" ({n_hidden} hidden)" if n_hidden else "")
            + f" ({when_text(data.as_of_run, data.as_known_at)}), {how}; {revised} revised, "
            f"{removed} removed buckets; shaded: {data.provisional_label}. "
            "◆ revised  ✕ removed  ○ partial; click a legend entry to hide or show its series."
        )

    def fit_to_view(self) -> None:
        """The curves and markers of every series for the part of the chart in view."""
        view = self.plot.getViewBox()
        (x0, x1), (y0, y1) = view.viewRange()
        size = (view.width() or 1000.0, view.height() or 600.0)
        for layer in self.layers:
            layer.fit((x0, x1), size[0])
            layer.place_markers((x0, x1), (y0, y1), size)

    def _show_all(self, shown: list[SeriesLayer]) -> None:
        """Every bucket of the series ``shown``, with headroom above them for the legend."""
        xs, ys = [], []
        for layer in shown:
            x, y = layer.line
            if x is not None and y is not None and len(x):
                xs.append(np.asarray(x, dtype=float))
                ys.append(np.asarray(y, dtype=float))
            for item in (layer.expected_low, layer.expected_high):  # its nowcast's interval
                _x, bound = item.getData()
                if bound is not None and len(bound):
                    ys.append(np.asarray(bound, dtype=float))
        if not xs:
            return
        x = np.concatenate(xs)
        y = np.concatenate(ys)
        y = y[np.isfinite(y)]
        low, high = (float(y.min()), float(y.max())) if len(y) else (0.0, 1.0)
        if self.stacked_box.isChecked():
            low = min(low, 0.0)
        span = (high - low) or abs(high) or 1.0
        self.plot.getViewBox().setRange(
            xRange=(float(x.min()), float(x.max())), yRange=(low, high + 0.12 * span)
        )

    # -- choosing -------------------------------------------------------------------------

    def _sample_clicked(self, item: Any) -> None:
        """A legend entry was clicked: pyqtgraph toggled the curve; the series follows it."""
        layer = next((layer for layer in self.layers if layer.curve is item), None)
        if layer is not None:
            self.toggle(layer.data.dims, shown=item.isVisible())

    def toggle(self, dims: dict[str, Any], shown: bool | None = None) -> None:
        """Hide a series shown, or show it again (``shown`` says which, when given)."""
        sid = series_id(dims)
        shown = sid in self._hidden if shown is None else shown
        if shown:
            self._hidden.discard(sid)
        else:
            self._hidden.add(sid)
        if self.stacked_box.isChecked():
            self._draw_layers()  # the stack is of the series shown
        else:
            for layer in self.layers:
                if series_id(layer.data.dims) == sid:
                    layer.set_visible(shown)

    def is_shown(self, dims: dict[str, Any]) -> bool:
        return series_id(dims) not in self._hidden

    def _measure_changed(self) -> None:
        if not self._updating:
            self._chosen = None  # the largest series of the new measure
            self.reload()

    def _ticked(self, item: QListWidgetItem) -> None:
        if self._updating:
            return
        chosen = [
            self.series_list.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.series_list.count())
            if self.series_list.item(i).checkState() == Qt.CheckState.Checked
        ]
        if len(chosen) > MAX_COMPARED:
            self._updating = True
            item.setCheckState(Qt.CheckState.Unchecked)
            self._updating = False
            self.status.setText(
                f"at most {MAX_COMPARED} series at a time: more colours than that cannot be told apart"
            )
            return
        if not chosen:
            return  # the last one stays until another is ticked
        self.choose(chosen)

    def apply_palette(self, dark: bool | None = None) -> None:
        """Background, axes and series colours of the current theme."""
        dark = is_dark() if dark is None else dark
        background, ink, _grid = chart_colours(dark)
        self.plot.setBackground(background)
        bg = QColor(background)
        self.legend.setBrush(pg.mkBrush(bg.red(), bg.green(), bg.blue(), 200))
        self.legend.setLabelTextColor(ink)
        for side in ("bottom", "left"):
            axis = self.plot.getAxis(side)
            axis.setPen(pg.mkPen(ink))
            axis.setTextPen(pg.mkPen(ink))
        self._draw_layers()
