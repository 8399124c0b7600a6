"""The chart of one metric: current values per series, with late-data revisions standing out.

Revised buckets carry a distinct symbol and colour and a tooltip with the first reported value,
the change and the run that last revised it; removed buckets are crosses, the still-incomplete
bucket is hollow, and the provisional region (inside the lookback) is shaded. "As known after
run N" travels back in time. Data is loaded off the GUI thread through the bridge.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lookback_gui.core.project import MetricConfig
from lookback_gui.core.store import RunRecord, Store
from lookback_gui.core.windows import add_buckets
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.models import fmt_number, fmt_series

REVISED = pg.mkBrush("#ef6c00")
NORMAL = pg.mkBrush("#1565c0")
REMOVED_PEN = pg.mkPen("#c62828", width=2)
PARTIAL_PEN = pg.mkPen("#1565c0", width=2)
MAX_PLAIN_POINTS = 2000
CURVE_PEN = pg.mkPen("#1565c0", width=2)
# Beyond this many buckets the curve is drawn downsampled, a dense band either way; a pen wider
# than one pixel would cost Qt's raster engine about 14 ms more per frame there.
THICK_CURVE_UP_TO = 20_000
THIN_CURVE_PEN = pg.mkPen("#1565c0", width=1)


@dataclass(frozen=True)
class ChartData:
    """What one chart draw needs, loaded off the GUI thread."""

    metric: str
    measure: str
    dims: dict[str, Any]
    arrays: dict[str, np.ndarray]
    series: list[tuple[dict[str, Any], str, float]]
    provisional: tuple[float, float] | None = None
    provisional_label: str = "provisional (inside the lookback)"
    schema_changes: list[tuple[float, str]] = field(default_factory=list)
    as_of_run: int | None = None


def epoch_seconds(buckets: np.ndarray) -> np.ndarray:
    """Naive local bucket times as seconds, drawn as-is by an axis with no UTC offset."""
    return buckets.astype("datetime64[us]").astype(np.int64) / 1e6


def load_chart(store: Store, metric: str, measure: str | None, dims: dict[str, Any] | None,
               as_of_run: int | None, config: MetricConfig | None = None,
               settle: int | None = None) -> ChartData:
    """One series and what to draw around it; ``settle`` is the measured settling age (in
    buckets) when the advisor has one."""
    series = store.series(metric)
    if not series:
        return ChartData(metric, measure or "", dims or {}, {}, [], as_of_run=as_of_run)
    if dims is None or measure is None or (dims, measure) not in [(d, m) for d, m, _ in series]:
        of_measure = [s for s in series if s[1] == measure] or series
        dims, measure, _ = of_measure[0]
    arrays = store.chart_data(metric, measure, dims, as_of_run=as_of_run)
    runs = store.runs(metric=metric, status="succeeded", limit=1) if as_of_run is None else \
        [store.run(as_of_run)]
    provisional = None
    label = "provisional (inside the lookback)"
    if runs and runs[0].window_start and runs[0].window_end and runs[0].metric == metric:
        window_start, window_end = runs[0].window_start, runs[0].window_end
        if settle is not None and config is not None:
            newest = runs[0].partial_start or add_buckets(window_end, config.grain, -1)
            window_start = add_buckets(newest, config.grain, -settle)
            label = f"provisional: settles in {settle} {config.grain.value}s (measured)"
        start, end = (np.datetime64(window_start), np.datetime64(window_end))
        provisional = (float(epoch_seconds(np.array([start]))[0]),
                       float(epoch_seconds(np.array([end]))[0]))
    changes = []
    for _run, as_of, change in store.schema_changes(metric):
        if as_of is None or (as_of_run is not None and _run > as_of_run):
            continue
        text = "; ".join(f"{k}: {', '.join(v)}" for k, v in change.items())
        changes.append((float(epoch_seconds(np.array([np.datetime64(as_of)]))[0]), text))
    return ChartData(metric, measure, dims, arrays, series, provisional, label, changes,
                     as_of_run)


def describe_point(bucket: str, dims: dict[str, Any], measure: str, value: float,
                   first: float, versions: int, last_run: int, removed: bool,
                   partial: bool) -> str:
    lines = [f"{bucket}  ({fmt_series(dims)}, {measure})"]
    if removed:
        lines.append(f"removed by run {last_run} (first reported {fmt_number(first)})")
    else:
        lines.append(f"value: {fmt_number(value)}")
        lines.append(f"first reported: {fmt_number(first)}")
        if versions > 1 and np.isfinite(first):
            delta = value - first
            pct = f" ({delta / abs(first) * 100:+.1f}%)" if first else ""
            lines.append(f"change: {delta:+,.6g}{pct}")
        lines.append(f"versions: {versions}" + (f", last revised by run {last_run}"
                                                if versions > 1 else f", run {last_run}"))
    if partial:
        lines.append("partial: the bucket was still incomplete when pulled")
    return "\n".join(lines)


class ChartWidget(QWidget):
    """Chart tab of the selected metric.

    Signals:
        loaded(object): a ChartData was drawn (tests and the screenshot wait on it).
    """

    loaded = Signal(object)

    def __init__(self, bridge: Bridge, parent: QWidget | None = None):
        super().__init__(parent)
        self._bridge = bridge
        self._store: Store | None = None
        self._metric: MetricConfig | None = None
        self._data: ChartData | None = None
        self._updating = False
        self._settling: dict[str, int | None] = {}

        self.measure_box = QComboBox(accessibleName="Measure")
        self.series_box = QComboBox(accessibleName="Series")
        self.series_box.setMinimumWidth(180)
        self.as_of_box = QComboBox(accessibleName="As known after run")
        self.as_of_box.setMinimumWidth(200)
        self.first_line = QCheckBox("First reported", accessibleName="Show first reported values")
        self.export_png = QPushButton("Export PNG…", accessibleName="Export the chart as PNG")
        self.export_csv = QPushButton("Export CSV…", accessibleName="Export the series as CSV")
        self.status = QLabel()
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        bar = QHBoxLayout()
        for label, box in (("Measure", self.measure_box), ("Series", self.series_box),
                           ("As known after", self.as_of_box)):
            bar.addWidget(QLabel(label))
            bar.addWidget(box)
        bar.addWidget(self.first_line)
        bar.addStretch(1)
        bar.addWidget(self.export_png)
        bar.addWidget(self.export_csv)

        self.axis = pg.DateAxisItem(orientation="bottom")
        self.axis.utcOffset = 0  # buckets are wall-clock times of the metric's zone
        self.plot = pg.PlotWidget(axisItems={"bottom": self.axis})
        self.plot.setAccessibleName("Metric chart")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setBackground(None)
        self.plot.getAxis("left").setWidth(72)
        for side in ("bottom", "left"):  # major and minor ticks: enough, and cheaper to draw
            self.plot.getAxis(side).setStyle(maxTickLevel=1)
        self.curve = self.plot.plot(name="current", pen=CURVE_PEN)
        self.curve.setClipToView(True)
        self.curve.setDownsampling(auto=True, method="peak")
        self.first_curve = self.plot.plot(
            name="first reported", pen=pg.mkPen("#9e9e9e", width=1, style=Qt.PenStyle.DashLine))
        self.first_curve.setVisible(False)
        hover = pg.mkPen("k", width=2)
        self.plain_points = pg.ScatterPlotItem(
            hoverable=True, tip=self._tip, hoverPen=hover, symbol="o", size=5,
            pen=pg.mkPen(None), brush=NORMAL)
        self.revised_points = pg.ScatterPlotItem(
            hoverable=True, tip=self._tip, hoverPen=hover, symbol="d", size=12,
            pen=pg.mkPen("#bf360c"), brush=REVISED, name="revised")
        self.partial_points = pg.ScatterPlotItem(
            hoverable=True, tip=self._tip, hoverPen=hover, symbol="o", size=11,
            pen=PARTIAL_PEN, brush=pg.mkBrush(None), name="partial")
        self.removed_points = pg.ScatterPlotItem(
            hoverable=True, tip=self._tip, hoverPen=hover, symbol="x", size=12,
            pen=REMOVED_PEN, brush=pg.mkBrush("#c62828"), name="removed")
        self.marker_items = (self.plain_points, self.revised_points, self.partial_points,
                             self.removed_points)
        for item in self.marker_items:
            self.plot.addItem(item)
        self.region = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(255, 193, 7, 40),
                                          pen=pg.mkPen(None))
        self.region.setZValue(-10)
        self.region.setVisible(False)
        self.plot.addItem(self.region)
        self.region_label = pg.TextItem("provisional (inside the lookback)", color="#8d6e00",
                                        anchor=(0, 0))
        self.plot.addItem(self.region_label)
        self.region_label.setVisible(False)
        self._markers: list[pg.InfiniteLine] = []

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.status)

        self.measure_box.currentIndexChanged.connect(self._measure_changed)
        self.series_box.currentIndexChanged.connect(self._selection_changed)
        self.as_of_box.currentIndexChanged.connect(self._selection_changed)
        self.first_line.toggled.connect(self.first_curve.setVisible)
        self.export_png.clicked.connect(self._export_png)
        self.export_csv.clicked.connect(self._export_csv)

    # -- context --------------------------------------------------------------------------

    def set_metric(self, store: Store | None, metric: MetricConfig | None,
                   runs: list[RunRecord]) -> None:
        """Show ``metric``; ``runs`` are its runs (newest first) for the as-of selector."""
        changed = metric is None or self._metric is None or metric.name != self._metric.name
        self._store = store
        self._metric = metric
        self._updating = True
        current = self.as_of_box.currentData() if not changed else None
        self.as_of_box.clear()
        self.as_of_box.addItem("latest", None)
        for run in runs:
            if run.status == "succeeded":
                self.as_of_box.addItem(f"run {run.id} ({run.as_of:%Y-%m-%d %H:%M})", run.id)
        if current is not None:
            index = self.as_of_box.findData(current)
            self.as_of_box.setCurrentIndex(max(index, 0))
        if changed:
            self.measure_box.clear()
            self.series_box.clear()
        self._updating = False
        self.reload()

    def reload(self) -> None:
        if self._store is None or self._metric is None:
            self._clear("no metric selected")
            return
        store, name = self._store, self._metric.name
        measure = self.measure_box.currentText() or None
        dims = self.selected_dims()
        as_of = self.as_of_box.currentData()
        self.status.setText("loading…")
        config = self._metric
        settle = self._settling.get(name)
        self._bridge.submit(
            "chart", lambda: load_chart(store, name, measure, dims, as_of, config, settle),
            self._draw, self._failed)

    def set_settling(self, metric: str, buckets: int | None) -> None:
        """The measured settling age of ``metric``; the provisional region follows it."""
        if self._settling.get(metric) == buckets:
            return
        self._settling[metric] = buckets
        if self._metric is not None and self._metric.name == metric:
            self.reload()

    def selected_dims(self) -> dict[str, Any] | None:
        data = self.series_box.currentData()
        return json.loads(data) if isinstance(data, str) else None

    def _add_series(self, dims: dict[str, Any], size: float) -> None:
        self.series_box.addItem(f"{fmt_series(dims)}  ({fmt_number(size)})",
                                json.dumps(dims, sort_keys=True))

    def _measure_changed(self) -> None:
        if self._updating or self._data is None:
            return
        measure = self.measure_box.currentText()
        self._updating = True
        self.series_box.clear()
        for dims, _m, size in self._top_series(self._data.series, measure):
            self._add_series(dims, size)
        self._updating = False
        self.reload()

    def _selection_changed(self) -> None:
        if not self._updating:
            self.reload()

    @staticmethod
    def _top_series(series: list[tuple[dict[str, Any], str, float]], measure: str,
                    limit: int = 50) -> list[tuple[dict[str, Any], str, float]]:
        return [s for s in series if s[1] == measure][:limit]

    # -- drawing --------------------------------------------------------------------------

    def _failed(self, message: str) -> None:
        self._clear(f"cannot load the chart: {message}")

    def _tip(self, x: float, y: float, data: Any) -> str:
        """The tooltip of the bucket at index ``data`` of the series shown."""
        if self._data is None or data is None or not self._data.arrays:
            return ""
        a, i = self._data.arrays, int(data)
        label = str(a["bucket"][i].astype("datetime64[s]")).replace("T", " ")
        label = label.removesuffix(" 00:00:00").removesuffix(":00")
        return describe_point(label, self._data.dims, self._data.measure, float(a["value"][i]),
                              float(a["first_value"][i]), int(a["versions"][i]),
                              int(a["last_run"][i]), bool(a["removed"][i]),
                              bool(a["partial"][i]))

    def marker_tips(self) -> list[str]:
        """The tooltips of every marked bucket (revised, partial, removed) now shown."""
        return [self._tip(0, 0, spot.data()) for item in self.marker_items[1:]
                for spot in item.points()]

    def _clear(self, message: str) -> None:
        self.curve.setData([], [])
        self.first_curve.setData([], [])
        for item in self.marker_items:
            item.setData(x=[], y=[])
        self.region.setVisible(False)
        self.region_label.setVisible(False)
        self.status.setText(message)

    def _draw(self, data: ChartData) -> None:
        self._data = data
        self._updating = True
        measures = list(dict.fromkeys(m for _, m, _ in data.series))
        if [self.measure_box.itemText(i) for i in range(self.measure_box.count())] != measures:
            self.measure_box.clear()
            self.measure_box.addItems(measures)
        self.measure_box.setCurrentText(data.measure)
        wanted = self._top_series(data.series, data.measure)
        if self.series_box.count() != len(wanted) or self.series_box.currentData() is None:
            self.series_box.clear()
            for dims, _m, size in wanted:
                self._add_series(dims, size)
        index = self.series_box.findData(json.dumps(data.dims, sort_keys=True))
        if index >= 0:
            self.series_box.setCurrentIndex(index)
        self._updating = False
        if not data.arrays or len(data.arrays["bucket"]) == 0:
            self._clear("no values yet: run a pull (Ctrl+R)")
            self.loaded.emit(data)
            return
        a = data.arrays
        x = epoch_seconds(a["bucket"])
        value, first = a["value"], a["first_value"]
        removed, partial, versions = a["removed"], a["partial"], a["versions"]
        revised = (versions > 1) & ~removed
        self.curve.setPen(CURVE_PEN if len(x) <= THICK_CURVE_UP_TO else THIN_CURVE_PEN)
        self.curve.setData(x, value, connect="finite")
        self.first_curve.setData(x, first, connect="finite")
        plain = ~(revised | removed | partial)
        if len(x) > MAX_PLAIN_POINTS:
            plain[:] = False  # the curve shows them; markers only where something happened
        shown_first = np.where(np.isfinite(first), first, 0.0)
        for item, mask, ys in ((self.plain_points, plain, value),
                               (self.revised_points, revised & ~partial, value),
                               (self.partial_points, partial & ~removed, value),
                               (self.removed_points, removed, shown_first)):
            where = np.flatnonzero(mask)
            item.setData(x=x[where], y=ys[where], data=where)
        for marker in self._markers:
            self.plot.removeItem(marker)
        self._markers = []
        for at, text in data.schema_changes:
            line = pg.InfiniteLine(pos=at, angle=90, pen=pg.mkPen("#6a1b9a", style=Qt.PenStyle.DotLine),
                                   label="schema change", labelOpts={"position": 0.9, "color": "#6a1b9a"})
            line.setToolTip(text)
            self.plot.addItem(line)
            self._markers.append(line)
        if data.provisional:
            self.region.setRegion(data.provisional)
            self.region.setVisible(True)
            finite = value[np.isfinite(value)]
            top = float(finite.max()) if len(finite) else 0.0
            self.region_label.setText(data.provisional_label)
            self.region_label.setPos(data.provisional[0], top)
            self.region_label.setVisible(True)
        else:
            self.region.setVisible(False)
            self.region_label.setVisible(False)
        self.plot.enableAutoRange()
        when = "latest" if data.as_of_run is None else f"as known after run {data.as_of_run}"
        self.status.setText(
            f"{len(x)} buckets, {int(revised.sum())} revised, {int(removed.sum())} removed "
            f"({when}). ◆ revised  ✕ removed  ○ partial; hover a point for its history.")
        self.loaded.emit(data)

    # -- export ---------------------------------------------------------------------------

    def _export_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export chart", "chart.png", "PNG (*.png)")
        if path:
            self.plot.grab().save(path)

    def _export_csv(self) -> None:
        if self._data is None or not self._data.arrays:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export series", "series.csv", "CSV (*.csv)")
        if path:
            self.write_csv(path)

    def write_csv(self, path: str) -> None:
        assert self._data is not None
        a = self._data.arrays
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["bucket", "series", "measure", "value", "first_value", "versions",
                             "last_run", "removed", "partial"])
            for i in range(len(a["bucket"])):
                writer.writerow([str(a["bucket"][i]).replace("T", " "), fmt_series(self._data.dims),
                                 self._data.measure,
                                 "" if not np.isfinite(a["value"][i]) else a["value"][i],
                                 "" if not np.isfinite(a["first_value"][i]) else a["first_value"][i],
                                 int(a["versions"][i]), int(a["last_run"][i]),
                                 bool(a["removed"][i]), bool(a["partial"][i])])
