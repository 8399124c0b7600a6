"""The Backfill dialog takes the dates as typed."""

from __future__ import annotations

from datetime import datetime

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import Qt

import lookback_gui.ui  # noqa: F401
from lookback_gui.core.project import parse_project
from lookback_gui.ui.backfill import BackfillDialog
from tests.helpers import project_text


def typed_over(qtbot, field, text: str) -> None:
    field.setFocus()
    qtbot.keyClick(field, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert field.lineEdit().selectedText() == field.lineEdit().text()
    qtbot.keyClicks(field, text)


@pytest.mark.qt_log_ignore("propagateSizeHints")
@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2024-03-05 10:00", datetime(2024, 3, 5, 10, 0)),
        ("2023-1-9 7:05", datetime(2023, 1, 9, 7, 5)),
    ],
)
def test_a_date_typed_over_the_whole_field_is_taken_as_typed(qtbot, tmp_path, typed, expected):
    project = parse_project(project_text(), tmp_path / "lookback.toml")
    dialog = BackfillDialog(project.metrics["daily_orders"])
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    typed_over(qtbot, dialog.start, typed)
    typed_over(qtbot, dialog.end, "2024-03-10 00:00")
    assert dialog.range() == (expected, datetime(2024, 3, 10))


@pytest.mark.qt_log_ignore("propagateSizeHints")
def test_the_dialog_says_which_backfill_and_how_many_pulls(qtbot, tmp_path):
    project = parse_project(project_text(), tmp_path / "lookback.toml")
    dialog = BackfillDialog(project.metrics["daily_orders"])
    qtbot.addWidget(dialog)
    dialog.start.setDateTime(datetime(2024, 3, 1))
    dialog.end.setDateTime(datetime(2024, 3, 22))
    assert dialog.plan.text().startswith("3 pull(s) of up to 7 day bucket(s), each with what is known now")
    assert not dialog.as_known_then
    dialog.known_then.setChecked(True)
    assert dialog.as_known_then
    assert "each chunk as of its own end (as known then)" in dialog.plan.text()
    dialog.end.setDateTime(datetime(2024, 3, 8))
    assert dialog.plan.text().startswith("1 pull(s)")
