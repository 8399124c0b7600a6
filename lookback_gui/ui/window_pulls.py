"""The main window's Metric menu and the scheduler's controls: running, retrying, cancelling and
backfilling pulls, pausing the schedule, taking it over from another process, and the
questions a pull asks (a large gap fill, a backfill under a new definition)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QDialog, QMessageBox

from lookback_gui.core.schedule.scheduler import PlannedPull
from lookback_gui.core.store import RunRecord
from lookback_gui.core.store import events as ev
from lookback_gui.core.timing.windows import Window
from lookback_gui.ui.backfill import BackfillDialog
from lookback_gui.ui.slots import weakly
from lookback_gui.ui.window_views import settings_key

if TYPE_CHECKING:
    from lookback_gui.ui.main_window import MainWindow


class PullController:
    """The pulls of the open project, started, stopped and answered from the window."""

    def __init__(self, window: MainWindow):
        self.window = window

    def selected_run(self) -> RunRecord | None:
        for pane in (self.window.metric_runs, self.window.runs_log):
            run = pane.current_run()
            if run is not None:
                return run
        return None

    def run_now(self) -> None:
        window = self.window
        metric = window.selected_metric()
        if metric is None or window.scheduler is None:
            return
        if window.scheduler.run_now(metric.name, trigger="manual") is None:
            window.statusBar().showMessage(f"{metric.name} is already being pulled", 4000)
        window._update_status()

    def retry_run(self) -> None:
        window = self.window
        run = self.selected_run()
        if run is None or window.scheduler is None or not run.window_start or not run.window_end:
            return
        pull = Window(
            start=run.window_start,
            end=run.window_end,
            as_of=run.as_of or run.window_end,
            partial_start=run.partial_start,
        )
        if window.scheduler.submit(run.metric, [PlannedPull("retry", pull)]) is None:
            window.statusBar().showMessage(f"{run.metric} is already being pulled", 4000)

    def cancel_pull(self) -> None:
        metric = self.window.selected_metric()
        if metric and self.window.scheduler:
            self.window.scheduler.cancel(metric.name)

    def cancel_all(self) -> None:
        if self.window.scheduler:
            self.window.scheduler.cancel()

    def backfill(self) -> None:
        window = self.window
        metric = window.selected_metric()
        if metric is None or window.scheduler is None:
            return
        dialog = BackfillDialog(metric, window)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        start, end = dialog.range()
        chunks = dialog.pulls()
        if window.scheduler.backfill(metric.name, start, end, as_known_then=dialog.as_known_then) is None:
            window.statusBar().showMessage(f"{metric.name} is already being pulled", 4000)
            return
        window.status.backfill_started(metric.name, chunks)
        window._update_status()

    # -- the schedule ---------------------------------------------------------------------

    def toggle_pause(self) -> None:
        """Pause or resume the scheduler of the open project; the choice holds when that
        project is opened again (not for other projects)."""
        window = self.window
        window._paused = window.pause_action.isChecked()
        session = window.session
        if session is not None:
            key = f"view/{settings_key(session.project.path)}"
            window.settings.setValue(f"{key}/paused", window._paused)
            if window._paused:
                session.pause()
                window.refresh()  # the health view's next runs
            else:  # then catch up on what the pause missed, once, off the GUI thread: that
                session.resume()  # reads the run history
                window.sessions.run(session.catch_up, then=window.refresh)
        window._update_status()

    def try_to_take_over(self) -> None:
        window = self.window
        session = window.session
        if session is None or session.scheduled_elsewhere is None:
            window._standby.stop()
            return

        def done(ran_here: bool) -> None:
            if session is not window.session or not ran_here:
                return
            window._standby.stop()
            window.statusBar().showMessage(
                "the scheduler that ran in another process has stopped: scheduled pulls run here now", 15000
            )
            window._update_status()

        window.bridge.submit(
            "take-over-schedule", session.take_over_schedule, done, lambda message: None, owner=window
        )

    # -- questions ------------------------------------------------------------------------

    def ask_gap_fill(self, event: ev.GapFillHeld) -> None:
        """A gap fill of more than 1000 pulls waits for a yes: ask (without blocking)."""
        span = f"[{event.start:%Y-%m-%d %H:%M}, {event.end:%Y-%m-%d %H:%M})"
        box = QMessageBox(
            QMessageBox.Icon.Question,
            f"Fill the gap of {event.metric}?",
            f"No pull covered {event.metric} over {span}. Filling that gap takes "
            f"{event.pulls:,} pulls, each with what is known now. Run them now? (The catch-up "
            "pull of the present has run either way.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self.window,
        )
        box.setObjectName("gap-fill-question")
        box.finished.connect(weakly(self.gap_fill_answered, event.metric, signal_args=True))
        self.window.gap_fill_question = box
        box.open()

    def offer_redefinition_backfill(self, event: ev.DefinitionChanged) -> None:
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
            self.window,
        )
        box.setObjectName("redefinition-question")
        box.finished.connect(weakly(self.redefinition_answered, event, signal_args=True))
        self.window.redefinition_question = box
        box.open()

    def redefinition_answered(self, event: ev.DefinitionChanged, result: int) -> None:
        session = self.window.session
        if session is None or result != QMessageBox.StandardButton.Yes.value:
            return
        if session.scheduler.backfill(event.metric, event.start, event.end) is None:
            self.window.statusBar().showMessage(f"{event.metric} is already being pulled", 4000)

    def gap_fill_answered(self, metric: str, result: int) -> None:
        session = self.window.session
        if session is None or result != QMessageBox.StandardButton.Yes.value:
            return
        pulls = session.scheduler.held_gap_fill(metric)
        if session.scheduler.fill_held_gap(metric) is not None:
            self.window.status.backfill_started(metric, pulls)
