"""The main window: sources and metrics on the left, the selected metric's chart, revisions, runs
and definition on the right, plus the global runs log, health and alerts.

The window wires small parts together: the session (project, store, scheduler; opened and
closed off the GUI thread by :class:`SessionHost`), the views of the selected metric
(:class:`MetricViews`), the runs views, health and alerts. Views follow events: a finished
run reloads the runs and, for its metric only, the chart. A slow refresh picks up runs that
other processes recorded in the same store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QSortFilterProxyModel, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QSystemTrayIcon,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from lookback_gui.core.applog import log_dir, log_file
from lookback_gui.core.errors import LookbackError
from lookback_gui.core.project import MetricConfig, Project, ProjectDocument, write_atomically
from lookback_gui.core.schedule.scheduler import PlannedPull, Scheduler
from lookback_gui.core.sources import SourceConnections
from lookback_gui.core.store import AlertState, RunRecord, Store
from lookback_gui.core.store import events as ev
from lookback_gui.core.store.lock import WAIT_S
from lookback_gui.core.timing.windows import Window
from lookback_gui.resources import resource
from lookback_gui.ui.advisor_tab import AdvisorWidget
from lookback_gui.ui.backfill import BackfillDialog
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.chart import ChartWidget
from lookback_gui.ui.collector import delete_when_dropped
from lookback_gui.ui.compare import CompareWidget
from lookback_gui.ui.dashboard import DashboardWidget
from lookback_gui.ui.dialogs import open_file_name, save_file_name
from lookback_gui.ui.editors import MONO, MetricEditor, SourceEditor
from lookback_gui.ui.health import AlertBar, AlertNotifier, health_rows
from lookback_gui.ui.metric_views import MetricViews
from lookback_gui.ui.models import AlertsModel, HealthModel, RecordTableModel, RevisionsModel, RunsModel
from lookback_gui.ui.project_tree import ProjectTree
from lookback_gui.ui.runs_views import RunsLog, RunsPane, run_detail_html
from lookback_gui.ui.session import Session, SessionHost
from lookback_gui.ui.slots import weakly
from lookback_gui.ui.status_bar import SchedulerStatusBar
from lookback_gui.ui.table_filter import QueryFilter, query_box
from lookback_gui.ui.tables import table_view
from lookback_gui.ui.theme import apply_theme

__all__ = ["RUN_PAGE", "MainWindow", "Snapshot", "run_detail_html"]

RUN_PAGE = 300
FALLBACK_REFRESH_MS = 12_000  # runs recorded by other processes appear within this time
STANDBY_MS = 5_000  # how often a window whose schedule runs elsewhere asks if it still does


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


def app_icon() -> QIcon:
    return QIcon(str(resource("lookback-gui.svg")))


class MainWindow(QMainWindow):
    """The desktop app's window.

    Signals:
        refreshed(): the runs, alerts and tree were brought up to date (tests wait on it).
        opened(object): a project was opened (its Session).
        open_failed(str): a project could not be opened; the message says why.
    """

    refreshed = Signal()
    opened = Signal(object)
    open_failed = Signal(str)

    def __init__(
        self, settings: QSettings, bridge: Bridge | None = None, connections: SourceConnections | None = None
    ):
        super().__init__()
        self.settings = settings
        self.bridge = bridge or Bridge(parent=self)
        self.sessions = SessionHost(self.bridge, self, connections)
        self.session: Session | None = None
        self.quitting = False
        self.last_error: str | None = None
        self.gap_fill_question: QMessageBox | None = None  # a gap fill waiting for a yes
        self.redefinition_question: QMessageBox | None = None  # a backfill offered after a
        # new definition
        self._latest: dict[str, RunRecord] = {}
        self._paused = False  # the open project's scheduler is paused (kept per project)
        self.store_wait_s = WAIT_S  # how long opening waits for a store another process uses
        self.setWindowTitle("Lookback GUI")
        self.setWindowIcon(app_icon())
        self.resize(1280, 820)

        self.tree = ProjectTree()
        self.tree.selection_changed.connect(self._selection_changed)
        self.tree.edit_requested.connect(self._edit_item)

        self.runs_model = RunsModel(self)
        self.runs_model.wants_older.connect(self._load_older_runs)
        self.revisions_model = RevisionsModel(self)
        self.revisions_filter = QueryFilter(self)
        self.revisions_filter.setSourceModel(self.revisions_model)
        self.revisions_filter.setSortRole(RecordTableModel.SORT_ROLE)
        self.health_model = HealthModel(self)
        health_proxy = QSortFilterProxyModel(self)
        health_proxy.setSourceModel(self.health_model)
        health_proxy.setSortRole(RecordTableModel.SORT_ROLE)
        self.alerts_model = AlertsModel(self)

        self.chart = ChartWidget(self.bridge)
        self.advisor = AdvisorWidget(self.bridge)
        self.dashboard = DashboardWidget(self.bridge)
        self.compare = CompareWidget(self.bridge)
        self.compare.settling = lambda name: self.chart._settling.get(name)
        self.compare.measure_hint = self.chart.measure_box.currentText
        self.compare.as_known = self.chart.as_known
        self.revisions_view = table_view(self.revisions_filter, "Revisions")
        self.revisions_view.sortByColumn(5, Qt.SortOrder.DescendingOrder)  # newest run first
        self.revisions_find = query_box(
            self.revisions_filter,
            "Filter revisions",
            "Filter revisions: words, or column=value (measure=revenue)",
        )
        self.metric_runs = RunsPane(
            self.runs_model, self.bridge, "Runs of this metric", "Run detail of this metric"
        )
        self.runs_log = RunsLog(self.runs_model, self.bridge)
        self.health_view = table_view(health_proxy, "Health")
        self.alerts_view = table_view(self.alerts_model, "Alerts")
        for model, view in (
            (self.revisions_model, self.revisions_view),
            (self.health_model, self.health_view),
            (self.alerts_model, self.alerts_view),
        ):
            model.modelReset.connect(view.resizeColumnsToContents)
        self.definition = QPlainTextEdit(accessibleName="Metric definition")
        self.definition.setReadOnly(True)
        self.definition.setFont(MONO)
        self.definition.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.edit_metric_button = QPushButton("Edit metric…", accessibleName="Edit metric")
        self.edit_metric_button.clicked.connect(self.edit_metric)

        self._build_tabs()
        self.metric_views = MetricViews(
            self.bridge,
            self.tabs,
            self.chart,
            self.advisor,
            self.revisions_model,
            self.revisions_view,
            self.definition,
            self.reload_project,
            lambda message: self.statusBar().showMessage(message, 8000),
            self,
        )
        self._connect_dashboard()
        self._build_actions()
        self._build_status_bar()
        self._build_tray()
        self.alert_bar = AlertBar()
        self.alert_bar.show_alerts.connect(weakly(self.show_tab, "alerts_view"))
        self.notifier = AlertNotifier(self.tray, self.alert_bar)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([300, 980])
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.alert_bar)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        # bound methods and weakly(): a lambda connected here would keep the window alive
        # (see ui/slots.py), and with it its session, when Python drops it unclosed
        self.metric_runs.selected.connect(self._set_enabled)
        self.runs_log.selected.connect(self._set_enabled)
        self.bridge.core_event.connect(self._on_event)
        self.sessions.opened.connect(self._session_opened)
        self.sessions.failed.connect(self._open_failed)
        self.advisor.applied.connect(self.reload_project)
        self.chart.export_folder = self._project_folder
        self.chart.range_picker.settings = settings
        self._fallback = QTimer(self, interval=FALLBACK_REFRESH_MS)
        self._fallback.timeout.connect(self.refresh)
        self._soon = QTimer(self, singleShot=True, interval=150)
        self._soon.timeout.connect(self.refresh)
        self._status_timer = QTimer(self, interval=1000)
        self._status_timer.timeout.connect(self._update_status)
        # while another process runs the project's scheduler, ask every few seconds whether it
        # still does, and run the schedule here once it does not
        self._standby = QTimer(self, interval=STANDBY_MS)
        self._standby.timeout.connect(self._try_to_take_over)
        self._restore_state()
        self._set_enabled()
        self._update_status()

    # -- the session ----------------------------------------------------------------------

    @property
    def project(self) -> Project | None:
        return self.session.project if self.session else None

    @property
    def store(self) -> Store | None:
        return self.session.store if self.session else None

    @property
    def scheduler(self) -> Scheduler | None:
        return self.session.scheduler if self.session else None

    # -- building -------------------------------------------------------------------------

    def _build_tabs(self) -> None:
        self.tabs = QTabWidget(accessibleName="Views")
        self.tabs.addTab(self.chart, "Chart")
        revisions = QWidget()
        revisions_layout = QVBoxLayout(revisions)
        revisions_layout.addWidget(self.revisions_find)
        revisions_layout.addWidget(self.revisions_view, 1)
        self.tabs.addTab(revisions, "Revisions")
        self.tabs.addTab(self.metric_runs, "Runs")
        definition = QWidget()
        layout = QVBoxLayout(definition)
        layout.addWidget(self.definition, 1)
        layout.addWidget(self.edit_metric_button, 0, Qt.AlignmentFlag.AlignRight)
        self.tabs.addTab(definition, "Definition")
        self.tabs.addTab(self.advisor, "Advisor")
        self.tabs.addTab(self.runs_log, "Runs log")
        self.tabs.addTab(self.health_view, "Health")
        self.tabs.addTab(self.alerts_view, "Alerts")
        self.tabs.addTab(self.dashboard, "Dashboard")
        self.tabs.addTab(self.compare, "Compare")

    def _action(self, text: str, slot: Any, shortcut: Any = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip or text.replace("&", "").replace("…", ""))
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        keys = QKeySequence.StandardKey
        self.new_project_action = self._action("&New project…", self.new_project, keys.New)
        self.open_action = self._action("&Open project…", self.choose_project, keys.Open)
        self.fresh_demo_action = self._action(
            "Open a fresh &demo",
            self.open_fresh_demo,
            None,
            "Write a new demo project with six weeks of pulls and open it",
        )
        self.save_action = self._action(
            "&Save",
            self.save_project,
            QKeySequence.StandardKey.Save,
            "Write the project file (editors save on OK)",
        )
        self.close_project_action = self._action(
            "&Close project",
            self.close_project,
            keys.Close,
            "Close the open project: its pulls are cancelled, its scheduler stopped",
        )
        self.quit_action = self._action("&Quit", self.quit, QKeySequence.StandardKey.Quit)
        self.run_now_action = self._action("&Run now", self.run_now, "Ctrl+R", "Pull the selected metric now")
        self.retry_action = self._action(
            "Re&try run", self.retry_run, None, "Re-run the selected failed run's window"
        )
        self.cancel_action = self._action(
            "&Cancel pull", self.cancel_pull, "Ctrl+.", "Cancel the selected metric's running pull"
        )
        self.backfill_action = self._action("&Backfill…", self.backfill, "Ctrl+B")
        self.new_metric_action = self._action("New &metric…", self.new_metric, "Ctrl+M")
        self.new_source_action = self._action("New &source…", self.new_source, "Ctrl+Shift+N")
        self.edit_action = self._action("&Edit…", self.edit_selected, "Ctrl+E")
        self.find_action = self._action("&Find runs", self.focus_find, QKeySequence.StandardKey.Find)
        self.pause_action = self._action("&Pause scheduler", self.toggle_pause, "Ctrl+P")
        self.pause_action.setCheckable(True)
        self.tray_action = self._action("Keep running in the &tray when closed", self._tray_setting_changed)
        self.tray_action.setCheckable(True)

        files = self.menuBar().addMenu("&File")
        files.addAction(self.new_project_action)
        files.addAction(self.open_action)
        self.recent_menu = files.addMenu("Open &recent")
        files.addAction(self.fresh_demo_action)
        files.addAction(self.save_action)
        files.addAction(self.close_project_action)
        files.addSeparator()
        files.addAction(self.quit_action)
        edit = self.menuBar().addMenu("&Edit")
        edit.addAction(self.new_source_action)
        edit.addAction(self.new_metric_action)
        edit.addAction(self.edit_action)
        edit.addAction(self.find_action)
        metric = self.menuBar().addMenu("&Metric")
        for action in (self.run_now_action, self.retry_action, self.cancel_action, self.backfill_action):
            metric.addAction(action)
        view = self.menuBar().addMenu("&View")
        view.addAction(
            self._action(
                "&Dashboard",
                weakly(self.show_tab, "dashboard"),
                "Ctrl+D",
                "the charts of several metrics at once",
            )
        )
        view.addAction(
            self._action(
                "&Compare series",
                weakly(self.show_tab, "compare"),
                "Ctrl+Shift+C",
                "several series of the metric in one chart",
            )
        )
        theme = view.addMenu("&Theme")
        for name in ("system", "light", "dark"):
            action = self._action(name.title(), weakly(self.set_theme, name))
            action.setCheckable(True)
            action.setData(name)
            theme.addAction(action)
        self.theme_menu = theme
        view.addAction(self.pause_action)
        view.addAction(self.tray_action)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(
            self._action(
                "Open &log folder",
                self.open_log_folder,
                None,
                "Show the folder of the log file, where errors are recorded with their details",
            )
        )
        help_menu.addAction(self._action("&About Lookback GUI", self.about))
        self._update_recent_menu()

    def show_tab(self, name: str) -> None:
        """Bring the tab of the view named ``name`` (an attribute of the window) to the front."""
        self.tabs.setCurrentWidget(getattr(self, name))

    def _build_status_bar(self) -> None:
        self.status = SchedulerStatusBar(self.pause_action)
        self.status.cancel_requested.connect(self.cancel_all)
        self.setStatusBar(self.status)
        # the parts tests and screen readers look at
        self.scheduler_label = self.status.scheduler_label
        self.pause_button = self.status.pause_button

    def _build_tray(self) -> None:
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(app_icon(), self)
            menu = QMenu(self)
            menu.addAction(self._action("Show", self._show_from_tray))
            menu.addAction(self.quit_action)
            self.tray.setContextMenu(menu)
            self.tray.setToolTip("Lookback GUI")
            self.tray.activated.connect(self._show_from_tray)
            self.tray.show()
        else:  # without a tray, closing the window cannot leave it running anywhere
            self.tray_action.setVisible(False)

    # -- settings -------------------------------------------------------------------------

    def _restore_state(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        splitter = self.settings.value("window/splitter")
        if isinstance(splitter, QByteArray):
            self.splitter.restoreState(splitter)
        self.tray_action.setChecked(
            self.tray is not None and bool(self.settings.value("tray/keep_running", False, type=bool))
        )
        self.set_theme(str(self.settings.value("view/theme", "system")))

    def _save_state(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/splitter", self.splitter.saveState())
        self._save_view()
        if self.project:
            self.settings.setValue("project/last", str(self.project.path))
        self.settings.sync()

    def _save_view(self) -> None:
        """The selected metric, tab and the measure chosen for each metric of the open
        project, for when it is opened again."""
        if self.project is None:
            return
        key = f"view/{_settings_key(self.project.path)}"
        self.settings.setValue(f"{key}/metric", self.tree.selected_metric_name() or "")
        self.settings.setValue(f"{key}/tab", self.tabs.currentIndex())
        self.settings.setValue(f"{key}/measures", self.chart.measure_memory())

    def _paused_setting(self, path: str | Path) -> bool:
        """Whether the scheduler of the project file at ``path`` was left paused."""
        key = f"view/{_settings_key(Path(path).expanduser().absolute())}"
        return bool(self.settings.value(f"{key}/paused", False, type=bool))

    def _tray_setting_changed(self) -> None:
        self.settings.setValue("tray/keep_running", self.tray_action.isChecked())

    def set_theme(self, name: str) -> None:
        apply_theme(name)
        self.chart.apply_palette()
        self.advisor.apply_palette()
        self.dashboard.apply_palette()
        self.compare.apply_palette()
        for action in self.theme_menu.actions():
            action.setChecked(action.data() == name)
        self.settings.setValue("view/theme", name)

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = [p for p in self._recent() if Path(p).exists()]
        for path in recent:
            self.recent_menu.addAction(self._action(path, weakly(self.open_project, path)))
        self.recent_menu.setEnabled(bool(recent))

    def _recent(self) -> list[str]:
        value = self.settings.value("project/recent", [])
        return [str(v) for v in (value if isinstance(value, list) else [value] if value else [])]

    def _remember(self, path: Path) -> None:
        recent = [str(path)] + [p for p in self._recent() if p != str(path)]
        self.settings.setValue("project/recent", recent[:10])
        self.settings.setValue("project/last", str(path))
        self._update_recent_menu()

    def _project_folder(self) -> Path:
        return self.project.directory if self.project else Path.cwd()

    # -- project --------------------------------------------------------------------------

    def open_project(self, path: str | Path, start_scheduler: bool = True) -> None:
        """Open a project: it is loaded, its store opened and its scheduler started off the
        GUI thread; :attr:`opened` or :attr:`open_failed` says how it went."""
        self._detach()
        self._paused = self._paused_setting(path)
        self.statusBar().showMessage(f"opening {path}…")
        self.sessions.open(
            path, start_scheduler=start_scheduler, paused=self._paused, wait_s=self.store_wait_s
        )

    def close_project(self) -> None:
        """Close the open project; its pulls are cancelled and its store closed off the GUI
        thread."""
        if self.session is None:
            return
        self._detach()
        self.sessions.close()

    def close_session(self, wait: bool = False) -> None:
        """Close the open project; with ``wait``, return only once it is closed."""
        self._detach()
        future = self.sessions.close()
        if wait:
            future.result()

    def _detach(self) -> None:
        """Stop showing the current session: nothing of it stays on screen."""
        self._save_view()
        self._fallback.stop()
        self._standby.stop()
        self.session = None
        self.metric_views.forget()
        self.tree.set_project(None)
        self.runs_model.set_records([])
        self.runs_model.more_available = False
        self._latest = {}
        self.status.forget()
        self.alerts_model.set_records([])
        self.health_model.set_records([])
        for pane in (self.metric_runs, self.runs_log):
            pane.set_store(None)
        self.metric_views.show(None, None)
        self.chart.set_measure_memory({})  # each project remembers its own
        self.compare.set_metric(None, None)
        self.dashboard.set_project(None, None)
        self.setWindowTitle("Lookback GUI")
        self._set_enabled()
        self._update_status()

    def _session_opened(self, session: Session) -> None:
        self.session = session
        project = session.project
        self._remember(project.path)
        self.statusBar().showMessage(
            f"opened {project.path}"
            if session.scheduled_elsewhere is None
            else f"opened {project.path}; scheduled pulls run elsewhere: {session.scheduled_elsewhere}",
            4000 if session.scheduled_elsewhere is None else 30000,
        )
        self.setWindowTitle(f"{project.path.name} — Lookback GUI")
        key = f"view/{_settings_key(project.path)}"
        self.chart.range_picker.set_project(project.path)
        measures = self.settings.value(f"{key}/measures", {})
        if isinstance(measures, dict):
            self.chart.set_measure_memory({str(k): str(v) for k, v in measures.items()})
        self.tree.set_project(project)
        selected = str(self.settings.value(f"{key}/metric", "") or "")
        if selected in project.metrics:
            self.tree.select_metric(selected)
        tab = self.settings.value(f"{key}/tab", None)
        if tab is not None and 0 <= int(str(tab)) < self.tabs.count():
            self.tabs.setCurrentIndex(int(str(tab)))
        for pane in (self.metric_runs, self.runs_log):
            pane.set_store(session.store)
        self._selection_changed()
        self._fallback.start()
        self._status_timer.start()
        if session.scheduled_elsewhere is not None:
            self._standby.start()
        self._update_status()
        self.refresh()
        self.opened.emit(session)

    def _try_to_take_over(self) -> None:
        session = self.session
        if session is None or session.scheduled_elsewhere is None:
            self._standby.stop()
            return

        def done(ran_here: bool) -> None:
            if session is not self.session or not ran_here:
                return
            self._standby.stop()
            self.statusBar().showMessage(
                "the scheduler that ran in another process has stopped: scheduled pulls run here now", 15000
            )
            self._update_status()

        self.bridge.submit(
            "take-over-schedule", session.take_over_schedule, done, lambda message: None, owner=self
        )

    def _open_failed(self, message: str) -> None:
        self.statusBar().clearMessage()
        self.show_error("Cannot open the project", message)
        self.open_failed.emit(message)

    def reload_project(self) -> None:
        """Re-read the project file after an edit and bring the scheduler and views up to date."""
        session = self.session
        if session is None:
            return
        try:
            session.reload()
        except LookbackError as exc:
            self.show_error("The project file no longer loads", str(exc))
            return
        self.tree.set_project(session.project)
        self._selection_changed()
        self.refresh()

    def new_project(self) -> None:
        path = save_file_name(
            self, "New project", str(self._dialog_folder() / "lookback.toml"), "Lookback project (*.toml)"
        )
        if not path:
            return
        target = Path(path)
        if target.exists():
            self.show_error("Cannot create the project", f"{target} already exists; open it instead")
            return
        try:
            write_atomically(target, '# Lookback GUI project\n\n[store]\npath = "lookback.duckdb"\n')
        except OSError as exc:
            self.show_error("Cannot create the project", f"{target}: {exc.strerror}")
            return
        self.open_project(target)

    def _dialog_folder(self) -> Path:
        """Where the file dialogs start: the open project's folder, else the last one's."""
        if self.project is not None:
            return self.project.directory
        last = self.settings.value("project/last")
        if last and Path(str(last)).parent.exists():
            return Path(str(last)).parent
        return Path.home()

    def choose_project(self) -> None:
        path = open_file_name(self, "Open project", str(self._dialog_folder()), "Lookback project (*.toml)")
        if path:
            self.open_project(path)

    def open_fresh_demo(self) -> None:
        from lookback_gui.core.demo import fresh_demo

        self._detach()
        self.statusBar().showMessage("preparing a fresh demo project (six weeks of pulls)…")
        self.bridge.submit(
            "demo",
            lambda: str(fresh_demo()),
            self.open_project,
            lambda message: self.show_error("Cannot create the demo", message),
            owner=self,
        )

    def save_project(self) -> None:
        if self.project is None:
            return
        try:
            ProjectDocument(self.project.path).save()
        except LookbackError as exc:
            self.show_error("Cannot save the project", str(exc))
            return
        self.statusBar().showMessage(f"saved {self.project.path}", 4000)

    # -- selection ------------------------------------------------------------------------

    def selected_metric_name(self) -> str | None:
        return self.tree.selected_metric_name()

    def selected_metric(self) -> MetricConfig | None:
        name = self.tree.selected_metric_name()
        if self.project is None or name is None:
            return None
        return self.project.metrics.get(name)

    def select_metric(self, name: str) -> None:
        self.tree.select_metric(name)

    def _selection_changed(self) -> None:
        metric = self.selected_metric()
        self.metric_runs.filter.set_fields(metric=metric.name if metric else "\0none")
        self.metric_views.show(self.session, metric)
        self.compare.set_metric(self.store, metric)
        self.dashboard.set_project(self.store, self.project)
        self._set_enabled()

    def _connect_dashboard(self) -> None:
        self.metric_views.changed.connect(self.dashboard.metric_changed)
        self.metric_views.changed.connect(self.compare.metric_changed)
        self.dashboard.open_requested.connect(self.open_chart)
        self.dashboard.on_saved = self.reload_project
        self.dashboard.on_error = lambda message: self.show_error("The dashboard", message)
        self.dashboard.series_of = lambda: [
            d
            for d, m, _size in (self.chart._data.series if self.chart._data else ())
            if m == self.chart.measure_box.currentText()
        ]

        def on_show() -> tuple[str, str, dict[str, Any]] | None:
            data = self.chart._data
            return None if data is None or not data.measure else (data.metric, data.measure, data.dims)

        self.dashboard.chart_on_show = on_show

    def open_chart(self, metric: str, measure: str, dims: dict[str, Any]) -> None:
        """Show a series of ``metric`` full size in the Chart tab (a dashboard chart's click)."""
        if self.project is None or metric not in self.project.metrics:
            return
        self.tree.select_metric(metric)
        self.chart.open_series(self.store, self.project.metrics[metric], measure, dims)
        self.tabs.setCurrentWidget(self.chart)

    def _edit_item(self, kind: str, name: str) -> None:
        if kind == "source":
            self.edit_source(name)
        elif kind == "metric":
            self.edit_metric()

    # -- refreshing -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload runs and alerts off the GUI thread."""
        session = self.session
        if session is None:
            return
        store, names = session.store, list(session.project.metrics)
        if self.runs_model.rowCount() == 0:  # just opened: the runs log's first page first
            self.bridge.submit(
                "first-runs",
                lambda: store.runs(limit=RUN_PAGE),
                lambda runs: self._show_first_runs(session, runs),
                self._snapshot_failed,
                owner=self,
            )

        def load() -> Snapshot:
            runs = store.runs(limit=RUN_PAGE)
            return Snapshot(
                runs,
                store.alert_states(),
                store.latest_runs(),
                {name: store.last_successful_run(name) for name in names},
            )

        self.bridge.submit(
            "snapshot",
            load,
            lambda snap: self._apply_snapshot(session, snap),
            self._snapshot_failed,
            owner=self,
        )

    def _show_first_runs(self, session: Session, runs: list[RunRecord]) -> None:
        """The first page of the runs log, read on its own while the rest of the snapshot
        (alerts, each metric's latest runs) is still being read."""
        if session is not self.session or self.runs_model.rowCount():
            return
        self.runs_model.update(runs)
        self.runs_model.more_available = len(runs) == RUN_PAGE

    def _load_older_runs(self, before: int) -> None:
        store = self.store
        if store is None:
            return
        self.bridge.submit(
            "older-runs",
            lambda: store.runs(limit=RUN_PAGE, before=before),
            lambda runs: self.runs_model.append_older(runs, len(runs) == RUN_PAGE),
            self._snapshot_failed,
            owner=self,
        )

    def _snapshot_failed(self, message: str) -> None:
        self.statusBar().showMessage(f"cannot read the store: {message}", 8000)

    def _apply_snapshot(self, session: Session, snapshot: Snapshot) -> None:
        if session is not self.session:
            return  # loaded for a project that is no longer open
        first = self.runs_model.rowCount() == 0
        self.runs_model.update(snapshot.runs)
        if first:
            self.runs_model.more_available = len(snapshot.runs) == RUN_PAGE
        self._latest = snapshot.latest
        self.alerts_model.set_records(snapshot.alerts)
        firing = sum(a.state == "firing" for a in snapshot.alerts)
        self.tabs.setTabText(
            self.tabs.indexOf(self.alerts_view), f"Alerts ({firing} firing)" if firing else "Alerts"
        )
        fires = {} if session.scheduler.paused else session.scheduler.next_fire_times()
        self.health_model.set_records(
            health_rows(
                session.project, snapshot.runs, snapshot.latest, snapshot.successes, snapshot.alerts, fires
            )
        )
        self._update_tree_status()
        # runs that no event announced (another process recorded them) change their metric too
        for name, run in snapshot.successes.items():
            if run is not None and not self.metric_views.seen(name, run.id):
                self.metric_views.metric_changed(name, run.id)
        self.refreshed.emit()

    def _update_tree_status(self) -> None:
        latest: dict[str, RunRecord] = dict(self._latest)
        for run in self.runs_model.records()[:RUN_PAGE]:
            if run.metric not in latest or latest[run.metric].id < run.id:
                latest[run.metric] = run
        running = set(self.scheduler.running_metrics()) if self.scheduler else set()
        self.tree.show_status(latest, running)

    # -- status bar -----------------------------------------------------------------------

    def _update_status(self) -> None:
        self.status.show_scheduler(
            self.scheduler, self._paused, self.session.scheduled_elsewhere if self.session else None
        )

    def _on_event(self, event: object) -> None:
        self.status.follow(event)
        if isinstance(event, ev.Progress):
            return
        if isinstance(event, ev.RunFinished):
            run = event.run
            if run.status == "succeeded":
                self.metric_views.metric_changed(run.metric, run.id)
            elif run.status == "failed":
                self.statusBar().showMessage(f"run {run.id} of {run.metric} failed: {run.error}", 10000)
        if isinstance(event, ev.AlertChanged) and event.state == "firing":
            self.notifier.firing(event.metric, event.rule, event.message)
        if isinstance(event, ev.Notice) and event.level in ("error", "warning"):
            self.statusBar().showMessage(event.message, 10000)
        if isinstance(event, ev.AlertCommandFailed):
            self.statusBar().showMessage(f"alert {event.metric} / {event.rule}: {event.message}", 10000)
        if isinstance(event, ev.GapFillHeld):
            self._ask_gap_fill(event)
        if isinstance(event, ev.DefinitionChanged) and event.start is not None:
            self._offer_redefinition_backfill(event)
        session = self.session
        if session is not None and session.scheduler.project is not session.project:
            # the scheduler re-read the project file after an edit made elsewhere
            session.project = session.scheduler.project
            self.tree.set_project(session.project)
            self._selection_changed()
        self._soon.start()  # runs, alerts, health and the tree: once for a burst of events
        self._update_status()

    # -- actions --------------------------------------------------------------------------

    def _set_enabled(self) -> None:
        has_project = self.project is not None
        metric = self.selected_metric()
        for action in (self.run_now_action, self.backfill_action, self.cancel_action):
            action.setEnabled(metric is not None)
        self.retry_action.setEnabled(self._selected_run() is not None)
        for action in (self.new_metric_action, self.new_source_action, self.edit_action, self.save_action):
            action.setEnabled(has_project)
        self.edit_metric_button.setEnabled(metric is not None)

    def _selected_run(self) -> RunRecord | None:
        for pane in (self.metric_runs, self.runs_log):
            run = pane.current_run()
            if run is not None:
                return run
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
        window = Window(
            start=run.window_start,
            end=run.window_end,
            as_of=run.as_of or run.window_end,
            partial_start=run.partial_start,
        )
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
        chunks = dialog.pulls()
        if self.scheduler.backfill(metric.name, start, end, as_known_then=dialog.as_known_then) is None:
            self.statusBar().showMessage(f"{metric.name} is already being pulled", 4000)
            return
        self.status.backfill_started(metric.name, chunks)
        self._update_status()

    def toggle_pause(self) -> None:
        """Pause or resume the scheduler of the open project; the choice holds when that
        project is opened again (not for other projects)."""
        self._paused = self.pause_action.isChecked()
        session = self.session
        if session is not None:
            key = f"view/{_settings_key(session.project.path)}"
            self.settings.setValue(f"{key}/paused", self._paused)
            if self._paused:
                session.pause()
                self.refresh()  # the health view's next runs
            else:  # then catch up on what the pause missed, once, off the GUI thread: that
                session.resume()  # reads the run history
                self.sessions.run(session.catch_up, then=self.refresh)
        self._update_status()

    def focus_find(self) -> None:
        self.tabs.setCurrentWidget(self.runs_log)
        self.runs_log.focus_find()

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
        editor = MetricEditor(self.project, self.bridge, metric, self, store=self.store)
        if editor.exec():
            self.reload_project()
            self.select_metric(editor.name.text().strip())

    def edit_selected(self) -> None:
        selected = self.tree.selected_item()
        if selected is not None:
            self._edit_item(*selected)

    def about(self) -> None:
        from lookback_gui import __version__

        QMessageBox.about(
            self,
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

    def _ask_gap_fill(self, event: ev.GapFillHeld) -> None:
        """A gap fill of more than 1000 pulls waits for a yes: ask (without blocking)."""
        span = f"[{event.start:%Y-%m-%d %H:%M}, {event.end:%Y-%m-%d %H:%M})"
        box = QMessageBox(
            QMessageBox.Icon.Question,
            f"Fill the gap of {event.metric}?",
            f"No pull covered {event.metric} over {span}. Filling that gap takes "
            f"{event.pulls:,} pulls, each with what is known now. Run them now? (The catch-up "
            "pull of the present has run either way.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        box.setObjectName("gap-fill-question")
        box.finished.connect(weakly(self._gap_fill_answered, event.metric, signal_args=True))
        self.gap_fill_question = box
        box.open()

    def _offer_redefinition_backfill(self, event: ev.DefinitionChanged) -> None:
        """A run was the first under a new definition: offer to load the older values under
        it (without blocking)."""
        span = f"[{event.start:%Y-%m-%d %H:%M}, {event.end:%Y-%m-%d %H:%M})"
        box = QMessageBox(
            QMessageBox.Icon.Question,
            f"Backfill {event.metric} under its new definition?",
            f"The definition of {event.metric} changed ({event.old} → {event.new}); run "
            f"{event.run_id} changed {event.redefined} value(s) with it (redefinitions, not "
            f"late data). The values in {span} still come from the old definition. Backfill "
            "them under the new one now?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        box.setObjectName("redefinition-question")
        box.finished.connect(weakly(self._redefinition_answered, event, signal_args=True))
        self.redefinition_question = box
        box.open()

    def _redefinition_answered(self, event: ev.DefinitionChanged, result: int) -> None:
        session = self.session
        if session is None or result != QMessageBox.StandardButton.Yes.value:
            return
        if session.scheduler.backfill(event.metric, event.start, event.end) is None:
            self.statusBar().showMessage(f"{event.metric} is already being pulled", 4000)

    def _gap_fill_answered(self, metric: str, result: int) -> None:
        session = self.session
        if session is None or result != QMessageBox.StandardButton.Yes.value:
            return
        pulls = session.scheduler.held_gap_fill(metric)
        if session.scheduler.fill_held_gap(metric) is not None:
            self.status.backfill_started(metric, pulls)

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
            self.tray.showMessage(
                "Lookback GUI",
                "Still pulling in the background; quit from the tray menu.",
                QSystemTrayIcon.MessageIcon.Information,
                4000,
            )
            event.ignore()
            return
        self._save_state()
        # the window goes first; cancelling the pulls and closing the store then take as long
        # as they take without a frozen window on screen
        self.hide()
        self._detach()
        self.sessions.shutdown()
        self.bridge.shutdown()
        if self.tray:
            self.tray.hide()
        event.accept()

    def __del__(self) -> None:
        """Dropped by Python while Qt still has it (never closed and deleted): delete it now,
        while every Python part of it is intact. Left to the collector, the window's cycles
        would be cleared part by part first, and Qt calls those parts (pyqtgraph's items) as it
        tears the window down. Its session closes as it goes (see SessionHost)."""
        delete_when_dropped(self)

    def quit(self) -> None:
        self.quitting = True
        self.close()
        app = QApplication.instance()
        if app is not None:
            app.quit()


def _settings_key(path: Path) -> str:
    """A settings group name for one project file."""
    import hashlib

    return hashlib.sha1(str(path).encode("utf-8")).hexdigest()[:16]
