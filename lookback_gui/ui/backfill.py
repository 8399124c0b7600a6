"""The Backfill dialog: the [from, to) range of a backfill, typed or picked, and whether it
loads what is known now (the default) or each chunk as it was known then."""

from __future__ import annotations

from datetime import datetime, timedelta

from PySide6.QtCore import QDateTime
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QWidget,
)

from lookback_gui.core.project import MetricConfig
from lookback_gui.core.pull import backfill_chunk_count
from lookback_gui.core.timing.windows import add_buckets, bucket_start, local_now


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
    """Asks for the [from, to) range of a backfill, and says what it will do: how many pulls,
    each with what is known now, or (checked) each as of its own end.

    Attributes:
        plan: the line that says which backfill it is and how many pulls it makes.
        known_then: pull each chunk as of its own end instead of with what is known now.
    """

    def __init__(self, metric: MetricConfig, parent: QWidget | None = None, start: datetime | None = None):
        super().__init__(parent)
        self._metric = metric
        self.setWindowTitle(f"Backfill {metric.name}")
        self.setMinimumWidth(440)  # room for the title
        now = local_now(metric.zone)
        self.start = DateTimeField(start or now - timedelta(days=30), "From")
        self.end = DateTimeField(now, "To")
        self.known_then = QCheckBox("As known then: each chunk as of its own end")
        self.known_then.setToolTip(
            "For SQL that uses $as_of. Without it, every chunk loads the past as the source "
            "holds it now, so no bucket is left short of the source. To rebuild the revision "
            "history, replay is usually what you want."
        )
        self.plan = QLabel()
        self.plan.setWordWrap(True)
        self.error = QLabel()
        self.error.setStyleSheet("color: #c62828;")
        form = QFormLayout(self)
        form.addRow("From", self.start)
        form.addRow("To", self.end)
        form.addRow(self.known_then)
        form.addRow(self.plan)
        form.addRow(self.error)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.start.dateTimeChanged.connect(self._describe)
        self.end.dateTimeChanged.connect(self._describe)
        self.known_then.toggled.connect(self._describe)
        self._describe()

    def range(self) -> tuple[datetime, datetime]:
        return (self.start.value(), self.end.value())

    @property
    def as_known_then(self) -> bool:
        return self.known_then.isChecked()

    def pulls(self) -> int:
        """How many pulls the backfill of the range makes."""
        start, end = self.range()
        metric = self._metric
        now = local_now(metric.zone)
        if end > now:  # a backfill stops at the bucket that holds now
            end = add_buckets(bucket_start(now, metric.grain), metric.grain, 1)
        return backfill_chunk_count(metric, start, end) if end > start else 0

    def _describe(self) -> None:
        metric = self._metric
        count = self.pulls()
        how = (
            "each chunk as of its own end (as known then)"
            if self.as_known_then
            else "each with what is known now"
        )
        self.plan.setText(
            f"{count} pull(s) of up to {metric.buckets} {metric.grain.value} "
            f"bucket(s), {how}; times in {metric.timezone}"
        )

    def _check(self) -> None:
        start, end = self.range()
        if end <= start:
            self.error.setText("'To' must be after 'From'")
            return
        self.accept()
