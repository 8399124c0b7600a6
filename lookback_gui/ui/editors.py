"""Editors for sources and metrics.

Each editor validates its fields against the same rules as the project file (it builds the new
project text and runs the loader on it) and shows a mistake next to the field it is about. Saving
writes the project file through :class:`ProjectDocument`, which keeps the user's comments.
Connection tests, schema browsing and query previews run off the GUI thread.

The shared plumbing is in :mod:`editor_base`, the SQL field and its preview in
:mod:`sql_field`, the checks and alert rules in :mod:`metric_rules`, the editors themselves in
:mod:`source_editor` and :mod:`metric_editor`; their names are importable from here.
"""

from __future__ import annotations

from lookback_gui.ui.editor_base import Editor, ask_to_discard, error_label
from lookback_gui.ui.metric_editor import MetricEditor
from lookback_gui.ui.metric_rules import RulesField
from lookback_gui.ui.schedule_words import describe_schedule
from lookback_gui.ui.source_editor import SourceEditor
from lookback_gui.ui.sql_field import MONO, SqlField, SqlHighlighter, lines_as_written

__all__ = [
    "MONO",
    "Editor",
    "MetricEditor",
    "RulesField",
    "SourceEditor",
    "SqlField",
    "SqlHighlighter",
    "ask_to_discard",
    "describe_schedule",
    "error_label",
    "lines_as_written",
]
