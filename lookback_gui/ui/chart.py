"""The chart of one metric: current values per series, with late-data revisions standing out.

Revised buckets carry a distinct symbol and colour and a tooltip with the first reported value,
the change and the run that last revised it; removed buckets are crosses, the still-incomplete
bucket is hollow, and the provisional region (inside the lookback) is shaded. "As known after
run N" travels back in time. Data is loaded off the GUI thread through the bridge.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from lookback_gui.core.project import MetricConfig
from lookback_gui.core.store import Store
from lookback_gui.ui import chart_export
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.chart_axes import GRAIN_SECONDS
from lookback_gui.ui.chart_bar import AT_A_TIME, ChartBar
from lookback_gui.ui.chart_items import (  # noqa: F401  (the items' names, as before the split)
    GRID_PEN,
    NORMAL,
    PARTIAL_PEN,
    REMOVED_PEN,
    REVISED,
)
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
from lookback_gui.ui.chart_plot import (  # noqa: F401  (the plot's names, as before the split)
    CURVE_PEN,
    MAX_PLAIN_POINTS,
    THICK_CURVE_UP_TO,
    THIN_CURVE_PEN,
    ChartPlot,
)
from lookback_gui.ui.chart_tips import BucketRuns, bucket_tip
from lookback_gui.ui.collector import delete_when_dropped
from lookback_gui.ui.slots import weak_callback, weakly
from lookback_gui.ui.theme import is_dark


class ChartWidget(QWidget):
    """Chart tab of the selected metric.

    Signals:
        loaded(object): a ChartData was drawn (tests and the screenshot wait on it).
    """

    loaded = Signal(object)

    def __init__(self, bridge: Bridge, parent: QWidget | None = None):
        super().__init__(parent)
        self._bridge = bridge
        self._bucket_runs = BucketRuns(bridge)
        self._store: Store | None = None
        self._metric: MetricConfig | None = None
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

        self._bar = bar = ChartBar()
        self.measure_box, self.series_box = bar.measure_box, bar.series_box
        self.as_of_box, self.known_at_edit = bar.as_of_box, bar.known_at_edit
        self.first_line, self.range_picker = bar.first_line, bar.range_picker
        self.export_button, self.export_png = bar.export_button, bar.export_png
        self.export_light_png, self.export_csv = bar.export_light_png, bar.export_csv
        self.status = QLabel()
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._build_plot()
        layout = QVBoxLayout(self)
        layout.addLayout(bar.layout)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.status)

        self.range_picker.current_view = weak_callback(self._current_view)
        self.range_picker.chosen.connect(self.apply_range)
        self.measure_box.currentIndexChanged.connect(self._measure_changed)
        self.series_box.currentIndexChanged.connect(self._selection_changed)
        self.as_of_box.currentIndexChanged.connect(self._as_of_changed)
        self.known_at_edit.dateTimeChanged.connect(self._selection_changed)
        self.first_line.toggled.connect(self._first_line_toggled)
        self._fit_later = QTimer(self, singleShot=True, interval=15)  # a burst of zoom steps
        self._fit_later.timeout.connect(self._fit_to_view)
        self.plot.getViewBox().sigRangeChanged.connect(self._range_changed)
        self.export_png.triggered.connect(weakly(self._export_png))
        self.export_light_png.triggered.connect(weakly(self._export_png, True))
        self.export_csv.triggered.connect(self._export_csv)
        self._show_empty_range()  # the last days, not a second around 1970, until a metric shows

    def _build_plot(self) -> None:
        """The plot and its items; the markers' tooltips hold the widget weakly."""
        self._chart_plot = chart = ChartPlot(weak_callback(self._tip, ""))
        self.axis, self.plot, self.legend = chart.axis, chart.plot, chart.legend
        self.curve, self.extent, self.first_curve = chart.curve, chart.extent, chart.first_curve
        self.marker_items = chart.marker_items
        self.plain_points, self.revised_points, self.partial_points, self.removed_points = chart.marker_items
        self.nowcast_layer = nowcast = chart.nowcast
        self.nowcast_curve, self.nowcast_band = nowcast.curve, nowcast.band
        self.nowcast_low, self.nowcast_high, self.nowcast_points = nowcast.low, nowcast.high, nowcast.points
        self.region, self.region_label = chart.region, chart.region_label

    @property
    def _data(self) -> ChartData | None:
        """The ChartData shown (None while nothing is)."""
        return self._chart_plot.data

    @_data.setter
    def _data(self, data: ChartData | None) -> None:
        self._chart_plot.data = data

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
            self._bar.reset()
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
        return self._bar.as_known()

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
        return self._bar.selected_dims()

    def measure_memory(self) -> dict[str, str]:
        """The measure last chosen for each metric."""
        if self._metric is not None and self.measure_box.currentText():
            self._measures[self._metric.name] = self.measure_box.currentText()
        return dict(self._measures)

    def set_measure_memory(self, measures: dict[str, str]) -> None:
        """The measure last chosen for each metric of the project now open."""
        self._measures = dict(measures)

    def _measure_changed(self) -> None:
        if self._updating or self._data is None:
            return
        measure = self.measure_box.currentText()
        if self._metric is not None:
            self._measures[self._metric.name] = measure
        self._updating = True
        self._bar.offer_series(self._data.series, measure)
        self._updating = False
        self.reload()

    def _selection_changed(self) -> None:
        if not self._updating:
            self.reload()

    # -- drawing --------------------------------------------------------------------------

    def _failed(self, message: str) -> None:
        self._loading = False
        self._wanted_run = None
        self._data = None
        self._clear(f"cannot load the chart: {message}")

    def _tip(self, x: float, y: float, data: Any) -> str:
        """The tooltip of the bucket at index ``data`` of the series shown."""
        if self._data is None or data is None:
            return ""
        return bucket_tip(self._data, int(data), self._plain_bucket_run)

    def _plain_bucket_run(self, i: int) -> int:
        """The run that stored the plain bucket ``i`` of the series shown; 0 while it is read
        (off the GUI thread: the next tooltip of the bucket names it)."""
        data, store = self._data, self._store
        if data is None or store is None:
            return 0
        return self._bucket_runs.run(store, data, i, self)

    def _current_view(self) -> tuple[float, float] | None:
        """The buckets in view, for the range picker: None while nothing is drawn."""
        low, high = self.plot.getViewBox().viewRange()[0]
        return (low, high) if self._data else None

    def _nowcast_tip(self, x: float, y: float, data: Any) -> str:
        return self.nowcast_layer.tip(x, y, data)

    def _show_nowcast(self, data: ChartData) -> None:
        """A dashed line from the last settled value through the expected values of the
        provisional buckets, and a band between their intervals."""
        self.nowcast_layer.show(data)

    def marker_tips(self) -> list[str]:
        """The tooltips of every marked bucket (revised, partial, removed) now shown."""
        return [self._tip(0, 0, spot.data()) for item in self.marker_items[1:] for spot in item.points()]

    def _clear(self, message: str) -> None:
        everything = self._metric is None  # nothing of an earlier metric or project stays on show
        if everything:
            self._drawn_key = None
            self._updating = True
            for box in (self.measure_box, self.series_box, self.as_of_box):
                box.clear()
            self._updating = False
        self._chart_plot.clear(everything)
        self.status.setText(message)

    def _show_choices(self, data: ChartData) -> None:
        """The measures, series (with their current sizes) and runs to choose from."""
        self._updating = True
        self._bar.show_choices(data)
        self._updating = False

    def _show_empty_range(self) -> None:
        self._chart_plot.show_empty_range()

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
        self._chart_plot.show_series(data, GRAIN_SECONDS.get(self._metric.grain.value))
        key = (data.metric, data.measure, series_id(data.dims), data.as_of_run, data.as_known_at)
        moved = (
            key == self._drawn_key
            and self._drawn_view is not None
            and not np.allclose(self.plot.getViewBox().targetRange(), self._drawn_view)
        )
        if moved:  # the same series with newer values: the user's view stays
            self._chart_plot.keep_view()
        else:
            self._drawn_view = self._chart_plot.show_all()
            if self.range_picker.choice() != "all":
                self.apply_range()
        self._drawn_key = key
        self._label_time_axis()
        self._chart_plot.show_marks(data, self._step())
        self._show_nowcast(data)
        self._chart_plot.show_provisional(data)
        # the items learn the view's new transform now rather than while the first frame is
        # painted, which would make Qt paint the whole plot a second time straight after
        self.plot.getViewBox().updateMatrix()
        self._fit_later.stop()  # the curves and markers were just set for this range
        when = when_text(data.as_of_run, data.as_known_at)
        self.status.setText(
            f"{len(drawing.x)} buckets, {drawing.revised} revised, {drawing.removed} removed "
            f"({when}). ◆ revised  ✕ removed  ○ partial; hover a point for its history."
        )
        self.loaded.emit(data)

    def _step(self) -> float:
        """The seconds of a bucket of the metric shown (a day when unknown)."""
        return float(GRAIN_SECONDS.get(self._metric.grain.value, 86400)) if self._metric else 86400.0

    def apply_range(self) -> None:
        """Show the time range chosen in the range box, the values in it filling the height."""
        data = self._data
        if data is None or data.drawing is None or self._metric is None:
            return
        full = (float(data.drawing.x[0]), float(data.drawing.x[-1]))
        x_range = self.range_picker.x_range(full, self._step(), data.provisional) or full
        self._drawn_view = self._chart_plot.show_range(x_range)
        self._fit_to_view()

    def _fit_to_view(self) -> None:
        """After the view moved or zoomed: its part of the curves, and its markers."""
        self._chart_plot.fit_to_view(self._zone())

    def _zone(self) -> str:
        return self._metric.timezone if self._metric else "UTC"

    def _label_time_axis(self) -> None:
        """The time axis names the year(s) in view and the metric's zone."""
        self._chart_plot.label_time_axis(self._zone())

    def _first_line_toggled(self, shown: bool) -> None:
        self._chart_plot.show_first(shown)
        self._fit_to_view()

    # -- export ---------------------------------------------------------------------------

    def apply_palette(self, dark: bool | None = None) -> None:
        """Background, axes, grid and nowcast in the colours of the current theme (or, with
        ``dark`` given, of that one)."""
        self._chart_plot.apply_palette(is_dark() if dark is None else dark)

    def export_name(self, suffix: str) -> str:
        """A file name for what is on show (see chart_export.export_name)."""
        return chart_export.export_name(self._data, suffix)

    def _export_png(self, light: bool = False) -> None:
        chart_export.export_png(self, light)

    def export_image(self, path: str, light: bool = False) -> bool:
        """Save the chart as shown, with a title naming the metric, measure and series, and
        the legend of its marks; ``light``: in the light theme's colours, whatever the theme
        (for reports, which are printed on white)."""
        return self.image(light=light).save(path)

    def image(self, light: bool = False) -> QImage:
        """The chart as an image; ``light``: in the light theme's colours."""
        return chart_export.chart_image(self, light)

    def title_text(self) -> str:
        return chart_export.title_text(self._data)

    def _export_csv(self) -> None:
        chart_export.export_csv(self, self._store, self._data, self._bridge)
