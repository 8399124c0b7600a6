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
    assert text == (PROJECT.replace("[metrics.daily_orders]", "[metrics.orders_per_day]")
                    .replace("[metrics.daily_orders.checks]", "[metrics.orders_per_day.checks]")
                    .replace("[[metrics.daily_orders.alerts]]",
                             "[[metrics.orders_per_day.alerts]]"))


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
