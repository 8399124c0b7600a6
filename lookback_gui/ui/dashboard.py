"""The dashboard: several metrics at once, as a grid of small charts.

Each small chart shows one series of one metric — its current values, the provisional region
and the nowcast of its provisional buckets — loaded through the chart's model
(:mod:`lookback_gui.ui.chart_model`), off the GUI thread. A finished run of a metric reloads
the charts of that metric. Clicking a chart opens it full size in the Chart tab.

The charts are the project file's ``[dashboard]`` table; without one, there is one chart per
metric. Adding or removing a chart writes that table (the editor's round trip keeps the rest
of the file as it was).

Signals (DashboardWidget):
    open_requested(str, str, object): metric, measure and series (a dict) to show full size.
    loaded(str): the charts of a metric were drawn (tests wait on it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lookback_gui.core.errors import LookbackError
from lookback_gui.core.project import DashboardChart, MetricConfig, Project, ProjectDocument
from lookback_gui.core.store import Store
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.chart_axes import BucketAxis, ValueAxis
from lookback_gui.ui.chart_model import ChartData, curve_for_view, load_chart
from lookback_gui.ui.models import fmt_number, fmt_series
from lookback_gui.ui.slots import weakly
from lookback_gui.ui.theme import chart_colours, nowcast_colours

TILE_HEIGHT = 220
SERIES_ADDED = 6  # "each series" adds the largest this many


def measured_settling(store: Store, config: MetricConfig) -> int | None:
    """The settling age (buckets) the advisor measures for ``config``, when it can; the small
    charts' nowcast needs it, as the Chart tab's does."""
    from lookback_gui.core.insight.advisor import advise

    try:
        advice = advise(store, config)
    except LookbackError:
        return None
    return advice.settled_after_buckets.get("p99") if advice.enough_history else None


def load_metric_charts(store: Store, config: MetricConfig, charts: list[DashboardChart]) -> list[ChartData]:
    """The data of every small chart of one metric (runs on a worker)."""
    settle = measured_settling(store, config)
    return [
        load_chart(
            store,
            config.name,
            chart.measure,
            dict(chart.series) if chart.series is not None else None,
            None,
            config,
            settle,
        )
        for chart in charts
    ]


class SmallChart(QFrame):
    """One chart of the dashboard. Clicking it asks for it full size.

    Signals:
        clicked(): the user clicked the chart.
        remove_requested(): the user asked to take it off the dashboard.
    """

    clicked = Signal()
    remove_requested = Signal()

    def __init__(self, chart: DashboardChart, parent: QWidget | None = None):
        super().__init__(parent)
        self.chart = chart
        self.data: ChartData | None = None
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumHeight(TILE_HEIGHT)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("click to open it in the Chart tab; right-click to remove it")
        self.title = QLabel(chart.metric)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.value = QLabel("loading…")
        self.axis = BucketAxis()
        self.plot = pg.PlotWidget(axisItems={"bottom": self.axis, "left": ValueAxis()})
        self.plot.setAccessibleName(f"Dashboard chart of {chart.metric}")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.getAxis("left").setWidth(52)
        self.plot.showGrid(x=False, y=True, alpha=0.3)
        self.region = pg.LinearRegionItem(
            movable=False, brush=pg.mkBrush(255, 193, 7, 40), pen=pg.mkPen(None)
        )
        self.region.setZValue(-10)
        self.region.setVisible(False)
        self.plot.addItem(self.region)
        self.curve = self.plot.plot(pen=pg.mkPen("#1565c0", width=2))
        self.partial = pg.ScatterPlotItem(
            symbol="o", size=9, pen=pg.mkPen("#1565c0", width=2), brush=pg.mkBrush(None)
        )
        self.plot.addItem(self.partial)
        self.nowcast_curve = self.plot.plot(pen=pg.mkPen("#6a1b9a", width=2, style=Qt.PenStyle.DashLine))
        self.nowcast_low = pg.PlotDataItem(pen=pg.mkPen(None))
        self.nowcast_high = pg.PlotDataItem(pen=pg.mkPen(None))
        self.nowcast_band = pg.FillBetweenItem(
            self.nowcast_low, self.nowcast_high, brush=pg.mkBrush(106, 27, 154, 45)
        )
        self.nowcast_band.setZValue(-5)
        self.plot.addItem(self.nowcast_band)
        self.plot.scene().sigMouseClicked.connect(self._scene_clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.value)
        layout.addLayout(head)
        layout.addWidget(self.plot, 1)
        self.apply_palette()

    def apply_palette(self) -> None:
        background, ink, _grid = chart_colours()
        self.plot.setBackground(background)
        for side in ("bottom", "left"):
            axis = self.plot.getAxis(side)
            axis.setPen(pg.mkPen(ink))
            axis.setTextPen(pg.mkPen(ink))
        line, band = nowcast_colours()
        self.nowcast_curve.setPen(pg.mkPen(line, width=2, style=Qt.PenStyle.DashLine))
        self.nowcast_band.setBrush(pg.mkBrush(band))

    def show_data(self, data: ChartData) -> None:
        """Draw ``data``: the series, its provisional region and its nowcast."""
        self.data = data
        drawing = data.drawing
        self.title.setText(
            f"{data.metric} — {data.measure or '?'}" + (f" — {fmt_series(data.dims)}" if data.dims else "")
        )
        if drawing is None:
            self.curve.setData([], [])
            self.partial.setData(x=[], y=[])
            self._show_nowcast(data)
            self.region.setVisible(False)
            self.value.setText("no values yet")
            return
        x, value = drawing.x, data.arrays["value"]
        width = self.plot.getViewBox().width() or 400
        self.curve.setData(*curve_for_view(x, value, (float(x[0]), float(x[-1])), width), connect="finite")
        _where, xs, ys = drawing.marks["partial"]
        self.partial.setData(x=xs, y=ys)
        self._show_nowcast(data)
        if data.provisional:
            self.region.setRegion(data.provisional)
        self.region.setVisible(data.provisional is not None)
        low, high = drawing.y_range
        highs = [v[2] for v in data.nowcast.values() if v[2] is not None]
        high = max([high, *highs])
        self.plot.getViewBox().setRange(
            xRange=(float(x[0]), float(x[-1])),
            yRange=(min(low, 0.0) if low >= 0 else low, high),
            padding=0.05,
        )
        finite = value[np.isfinite(value)]
        self.value.setText(f"latest {fmt_number(float(finite[-1]))}" if len(finite) else "")

    def _show_nowcast(self, data: ChartData) -> None:
        if not data.nowcast:
            for item in (self.nowcast_curve, self.nowcast_low, self.nowcast_high):
                item.setData([], [])
            return
        xs = np.array(sorted(data.nowcast))
        ys = np.array([data.nowcast[x][0] for x in xs])
        lows = np.array([np.nan if data.nowcast[x][1] is None else data.nowcast[x][1] for x in xs])
        highs = np.array([np.nan if data.nowcast[x][2] is None else data.nowcast[x][2] for x in xs])
        self.nowcast_curve.setData(xs, ys)
        band = ~np.isnan(lows) & ~np.isnan(highs)
        self.nowcast_low.setData(xs[band], lows[band])
        self.nowcast_high.setData(xs[band], highs[band])

    def show_error(self, message: str) -> None:
        self.value.setText("cannot load")
        self.setToolTip(message)

    def _scene_clicked(self, event: Any) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mouseReleaseEvent(event)

    def contextMenuEvent(self, event: Any) -> None:
        menu = QMenu(self)
        menu.addAction("Remove from the dashboard", self.remove_requested.emit)
        menu.exec(event.globalPos())


class DashboardWidget(QWidget):
    """The Dashboard tab: a grid of small charts, live, saved with the project."""

    open_requested = Signal(str, str, object)
    loaded = Signal(str)

    def __init__(self, bridge: Bridge, parent: QWidget | None = None):
        super().__init__(parent)
        self._bridge = bridge
        self._store: Store | None = None
        self._project: Project | None = None
        self.tiles: list[SmallChart] = []
        self._stale: set[str] = set()  # metrics whose charts changed while it was hidden
        self._unbuilt = False  # the project changed while it was hidden: no charts made yet
        # what the Chart tab shows (metric, measure, series), to add it: the window gives it
        self.chart_on_show: Callable[[], tuple[str, str, dict[str, Any]] | None] = lambda: None
        self.series_of: Callable[[], list[dict[str, Any]]] = list
        self.on_saved: Callable[[], None] = lambda: None
        self.on_error: Callable[[str], None] = lambda message: None

        self.add_button = QToolButton(accessibleName="Add to the dashboard")
        self.add_button.setText("Add")
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.add_button)
        self.add_shown = menu.addAction("The chart on show")
        self.add_series = menu.addAction(f"Each of its largest {SERIES_ADDED} series")
        self.add_metrics = menu.addAction("One chart per metric")
        self.add_button.setMenu(menu)
        self.columns_box = QSpinBox(accessibleName="Dashboard columns", minimum=1, maximum=12)
        self.status = QLabel()
        bar = QHBoxLayout()
        bar.addWidget(self.add_button)
        bar.addWidget(QLabel("Columns"))
        bar.addWidget(self.columns_box)
        bar.addWidget(self.status, 1)

        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid_host)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(scroll, 1)

        self.add_shown.triggered.connect(self._add_shown)
        self.add_series.triggered.connect(self._add_each_series)
        self.add_metrics.triggered.connect(self._add_every_metric)
        self.columns_box.valueChanged.connect(self._columns_changed)
        self._set_enabled()

    # -- what is shown --------------------------------------------------------------------

    def charts(self) -> list[DashboardChart]:
        """The charts on show: the project's ``[dashboard]``, or one per metric."""
        if self._project is None:
            return []
        if self._project.dashboard.charts:
            return list(self._project.dashboard.charts)
        return [DashboardChart(name) for name in self._project.metrics]

    def set_project(self, store: Store | None, project: Project | None) -> None:
        """Show the dashboard of ``project``; the same project again changes nothing."""
        if store is self._store and project is self._project:
            return
        same = (
            project is not None
            and self._project is not None
            and store is self._store
            and project.dashboard == self._project.dashboard
            and list(project.metrics) == list(self._project.metrics)
        )
        self._store, self._project = store, project
        if not same:
            self._clear_tiles()
            self._unbuilt = True  # its charts are made when it is first shown
            if not self.isHidden():
                self._build()
        self._set_enabled()

    def _clear_tiles(self) -> None:
        for tile in self.tiles:
            self.grid.removeWidget(tile)
            tile.deleteLater()
        self.tiles = []
        self._stale = set()

    def _build(self) -> None:
        """Make a small chart for each chart on show, and load them. A dashboard that is not
        on show makes none (each is a plot of its own: a project of many metrics would keep
        the window from opening for as long), until it is shown."""
        self._clear_tiles()
        self._unbuilt = False
        columns = self._project.dashboard.columns if self._project else 2
        self.columns_box.blockSignals(True)
        self.columns_box.setValue(columns)
        self.columns_box.blockSignals(False)
        for index, chart in enumerate(self.charts()):
            tile = SmallChart(chart)
            tile.clicked.connect(weakly(self._open, tile))
            tile.remove_requested.connect(weakly(self._remove, index))
            self.grid.addWidget(tile, index // columns, index % columns)
            self.tiles.append(tile)
        self.status.setText(
            ""
            if self._project is None
            else "click a chart to open it full size"
            if self.tiles
            else "no metrics yet"
        )
        for metric in dict.fromkeys(tile.chart.metric for tile in self.tiles):
            self.reload(metric)

    def setVisible(self, visible: bool) -> None:
        """Shown (its tab chosen): make its charts if the project changed while it was hidden,
        else load what changed meanwhile."""
        super().setVisible(visible)
        if visible and self._unbuilt:
            self._build()
        elif visible:
            stale, self._stale = self._stale, set()
            for metric in stale:
                self.reload(metric)

    def reload(self, metric: str) -> None:
        """Load the charts of ``metric`` again (a run of it finished); while the dashboard is
        not on show, only note that they are out of date (it loads them when shown)."""
        store, project = self._store, self._project
        if store is None or project is None or metric not in project.metrics:
            return
        if self.isHidden():
            self._stale.add(metric)
            return
        tiles = [tile for tile in self.tiles if tile.chart.metric == metric]
        if not tiles:
            return
        config = project.metrics[metric]
        charts = [tile.chart for tile in tiles]

        def done(datas: list[ChartData]) -> None:
            if project is not self._project:
                return
            for tile, data in zip(tiles, datas, strict=True):
                if tile in self.tiles:
                    tile.show_data(data)
            self.loaded.emit(metric)

        def failed(message: str) -> None:
            for tile in tiles:
                if tile in self.tiles:
                    tile.show_error(message)

        self._bridge.submit(
            f"dashboard-{metric}", lambda: load_metric_charts(store, config, charts), done, failed, owner=self
        )

    def metric_changed(self, name: str, _run_id: object = None) -> None:
        """A run of ``name`` committed new values."""
        self.reload(name)

    def apply_palette(self) -> None:
        for tile in self.tiles:
            tile.apply_palette()

    def _open(self, tile: SmallChart) -> None:
        data = tile.data
        measure = data.measure if data is not None else (tile.chart.measure or "")
        dims = data.dims if data is not None else dict(tile.chart.series or {})
        self.open_requested.emit(tile.chart.metric, measure, dims)

    # -- changing it ----------------------------------------------------------------------

    def _set_enabled(self) -> None:
        has_project = self._project is not None
        for widget in (self.add_button, self.columns_box):
            widget.setEnabled(has_project)

    def _save(self, charts: list[DashboardChart], columns: int) -> None:
        if self._project is None:
            return
        document = ProjectDocument(self._project.path)
        document.set_dashboard(charts, columns)
        try:
            document.save()
        except LookbackError as exc:
            self.on_error(str(exc))
            return
        self.on_saved()

    def add(self, charts: list[DashboardChart]) -> None:
        """Put ``charts`` on the dashboard (after those on show) and save it."""
        columns = self.columns_box.value()
        self._save(self.charts() + charts, columns)

    def _add_shown(self) -> None:
        shown = self.chart_on_show()
        if shown is not None:
            metric, measure, dims = shown
            self.add([DashboardChart(metric, measure, dims)])

    def _add_each_series(self) -> None:
        shown = self.chart_on_show()
        if shown is not None:
            metric, measure, _dims = shown
            self.add([DashboardChart(metric, measure, dims) for dims in self.series_of()[:SERIES_ADDED]])

    def _add_every_metric(self) -> None:
        if self._project is not None:
            self.add([DashboardChart(name) for name in self._project.metrics])

    def _remove(self, index: int) -> None:
        charts = self.charts()
        if 0 <= index < len(charts):
            del charts[index]
            self._save(charts, self.columns_box.value())

    def _columns_changed(self, columns: int) -> None:
        # the charts as the file has them: none there still means one per metric
        charts = list(self._project.dashboard.charts) if self._project else []
        self._save(charts, columns)

    def grab_image(self) -> Any:
        return self.grid_host.grab()
