"""Health and alerts: each metric's state at a glance, and firing alerts said where the user
will see them (the system tray when there is one, else a bar in the window)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSystemTrayIcon, QWidget

from lookback_gui.core.project import Project
from lookback_gui.core.store import AlertState, RunRecord
from lookback_gui.core.timing.windows import local_now
from lookback_gui.ui.models import HealthRow


def health_rows(
    project: Project,
    runs: Sequence[RunRecord],
    latest: Mapping[str, RunRecord],
    successes: Mapping[str, RunRecord | None],
    alerts: Sequence[AlertState],
    fires: Mapping[str, datetime | None],
) -> list[HealthRow]:
    """One row per metric of ``project``: its last run and success, how fresh it is, its next
    run, duration, failure rate over its last 20 ended runs and its firing alerts."""
    rows = []
    for metric in project.metrics.values():
        own = [r for r in runs if r.metric == metric.name]
        if not own and metric.name in latest:
            own = [latest[metric.name]]
        success = successes.get(metric.name) or next((r for r in own if r.status == "succeeded"), None)
        ended = [r for r in own[:20] if r.status in ("succeeded", "failed")]
        failures = sum(r.status == "failed" for r in ended)
        now = local_now(metric.zone)
        freshness = ""
        if success and success.finished_at:
            age = now - success.finished_at
            freshness = (
                f"{int(age.total_seconds() // 60)} min ago"
                if age < timedelta(hours=2)
                else f"{age.total_seconds() / 3600:.1f} h ago"
            )
        fire = fires.get(metric.name)
        rows.append(
            HealthRow(
                metric=metric.name,
                last_success=success.finished_at if success else None,
                freshness=freshness or "never",
                next_run=fire.astimezone(metric.zone).strftime("%Y-%m-%d %H:%M")
                if fire
                else ("paused" if metric.scheduled else "manual"),
                last_duration=own[0].duration_s if own else None,
                failure_rate=failures / len(ended) * 100 if ended else None,
                firing=sum(a.metric == metric.name and a.state == "firing" for a in alerts),
                status=own[0].status if own else "never run",
            )
        )
    return rows


class AlertBar(QWidget):
    """A bar at the top of the window saying the newest firing alert, for desktops without a
    system tray (where a notification would go nowhere).

    Signals:
        show_alerts(): the user asked to see the Alerts tab.
    """

    show_alerts = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAccessibleName("Firing alert")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)  # its own background
        self.setStyleSheet(
            "AlertBar { background: #fdecea; border-bottom: 1px solid #e57373; }"
            " AlertBar QLabel { color: #8e1c1c; }"
        )
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        view = QPushButton("Show alerts", accessibleName="Show the alerts")
        view.clicked.connect(self.show_alerts)
        close = QPushButton("Dismiss", accessibleName="Dismiss the alert")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.text, 1)
        layout.addWidget(view)
        layout.addWidget(close)
        self.hide()

    def say(self, title: str, message: str) -> None:
        self.text.setText(f"⚠ <b>{html.escape(title)}</b>: {html.escape(message)}")
        self.show()


class AlertNotifier:
    """Says a firing alert in the tray's notification, or in the window's bar without a tray."""

    def __init__(self, tray: QSystemTrayIcon | None, bar: AlertBar):
        self.tray = tray
        self.bar = bar

    def firing(self, metric: str, rule: str, message: str) -> None:
        title = f"{metric}: {rule}"
        if self.tray is not None and self.tray.isVisible():
            self.tray.showMessage(title, message, QSystemTrayIcon.MessageIcon.Warning, 10000)
        else:
            self.bar.say(title, message)
