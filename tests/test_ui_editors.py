"""The source and metric editors over a real project file."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

import lookback_gui.ui  # noqa: F401
from lookback_gui.core.project import load_project
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.editors import MetricEditor, SourceEditor
from tests.test_project_document import PROJECT


@pytest.fixture
def bridge(qtbot):
    bridge = Bridge()
    yield bridge
    bridge.shutdown()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    file = tmp_path / "lookback.toml"
    file.write_text(PROJECT, encoding="utf-8")
    return file


def test_renaming_a_metric_in_its_editor_keeps_what_the_editor_does_not_show(qtbot, bridge, path):
    project = load_project(path)
    editor = MetricEditor(project, bridge, project.metrics["daily_orders"])
    qtbot.addWidget(editor)
    editor.name.setText("orders_per_day")
    editor.save()
    assert editor.result() == editor.DialogCode.Accepted
    text = path.read_text(encoding="utf-8")
    assert text == (
        PROJECT.replace("[metrics.daily_orders]", "[metrics.orders_per_day]")
        .replace("[metrics.daily_orders.checks]", "[metrics.orders_per_day.checks]")
        .replace("[[metrics.daily_orders.alerts]]", "[[metrics.orders_per_day.alerts]]")
    )


def test_saving_an_unchanged_metric_leaves_the_file_alone(qtbot, bridge, path):
    project = load_project(path)
    editor = MetricEditor(project, bridge, project.metrics["daily_orders"])
    qtbot.addWidget(editor)
    editor.save()
    assert editor.result() == editor.DialogCode.Accepted
    assert path.read_text(encoding="utf-8") == PROJECT


def test_renaming_a_source_in_its_editor_keeps_its_keys(qtbot, bridge, path):
    project = load_project(path)
    editor = SourceEditor(project, bridge, project.sources["shop"])
    qtbot.addWidget(editor)
    editor.name.setText("warehouse")
    editor.save()
    assert editor.result() == editor.DialogCode.Accepted
    saved = load_project(path)
    assert saved.sources["warehouse"].concurrency == 2
    assert saved.metrics["daily_orders"].source == "warehouse"


def test_a_sql_syntax_error_names_the_line_at_fault(qtbot, bridge, tmp_path):
    from tests.helpers import make_orders, project_text, ts

    make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-25T10:00"), "DE", 10.0)])
    file = tmp_path / "lookback.toml"
    file.write_text(project_text(), encoding="utf-8")
    project = load_project(file)
    editor = MetricEditor(project, bridge, project.metrics["daily_orders"])
    qtbot.addWidget(editor)
    sql = "SELECT ordered_at AS bucket, count(*) AS n\nFROM ordrs\nGROUP BY ALL"
    editor.sql.setPlainText(sql)
    editor.preview_button.click()
    qtbot.waitUntil(lambda: "ordrs" in editor.preview_info.text(), timeout=10000)
    assert "LINE 2: FROM ordrs" in editor.preview_info.text()
    # a parse error is found before the SQL is wrapped: its line was right all along
    editor.sql.setPlainText(sql.replace("FROM", "FORM"))
    editor.preview_button.click()
    qtbot.waitUntil(lambda: "syntax error" in editor.preview_info.text(), timeout=10000)
    assert "LINE 2: FORM ordrs" in editor.preview_info.text()


def test_an_error_text_goes_once_its_mistake_is_fixed_and_preview_says_why_not(qtbot, bridge, path):
    project = load_project(path)
    editor = MetricEditor(project, bridge, project.metrics["daily_orders"])
    qtbot.addWidget(editor)
    editor.lookback.setText("36h")
    editor.preview_button.click()
    error = editor.errors["lookback"]
    assert error.isVisibleTo(editor) and "whole number of day buckets" in error.text()
    assert editor.preview_info.text().startswith("cannot preview until the lookback is fixed")
    editor.lookback.setText("7d")
    qtbot.waitUntil(lambda: not error.isVisibleTo(editor), timeout=5000)
    assert editor.preview_info.text() == ""
    editor.lookback.setText("3x")  # a new mistake is said as it is made
    qtbot.waitUntil(lambda: error.isVisibleTo(editor), timeout=5000)


@pytest.mark.qt_log_ignore("propagateSizeHints")
def test_escape_asks_before_throwing_changes_away(qtbot, bridge, path):
    from PySide6.QtCore import Qt

    project = load_project(path)
    editor = MetricEditor(project, bridge, project.metrics["daily_orders"])
    qtbot.addWidget(editor)
    asked: list[str] = []
    answers = [False, True]
    editor.confirm_discard = lambda what: asked.append(what) or answers.pop(0)
    editor.show()
    qtbot.waitExposed(editor)
    qtbot.keyClick(editor, Qt.Key.Key_Escape)  # nothing changed: closes without asking
    assert asked == [] and not editor.isVisible()
    editor.show()
    editor.sql.setPlainText("SELECT 1")
    qtbot.keyClick(editor, Qt.Key.Key_Escape)
    assert asked == ["metric daily_orders"] and editor.isVisible()
    qtbot.keyClick(editor, Qt.Key.Key_Escape)
    assert len(asked) == 2 and not editor.isVisible()
    assert path.read_text(encoding="utf-8") == PROJECT


@pytest.mark.qt_log_ignore("propagateSizeHints")
def test_tab_leaves_the_sql_editor(qtbot, bridge, path):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    project = load_project(path)
    editor = MetricEditor(project, bridge, project.metrics["daily_orders"])
    qtbot.addWidget(editor)
    editor.show()
    qtbot.waitExposed(editor)
    editor.activateWindow()
    editor.sql.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is editor.sql, timeout=5000)
    text = editor.sql.toPlainText()
    qtbot.keyClick(editor.sql, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is not editor.sql
    assert editor.sql.toPlainText() == text


def test_a_preview_error_goes_once_the_sql_is_fixed(qtbot, bridge, tmp_path):
    from tests.helpers import make_orders, project_text, ts

    make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-25T10:00"), "DE", 10.0)])
    file = tmp_path / "lookback.toml"
    file.write_text(project_text(), encoding="utf-8")
    project = load_project(file)
    editor = MetricEditor(project, bridge, project.metrics["daily_orders"])
    qtbot.addWidget(editor)
    good = editor.sql.toPlainText()
    editor.sql.setPlainText(good.replace("FROM orders", "FROM ordrs"))
    editor.preview_button.click()
    qtbot.waitUntil(lambda: "ordrs" in editor.preview_info.text(), timeout=10000)
    editor.sql.setPlainText(good)  # fixed, and Preview not pressed again
    qtbot.waitUntil(lambda: "row(s) for window" in editor.preview_info.text(), timeout=10000)
    assert "ordrs" not in editor.preview_info.text()


@pytest.mark.parametrize(
    ("locale", "said"), [("de_DE", "At 06:00;"), ("en_GB", "At 06:00;"), ("en_US", "At 06:00 AM;")]
)
def test_the_cron_preview_speaks_the_locale_s_clock(qtbot, bridge, path, locale, said):
    from PySide6.QtCore import QLocale

    before = QLocale()
    QLocale.setDefault(QLocale(locale))
    try:
        project = load_project(path)
        editor = MetricEditor(project, bridge, project.metrics["daily_orders"])
        qtbot.addWidget(editor)
        editor.schedule_kind.setCurrentText("cron")
        editor.schedule.setText("0 6 * * *")
        assert editor.schedule_preview.text().startswith(said)
    finally:
        QLocale.setDefault(before)


def test_the_editors_fields_say_what_the_manual_says(qtbot, bridge, path):
    from lookback_gui.core.project.keys import tooltip

    project = load_project(path)
    editor = MetricEditor(project, bridge, project.metrics["daily_orders"])
    qtbot.addWidget(editor)
    assert editor.lookback.toolTip() == tooltip("metric", "lookback")
    assert "Default: UTC." in editor.timezone.toolTip()
    source = SourceEditor(project, bridge, next(iter(project.sources.values())))
    qtbot.addWidget(source)
    assert source.dsn.toolTip() == tooltip("source", "dsn")
