"""The chart's time range: quick ranges (the last 7, 30 or 90 days, the last year, all), the
lookback window, or a typed from/to — remembered per metric of each project.

Quick ranges end where the data ends (the end of the newest bucket), so a metric whose newest
values are days old still shows them. "the lookback" zooms to the provisional region of the
newest pull. The choice is kept in the app's settings under the project file's path and the
metric's name.

Signals (TimeRangePicker):
    chosen(): the user chose a range; the chart asks :meth:`TimeRangePicker.x_range` for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QDateTime, QSettings, QTimeZone, Signal
from PySide6.QtWidgets import QComboBox, QDateTimeEdit, QHBoxLayout, QLabel, QWidget

DAY = 86400.0
QUICK = {
    "all": None,
    "last 7 d": 7 * DAY,
    "last 30 d": 30 * DAY,
    "last 90 d": 90 * DAY,
    "last 1 y": 365 * DAY,
}
LOOKBACK = "the lookback"
TYPED = "from … to …"
CHOICES = (*QUICK, LOOKBACK, TYPED)


def range_key(project: Path | None, metric: str) -> str:
    """The settings key of a metric's range in one project."""
    digest = hashlib.sha1(str(project or "").encode("utf-8")).hexdigest()[:16]
    return f"range/{digest}/{metric}"


def quick_range(
    choice: str, full: tuple[float, float], step: float, provisional: tuple[float, float] | None
) -> tuple[float, float] | None:
    """The x range (epoch seconds) of ``choice`` for a series spanning bucket starts ``full``
    with buckets ``step`` seconds long; None: the whole series."""
    end = full[1] + step
    if choice == LOOKBACK:
        return provisional
    span = QUICK.get(choice)
    if span is None:
        return None
    return (max(end - span, full[0] - step / 2), end)


class TimeRangePicker(QWidget):
    """A range box, and from/to fields while "from … to …" is chosen."""

    chosen = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings: QSettings | None = None  # the window gives the app's settings
        self.project: Path | None = None
        self.metric_name: str | None = None
        # the x range on show, where the from/to fields start (the chart gives it)
        self.current_view: Callable[[], tuple[float, float] | None] = lambda: None
        self.box = QComboBox(accessibleName="Time range")
        self.box.addItems(CHOICES)
        self.box.setToolTip("the part of the series to show; the choice is kept per metric")
        self.start = QDateTimeEdit(
            accessibleName="Show from", calendarPopup=True, displayFormat="yyyy-MM-dd HH:mm"
        )
        self.end = QDateTimeEdit(
            accessibleName="Show until", calendarPopup=True, displayFormat="yyyy-MM-dd HH:mm"
        )
        # bucket starts are drawn as their wall-clock time in the metric's zone, counted as
        # if it were UTC (see chart_model.epoch_seconds): a typed time means that wall clock
        for edit in (self.start, self.end):
            edit.setTimeZone(QTimeZone.utc())
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Range"))
        layout.addWidget(self.box)
        layout.addWidget(self.start)
        self.to_label = QLabel("to")
        layout.addWidget(self.to_label)
        layout.addWidget(self.end)
        self._show_fields()
        self.box.currentIndexChanged.connect(self._choice_changed)
        self.start.editingFinished.connect(self._typed)
        self.end.editingFinished.connect(self._typed)

    def choice(self) -> str:
        return self.box.currentText()

    def typed(self) -> tuple[float, float]:
        return (
            float(self.start.dateTime().toSecsSinceEpoch()),
            float(self.end.dateTime().toSecsSinceEpoch()),
        )

    def set_project(self, project: Path | None) -> None:
        self.project = project

    def set_metric(self, metric: str | None) -> None:
        """Show the range last chosen for ``metric`` (all of it, the first time)."""
        self.metric_name = metric
        choice, start, end = "all", None, None
        if metric is not None and self.settings is not None:
            saved = self.settings.value(range_key(self.project, metric))
            if isinstance(saved, list) and len(saved) == 3 and saved[0] in CHOICES:
                choice, start, end = str(saved[0]), saved[1], saved[2]
            elif isinstance(saved, str) and saved in CHOICES:
                choice = saved
        self.box.blockSignals(True)
        self.box.setCurrentText(choice)
        self.box.blockSignals(False)
        for edit, text in ((self.start, start), (self.end, end)):
            if text:
                moment = QDateTime.fromString(str(text), "yyyy-MM-ddTHH:mm")
                moment.setTimeZone(QTimeZone.utc())
                edit.setDateTime(moment)
        self._show_fields()

    def x_range(
        self, full: tuple[float, float], step: float, provisional: tuple[float, float] | None
    ) -> tuple[float, float] | None:
        """The x range to show of a series spanning ``full``; None: all of it."""
        if self.choice() == TYPED:
            low, high = self.typed()
            return (low, high) if high > low else None
        return quick_range(self.choice(), full, step, provisional)

    def show_typed(self, x_range: tuple[float, float]) -> None:
        """Start the from/to fields at the range on show."""
        for edit, x in zip((self.start, self.end), x_range, strict=True):
            edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(x), QTimeZone.utc()))

    def _choice_changed(self) -> None:
        view = self.current_view() if self.choice() == TYPED else None
        if view is not None:
            self.show_typed(view)
        self._show_fields()
        self._remember()
        self.chosen.emit()

    def _typed(self) -> None:
        if self.choice() == TYPED:
            self._remember()
            self.chosen.emit()

    def _show_fields(self) -> None:
        typed = self.choice() == TYPED
        for widget in (self.start, self.to_label, self.end):
            widget.setVisible(typed)

    def _remember(self) -> None:
        if self.metric_name is None or self.settings is None:
            return
        fmt = "yyyy-MM-ddTHH:mm"
        self.settings.setValue(
            range_key(self.project, self.metric_name),
            [self.choice(), self.start.dateTime().toString(fmt), self.end.dateTime().toString(fmt)],
        )
