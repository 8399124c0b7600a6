"""The main window: sources and metrics on the left, the selected metric's chart, revisions, runs
and definition on the right, plus the global runs log, health and alerts.

The window owns nothing but widgets: the project, the store and the scheduler are core objects
it is handed; every store read and every pull runs off the GUI thread, and results come back
through the bridge.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QSystemTrayIcon,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lookback_gui.core import events as ev
from lookback_gui.core.errors import LookbackError
from lookback_gui.core.project import MetricConfig, Project, ProjectDocument, load_project, write_atomically
from lookback_gui.core.scheduler import PlannedPull, Scheduler
from lookback_gui.core.store import AlertState, LogLine, RunRecord, Store
from lookback_gui.core.windows import Window, add_buckets, local_now
from lookback_gui.ui.advisor_tab import AdvisorWidget
from lookback_gui.ui.backfill import BackfillDialog
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.chart import ChartWidget
from lookback_gui.ui.editors import MetricEditor, SourceEditor
from lookback_gui.ui.models import (
    AlertsModel,
    HealthModel,
    HealthRow,
    RecordTableModel,
    RevisionsModel,
    RevisionView,
    RunsModel,
    fmt_time,
)

RUN_PAGE = 300
REVISIONS_SHOWN = 2000


@dataclass(frozen=True)
class Snapshot:
    """What the window shows about runs and alerts, loaded off the GUI thread.

    Attributes:
        runs: the newest page of runs (older ones are fetched as the runs views scroll).
        latest: each metric's newest run, for the tree.
        successes: each metric's newest successful run, for the health view.
    """

    runs: list[RunRecord]
    alerts: list[AlertState]
    latest: dict[str, RunRecord] = field(default_factory=dict)
    successes: dict[str, RunRecord | None] = field(default_factory=dict)


def resource(name: str) -> Path:
    """A file shipped in the package's resources (the icon, the .desktop file)."""
    from importlib.resources import files

    try:
        return Path(str(files("lookback_gui.resources") / name))
    except ModuleNotFoundError:  # run from a source checkout that is not installed
        return Path(__file__).resolve().parents[2] / "resources" / name


def app_icon() -> QIcon:
    return QIcon(str(resource("lookback-gui.svg")))


class RunsFilter(QSortFilterProxyModel):
    """Filters runs by metric, status, trigger and free text; sorts by each column's value."""

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self.metric: str | None = None
        self.status: str | None = None
        self.trigger: str | None = None
        self.setSortRole(RecordTableModel.SORT_ROLE)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(-1)

    def set_fields(self, metric: str | None = None, status: str | None = None,
                   trigger: str | None = None) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.10 and newer
            self.beginFilterChange()
            self.metric, self.status, self.trigger = metric, status, trigger
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.metric, self.status, self.trigger = metric, status, trigger
            self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent: Any) -> bool:
        model = self.sourceModel()
        if not isinstance(model, RunsModel) or row >= model.rowCount():
            return False
        run = model.record(row)
        if self.metric and run.metric != self.metric:
            return False
        if self.status and run.status != self.status:
            return False
        if self.trigger and run.trigger != self.trigger:
            return False
        return super().filterAcceptsRow(row, parent)


def _table(model: Any, name: str) -> QTableView:
    view = QTableView(accessibleName=name)
    view.setModel(model)
    view.setSortingEnabled(True)
    view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QTableView.SelectionMode.SingleSelection)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 8)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    view.horizontalHeader().setStretchLastSection(True)
    return view


