"""The chart of one metric: current values per series, with late-data revisions standing out.

Revised buckets carry a distinct symbol and colour and a tooltip with the first reported value,
the change and the run that last revised it; removed buckets are crosses, the still-incomplete
bucket is hollow, and the provisional region (inside the lookback) is shaded. "As known after
run N" travels back in time. Data is loaded off the GUI thread through the bridge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QHBoxLayout,
    QLabel,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lookback_gui.core.project import MetricConfig
from lookback_gui.core.store import Store
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.chart_axes import GRAIN_SECONDS, BucketAxis, ValueAxis
from lookback_gui.ui.chart_model import (  # noqa: F401  (the model's names, as before the split)
    AS_OF_RUNS,
    ENVELOPE_COLUMNS,
    MARKER_CELL_PX,
    MARKER_SIZE_PX,
    MAX_MARKERS,
    SERIES_OFFERED,
    ChartData,
    Drawing,
    bucket_detail,
    curve_for_view,
    describe_point,
    epoch_seconds,
    expected_text,
    first_values,
    in_view,
    load_chart,
    prepare_drawing,
    series_id,
    series_nowcast,
    thin_markers,
    when_text,
    write_series_csv,
)
from lookback_gui.ui.chart_thresholds import threshold_items
from lookback_gui.ui.collector import delete_when_dropped
from lookback_gui.ui.dialogs import save_file_name
from lookback_gui.ui.models import fmt_number, fmt_series
from lookback_gui.ui.slots import weak_callback, weakly
from lookback_gui.ui.theme import chart_colours, is_dark, nowcast_colours
from lookback_gui.ui.time_range import TimeRangePicker

REVISED = pg.mkBrush("#ef6c00")
NORMAL = pg.mkBrush("#1565c0")
REMOVED_PEN = pg.mkPen("#c62828", width=2)
PARTIAL_PEN = pg.mkPen("#1565c0", width=2)
MAX_PLAIN_POINTS = 2000  # plain buckets get a dot when at most this many are in view
GRID_PEN = pg.mkPen("#e3e3e3")  # opaque: alpha-blended grid lines cost Qt ~10 ms a frame
CURVE_PEN = pg.mkPen("#1565c0", width=2)
# With more buckets in view than this the curve is drawn as its envelope (per pixel column the
# lowest and highest value), a dense band either way; a pen wider than one pixel would cost Qt's
# raster engine about 14 ms more per frame there.
THICK_CURVE_UP_TO = 20_000
THIN_CURVE_PEN = pg.mkPen("#1565c0", width=1)
AT_A_TIME = "at"  # the "As known after" choice that shows the store as known at a date


class ChartWidget(QWidget):
    """Chart tab of the selected metric.

    Signals:
        loaded(object): a ChartData was drawn (tests and the screenshot wait on it).
    """

    loaded = Signal(object)

    def __init__(self, bridge: Bridge, parent: QWidget | None = None):
        super().__init__(parent)
        self._bridge = bridge
        self._tip_runs: tuple[ChartData | None, dict[int, int]] = (None, {})
        self._store: Store | None = None
        self._metric: MetricConfig | None = None
        self._data: ChartData | None = None
        self._updating = False
        self._settling: dict[str, int | None] = {}
        # a load is on its way; the newest run announced meanwhile that it may not hold
        self._loading = False
        self._wanted_run: int | None = None
        self._measures: dict[str, str] = {}
        self._requested_dims: dict[str, Any] | None = None  # a series asked for by name
        self.export_folder: Callable[[], Path] = Path.cwd  # the window gives the project's
        # what was drawn last and the view it was given: a refresh of the same series keeps
        # the view the user zoomed or panned to
        self._drawn_key: tuple[Any, ...] | None = None
        self._drawn_view: list[list[float]] | None = None

        self.measure_box = QComboBox(accessibleName="Measure")
        self.series_box = QComboBox(accessibleName="Series")
        self.series_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.series_box.setMinimumContentsLength(24)
        self.as_of_box = QComboBox(accessibleName="As known after run")
        self.as_of_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.as_of_box.setMinimumContentsLength(18)
        self.known_at_edit = QDateTimeEdit(
            accessibleName="As known at this date and time",
            calendarPopup=True,
            displayFormat="yyyy-MM-dd HH:mm",
        )
        self.known_at_edit.setToolTip(
            "the values as they were known at this time: for each, its latest version known by then"
        )
        self.known_at_edit.setVisible(False)
        self.first_line = QCheckBox("First reported", accessibleName="Show first reported values")
        self.export_button = QToolButton(accessibleName="Export the chart or the series")
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        self.export_png = menu.addAction("Chart as PNG…")
        self.export_light_png = menu.addAction("PNG for reports (light)…")
        self.export_csv = menu.addAction("Series as CSV…")
        self.export_button.setMenu(menu)
        self.status = QLabel()
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        bar = QHBoxLayout()
        for label, box in (
            ("Measure", self.measure_box),
            ("Series", self.series_box),
            ("As known after", self.as_of_box),
        ):
            bar.addWidget(QLabel(label))
            bar.addWidget(box)
        bar.addWidget(self.known_at_edit)
        self.range_picker = TimeRangePicker()
        self.range_picker.current_view = weak_callback(self._current_view)
        self.range_picker.chosen.connect(self.apply_range)
        bar.addWidget(self.range_picker)
        bar.addWidget(self.first_line)
        bar.addStretch(1)
        bar.addWidget(self.export_button)

        self.axis = BucketAxis()
        self.plot = pg.PlotWidget(axisItems={"bottom": self.axis, "left": ValueAxis()})
        # one row at the top, in the headroom above the values (like the provisional label)
        self.legend = self.plot.addLegend(
            offset=(10, 2),
            brush=pg.mkBrush(255, 255, 255, 200),
            labelTextColor="#303030",
            colCount=5,
            verSpacing=-6,
        )
        self.plot.setAccessibleName("Metric chart")
        self.plot.showGrid(x=True, y=True)
        self.plot.setBackground(None)
        self.plot.getAxis("left").setWidth(72)
        for side in ("bottom", "left"):  # major and minor ticks, an opaque light grid
            axis = self.plot.getAxis(side)
            # labels of the minor level too while they fit (pyqtgraph drops them at 60 % fill)
            axis.setStyle(
                maxTickLevel=1, tickAlpha=255, textFillLimits=[(0, 0.95), (2, 0.85), (4, 0.5), (6, 0.2)]
            )
            axis.setTickPen(GRID_PEN)
            axis.setZValue(-200)  # below the plot's items (the view box is at -100)
        self.curve = self.plot.plot(name="current", pen=CURVE_PEN)
        # the curves hold only what the view shows (see curve_for_view); this invisible item
        # spans the whole series, so that "auto range" still shows all of it
        self.extent = self.plot.plot(pen=pg.mkPen(0, 0, 0, 0))  # drawn, but not seen
        self.first_curve = self.plot.plot(
            name="first reported", pen=pg.mkPen("#9e9e9e", width=1, style=Qt.PenStyle.DashLine)
        )
        self.first_curve.setVisible(False)
        self.legend.removeItem(self.first_curve)  # in the legend while it is shown
        hover = pg.mkPen("k", width=2)
        self.plain_points = pg.ScatterPlotItem(
            hoverable=True,
            tip=weak_callback(self._tip, ""),
            hoverPen=hover,
            symbol="o",
            size=5,
            pen=pg.mkPen(None),
            brush=NORMAL,
        )
        self.revised_points = pg.ScatterPlotItem(
            hoverable=True,
            tip=weak_callback(self._tip, ""),
            hoverPen=hover,
            symbol="d",
            size=MARKER_SIZE_PX,
            pen=pg.mkPen("#bf360c"),
            brush=REVISED,
            name="revised",
        )
        self.partial_points = pg.ScatterPlotItem(
            hoverable=True,
            tip=weak_callback(self._tip, ""),
            hoverPen=hover,
            symbol="o",
            size=17,
            pen=PARTIAL_PEN,
            brush=pg.mkBrush(None),
            name="partial (still incomplete)",
        )
        self.removed_points = pg.ScatterPlotItem(
            hoverable=True,
            tip=weak_callback(self._tip, ""),
            hoverPen=hover,
            symbol="x",
            size=MARKER_SIZE_PX,
            pen=REMOVED_PEN,
            brush=pg.mkBrush("#c62828"),
            name="removed",
        )
        self.marker_items = (self.plain_points, self.revised_points, self.partial_points, self.removed_points)
        for item in self.marker_items:
            self.plot.addItem(item)
        nowcast_pen = pg.mkPen("#6a1b9a", width=2, style=Qt.PenStyle.DashLine)
        self.nowcast_curve = self.plot.plot(name="expected (nowcast)", pen=nowcast_pen)
        self.legend.removeItem(self.nowcast_curve)  # in the legend while it is shown
        self.nowcast_low = pg.PlotDataItem(pen=pg.mkPen(None))
        self.nowcast_high = pg.PlotDataItem(pen=pg.mkPen(None))
        self.nowcast_band = pg.FillBetweenItem(
            self.nowcast_low, self.nowcast_high, brush=pg.mkBrush(106, 27, 154, 45)
        )
        self.nowcast_band.setZValue(-5)
        self.plot.addItem(self.nowcast_band)
        self.nowcast_points = pg.ScatterPlotItem(
            hoverable=True,
            tip=weak_callback(self._nowcast_tip, ""),
            hoverPen=hover,
            symbol="o",
            size=7,
            pen=pg.mkPen("#6a1b9a"),
            brush=pg.mkBrush(255, 255, 255, 220),
        )
        self.plot.addItem(self.nowcast_points)
        self.region = pg.LinearRegionItem(
            movable=False, brush=pg.mkBrush(255, 193, 7, 40), pen=pg.mkPen(None)
        )
        self.region.setZValue(-10)
        self.region.setVisible(False)
        self.plot.addItem(self.region)
        # anchored at the region's right end: the region ends at the newest bucket, so a label
        # that started at its left would run out of the plot whenever the region is narrow
        self.region_label = pg.TextItem("provisional (inside the lookback)", color="#8d6e00", anchor=(1, 0))
        self.plot.addItem(self.region_label)
        self.region_label.setVisible(False)
        self._markers: list[Any] = []  # the moments marked, the thresholds' lines

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.status)

        self.measure_box.currentIndexChanged.connect(self._measure_changed)
        self.series_box.currentIndexChanged.connect(self._selection_changed)
        self.as_of_box.currentIndexChanged.connect(self._as_of_changed)
        self.known_at_edit.dateTimeChanged.connect(self._selection_changed)
        self.first_line.toggled.connect(self._first_line_toggled)
        self._fit_later = QTimer(self, singleShot=True, interval=15)  # a burst of zoom steps
        self._fit_later.timeout.connect(self._fit_to_view)
        self.plot.getViewBox().sigRangeChanged.connect(self._range_changed)
        self._first_values: np.ndarray | None = None
        self.export_png.triggered.connect(weakly(self._export_png))
        self.export_light_png.triggered.connect(weakly(self._export_png, True))
        self.export_csv.triggered.connect(self._export_csv)
        self._show_empty_range()  # the last days, not a second around 1970, until a metric shows

    def __del__(self) -> None:
        delete_when_dropped(self)  # dropped while Qt still has it: deleted whole (see there)

    def _range_changed(self) -> None:
        self._fit_later.start()

    # -- context --------------------------------------------------------------------------

    def set_metric(self, store: Store | None, metric: MetricConfig | None) -> None:
        """Show ``metric`` of ``store``: the measure last chosen for it, all of it in view."""
        changed = (
            metric is None
            or self._metric is None
            or metric.name != self._metric.name
            or store is not self._store
        )
        if metric is not None and metric is self._metric and store is self._store and self._loading:
            return  # asked again for what the load on its way shows
        if self._metric is not None and self.measure_box.currentText():
            self._measures[self._metric.name] = self.measure_box.currentText()
        self._store = store
        self._metric = metric
        if changed:
            self._updating = True
            self.as_of_box.clear()
            self.as_of_box.addItem("latest", None)
            self.as_of_box.addItem("a date and time…", AT_A_TIME)
            self.known_at_edit.setVisible(False)
            self.measure_box.clear()
            self.series_box.clear()
            self._updating = False
            self._drawn_key = None
            self.range_picker.set_metric(metric.name if metric else None)
        self.reload()

    def open_series(
        self, store: Store | None, metric: MetricConfig, measure: str, dims: dict[str, Any]
    ) -> None:
        """Show ``measure`` of the series ``dims`` of ``metric`` (the dashboard opens one)."""
        self._measures[metric.name] = measure
        self._requested_dims = dims
        self._store, self._metric = store, metric
        self._updating = True
        self.measure_box.clear()
        self.series_box.clear()
        self._updating = False
        self._drawn_key = None
        self.reload()

    def refresh(self, run_id: int | None = None) -> None:
        """The metric shown has new values (of run ``run_id``, when known): load them, keeping
        the measure, series, as-of run and the part of the chart in view. While a load is on
        its way, it is not started over: once it arrives, it is loaded again only if it does
        not hold run ``run_id`` yet (on opening a project, the first look at the runs would
        otherwise restart the chart's first load)."""
        if self._metric is None:
            return
        if (
            run_id is not None
            and self._data is not None
            and not self._loading
            and self._data.metric == self._metric.name
            and max((run for run, _label in self._data.runs), default=0) >= run_id
        ):
            return  # what is shown was loaded after that run
        if self._loading and run_id is not None:
            self._wanted_run = max(self._wanted_run or 0, run_id)
            return
        self.reload()

    def reload(self) -> None:
        if self._store is None or self._metric is None:
            self._clear("no metric selected")
            return
        store, name = self._store, self._metric.name
        measure = self.measure_box.currentText() or self._measures.get(name)
        dims = self.selected_dims()
        if self._requested_dims is not None:
            dims, self._requested_dims = self._requested_dims, None
        as_of, known_at = self.as_known()
        self.status.setText("loading…")
        config = self._metric
        settle = self._settling.get(name)
        self._loading = True
        self._wanted_run = None  # this load reads every run committed until now
        self._bridge.submit(
            "chart",
            lambda: load_chart(store, name, measure, dims, as_of, config, settle, known_at),
            self._draw,
            self._failed,
        )

    def as_known(self) -> tuple[int | None, datetime | None]:
        """(the run, the date) chosen under "As known after"; both None for the latest."""
        choice = self.as_of_box.currentData()
        if choice == AT_A_TIME:
            return None, self.known_at_edit.dateTime().toPython().replace(second=0, microsecond=0)
        return choice, None

    def _as_of_changed(self) -> None:
        at_a_time = self.as_of_box.currentData() == AT_A_TIME
        if at_a_time and not self.known_at_edit.isVisible() and not self._updating:
            self._updating = True  # start from the newest run's known time
            newest = self._data.newest_known_at if self._data else None
            self.known_at_edit.setDateTime(newest or datetime.now())
            self._updating = False
        self.known_at_edit.setVisible(at_a_time)
        self._selection_changed()

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

    def measure_memory(self) -> dict[str, str]:
        """The measure last chosen for each metric."""
        if self._metric is not None and self.measure_box.currentText():
            self._measures[self._metric.name] = self.measure_box.currentText()
        return dict(self._measures)

    def set_measure_memory(self, measures: dict[str, str]) -> None:
        """The measure last chosen for each metric of the project now open."""
        self._measures = dict(measures)

    def _add_series(self, dims: dict[str, Any], size: float) -> None:
        self.series_box.addItem(f"{fmt_series(dims)}  ({fmt_number(size)})", series_id(dims))

    def _measure_changed(self) -> None:
        if self._updating or self._data is None:
            return
        measure = self.measure_box.currentText()
        if self._metric is not None:
            self._measures[self._metric.name] = measure
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
    def _top_series(
        series: list[tuple[dict[str, Any], str, float]], measure: str, limit: int = SERIES_OFFERED
    ) -> list[tuple[dict[str, Any], str, float]]:
        return [s for s in series if s[1] == measure][:limit]

    # -- drawing --------------------------------------------------------------------------

    def _failed(self, message: str) -> None:
        self._loading = False
        self._wanted_run = None
        self._data = None
        self._clear(f"cannot load the chart: {message}")

    def _tip(self, x: float, y: float, data: Any) -> str:
        """The tooltip of the bucket at index ``data`` of the series shown."""
        if self._data is None or data is None or self._data.drawing is None:
            return ""
        a, i = self._data.arrays, int(data)
        label = str(a["bucket"][i].astype("datetime64[s]")).replace("T", " ")
        label = label.removesuffix(" 00:00:00").removesuffix(":00")
        first, versions, last_run, removed, partial = bucket_detail(a, i)
        if last_run < 0:  # a plain bucket: loaded without its run
            last_run = self._plain_bucket_run(i)
        text = describe_point(
            label,
            self._data.dims,
            self._data.measure,
            float(a["value"][i]),
            first,
            versions,
            last_run,
            removed,
            partial,
        )
        expected = self._data.nowcast.get(float(self._data.drawing.x[i]))
        return text + ("\n" + expected_text(*expected) if expected else "")

    def _plain_bucket_run(self, i: int) -> int:
        """The run that stored the plain bucket ``i`` of the series shown; 0 while it is read
        (off the GUI thread: the next tooltip of the bucket names it)."""
        data, store = self._data, self._store
        if data is None or store is None:
            return 0
        if self._tip_runs[0] is not data:
            self._tip_runs = (data, {})
        known = self._tip_runs[1]
        if i in known:
            return known[i]
        bucket = data.arrays["bucket"][i].astype("datetime64[us]").item()

        def found(run: int) -> None:
            if self._tip_runs[0] is data:
                known[i] = run

        self._bridge.submit(
            f"tip-run-{i}",
            lambda: store.bucket_run(data.metric, data.measure, data.dims, bucket) or 0,
            found,
            lambda message: None,
            owner=self,
        )
        return 0

    def _current_view(self) -> tuple[float, float] | None:
        """The buckets in view, for the range picker: None while nothing is drawn."""
        low, high = self.plot.getViewBox().viewRange()[0]
        return (low, high) if self._data else None

    def _nowcast_tip(self, x: float, y: float, data: Any) -> str:
        if self._data is None or data is None:
            return ""
        expected = self._data.nowcast.get(float(data))
        if not expected:
            return ""
        bucket = np.datetime64(int(float(data) * 1e6), "us").astype("datetime64[s]")
        label = str(bucket).replace("T", " ").removesuffix(" 00:00:00").removesuffix(":00")
        return f"{label}  ({fmt_series(self._data.dims)}, {self._data.measure})\n" + expected_text(*expected)

    def _show_nowcast(self, data: ChartData) -> None:
        """A dashed line from the last settled value through the expected values of the
        provisional buckets, and a band between their intervals."""
        drawing = data.drawing
        if not data.nowcast or drawing is None:
            for item in (self.nowcast_curve, self.nowcast_low, self.nowcast_high):
                item.setData([], [])
            self.nowcast_points.setData(x=[], y=[])
            self.legend.removeItem(self.nowcast_curve)
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
        self.nowcast_curve.setData(line_x, line_y)
        band = ~np.isnan(lows) & ~np.isnan(highs)
        self.nowcast_low.setData(line_x[band], lows[band])
        self.nowcast_high.setData(line_x[band], highs[band])
        self.nowcast_points.setData(x=xs, y=ys, data=xs)
        # the legend holds samples of its items, not the items: compare what they show
        if self.nowcast_curve not in [sample.item for sample, _label in self.legend.items]:
            self.legend.addItem(self.nowcast_curve, "expected (nowcast)")

    def marker_tips(self) -> list[str]:
        """The tooltips of every marked bucket (revised, partial, removed) now shown."""
        return [self._tip(0, 0, spot.data()) for item in self.marker_items[1:] for spot in item.points()]

    def _clear(self, message: str) -> None:
        if self._metric is None:  # nothing of an earlier metric or project stays on show
            self._data = None
            self._drawn_key = None
            self._updating = True
            for box in (self.measure_box, self.series_box, self.as_of_box):
                box.clear()
            self._updating = False
            for marker in self._markers:
                self.plot.removeItem(marker)
            self._markers = []
            self.plot.setLabel("left", "")
            self.legend.setVisible(False)
            self.axis.grain_s = None
            self._show_empty_range()
        self.curve.setData([], [])
        self.first_curve.setData([], [])
        self.extent.setData([], [])
        for item in self.marker_items:
            item.setData(x=[], y=[])
        self.region.setVisible(False)
        self.region_label.setVisible(False)
        for item in (self.nowcast_curve, self.nowcast_low, self.nowcast_high):
            item.setData([], [])
        self.nowcast_points.setData(x=[], y=[])
        self.status.setText(message)

    def _show_choices(self, data: ChartData) -> None:
        """The measures, series (with their current sizes) and runs to choose from."""
        self._updating = True
        measures = list(dict.fromkeys(m for _, m, _ in data.series))
        if [self.measure_box.itemText(i) for i in range(self.measure_box.count())] != measures:
            self.measure_box.clear()
            self.measure_box.addItems(measures)
        self.measure_box.setCurrentText(data.measure)
        wanted = self._top_series(data.series, data.measure)
        shown = [
            (self.series_box.itemText(i), self.series_box.itemData(i)) for i in range(self.series_box.count())
        ]
        if shown != [(f"{fmt_series(d)}  ({fmt_number(size)})", series_id(d)) for d, _m, size in wanted]:
            self.series_box.clear()
            for dims, _m, size in wanted:
                self._add_series(dims, size)
        index = self.series_box.findData(series_id(data.dims))
        if index >= 0:
            self.series_box.setCurrentIndex(index)
        runs: list[tuple[int | str | None, str]] = [
            (None, "latest"),
            (AT_A_TIME, "a date and time…"),
            *data.runs,
        ]
        if [
            (self.as_of_box.itemData(i), self.as_of_box.itemText(i)) for i in range(self.as_of_box.count())
        ] != runs:
            self.as_of_box.clear()
            for run, text in runs:
                self.as_of_box.addItem(text, run)
            if data.as_of_run is not None and self.as_of_box.findData(data.as_of_run) < 0:
                self.as_of_box.addItem(f"run {data.as_of_run}", data.as_of_run)
        chosen = AT_A_TIME if data.as_known_at is not None else data.as_of_run
        self.as_of_box.setCurrentIndex(max(self.as_of_box.findData(chosen), 0))
        self._updating = False

    def _show_empty_range(self) -> None:
        import time

        now = time.time()
        self.extent.setData([], [])
        self.plot.getViewBox().setRange(xRange=(now - 7 * 86400, now), yRange=(0, 1))

    def _draw(self, data: ChartData) -> None:
        self._loading = False
        wanted, self._wanted_run = self._wanted_run, None
        self._show(data)
        newest = max((run for run, _label in data.runs), default=0)
        if (
            wanted is not None
            and newest < wanted
            and self._metric is not None
            and data.metric == self._metric.name
        ):
            self.reload()  # a run announced while it loaded is not in it

    def _show(self, data: ChartData) -> None:
        if self._metric is None or data.metric != self._metric.name:
            return  # a load for a metric no longer shown
        self._data = data
        self._show_choices(data)
        drawing = data.drawing
        if drawing is None:
            self._drawn_key = None
            self._clear("no values yet: run a pull (Ctrl+R)")
            self._show_empty_range()
            self.loaded.emit(data)
            return
        x = drawing.x
        self._first_values = None
        full = (float(x[0]), float(x[-1]))
        self.axis.buckets = x
        self.axis.grain_s = GRAIN_SECONDS.get(self._metric.grain.value) if self._metric else None
        self.plot.setLabel("left", data.measure)
        self.legend.setVisible(True)
        self.extent.setData(list(full), list(drawing.y_range))
        view = self.plot.getViewBox()
        key = (data.metric, data.measure, series_id(data.dims), data.as_of_run, data.as_known_at)
        moved = (
            key == self._drawn_key
            and self._drawn_view is not None
            and not np.allclose(view.targetRange(), self._drawn_view)
        )
        if moved:  # the same series with newer values: the user's view stays
            (x0, x1), (y0, y1) = view.viewRange()
            self._show_curves((x0, x1))
            self._place_markers((x0, x1), (y0, y1))
        else:
            low, high = _with_bounds(drawing.y_range, data)
            # headroom above the highest value for the provisional label
            view.setRange(xRange=full, yRange=(low, high + 0.12 * ((high - low) or abs(high) or 1)))
            self._drawn_view = [list(r) for r in view.targetRange()]
            # the whole series first, from what the worker prepared; once the view has its
            # final range and size, _fit_to_view follows it
            self._show_curves(full, drawing.envelope)
            self._place_markers(full, drawing.y_range)
            if self.range_picker.choice() != "all":
                self.apply_range()
        self._drawn_key = key
        self._label_time_axis()
        for marker in self._markers:
            self.plot.removeItem(marker)
        self._markers = []
        for moments, label, colour, style, height in (
            (data.schema_changes, "schema change", "#6a1b9a", Qt.PenStyle.DotLine, 0.9),
            (data.definition_changes, "new definition", "#00695c", Qt.PenStyle.DashLine, 0.8),
        ):
            for at, text in moments:  # a vertical line at the moment, its tooltip the details
                line = pg.InfiniteLine(
                    pos=at,
                    angle=90,
                    pen=pg.mkPen(colour, style=style),
                    label=label,
                    labelOpts={"position": height, "color": colour},
                )
                line.setToolTip(text)
                self.plot.addItem(line)
                self._markers.append(line)
        step = float(GRAIN_SECONDS.get(self._metric.grain.value, 86400))
        for item in threshold_items(data.thresholds, step, self.plot.backgroundBrush().color().name()):
            self.plot.addItem(item)
            self._markers.append(item)
        self._show_nowcast(data)
        if data.provisional:
            self.region.setRegion(data.provisional)
            self.region.setVisible(True)
            self.region_label.setText(data.provisional_label)
            self._place_region_label()
        else:
            self.region.setVisible(False)
            self.region_label.setVisible(False)
        # the items learn the view's new transform now rather than while the first frame is
        # painted, which would make Qt paint the whole plot a second time straight after
        self.plot.getViewBox().updateMatrix()
        self._fit_later.stop()  # the curves and markers were just set for this range
        when = when_text(data.as_of_run, data.as_known_at)
        self.status.setText(
            f"{len(x)} buckets, {drawing.revised} revised, {drawing.removed} removed "
            f"({when}). ◆ revised  ✕ removed  ○ partial; hover a point for its history."
        )
        self.loaded.emit(data)

    def apply_range(self) -> None:
        """Show the time range chosen in the range box, the values in it filling the height."""
        data = self._data
        if data is None or data.drawing is None or self._metric is None:
            return
        x, value = data.drawing.x, data.arrays["value"]
        full = (float(x[0]), float(x[-1]))
        step = float(GRAIN_SECONDS.get(self._metric.grain.value, 86400))
        x_range = self.range_picker.x_range(full, step, data.provisional) or full
        lo, hi = in_view(x, x_range)
        shown = [
            value[lo:hi],
            *(
                [
                    np.array(
                        [
                            v
                            for xv, n in data.nowcast.items()
                            for v in n
                            if v is not None and x_range[0] <= xv <= x_range[1]
                        ]
                    )
                ]
                if data.nowcast
                else []
            ),
        ]
        ys = np.concatenate(shown) if shown else np.array([])
        ys = ys[np.isfinite(ys)]
        low, high = (float(ys.min()), float(ys.max())) if len(ys) else data.drawing.y_range
        view = self.plot.getViewBox()
        view.setRange(xRange=x_range, yRange=(low, high + 0.12 * ((high - low) or abs(high) or 1)), padding=0)
        self._drawn_view = [list(r) for r in view.targetRange()]
        self._fit_to_view()

    def _place_markers(
        self, x_range: tuple[float, float] | None = None, y_range: tuple[float, float] | None = None
    ) -> None:
        """Set the markers for the view (its current range unless given): those in view,
        thinned where they would pile up; plain buckets get a dot only when few are in view."""
        drawing = self._data.drawing if self._data is not None else None
        if drawing is None:
            return
        view = self.plot.getViewBox()
        if x_range is None or y_range is None:
            (x0, x1), (y0, y1) = view.viewRange()
            x_range, y_range = (x0, x1), (y0, y1)
        size = (view.width() or 1000.0, view.height() or 600.0)
        lo, hi = in_view(drawing.x, x_range)
        if hi - lo <= MAX_PLAIN_POINTS:
            a = self._data.arrays if self._data is not None else {}
            where = np.setdiff1d(np.arange(lo, hi), a["marked"], assume_unique=True)
            self.plain_points.setData(x=drawing.x[where], y=a["value"][where], data=where)
        else:
            self.plain_points.setData(x=[], y=[])
        for item, kind in zip(self.marker_items[1:], ("revised", "partial", "removed"), strict=True):
            where, xs, ys = drawing.marks[kind]
            chosen = thin_markers(xs, ys, x_range, y_range, size)
            item.setData(x=xs[chosen], y=ys[chosen], data=where[chosen])

    def _fit_to_view(self) -> None:
        """After the view moved or zoomed: its part of the curves, and its markers."""
        if self._data is None or self._data.drawing is None:
            return
        (x0, x1), _ = self.plot.getViewBox().viewRange()
        self._show_curves((x0, x1))
        self._place_markers()
        self._place_region_label()
        self._label_time_axis()

    def _place_region_label(self) -> None:
        """The provisional label at the top of the view, in the headroom above the values,
        at the region's right end (or the view's, when that is further left)."""
        if self._data is None or not self._data.provisional:
            return
        (x0, x1), (_y0, y1) = self.plot.getViewBox().viewRange()
        start, end = self._data.provisional
        self.region_label.setVisible(start < x1 and end > x0)  # only beside its region
        self.region_label.setPos(min(end, x1), y1)
        legend = self.legend.sceneBoundingRect()
        if legend.intersects(self.region_label.sceneBoundingRect()):  # below the legend, then
            below = self.plot.getViewBox().mapSceneToView(legend.bottomLeft())
            self.region_label.setPos(min(end, x1), below.y())

    def _label_time_axis(self) -> None:
        """The time axis names the year(s) in view and the metric's zone."""
        (x0, x1), _ = self.plot.getViewBox().viewRange()
        zone = self._metric.timezone if self._metric else "UTC"
        years = self.axis.years((x0, x1)) if self._data is not None else ""
        self.plot.setLabel("bottom", f"{years}  bucket start ({zone})".strip())

    def _show_curves(
        self, x_range: tuple[float, float], envelope: tuple[np.ndarray, np.ndarray] | None = None
    ) -> None:
        """The current-value curve (``envelope`` if given) and, while it is shown, the
        first-reported one, for the view ``x_range``."""
        assert self._data is not None and self._data.drawing is not None
        x, value = self._data.drawing.x, self._data.arrays["value"]
        columns = self.plot.getViewBox().width() or ENVELOPE_COLUMNS
        xs, ys = envelope if envelope is not None else curve_for_view(x, value, x_range, columns)
        lo, hi = in_view(x, x_range)
        many = hi - lo > THICK_CURVE_UP_TO
        self.curve.setData(xs, ys, connect="finite", pen=THIN_CURVE_PEN if many else CURVE_PEN)
        if self.first_line.isChecked():
            if self._first_values is None:
                self._first_values = first_values(self._data.arrays)
            self.first_curve.setData(
                *curve_for_view(x, self._first_values, x_range, columns), connect="finite"
            )
        else:
            self.first_curve.setData([], [])

    def _first_line_toggled(self, shown: bool) -> None:
        self.first_curve.setVisible(shown)
        self.legend.removeItem(self.first_curve)
        if shown:
            self.legend.addItem(self.first_curve, "first reported")
        self._fit_to_view()

    # -- export ---------------------------------------------------------------------------

    def apply_palette(self, dark: bool | None = None) -> None:
        """Background, axes, grid and nowcast in the colours of the current theme (or, with
        ``dark`` given, of that one)."""
        dark = is_dark() if dark is None else dark
        background, ink, grid = chart_colours(dark)
        self.plot.setBackground(background)
        self.legend.setBrush(
            pg.mkBrush(QColor(background).red(), QColor(background).green(), QColor(background).blue(), 200)
        )
        self.legend.setLabelTextColor(ink)
        for _sample, label in self.legend.items:  # the labels already there keep their colour
            label.setText(label.text, color=ink)
        self.region_label.setColor("#ffd54f" if dark else "#8d6e00")
        line, band = nowcast_colours(dark)
        self.nowcast_curve.setPen(pg.mkPen(line, width=2, style=Qt.PenStyle.DashLine))
        self.nowcast_band.setBrush(pg.mkBrush(band))
        self.nowcast_points.setPen(pg.mkPen(line))
        self.nowcast_points.setBrush(pg.mkBrush(background))
        for side in ("bottom", "left"):
            axis = self.plot.getAxis(side)
            axis.setPen(pg.mkPen(ink))
            axis.setTextPen(pg.mkPen(ink))
            axis.setTickPen(pg.mkPen(grid))

    def export_name(self, suffix: str) -> str:
        """A file name for what is on show: metric, measure, series and the time chosen, so a
        second export of another series does not overwrite the first."""
        data = self._data
        if data is None:
            return f"chart{suffix}"
        parts = [data.metric, data.measure, *(f"{k}={v}" for k, v in sorted(data.dims.items()))]
        if data.as_of_run is not None:
            parts.append(f"run{data.as_of_run}")
        elif data.as_known_at is not None:
            parts.append(f"known{data.as_known_at:%Y%m%dT%H%M}")
        name = "-".join(str(part) for part in parts)
        return re.sub(r'[\\/:*?"<>|\s]+', "_", name)[:180] + suffix

    def _export_png(self, light: bool = False) -> None:
        folder = self.export_folder()
        name = self.export_name("-light.png" if light else ".png")
        path = save_file_name(
            self,
            "Export chart for reports (light)" if light else "Export chart",
            str(folder / name),
            "PNG (*.png)",
        )
        if path:
            self.export_image(path, light=light)

    def export_image(self, path: str, light: bool = False) -> bool:
        """Save the chart as shown, with a title naming the metric, measure and series, and
        the legend of its marks; ``light``: in the light theme's colours, whatever the theme
        (for reports, which are printed on white)."""
        return self.image(light=light).save(path)

    def image(self, light: bool = False) -> QImage:
        """The chart as an image; ``light``: in the light theme's colours."""
        if light and is_dark():
            self.apply_palette(dark=False)
            try:
                return self._compose(dark=False)
            finally:
                self.apply_palette()
        return self._compose(is_dark())

    def _compose(self, dark: bool) -> QImage:
        from PySide6.QtGui import QPainter

        plot = self.plot.grab()
        title = self.title_text()
        legend = self.status.text().removesuffix(" hover a point for its history.").rstrip(";")
        margin, line = 12, self.fontMetrics().height()
        image = QImage(plot.width(), plot.height() + 2 * line + 3 * margin, QImage.Format.Format_ARGB32)
        background, ink, _grid = chart_colours(dark)
        image.fill(QColor(background))
        painter = QPainter(image)
        painter.setPen(QColor(ink))
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        painter.drawText(margin, margin + line, title)
        font.setBold(False)
        painter.setFont(font)
        painter.drawPixmap(0, line + 2 * margin, plot)
        painter.drawText(margin, plot.height() + 2 * line + 2 * margin, legend)
        painter.end()
        return image

    def title_text(self) -> str:
        if self._data is None:
            return ""
        when = when_text(self._data.as_of_run, self._data.as_known_at)
        return f"{self._data.metric} — {self._data.measure} — {fmt_series(self._data.dims)} ({when})"

    def _export_csv(self) -> None:
        if self._data is None or self._data.drawing is None:
            return
        name = self.export_name(".csv")
        path = save_file_name(self, "Export series", str(self.export_folder() / name), "CSV (*.csv)")
        if path and self._store is not None:
            store, data = self._store, self._data
            self.status.setText(f"exporting to {path}…")
            self._bridge.submit(
                "export",
                lambda: write_series_csv(store, data, path),
                lambda rows: self.status.setText(f"exported {rows} buckets to {path}"),
                lambda message: self.status.setText(f"cannot export to {path}: {message}"),
                owner=self,
            )


def _with_bounds(y_range: tuple[float, float], data: ChartData) -> tuple[float, float]:
    """``y_range`` widened to the thresholds' bounds that lie near it (a bound far away from
    every value would squash the series into a line)."""
    low, high = y_range
    span = (high - low) or abs(high) or 1.0
    for mark in data.thresholds:
        if low - span <= mark.bound <= high + span:
            low, high = min(low, mark.bound), max(high, mark.bound)
    return low, high
