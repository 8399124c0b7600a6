"""What the main window shows and how: the tab brought forward, the theme, the tray icon, the
dashboard's and comparison's hooks into the chart, the window's settings and each project's view
(selected metric, tab, measures) kept for when it is opened again, and the Help menu's items."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QIcon
from PySide6.QtWidgets import QMenu, QMessageBox, QSplitter, QSystemTrayIcon, QTabWidget, QVBoxLayout, QWidget

from lookback_gui.core.applog import log_dir, log_file
from lookback_gui.core.project import Project
from lookback_gui.resources import resource
from lookback_gui.ui.theme import apply_theme
from lookback_gui.ui.window_actions import make_action

if TYPE_CHECKING:
    from lookback_gui.ui.main_window import MainWindow


def app_icon() -> QIcon:
    return QIcon(str(resource("lookback-gui.svg")))


def settings_key(path: Path) -> str:
    """A settings group name for one project file."""
    import hashlib

    return hashlib.sha1(str(path).encode("utf-8")).hexdigest()[:16]


class ViewController:
    """The main window's views and view settings."""

    def __init__(self, window: MainWindow):
        self.window = window

    def build_tabs(self) -> None:
        """The views on the right, one tab each."""
        window = self.window
        window.tabs = QTabWidget(accessibleName="Views")
        window.tabs.addTab(window.chart, "Chart")
        revisions = QWidget()
        revisions_layout = QVBoxLayout(revisions)
        revisions_layout.addWidget(window.revisions_find)
        revisions_layout.addWidget(window.revisions_view, 1)
        window.tabs.addTab(revisions, "Revisions")
        window.tabs.addTab(window.metric_runs, "Runs")
        definition = QWidget()
        layout = QVBoxLayout(definition)
        layout.addWidget(window.definition, 1)
        layout.addWidget(window.edit_metric_button, 0, Qt.AlignmentFlag.AlignRight)
        window.tabs.addTab(definition, "Definition")
        window.tabs.addTab(window.advisor, "Advisor")
        window.tabs.addTab(window.runs_log, "Runs log")
        window.tabs.addTab(window.health_view, "Health")
        window.tabs.addTab(window.alerts_view, "Alerts")
        window.tabs.addTab(window.dashboard, "Dashboard")
        window.tabs.addTab(window.compare, "Compare")

    def build_layout(self) -> None:
        """The alert bar over the tree beside the tabs."""
        window = self.window
        window.splitter = QSplitter(Qt.Orientation.Horizontal)
        window.splitter.addWidget(window.tree)
        window.splitter.addWidget(window.tabs)
        window.splitter.setStretchFactor(1, 1)
        window.splitter.setSizes([300, 980])
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(window.alert_bar)
        layout.addWidget(window.splitter, 1)
        window.setCentralWidget(central)

    def connect(self) -> None:
        """Give the dashboard and the comparison what they ask of the chart and the window."""
        window = self.window
        window.compare.settling = lambda name: window.chart._settling.get(name)
        window.compare.measure_hint = window.chart.measure_box.currentText
        window.compare.as_known = window.chart.as_known
        window.metric_views.changed.connect(window.dashboard.metric_changed)
        window.metric_views.changed.connect(window.compare.metric_changed)
        window.dashboard.open_requested.connect(self.open_chart)
        window.dashboard.on_saved = window.reload_project
        window.dashboard.on_error = lambda message: window.show_error("The dashboard", message)
        window.dashboard.series_of = lambda: [
            d
            for d, m, _size in (window.chart._data.series if window.chart._data else ())
            if m == window.chart.measure_box.currentText()
        ]

        def on_show() -> tuple[str, str, dict[str, Any]] | None:
            data = window.chart._data
            return None if data is None or not data.measure else (data.metric, data.measure, data.dims)

        window.dashboard.chart_on_show = on_show

    def show_tab(self, name: str) -> None:
        """Bring the tab of the view named ``name`` (an attribute of the window) to the front."""
        self.window.tabs.setCurrentWidget(getattr(self.window, name))

    def focus_find(self) -> None:
        self.window.tabs.setCurrentWidget(self.window.runs_log)
        self.window.runs_log.focus_find()

    def open_chart(self, metric: str, measure: str, dims: dict[str, Any]) -> None:
        """Show a series of ``metric`` full size in the Chart tab (a dashboard chart's click)."""
        window = self.window
        if window.project is None or metric not in window.project.metrics:
            return
        window.tree.select_metric(metric)
        window.chart.open_series(window.store, window.project.metrics[metric], measure, dims)
        window.tabs.setCurrentWidget(window.chart)

    def set_theme(self, name: str) -> None:
        window = self.window
        apply_theme(name)
        window.chart.apply_palette()
        window.advisor.apply_palette()
        window.dashboard.apply_palette()
        window.compare.apply_palette()
        for action in window.theme_menu.actions():
            action.setChecked(action.data() == name)
        window.settings.setValue("view/theme", name)

    # -- the tray -------------------------------------------------------------------------

    def build_tray(self) -> None:
        window = self.window
        window.tray = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            window.tray = QSystemTrayIcon(app_icon(), window)
            menu = QMenu(window)
            menu.addAction(make_action(window, "Show", self.show_from_tray))
            menu.addAction(window.quit_action)
            window.tray.setContextMenu(menu)
            window.tray.setToolTip("Lookback GUI")
            window.tray.activated.connect(self.show_from_tray)
            window.tray.show()
        else:  # without a tray, closing the window cannot leave it running anywhere
            window.tray_action.setVisible(False)

    def show_from_tray(self) -> None:
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()

    def tray_setting_changed(self) -> None:
        self.window.settings.setValue("tray/keep_running", self.window.tray_action.isChecked())

    # -- settings -------------------------------------------------------------------------

    def restore_state(self) -> None:
        window, settings = self.window, self.window.settings
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            window.restoreGeometry(geometry)
        splitter = settings.value("window/splitter")
        if isinstance(splitter, QByteArray):
            window.splitter.restoreState(splitter)
        window.tray_action.setChecked(
            window.tray is not None and bool(settings.value("tray/keep_running", False, type=bool))
        )
        self.set_theme(str(settings.value("view/theme", "system")))

    def save_state(self) -> None:
        window, settings = self.window, self.window.settings
        settings.setValue("window/geometry", window.saveGeometry())
        settings.setValue("window/splitter", window.splitter.saveState())
        self.save_view()
        if window.project:
            settings.setValue("project/last", str(window.project.path))
        settings.sync()

    def save_view(self) -> None:
        """The selected metric, tab and the measure chosen for each metric of the open
        project, for when it is opened again."""
        window = self.window
        if window.project is None:
            return
        key = f"view/{settings_key(window.project.path)}"
        window.settings.setValue(f"{key}/metric", window.tree.selected_metric_name() or "")
        window.settings.setValue(f"{key}/tab", window.tabs.currentIndex())
        window.settings.setValue(f"{key}/measures", window.chart.measure_memory())

    def restore_view(self, project: Project) -> None:
        """Show the project in the tree with the metric, tab and measures it was left with."""
        window, settings = self.window, self.window.settings
        key = f"view/{settings_key(project.path)}"
        window.chart.range_picker.set_project(project.path)
        measures = settings.value(f"{key}/measures", {})
        if isinstance(measures, dict):
            window.chart.set_measure_memory({str(k): str(v) for k, v in measures.items()})
        window.tree.set_project(project)
        selected = str(settings.value(f"{key}/metric", "") or "")
        if selected in project.metrics:
            window.tree.select_metric(selected)
        tab = settings.value(f"{key}/tab", None)
        if tab is not None and 0 <= int(str(tab)) < window.tabs.count():
            window.tabs.setCurrentIndex(int(str(tab)))

    def paused_setting(self, path: str | Path) -> bool:
        """Whether the scheduler of the project file at ``path`` was left paused."""
        key = f"view/{settings_key(Path(path).expanduser().absolute())}"
        return bool(self.window.settings.value(f"{key}/paused", False, type=bool))

    # -- help -----------------------------------------------------------------------------

    def about(self) -> None:
        from lookback_gui import __version__

        QMessageBox.about(
            self.window,
            "About Lookback GUI",
            f"Lookback GUI {__version__}\nRe-pulls metrics over their lookback "
            "window, keeps every version, and charts late-data revisions.",
        )

    def open_log_folder(self) -> bool:
        """Show the log folder in the desktop's file manager."""
        folder = log_file()
        target = folder.parent if folder is not None else log_dir()
        target.mkdir(parents=True, exist_ok=True)
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(target)))