class MainWindow(QMainWindow):
    """The desktop app's window.

    Signals:
        refreshed(): the runs, alerts and tree were brought up to date (tests wait on it).
    """

    refreshed = Signal()

    def __init__(self, settings: QSettings, bridge: Bridge | None = None):
        super().__init__()
        self.settings = settings
        self.bridge = bridge or Bridge(parent=self)
        self.project: Project | None = None
        self.store: Store | None = None
        self.scheduler: Scheduler | None = None
        self.quitting = False
        self.last_error: str | None = None
        self._latest: dict[str, RunRecord] = {}
        self._stale_tabs: set[str] = set()
        self._settling_measured: set[tuple[str, int | None]] = set()
        self._progress: dict[str, float] = {}
        self._backfills: dict[str, tuple[int, int]] = {}
        self.setWindowTitle("Lookback GUI")
        self.setWindowIcon(app_icon())
        self.resize(1280, 820)

        self.tree = QTreeWidget(accessibleName="Sources and metrics")
        self.tree.setHeaderLabels(["Project", "Status"])
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.tree.itemDoubleClicked.connect(self._edit_item)

        self.runs_model = RunsModel(self)
        self.runs_model.wants_older.connect(self._load_older_runs)
        self.metric_runs = RunsFilter(self)
        self.metric_runs.setSourceModel(self.runs_model)
        self.all_runs = RunsFilter(self)
        self.all_runs.setSourceModel(self.runs_model)
        self.revisions_model = RevisionsModel(self)
        revisions_proxy = QSortFilterProxyModel(self)
        revisions_proxy.setSourceModel(self.revisions_model)
        revisions_proxy.setSortRole(RecordTableModel.SORT_ROLE)
        self.health_model = HealthModel(self)
        health_proxy = QSortFilterProxyModel(self)
        health_proxy.setSourceModel(self.health_model)
        health_proxy.setSortRole(RecordTableModel.SORT_ROLE)
        self.alerts_model = AlertsModel(self)

        self.chart = ChartWidget(self.bridge)
        self.advisor = AdvisorWidget(self.bridge)
        self.revisions_view = _table(revisions_proxy, "Revisions")
        self.metric_runs_view = _table(self.metric_runs, "Runs of this metric")
        self.all_runs_view = _table(self.all_runs, "Runs log")
        for view in (self.metric_runs_view, self.all_runs_view):
            view.sortByColumn(0, Qt.SortOrder.DescendingOrder)
            for column, width in ((0, 60), (1, 130), (2, 100), (3, 90), (4, 150), (5, 270)):
                view.setColumnWidth(column, width)
        self.health_view = _table(health_proxy, "Health")
        self.alerts_view = _table(self.alerts_model, "Alerts")
        self.revisions_view.sortByColumn(5, Qt.SortOrder.DescendingOrder)  # newest run first
        for model, view in ((self.revisions_model, self.revisions_view),
                            (self.health_model, self.health_view),
                            (self.alerts_model, self.alerts_view)):
            model.modelReset.connect(view.resizeColumnsToContents)
        self.run_detail = QTextBrowser(accessibleName="Run detail")
        self.definition = QPlainTextEdit(accessibleName="Metric definition")
        self.definition.setReadOnly(True)
        self.edit_metric_button = QPushButton("Edit metric…", accessibleName="Edit metric")
        self.edit_metric_button.clicked.connect(self.edit_metric)

        self.find_box = QLineEdit(accessibleName="Find in runs")
        self.find_box.setPlaceholderText("Find runs (metric, status, error…)  Ctrl+F")
        self.find_box.textChanged.connect(self.all_runs.setFilterFixedString)
        self.status_filter = QComboBox(accessibleName="Filter by status")
        self.status_filter.addItems(["any status", "running", "succeeded", "failed",
                                     "cancelled", "interrupted"])
        self.trigger_filter = QComboBox(accessibleName="Filter by trigger")
        self.trigger_filter.addItems(["any trigger", "schedule", "manual", "catch-up",
                                      "backfill", "command-line", "retry"])
        self.status_filter.currentTextChanged.connect(self._global_filter_changed)
        self.trigger_filter.currentTextChanged.connect(self._global_filter_changed)

        self._build_tabs()
        self._build_actions()
        self._build_status_bar()
        self._build_tray()

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([280, 1000])
        self.setCentralWidget(self.splitter)

        self.metric_runs_view.selectionModel().currentRowChanged.connect(
            lambda current, _: self._show_run(self.metric_runs, current))
        self.all_runs_view.selectionModel().currentRowChanged.connect(
            lambda current, _: self._show_run(self.all_runs, current))
        self.bridge.core_event.connect(self._on_event)
        self.chart.loaded.connect(self._measure_settling)
        self.advisor.loaded.connect(self._advice_loaded)
        self._refresh_timer = QTimer(self, interval=2000)
        self._refresh_timer.timeout.connect(self.refresh)
        self._soon = QTimer(self, singleShot=True, interval=150)
        self._soon.timeout.connect(self.refresh)
        self._status_timer = QTimer(self, interval=1000)
        self._status_timer.timeout.connect(self._update_status)
        self._restore_state()
        self._set_enabled()

    # -- building -------------------------------------------------------------------------

    def _build_tabs(self) -> None:
        self.tabs = QTabWidget(accessibleName="Views")
        self.tabs.addTab(self.chart, "Chart")
        self.tabs.addTab(self.revisions_view, "Revisions")
        runs = QSplitter(Qt.Orientation.Vertical)
        runs.addWidget(self.metric_runs_view)
        self.metric_run_detail = QTextBrowser(accessibleName="Run detail of this metric")
        runs.addWidget(self.metric_run_detail)
        runs.setSizes([400, 300])
        self.tabs.addTab(runs, "Runs")
        definition = QWidget()
        layout = QVBoxLayout(definition)
        layout.addWidget(self.definition, 1)
        layout.addWidget(self.edit_metric_button, 0, Qt.AlignmentFlag.AlignRight)
        self.tabs.addTab(definition, "Definition")
        self.tabs.addTab(self.advisor, "Advisor")
        log = QWidget()
        log_layout = QVBoxLayout(log)
        bar = QHBoxLayout()
        bar.addWidget(self.find_box, 1)
        bar.addWidget(self.status_filter)
        bar.addWidget(self.trigger_filter)
        log_layout.addLayout(bar)
        log_split = QSplitter(Qt.Orientation.Vertical)
        log_split.addWidget(self.all_runs_view)
        log_split.addWidget(self.run_detail)
        log_split.setSizes([450, 250])
        log_layout.addWidget(log_split, 1)
        self.tabs.addTab(log, "Runs log")
        self.tabs.addTab(self.health_view, "Health")
        self.tabs.addTab(self.alerts_view, "Alerts")
        self.tabs.currentChanged.connect(lambda _: self._load_visible_tab())

    def _action(self, text: str, slot: Any, shortcut: Any = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip or text.replace("…", ""))
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        keys = QKeySequence.StandardKey
        self.new_project_action = self._action("&New project…", self.new_project, keys.New)
        self.open_action = self._action("&Open project…", self.choose_project, keys.Open)
        self.save_action = self._action("&Save", self.save_project, QKeySequence.StandardKey.Save,
                                        "Write the project file (editors save on OK)")
        self.quit_action = self._action("&Quit", self.quit, QKeySequence.StandardKey.Quit)
        self.run_now_action = self._action("&Run now", self.run_now, "Ctrl+R",
                                           "Pull the selected metric now")
        self.retry_action = self._action("Re&try run", self.retry_run, None,
                                         "Re-run the selected failed run's window")
        self.cancel_action = self._action("&Cancel pull", self.cancel_pull, "Ctrl+.",
                                          "Cancel the selected metric's running pull")
        self.backfill_action = self._action("&Backfill…", self.backfill, "Ctrl+B")
        self.new_metric_action = self._action("New &metric…", self.new_metric, "Ctrl+M")
        self.new_source_action = self._action("New &source…", self.new_source, "Ctrl+Shift+N")
        self.edit_action = self._action("&Edit…", self.edit_selected, "Ctrl+E")
        self.find_action = self._action("&Find runs", self.focus_find, QKeySequence.StandardKey.Find)
        self.pause_action = self._action("&Pause scheduler", self.toggle_pause, "Ctrl+P")
        self.pause_action.setCheckable(True)
        self.tray_action = self._action("Keep running in the &tray when closed",
                                        self._tray_setting_changed)
        self.tray_action.setCheckable(True)

        files = self.menuBar().addMenu("&File")
        files.addAction(self.new_project_action)
        files.addAction(self.open_action)
        self.recent_menu = files.addMenu("Open &recent")
        files.addAction(self.save_action)
        files.addSeparator()
        files.addAction(self.quit_action)
        edit = self.menuBar().addMenu("&Edit")
        edit.addAction(self.new_source_action)
        edit.addAction(self.new_metric_action)
        edit.addAction(self.edit_action)
        edit.addAction(self.find_action)
        metric = self.menuBar().addMenu("&Metric")
        for action in (self.run_now_action, self.retry_action, self.cancel_action,
                       self.backfill_action):
            metric.addAction(action)
        view = self.menuBar().addMenu("&View")
        theme = view.addMenu("&Theme")
        for name in ("system", "light", "dark"):
            action = self._action(name.title(), lambda _=False, n=name: self.set_theme(n))
            action.setCheckable(True)
            action.setData(name)
            theme.addAction(action)
        self.theme_menu = theme
        view.addAction(self.pause_action)
        view.addAction(self.tray_action)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self._action("&About Lookback GUI", self.about))
        self._update_recent_menu()

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.scheduler_label = QLabel("no project", accessibleName="Scheduler state")
        self.pause_button = QToolButton(accessibleName="Pause or resume the scheduler")
        self.pause_button.setDefaultAction(self.pause_action)
        self.running_label = QLabel(accessibleName="Running pulls")
        self.progress = QProgressBar(accessibleName="Pull progress")
        self.progress.setMaximumWidth(160)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel", accessibleName="Cancel running pulls")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_all)
        self.next_label = QLabel(accessibleName="Next run")
        bar.addPermanentWidget(self.running_label)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        bar.addPermanentWidget(self.next_label)
        bar.addPermanentWidget(self.scheduler_label)
        bar.addPermanentWidget(self.pause_button)

    def _build_tray(self) -> None:
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(app_icon(), self)
            menu = QMenu(self)
            menu.addAction(self._action("Show", self._show_from_tray))
            menu.addAction(self.quit_action)
            self.tray.setContextMenu(menu)
            self.tray.setToolTip("Lookback GUI")
            self.tray.activated.connect(lambda *_: self._show_from_tray())
            self.tray.show()

    # -- settings -------------------------------------------------------------------------

    def _restore_state(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        splitter = self.settings.value("window/splitter")
        if isinstance(splitter, QByteArray):
            self.splitter.restoreState(splitter)
        self.tray_action.setChecked(bool(self.settings.value("tray/keep_running", False, type=bool)))
        self.set_theme(str(self.settings.value("view/theme", "system")))

    def _save_state(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/splitter", self.splitter.saveState())
        if self.project:
            self.settings.setValue("project/last", str(self.project.path))
        self.settings.sync()

    def _tray_setting_changed(self) -> None:
        self.settings.setValue("tray/keep_running", self.tray_action.isChecked())

    def set_theme(self, name: str) -> None:
        scheme = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}.get(
            name, Qt.ColorScheme.Unknown)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.styleHints().setColorScheme(scheme)
        for action in self.theme_menu.actions():
            action.setChecked(action.data() == name)
        self.settings.setValue("view/theme", name)

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = [p for p in self._recent() if Path(p).exists()]
        for path in recent:
            self.recent_menu.addAction(self._action(path, lambda _=False, p=path: self.open_project(p)))
        self.recent_menu.setEnabled(bool(recent))

    def _recent(self) -> list[str]:
        value = self.settings.value("project/recent", [])
        return [str(v) for v in (value if isinstance(value, list) else [value] if value else [])]

    def _remember(self, path: Path) -> None:
        recent = [str(path)] + [p for p in self._recent() if p != str(path)]
        self.settings.setValue("project/recent", recent[:10])
        self.settings.setValue("project/last", str(path))
        self._update_recent_menu()

    # -- project --------------------------------------------------------------------------

    def open_project(self, path: str | Path, start_scheduler: bool = True) -> bool:
        """Open a project: load and validate it, open its store, start its scheduler."""
        try:
            project = load_project(path)
        except LookbackError as exc:
            self.show_error("Cannot open the project", str(exc))
            return False
        if self.project is not None and self.project.store_path != project.store_path:
            self.close_project()
        if self.store is None:
            try:
                self.store = Store(project.store_path)
            except LookbackError as exc:
                self.show_error("Cannot open the store", str(exc))
                return False
        self.project = project
        if self.scheduler is None:
            self.scheduler = Scheduler(project, self.store)
            self.scheduler.events.subscribe(self.bridge)
            if start_scheduler:
                self.scheduler.start()
        else:
            self.scheduler.reload_if_changed()
            self.scheduler.project = project
        self._remember(project.path)
        self.statusBar().showMessage(f"opened {project.path}", 4000)
        self.setWindowTitle(f"{project.path.name} — Lookback GUI")
        self._fill_tree()
        self._set_enabled()
        self._refresh_timer.start()
        self._status_timer.start()
        self._update_status()
        self.refresh()
        return True

    def close_project(self) -> None:
        self._refresh_timer.stop()
        self._status_timer.stop()
        if self.scheduler is not None:
            self.scheduler.events.unsubscribe(self.bridge)
            self.scheduler.shutdown(grace_s=0)
            self.scheduler = None
        if self.store is not None:
            self.store.close()
            self.store = None
        self.project = None
        self.tree.clear()
        self.runs_model.set_records([])
        self.chart.set_metric(None, None, [])
        self._set_enabled()

    def reload_project(self) -> None:
        """Re-read the project file after an edit and bring the scheduler and tree up to date."""
        if self.project is None:
            return
        try:
            project = load_project(self.project.path)
        except LookbackError as exc:
            self.show_error("The project file no longer loads", str(exc))
            return
        self.project = project
        if self.scheduler is not None:
            self.scheduler.reload_if_changed()
        self._fill_tree()
        self._selection_changed()

    def new_project(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "New project", str(Path.home() / "lookback.toml"),
                                              "Lookback project (*.toml)")
        if not path:
            return
        target = Path(path)
        if target.exists():
            self.show_error("Cannot create the project", f"{target} already exists; open it instead")
            return
        try:
            write_atomically(target, "# Lookback GUI project\n\n[store]\npath = \"lookback.duckdb\"\n")
        except OSError as exc:
            self.show_error("Cannot create the project", f"{target}: {exc.strerror}")
            return
        self.open_project(target)

    def choose_project(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", "", "Lookback project (*.toml)")
        if path:
            self.open_project(path)

    def save_project(self) -> None:
        if self.project is None:
            return
        try:
            ProjectDocument(self.project.path).save()
        except LookbackError as exc:
            self.show_error("Cannot save the project", str(exc))
            return
        self.statusBar().showMessage(f"saved {self.project.path}", 4000)

    # -- tree and selection ---------------------------------------------------------------

    def _fill_tree(self) -> None:
        selected = self.selected_metric_name()
        self.tree.clear()
        if self.project is None:
            return
        sources = QTreeWidgetItem(self.tree, ["Sources", ""])
        for source in self.project.sources.values():
            item = QTreeWidgetItem(sources, [source.name, source.type])
            item.setData(0, Qt.ItemDataRole.UserRole, ("source", source.name))
            item.setToolTip(0, source.path or source.dsn or "")
        metrics = QTreeWidgetItem(self.tree, ["Metrics", ""])
        for metric in self.project.metrics.values():
            item = QTreeWidgetItem(metrics, [metric.name, ""])
            item.setData(0, Qt.ItemDataRole.UserRole, ("metric", metric.name))
            item.setToolTip(0, metric.description or f"{metric.grain.value}, lookback {metric.lookback}")
            if metric.name == selected:
                item.setSelected(True)
        self.tree.expandAll()
        if not self.tree.selectedItems() and metrics.childCount():
            metrics.child(0).setSelected(True)
        self._update_tree_status()

    def selected_metric_name(self) -> str | None:
        for item in self.tree.selectedItems():
            data = item.data(0, Qt.ItemDataRole.UserRole)
            if data and data[0] == "metric":
                return str(data[1])
        return None

    def selected_metric(self) -> MetricConfig | None:
        name = self.selected_metric_name()
        if self.project is None or name is None:
            return None
        return self.project.metrics.get(name)

    def select_metric(self, name: str) -> None:
        for item in self._metric_items():
            item.setSelected(item.data(0, Qt.ItemDataRole.UserRole)[1] == name)

    def _metric_items(self) -> list[QTreeWidgetItem]:
        out: list[QTreeWidgetItem] = []
        for top in range(self.tree.topLevelItemCount()):
            parent = self.tree.topLevelItem(top)
            for index in range(parent.childCount()):
                child = parent.child(index)
                data = child.data(0, Qt.ItemDataRole.UserRole)
                if child is not None and data and data[0] == "metric":
                    out.append(child)
        return out

    def _selection_changed(self) -> None:
        metric = self.selected_metric()
        self.metric_runs.set_fields(metric=metric.name if metric else "\0none")
        runs = [r for r in self.runs_model.records() if metric and r.metric == metric.name]
        self.chart.set_metric(self.store, metric, runs)
        self.definition.setPlainText(self._definition_text(metric))
        self._stale_tabs = {"revisions", "advisor"}
        self._load_visible_tab()
        self._set_enabled()

    def _measure_settling(self, data: object) -> None:
        """After a chart is drawn, measure (once per new run) how long its buckets take to
        settle, so the shaded provisional region can follow it."""
        metric = self.selected_metric()
        store = self.store
        latest = self._latest.get(metric.name) if metric else None
        if metric is None or store is None:
            return
        key = (metric.name, latest.id if latest else None)
        if key in self._settling_measured:
            return
        self._settling_measured.add(key)
        from lookback_gui.core.advisor import advise

        def measure() -> None:  # after the window has settled down from what it just showed
            if self.store is store:
                self.bridge.submit(f"settling-{metric.name}", lambda: advise(store, metric),
                                   self._advice_loaded, lambda message: None)

        QTimer.singleShot(1500, self, measure)

    def _advice_loaded(self, advice: object) -> None:
        from lookback_gui.core.advisor import Advice

        if isinstance(advice, Advice):
            settled = advice.settled_after_buckets.get("p99") if advice.enough_history else None
            self.chart.set_settling(advice.metric, settled)

    def _load_visible_tab(self) -> None:
        """Revisions and the advisor are loaded when their tab is shown, once per change."""
        current = self.tabs.currentWidget()
        if current is self.revisions_view and "revisions" in self._stale_tabs:
            self._stale_tabs.discard("revisions")
            self._load_revisions()
        elif current is self.advisor and "advisor" in self._stale_tabs:
            self._stale_tabs.discard("advisor")
            self.advisor.set_metric(self.store, self.selected_metric(),
                                    self.project.path if self.project else None,
                                    self.reload_project)

    def _definition_text(self, metric: MetricConfig | None) -> str:
        if metric is None or self.project is None:
            return ""
        try:
            import tomlkit

            document = ProjectDocument(self.project.path).document
            table = tomlkit.document()
            table.add(tomlkit.comment(f"[metrics.{metric.name}] in {self.project.path}"))
            table["metrics"] = {metric.name: document["metrics"][metric.name]}
            return tomlkit.dumps(table)
        except (LookbackError, KeyError):
            return metric.sql

    def _edit_item(self, item: QTreeWidgetItem) -> None:
        data = item.data(0, Qt.ItemDataRole.UserRole)
        if data and data[0] == "source":
            self.edit_source(str(data[1]))
        elif data and data[0] == "metric":
            self.edit_metric()

    # -- refreshing -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload runs and alerts off the GUI thread."""
        store = self.store
        project = self.project
        if store is None or project is None:
            return
        names = list(project.metrics)

        def load() -> Snapshot:
            runs = store.runs(limit=RUN_PAGE)
            return Snapshot(runs, store.alert_states(), store.latest_runs(),
                            {name: store.last_successful_run(name) for name in names})

        self.bridge.submit("snapshot", load, self._apply_snapshot, self._snapshot_failed)

    def _load_older_runs(self, before: int) -> None:
        store = self.store
        if store is None:
            return
        self.bridge.submit("older-runs", lambda: store.runs(limit=RUN_PAGE, before=before),
                           lambda runs: self.runs_model.append_older(runs, len(runs) == RUN_PAGE),
                           self._snapshot_failed)

    def _snapshot_failed(self, message: str) -> None:
        self.statusBar().showMessage(f"cannot read the store: {message}", 8000)

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        before = self.runs_model.records()[0].id if self.runs_model.rowCount() else None
        first = self.runs_model.rowCount() == 0
        self.runs_model.update(snapshot.runs)
        if first:
            self.runs_model.more_available = len(snapshot.runs) == RUN_PAGE
        self._latest = snapshot.latest
        self.alerts_model.set_records(snapshot.alerts)
        self._update_health(snapshot)
        self._update_tree_status()
        after = snapshot.runs[0].id if snapshot.runs else None
        if before != after:
            metric = self.selected_metric()
            runs = [r for r in snapshot.runs if metric and r.metric == metric.name]
            self.chart.set_metric(self.store, metric, runs)
            self._stale_tabs = {"revisions", "advisor"}
            self._load_visible_tab()
        self.refreshed.emit()

    def _update_tree_status(self) -> None:
        latest: dict[str, RunRecord] = dict(self._latest)
        for run in self.runs_model.records()[:RUN_PAGE]:
            if run.metric not in latest or latest[run.metric].id < run.id:
                latest[run.metric] = run
        running = set(self.scheduler.running_metrics()) if self.scheduler else set()
        for item in self._metric_items():
            name = item.data(0, Qt.ItemDataRole.UserRole)[1]
            metric = self.project.metrics.get(name) if self.project else None
            run = latest.get(name)
            status = "running" if name in running else (run.status if run else "never run")
            symbol = {"succeeded": "✓", "failed": "✗", "running": "…", "cancelled": "–",
                      "interrupted": "!"}.get(status, "·")
            schedule = "scheduled" if metric and metric.scheduled else "manual"
            item.setText(1, f"{symbol} {status}, {schedule}")
            item.setToolTip(1, run.error if run and run.error else f"{status}; {schedule}")

    def _update_health(self, snapshot: Snapshot) -> None:
        if self.project is None:
            return
        fires = self.scheduler.next_fire_times() if self.scheduler else {}
        rows = []
        for metric in self.project.metrics.values():
            runs = [r for r in snapshot.runs if r.metric == metric.name]
            if not runs and metric.name in snapshot.latest:
                runs = [snapshot.latest[metric.name]]
            success = snapshot.successes.get(metric.name) or next(
                (r for r in runs if r.status == "succeeded"), None)
            ended = [r for r in runs[:20] if r.status in ("succeeded", "failed")]
            failures = sum(r.status == "failed" for r in ended)
            now = local_now(metric.zone)
            freshness = ""
            if success and success.finished_at:
                age = now - success.finished_at
                freshness = f"{int(age.total_seconds() // 60)} min ago" if age < timedelta(hours=2) \
                    else f"{age.total_seconds() / 3600:.1f} h ago"
            fire = fires.get(metric.name)
            rows.append(HealthRow(
                metric=metric.name,
                last_success=success.finished_at if success else None,
                freshness=freshness or "never",
                next_run=fire.astimezone(metric.zone).strftime("%Y-%m-%d %H:%M") if fire else
                ("paused" if metric.scheduled else "manual"),
                last_duration=runs[0].duration_s if runs else None,
                failure_rate=failures / len(ended) * 100 if ended else None,
                firing=sum(a.metric == metric.name and a.state == "firing"
                           for a in snapshot.alerts),
                status=runs[0].status if runs else "never run",
            ))
        self.health_model.set_records(rows)

    def _load_revisions(self) -> None:
        metric = self.selected_metric()
        store = self.store
        if metric is None or store is None:
            self.revisions_model.set_records([])
            return

        def load() -> list[RevisionView]:
            views = []
            for rev in store.revisions(metric.name, newest=REVISIONS_SHOWN):
                closed = add_buckets(rev.bucket, metric.grain, 1)
                lag = (rev.as_of - closed) if rev.as_of else timedelta(0)
                hours = lag.total_seconds() / 3600
                text = ("still open" if hours < 0 else f"{hours:.1f} h" if hours < 48
                        else f"{hours / 24:.1f} days")
                views.append(RevisionView(rev, text, lag.total_seconds()))
            return views

        self.bridge.submit("revisions", load, self.revisions_model.set_records,
                           lambda message: self.statusBar().showMessage(message, 8000))

    def _global_filter_changed(self) -> None:
        status = self.status_filter.currentText()
        trigger = self.trigger_filter.currentText()
        self.all_runs.set_fields(status=None if status.startswith("any") else status,
                                 trigger=None if trigger.startswith("any") else trigger)

    def _show_run(self, proxy: RunsFilter, index: Any) -> None:
        target = self.metric_run_detail if proxy is self.metric_runs else self.run_detail
        if not index.isValid() or self.store is None:
            target.clear()
            return
        run = self.runs_model.record(proxy.mapToSource(index).row())
        store = self.store
        self.bridge.submit(f"detail-{id(target)}", lambda: (store.run(run.id), store.run_log(run.id)),
                           lambda found: target.setHtml(run_detail_html(*found)))
        self._set_enabled()

    # -- status bar -----------------------------------------------------------------------

    def _update_status(self) -> None:
        if self.scheduler is None:
            self.scheduler_label.setText("no project")
            return
        paused = self.scheduler.paused
        self.scheduler_label.setText("scheduler stopped" if not self.scheduler.running else
                                     "scheduler paused" if paused else "scheduler running")
        self.pause_action.setChecked(paused)
        running = self.scheduler.running_metrics()
        if running:
            parts = []
            for name in running:
                done, total = self._backfills.get(name, (0, 0))
                parts.append(f"{name} ({done}/{total})" if total else name)
            self.running_label.setText("pulling: " + ", ".join(parts))
            percents = [self._progress[n] for n in running if n in self._progress]
            self.progress.setVisible(True)
            if percents:
                self.progress.setRange(0, 100)
                self.progress.setValue(int(min(percents)))
            else:
                self.progress.setRange(0, 0)
        else:
            self.running_label.setText("")
            self.progress.setVisible(False)
        self.cancel_button.setVisible(bool(running))
        fires = [f for f in self.scheduler.next_fire_times().values() if f is not None]
        if fires and not paused:
            soonest = min(fires)
            self.next_label.setText(f"next run {soonest.astimezone():%H:%M:%S}")
        else:
            self.next_label.setText("")

    def _on_event(self, event: object) -> None:
        if isinstance(event, ev.Progress):
            self._progress[event.metric] = event.percent
            return
        if isinstance(event, ev.RunFinished):
            self._progress.pop(event.run.metric, None)
            if event.run.metric in self._backfills:
                done, total = self._backfills[event.run.metric]
                done += 1
                if done >= total:
                    self._backfills.pop(event.run.metric)
                else:
                    self._backfills[event.run.metric] = (done, total)
            if event.run.status == "failed":
                self.statusBar().showMessage(f"run {event.run.id} of {event.run.metric} failed: "
                                             f"{event.run.error}", 10000)
        if isinstance(event, ev.AlertChanged) and event.state == "firing" and self.tray:
            self.tray.showMessage(f"{event.metric}: {event.rule}", event.message,
                                  QSystemTrayIcon.MessageIcon.Warning, 10000)
        if isinstance(event, ev.Notice) and event.level == "error":
            self.statusBar().showMessage(event.message, 10000)
        self._soon.start()
        self._update_status()

    # -- actions --------------------------------------------------------------------------

    def _set_enabled(self) -> None:
        has_project = self.project is not None
        metric = self.selected_metric()
        for action in (self.run_now_action, self.backfill_action, self.cancel_action):
            action.setEnabled(metric is not None)
        self.retry_action.setEnabled(self._selected_run() is not None)
        for action in (self.new_metric_action, self.new_source_action, self.edit_action,
                       self.save_action, self.pause_action):
            action.setEnabled(has_project)
        self.edit_metric_button.setEnabled(metric is not None)

    def _selected_run(self) -> RunRecord | None:
        for view, proxy in ((self.metric_runs_view, self.metric_runs),
                            (self.all_runs_view, self.all_runs)):
            index = view.currentIndex()
            if index.isValid() and view.isVisible():
                return self.runs_model.record(proxy.mapToSource(index).row())
        return None

    def run_now(self) -> None:
        metric = self.selected_metric()
        if metric is None or self.scheduler is None:
            return
        if self.scheduler.run_now(metric.name, trigger="manual") is None:
            self.statusBar().showMessage(f"{metric.name} is already being pulled", 4000)
        self._update_status()

    def retry_run(self) -> None:
        run = self._selected_run()
        if run is None or self.scheduler is None or not run.window_start or not run.window_end:
            return
        window = Window(start=run.window_start, end=run.window_end,
                        as_of=run.as_of or run.window_end, partial_start=run.partial_start)
        if self.scheduler.submit(run.metric, [PlannedPull("retry", window)]) is None:
            self.statusBar().showMessage(f"{run.metric} is already being pulled", 4000)

    def cancel_pull(self) -> None:
        metric = self.selected_metric()
        if metric and self.scheduler:
            self.scheduler.cancel(metric.name)

    def cancel_all(self) -> None:
        if self.scheduler:
            self.scheduler.cancel()

    def backfill(self) -> None:
        metric = self.selected_metric()
        if metric is None or self.scheduler is None:
            return
        dialog = BackfillDialog(metric, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        start, end = dialog.range()
        from lookback_gui.core.pull import backfill_windows

        chunks = len(backfill_windows(metric, start, end))
        if self.scheduler.backfill(metric.name, start, end) is None:
            self.statusBar().showMessage(f"{metric.name} is already being pulled", 4000)
            return
        self._backfills[metric.name] = (0, chunks)
        self._update_status()

    def toggle_pause(self) -> None:
        if self.scheduler is None:
            return
        if self.pause_action.isChecked():
            self.scheduler.pause()
        else:
            self.scheduler.resume()
        self._update_status()

    def focus_find(self) -> None:
        self.tabs.setCurrentIndex(self.tabs.indexOf(self.find_box.parentWidget()))
        self.find_box.setFocus()
        self.find_box.selectAll()

    def new_source(self) -> None:
        if self.project is None:
            return
        if SourceEditor(self.project, self.bridge, None, self).exec():
            self.reload_project()

    def edit_source(self, name: str) -> None:
        if self.project is None or name not in self.project.sources:
            return
        if SourceEditor(self.project, self.bridge, self.project.sources[name], self).exec():
            self.reload_project()

    def new_metric(self) -> None:
        if self.project is None:
            return
        if not self.project.sources:
            self.show_error("No source yet", "Create a source first (Edit → New source).")
            return
        editor = MetricEditor(self.project, self.bridge, None, self)
        if editor.exec():
            self.reload_project()
            self.select_metric(editor.name.text().strip())

    def edit_metric(self) -> None:
        metric = self.selected_metric()
        if self.project is None or metric is None:
            return
        editor = MetricEditor(self.project, self.bridge, metric, self)
        if editor.exec():
            self.reload_project()
            self.select_metric(editor.name.text().strip())

    def edit_selected(self) -> None:
        items = self.tree.selectedItems()
        if items:
            self._edit_item(items[0])

    def about(self) -> None:
        from lookback_gui import __version__

        QMessageBox.about(self, "About Lookback GUI",
                          f"Lookback GUI {__version__}\nRe-pulls metrics over their lookback "
                          "window, keeps every version, and charts late-data revisions.")

    def show_error(self, title: str, message: str) -> None:
        self.statusBar().showMessage(message, 10000)
        if QApplication.platformName() != "offscreen" or self.isVisible():
            box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
            box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            box.open()
        self.last_error = message

    # -- closing --------------------------------------------------------------------------

    def _show_from_tray(self) -> None:
        self.show()
        self.raise_()
        self.activateWindow()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.quitting and self.tray is not None and self.tray_action.isChecked():
            self.hide()
            self.tray.showMessage("Lookback GUI", "Still pulling in the background; quit from "
                                  "the tray menu.", QSystemTrayIcon.MessageIcon.Information, 4000)
            event.ignore()
            return
        self._save_state()
        if self.scheduler is not None and self.scheduler.running_metrics():
            self.statusBar().showMessage("cancelling running pulls…")
        self.close_project()
        self.bridge.shutdown()
        if self.tray:
            self.tray.hide()
        event.accept()

    def quit(self) -> None:
        self.quitting = True
        self.close()
        app = QApplication.instance()
        if app is not None:
            app.quit()


def run_detail_html(run: RunRecord, log: list[LogLine]) -> str:
    """The detail pane of one run: counts, window, parameters, checks, the log and the SQL."""
    esc = html.escape
    rows = [
        ("Status", run.status), ("Trigger", run.trigger), ("Window",
         f"[{fmt_time(run.window_start)}, {fmt_time(run.window_end)})"),
        ("As of", fmt_time(run.as_of)), ("Started", fmt_time(run.started_at)),
        ("Finished", fmt_time(run.finished_at)), ("Attempts", str(run.attempts)),
        ("Rows", "" if run.rows is None else str(run.rows)),
        ("Counts", "" if run.new is None else
         f"{run.new} new, {run.revised} revised, {run.removed} removed, {run.unchanged} unchanged"),
    ]
    out = [f"<h3>Run {run.id} — {esc(run.metric)}</h3><table>"]
    out += [f"<tr><td><b>{esc(k)}</b></td><td>{esc(v)}</td></tr>" for k, v in rows]
    out.append("</table>")
    if run.error:
        out.append(f"<p style='color:#c62828'><b>Error:</b> {esc(run.error)}</p>")
    if run.checks:
        out.append("<h4>Checks</h4><ul>")
        for check in run.checks:
            mark = "✓" if check.get("ok") else ("✗" if check.get("severity") == "error" else "⚠")
            out.append(f"<li>{mark} {esc(str(check.get('name')))} ({esc(str(check.get('severity')))})"
                       f"{'' if check.get('ok') else ': ' + esc(str(check.get('message')))}</li>")
        out.append("</ul>")
    out.append("<h4>Log</h4><pre>")
    for line in log:
        out.append(esc(f"{line.at:%H:%M:%S} {line.level:<7} {line.message}") + "\n")
    out.append("</pre><h4>Parameters</h4><pre>")
    for key, value in run.params.items():
        out.append(esc(f"${key} = TIMESTAMP '{value}'") + "\n")
    out.append(f"</pre><h4>SQL</h4><pre>{esc(run.sql or '')}</pre>")
    return "".join(out)


