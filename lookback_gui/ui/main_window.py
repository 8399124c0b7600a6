"""The main window: sources and metrics on the left, the selected metric's chart, revisions, runs
and definition on the right, plus the global runs log, health and alerts.

The window wires small parts together: the session (project, store, scheduler; opened and
closed off the GUI thread by :class:`SessionHost`), the views of the selected metric
(:class:`MetricViews`), the runs views, health and alerts. Views follow events: a finished
run reloads the runs and, for its metric only, the chart. A slow refresh picks up runs that
other processes recorded in the same store.

The menus' work is done by controllers the window holds, each with its own module: the
project's files and editors (:class:`ProjectController`), the pulls and the schedule
(:class:`PullController`), the views and settings (:class:`ViewController`), and the runs
and alerts kept current (:class:`RefreshController`).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QSystemTrayIcon,
    QTabWidget,
)

from lookback_gui.core.errors import LookbackError
from lookback_gui.core.project import MetricConfig, Project
from lookback_gui.core.schedule.scheduler import Scheduler
from lookback_gui.core.sources import SourceConnections
from lookback_gui.core.store import RunRecord, Store
from lookback_gui.core.store.lock import WAIT_S
from lookback_gui.ui.advisor_tab import AdvisorWidget
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.chart import ChartWidget
from lookback_gui.ui.collector import delete_when_dropped
from lookback_gui.ui.compare import CompareWidget
from lookback_gui.ui.dashboard import DashboardWidget
from lookback_gui.ui.editors import MONO
from lookback_gui.ui.health import AlertBar, AlertNotifier
from lookback_gui.ui.metric_views import MetricViews
from lookback_gui.ui.models import AlertsModel, HealthModel, RecordTableModel, RevisionsModel, RunsModel
from lookback_gui.ui.project_tree import ProjectTree
from lookback_gui.ui.runs_views import RunsLog, RunsPane, run_detail_html
from lookback_gui.ui.session import Session, SessionHost
from lookback_gui.ui.slots import weakly
from lookback_gui.ui.status_bar import SchedulerStatusBar
from lookback_gui.ui.table_filter import QueryFilter, query_box
from lookback_gui.ui.tables import table_view
from lookback_gui.ui.window_actions import build_actions
from lookback_gui.ui.window_project import ProjectController
from lookback_gui.ui.window_pulls import PullController
from lookback_gui.ui.window_refresh import RUN_PAGE, RefreshController, Snapshot
from lookback_gui.ui.window_views import ViewController, app_icon
from lookback_gui.ui.window_views import settings_key as _settings_key

__all__ = ["RUN_PAGE", "MainWindow", "Snapshot", "_settings_key", "app_icon", "run_detail_html"]

FALLBACK_REFRESH_MS = 12_000  # runs recorded by other processes appear within this time
STANDBY_MS = 5_000  # how often a window whose schedule runs elsewhere asks if it still does


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

    # made by ui/window_actions.py from its table, and by the view controller
    new_project_action: QAction
    open_action: QAction
    fresh_demo_action: QAction
    save_action: QAction
    close_project_action: QAction
    quit_action: QAction
    run_now_action: QAction
    retry_action: QAction
    cancel_action: QAction
    backfill_action: QAction
    new_metric_action: QAction
    new_source_action: QAction
    edit_action: QAction
    find_action: QAction
    pause_action: QAction
    tray_action: QAction
    tabs: QTabWidget
    splitter: QSplitter
    recent_menu: QMenu
    theme_menu: QMenu
    tray: QSystemTrayIcon | None

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
        self.projects = ProjectController(self)
        self.pulls = PullController(self)
        self.views = ViewController(self)
        self.refresher = RefreshController(self)

        self._build_views()
        self.views.build_tabs()
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
        self.views.connect()
        build_actions(self)
        self._build_status_bar()
        self.views.build_tray()
        self.alert_bar = AlertBar()
        self.alert_bar.show_alerts.connect(weakly(self.views.show_tab, "alerts_view"))
        self.notifier = AlertNotifier(self.tray, self.alert_bar)
        self.views.build_layout()

        # bound methods and weakly(): a lambda connected here would keep the window alive
        # (see ui/slots.py), and with it its session, when Python drops it unclosed
        self.metric_runs.selected.connect(self._set_enabled)
        self.runs_log.selected.connect(self._set_enabled)
        self.bridge.core_event.connect(self.refresher.on_event)
        self.sessions.opened.connect(self._session_opened)
        self.sessions.failed.connect(self._open_failed)
        self.advisor.applied.connect(self.reload_project)
        self.chart.export_folder = self.projects.project_folder
        self.chart.range_picker.settings = settings
        self._fallback = QTimer(self, interval=FALLBACK_REFRESH_MS)
        self._fallback.timeout.connect(self.refresher.refresh)
        self._soon = QTimer(self, singleShot=True, interval=150)
        self._soon.timeout.connect(self.refresher.refresh)
        self._status_timer = QTimer(self, interval=1000)
        self._status_timer.timeout.connect(self._update_status)
        # while another process runs the project's scheduler, ask every few seconds whether it
        # still does, and run the schedule here once it does not
        self._standby = QTimer(self, interval=STANDBY_MS)
        self._standby.timeout.connect(self.pulls.try_to_take_over)
        self.views.restore_state()
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

    def _build_views(self) -> None:
        self.tree = ProjectTree()
        self.tree.selection_changed.connect(self._selection_changed)
        self.tree.edit_requested.connect(self.projects.edit_item)

        self.runs_model = RunsModel(self)
        self.runs_model.wants_older.connect(self.refresher.load_older_runs)
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
        self.edit_metric_button.clicked.connect(self.projects.edit_metric)

    def _build_status_bar(self) -> None:
        self.status = SchedulerStatusBar(self.pause_action)
        self.status.cancel_requested.connect(self.pulls.cancel_all)
        self.setStatusBar(self.status)
        # the parts tests and screen readers look at
        self.scheduler_label = self.status.scheduler_label
        self.pause_button = self.status.pause_button

    def set_theme(self, name: str) -> None:
        self.views.set_theme(name)

    # -- project --------------------------------------------------------------------------

    def open_project(self, path: str | Path, start_scheduler: bool = True) -> None:
        """Open a project: it is loaded, its store opened and its scheduler started off the
        GUI thread; :attr:`opened` or :attr:`open_failed` says how it went."""
        self._detach()
        self._paused = self.views.paused_setting(path)
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
        self.views.save_view()
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
        self.projects.remember(project.path)
        self.statusBar().showMessage(
            f"opened {project.path}"
            if session.scheduled_elsewhere is None
            else f"opened {project.path}; scheduled pulls run elsewhere: {session.scheduled_elsewhere}",
            4000 if session.scheduled_elsewhere is None else 30000,
        )
        self.setWindowTitle(f"{project.path.name} — Lookback GUI")
        self.views.restore_view(project)
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

    def _set_enabled(self) -> None:
        has_project = self.project is not None
        metric = self.selected_metric()
        for action in (self.run_now_action, self.backfill_action, self.cancel_action):
            action.setEnabled(metric is not None)
        self.retry_action.setEnabled(self.pulls.selected_run() is not None)
        for action in (self.new_metric_action, self.new_source_action, self.edit_action, self.save_action):
            action.setEnabled(has_project)
        self.edit_metric_button.setEnabled(metric is not None)

    # -- runs and the scheduler -----------------------------------------------------------

    def refresh(self) -> None:
        """Reload runs and alerts off the GUI thread."""
        self.refresher.refresh()

    def run_now(self) -> None:
        """Pull the selected metric now."""
        self.pulls.run_now()

    def _update_status(self) -> None:
        self.status.show_scheduler(
            self.scheduler, self._paused, self.session.scheduled_elsewhere if self.session else None
        )

    def show_error(self, title: str, message: str) -> None:
        self.statusBar().showMessage(message, 10000)
        if QApplication.platformName() != "offscreen" or self.isVisible():
            box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
            box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            box.open()
        self.last_error = message

    # -- closing --------------------------------------------------------------------------

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
        self.views.save_state()
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
