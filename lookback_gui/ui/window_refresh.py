"""What keeps the main window's runs, alerts, health and tree current: the core's events
followed as they come, and snapshots of the store read off the GUI thread (after a burst of
events, and slowly, for runs other processes recorded)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lookback_gui.core.store import AlertState, RunRecord
from lookback_gui.core.store import events as ev
from lookback_gui.ui.health import health_rows
from lookback_gui.ui.session import Session

if TYPE_CHECKING:
    from lookback_gui.ui.main_window import MainWindow

RUN_PAGE = 300


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


class RefreshController:
    """The window's views of runs and alerts, kept up to date."""

    def __init__(self, window: MainWindow):
        self.window = window

    def refresh(self) -> None:
        """Reload runs and alerts off the GUI thread."""
        window = self.window
        session = window.session
        if session is None:
            return
        store, names = session.store, list(session.project.metrics)
        if window.runs_model.rowCount() == 0:  # just opened: the runs log's first page first
            window.bridge.submit(
                "first-runs",
                lambda: store.runs(limit=RUN_PAGE),
                lambda runs: self.show_first_runs(session, runs),
                self.snapshot_failed,
                owner=window,
            )

        def load() -> Snapshot:
            runs = store.runs(limit=RUN_PAGE)
            return Snapshot(
                runs,
                store.alert_states(),
                store.latest_runs(),
                {name: store.last_successful_run(name) for name in names},
            )

        window.bridge.submit(
            "snapshot",
            load,
            lambda snap: self.apply_snapshot(session, snap),
            self.snapshot_failed,
            owner=window,
        )

    def show_first_runs(self, session: Session, runs: list[RunRecord]) -> None:
        """The first page of the runs log, read on its own while the rest of the snapshot
        (alerts, each metric's latest runs) is still being read."""
        model = self.window.runs_model
        if session is not self.window.session or model.rowCount():
            return
        model.update(runs)
        model.more_available = len(runs) == RUN_PAGE

    def load_older_runs(self, before: int) -> None:
        window = self.window
        store = window.store
        if store is None:
            return
        window.bridge.submit(
            "older-runs",
            lambda: store.runs(limit=RUN_PAGE, before=before),
            lambda runs: window.runs_model.append_older(runs, len(runs) == RUN_PAGE),
            self.snapshot_failed,
            owner=window,
        )

    def snapshot_failed(self, message: str) -> None:
        self.window.statusBar().showMessage(f"cannot read the store: {message}", 8000)

    def apply_snapshot(self, session: Session, snapshot: Snapshot) -> None:
        window = self.window
        if session is not window.session:
            return  # loaded for a project that is no longer open
        first = window.runs_model.rowCount() == 0
        window.runs_model.update(snapshot.runs)
        if first:
            window.runs_model.more_available = len(snapshot.runs) == RUN_PAGE
        window._latest = snapshot.latest
        window.alerts_model.set_records(snapshot.alerts)
        firing = sum(a.state == "firing" for a in snapshot.alerts)
        window.tabs.setTabText(
            window.tabs.indexOf(window.alerts_view), f"Alerts ({firing} firing)" if firing else "Alerts"
        )
        fires = {} if session.scheduler.paused else session.scheduler.next_fire_times()
        window.health_model.set_records(
            health_rows(
                session.project, snapshot.runs, snapshot.latest, snapshot.successes, snapshot.alerts, fires
            )
        )
        self.update_tree_status()
        # runs that no event announced (another process recorded them) change their metric too
        for name, run in snapshot.successes.items():
            if run is not None and not window.metric_views.seen(name, run.id):
                window.metric_views.metric_changed(name, run.id)
        window.refreshed.emit()

    def update_tree_status(self) -> None:
        window = self.window
        latest: dict[str, RunRecord] = dict(window._latest)
        for run in window.runs_model.records()[:RUN_PAGE]:
            if run.metric not in latest or latest[run.metric].id < run.id:
                latest[run.metric] = run
        running = set(window.scheduler.running_metrics()) if window.scheduler else set()
        window.tree.show_status(latest, running)

    def on_event(self, event: object) -> None:
        """Follow an event of the core: the status bar, messages, alerts, questions, and the
        views (once for a burst of events)."""
        window = self.window
        window.status.follow(event)
        if isinstance(event, ev.Progress):
            return
        if isinstance(event, ev.RunFinished):
            run = event.run
            if run.status == "succeeded":
                window.metric_views.metric_changed(run.metric, run.id)
            elif run.status == "failed":
                window.statusBar().showMessage(f"run {run.id} of {run.metric} failed: {run.error}", 10000)
        if isinstance(event, ev.AlertChanged) and event.state == "firing":
            window.notifier.firing(event.metric, event.rule, event.message)
        if isinstance(event, ev.Notice) and event.level in ("error", "warning"):
            window.statusBar().showMessage(event.message, 10000)
        if isinstance(event, ev.AlertCommandFailed):
            window.statusBar().showMessage(f"alert {event.metric} / {event.rule}: {event.message}", 10000)
        if isinstance(event, ev.GapFillHeld):
            window.pulls.ask_gap_fill(event)
        if isinstance(event, ev.DefinitionChanged) and event.start is not None:
            window.pulls.offer_redefinition_backfill(event)
        session = window.session
        if session is not None and session.scheduler.project is not session.project:
            # the scheduler re-read the project file after an edit made elsewhere
            session.project = session.scheduler.project
            window.tree.set_project(session.project)
            window._selection_changed()
        window._soon.start()  # runs, alerts, health and the tree: once for a burst of events
        window._update_status()
