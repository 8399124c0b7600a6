"""The Backfill dialog: the [from, to) range of a backfill, typed or picked."""

from __future__ import annotations

from datetime import datetime, timedelta

from PySide6.QtCore import QDateTime
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QDateTimeEdit, QDialog, QDialogButtonBox, QFormLayout, QLabel, QWidget

from lookback_gui.core.project import MetricConfig
from lookback_gui.core.windows import local_now


class DateTimeField(QDateTimeEdit):
    """A date-time edit that takes a whole typed date.

    QDateTimeEdit types into one section at a time. With the whole text selected it would read
    "2024-03-05" as a year of "2" that it completes from the old value (2026-03-05); here typing
    over the whole text starts at the first section, and a separator typed right after a section
    filled up (and moved on by itself) is not taken as a second move.
    """

    def __init__(self, value: datetime, accessible_name: str, parent: QWidget | None = None):
        super().__init__(QDateTime(value.replace(second=0, microsecond=0)), parent)
        self.setAccessibleName(accessible_name)
        self.setCalendarPopup(True)
        self.setDisplayFormat("yyyy-MM-dd HH:mm")
        self._moved_on = False

    def keyPressEvent(self, event: QKeyEvent) -> None:
        text = event.text()
        typed = bool(text) and text.isprintable()
        line = self.lineEdit()
        if typed and line.hasSelectedText() and line.selectedText() == line.text():
            self.setCurrentSectionIndex(0)
            self.setSelectedSection(self.sectionAt(0))
            self._moved_on = False
        if typed and not text.isdigit() and self._moved_on:
            self._moved_on = False
            event.accept()
            return
        before = self.currentSectionIndex()
        super().keyPressEvent(event)
        self._moved_on = typed and text.isdigit() and self.currentSectionIndex() != before

    def value(self) -> datetime:
        moment = self.dateTime().toPython()
        assert isinstance(moment, datetime)
        return moment.replace(second=0, microsecond=0)


class BackfillDialog(QDialog):
    """Asks for the [from, to) range of a backfill."""

    def __init__(self, metric: MetricConfig, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Backfill {metric.name}")
        self.setMinimumWidth(440)  # room for the title
        now = local_now(metric.zone)
        self.start = DateTimeField(now - timedelta(days=30), "From")
        self.end = DateTimeField(now, "To")
        self.error = QLabel()
        self.error.setStyleSheet("color: #c62828;")
        form = QFormLayout(self)
        form.addRow("From", self.start)
        form.addRow("To", self.end)
        form.addRow(QLabel(f"in chunks of {metric.buckets} {metric.grain.value} bucket(s), "
                           f"times in {metric.timezone}"))
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def range(self) -> tuple[datetime, datetime]:
        return (self.start.value(), self.end.value())

    def _check(self) -> None:
        start, end = self.range()
        if end <= start:
            self.error.setText("'To' must be after 'From'")
            return
        self.accept()
