"""The chart's tool bar: the measure, series and "As known after" boxes (with the date of "as
known at"), the time range, the first-reported switch and the export menu, and what they offer
for a ChartData drawn."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QHBoxLayout,
    QLabel,
    QMenu,
    QToolButton,
)

from lookback_gui.ui.chart_model import SERIES_OFFERED, ChartData, series_id
from lookback_gui.ui.models import fmt_number, fmt_series
from lookback_gui.ui.time_range import TimeRangePicker

AT_A_TIME = "at"  # the "As known after" choice that shows the store as known at a date


def top_series(
    series: list[tuple[dict[str, Any], str, float]], measure: str, limit: int = SERIES_OFFERED
) -> list[tuple[dict[str, Any], str, float]]:
    """The largest ``limit`` series of ``measure`` (``series`` is largest first)."""
    return [s for s in series if s[1] == measure][:limit]


class ChartBar:
    """The chart's controls, in one row (``layout``); the chart connects their signals and
    sets them while it ignores those signals.

    Attributes:
        measure_box, series_box, as_of_box: what is shown, and as known after which run.
        known_at_edit: the date and time of "as known at", shown while that is chosen.
        range_picker: the time range in view.
        first_line: whether the first reported values show too.
        export_button: its menu's actions are export_png, export_light_png and export_csv.
        layout: the row of them all.
    """

    def __init__(self) -> None:
        self.measure_box = QComboBox(accessibleName="Measure")
        self.series_box = QComboBox(accessibleName="Series")
        self.series_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.series_box.setMinimumContentsLength(24)
        self.as_of_box = QComboBox(accessibleName="As known after run")
        self.as_of_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.as_of_box.setMinimumContentsLength(18)
        self.known_at_edit = QDateTimeEdit(
            accessibleName="As known at this date and time",
            calendarPopup=True,
            displayFormat="yyyy-MM-dd HH:mm",
        )
        self.known_at_edit.setToolTip(
            "the values as they were known at this time: for each, its latest version known by then"
        )
        self.known_at_edit.setVisible(False)
        self.first_line = QCheckBox("First reported", accessibleName="Show first reported values")
        self.export_button = QToolButton(accessibleName="Export the chart or the series")
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        self.export_png = menu.addAction("Chart as PNG…")
        self.export_light_png = menu.addAction("PNG for reports (light)…")
        self.export_csv = menu.addAction("Series as CSV…")
        self.export_button.setMenu(menu)
        self.range_picker = TimeRangePicker()

        self.layout = QHBoxLayout()
        for label, box in (
            ("Measure", self.measure_box),
            ("Series", self.series_box),
            ("As known after", self.as_of_box),
        ):
            self.layout.addWidget(QLabel(label))
            self.layout.addWidget(box)
        self.layout.addWidget(self.known_at_edit)
        self.layout.addWidget(self.range_picker)
        self.layout.addWidget(self.first_line)
        self.layout.addStretch(1)
        self.layout.addWidget(self.export_button)

    def reset(self) -> None:
        """Nothing to choose but the latest values (or those at a date)."""
        self.as_of_box.clear()
        self.as_of_box.addItem("latest", None)
        self.as_of_box.addItem("a date and time…", AT_A_TIME)
        self.known_at_edit.setVisible(False)
        self.measure_box.clear()
        self.series_box.clear()

    def as_known(self) -> tuple[int | None, datetime | None]:
        """(the run, the date) chosen under "As known after"; both None for the latest."""
        choice = self.as_of_box.currentData()
        if choice == AT_A_TIME:
            return None, self.known_at_edit.dateTime().toPython().replace(second=0, microsecond=0)
        return choice, None

    def selected_dims(self) -> dict[str, Any] | None:
        data = self.series_box.currentData()
        return json.loads(data) if isinstance(data, str) else None

    def offer_series(self, series: list[tuple[dict[str, Any], str, float]], measure: str) -> None:
        """The largest series of ``measure`` in the series box, with their current sizes."""
        self.series_box.clear()
        for dims, _m, size in top_series(series, measure):
            self._add_series(dims, size)

    def _add_series(self, dims: dict[str, Any], size: float) -> None:
        self.series_box.addItem(f"{fmt_series(dims)}  ({fmt_number(size)})", series_id(dims))

    def show_choices(self, data: ChartData) -> None:
        """The measures, series (with their current sizes) and runs to choose from, as
        ``data`` offers them, with what it shows chosen."""
        measures = list(dict.fromkeys(m for _, m, _ in data.series))
        if [self.measure_box.itemText(i) for i in range(self.measure_box.count())] != measures:
            self.measure_box.clear()
            self.measure_box.addItems(measures)
        self.measure_box.setCurrentText(data.measure)
        wanted = top_series(data.series, data.measure)
        shown = [
            (self.series_box.itemText(i), self.series_box.itemData(i)) for i in range(self.series_box.count())
        ]
        if shown != [(f"{fmt_series(d)}  ({fmt_number(size)})", series_id(d)) for d, _m, size in wanted]:
            self.series_box.clear()
            for dims, _m, size in wanted:
                self._add_series(dims, size)
        index = self.series_box.findData(series_id(data.dims))
        if index >= 0:
            self.series_box.setCurrentIndex(index)
        runs: list[tuple[int | str | None, str]] = [
            (None, "latest"),
            (AT_A_TIME, "a date and time…"),
            *data.runs,
        ]
        if [
            (self.as_of_box.itemData(i), self.as_of_box.itemText(i)) for i in range(self.as_of_box.count())
        ] != runs:
            self.as_of_box.clear()
            for run, text in runs:
                self.as_of_box.addItem(text, run)
            if data.as_of_run is not None and self.as_of_box.findData(data.as_of_run) < 0:
                self.as_of_box.addItem(f"run {data.as_of_run}", data.as_of_run)
        chosen = AT_A_TIME if data.as_known_at is not None else data.as_of_run
        self.as_of_box.setCurrentIndex(max(self.as_of_box.findData(chosen), 0))
