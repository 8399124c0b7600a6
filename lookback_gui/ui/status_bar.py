"""The status bar: what the scheduler is doing — the pulls running, their progress, the next
run, paused or running — beside the window's passing messages.

Passing messages get the left part of the bar; the permanent parts sit in a box of their own on
the right, so a long message is cut short instead of drawn over them.
"""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QStatusBar,
    QToolButton,
    QWidget,
)

from lookback_gui.core.schedule.scheduler import Scheduler
from lookback_gui.core.store import events as ev


class SchedulerStatusBar(QStatusBar):
    """The window's status bar.

    It follows progress and finished-run events itself (:meth:`follow`) and counts the chunks
    of the backfills it is told about (:meth:`backfill_started`).

    Signals:
        cancel_requested(): the user asked to cancel every running pull.
    """

    cancel_requested = Signal()

    def __init__(self, pause_action: QAction, parent: QWidget | None = None):
        super().__init__(parent)
        self._pause_action = pause_action
        self._progress: dict[str, float] = {}
        self._backfills: dict[str, tuple[int, int]] = {}
        self.scheduler_label = QLabel("no project", accessibleName="Scheduler state")
        self.pause_button = QToolButton(accessibleName="Pause or resume the scheduler")
        self.pause_button.setDefaultAction(pause_action)
        self.pause_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.running_label = QLabel(accessibleName="Running pulls")
        self.running_label.setMaximumWidth(360)
        self.progress = QProgressBar(accessibleName="Pull progress")
        self.progress.setMaximumWidth(160)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel", accessibleName="Cancel running pulls")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.next_label = QLabel(accessibleName="Next run")
        permanent = QWidget()
        row = QHBoxLayout(permanent)
        row.setContentsMargins(8, 0, 0, 0)
        row.setSpacing(8)
        rule = QFrame()  # where a cut-short message ends and the scheduler's part begins
        rule.setFrameShape(QFrame.Shape.VLine)
        rule.setFrameShadow(QFrame.Shadow.Sunken)
        for widget in (
            rule,
            self.running_label,
            self.progress,
            self.cancel_button,
            self.next_label,
            self.scheduler_label,
            self.pause_button,
        ):
            row.addWidget(widget)
        self.addPermanentWidget(permanent)

    def follow(self, event: object) -> None:
        """Keep the progress of running pulls and the chunks of backfills done."""
        if isinstance(event, ev.Progress):
            self._progress[event.metric] = event.percent
        elif isinstance(event, ev.RunFinished):
            metric = event.run.metric
            self._progress.pop(metric, None)
            if metric in self._backfills:
                done, total = self._backfills[metric]
                if done + 1 >= total:
                    self._backfills.pop(metric)
                else:
                    self._backfills[metric] = (done + 1, total)

    def backfill_started(self, metric: str, chunks: int) -> None:
        self._backfills[metric] = (0, chunks)

    def forget(self) -> None:
        """A new session: nothing of the old one's pulls."""
        self._progress.clear()
        self._backfills.clear()

    def show_scheduler(self, scheduler: Scheduler | None, paused: bool, elsewhere: str | None = None) -> None:
        """Say what ``scheduler`` is doing (``paused`` when there is none: the choice that the
        next project opened will get); ``elsewhere``: why the schedule runs in another process
        (then there is nothing here to pause)."""
        paused = scheduler.paused if scheduler else paused
        self._pause_action.setChecked(paused)
        self._pause_action.setText("Resume scheduler" if paused else "&Pause scheduler")
        self._pause_action.setEnabled(scheduler is not None and elsewhere is None)
        self.pause_button.setVisible(scheduler is not None and elsewhere is None)
        self.scheduler_label.setToolTip(elsewhere or "")
        if scheduler is None:
            self.scheduler_label.setText("no project")
            self.running_label.setText("")
            self.progress.setVisible(False)
            self.cancel_button.setVisible(False)
            self.next_label.setText("")
            return
        if elsewhere is not None:  # pulls by hand still run here
            holder = re.search(r"\(([^()]*)\)\s*$", elsewhere)
            self.scheduler_label.setText(
                "schedule runs in another process" + (f" ({holder.group(1)})" if holder else "")
            )
        else:
            self.scheduler_label.setText(
                "scheduler stopped"
                if not scheduler.running
                else "scheduler paused"
                if paused
                else "scheduler running"
            )
        running = scheduler.running_metrics()
        if running:
            parts = []
            for name in running:
                done, total = self._backfills.get(name, (0, 0))
                parts.append(f"{name} ({done}/{total})" if total else name)
            text = "pulling: " + ", ".join(parts)
            self.running_label.setToolTip(text)
            self.running_label.setText(
                self.running_label.fontMetrics().elidedText(
                    text, Qt.TextElideMode.ElideRight, self.running_label.maximumWidth()
                )
            )
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
        fires = [f for f in scheduler.next_fire_times().values() if f is not None]
        if fires and not paused and elsewhere is None:
            self.next_label.setText(f"next run {min(fires).astimezone():%H:%M:%S}")
        else:
            self.next_label.setText("")
