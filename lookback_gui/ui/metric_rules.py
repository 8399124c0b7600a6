"""The metric editor's checks and alert rules: the TOML field with its mistake, what the project
file holds of them, and how often the rules would have fired over the stored history."""

from __future__ import annotations

from typing import Any

import tomlkit
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from lookback_gui.core.errors import LookbackError
from lookback_gui.core.project import ProjectDocument
from lookback_gui.ui.editor_base import error_label
from lookback_gui.ui.sql_field import MONO

PLACEHOLDER = (
    '[checks]\norders_not_negative = { measure = "orders", min = 0 }\n\n[[alerts]]\nkind = "failure"'
)


def rules_text(project_path: Any, name: str) -> str:
    """The ``checks`` and ``alerts`` of metric ``name`` as the project file writes them."""
    try:
        document = ProjectDocument(project_path)
        table = document.document["metrics"][name]
    except (LookbackError, KeyError):
        return ""
    out = tomlkit.document()
    if "checks" in table:
        out["checks"] = table["checks"]
    if "alerts" in table:
        out["alerts"] = table["alerts"]
    return tomlkit.dumps(out).strip()


def parse_rules(text: str) -> dict[str, Any]:
    """The ``checks`` and ``alerts`` of the field's text (None where it has none); a mistake
    raises ValueError or a TOMLKitError."""
    text = text.strip()
    if not text:
        return {"checks": None, "alerts": None}
    document = tomlkit.parse(text)
    unknown = [k for k in document if k not in ("checks", "alerts")]
    if unknown:
        raise ValueError(f"only [checks] and [[alerts]] belong here, not '{unknown[0]}'")
    return {"checks": document.get("checks"), "alerts": document.get("alerts")}


def trials_text(trials: list[dict[str, Any]]) -> str:
    """One line per rule tried: how often it would have fired, its last episode and, for a
    threshold rule, how each judge would have done."""
    lines = []
    for trial in trials:
        line = (
            f"{trial['rule']}: would have fired {trial['firings']} time(s) over "
            f"{trial['runs_evaluated']} pull(s)"
        )
        if trial["episodes"]:
            last = trial["episodes"][-1]
            line += f"; last from run {last['run']}: {last['message'][:120]}"
        if trial.get("judges"):  # a threshold rule: how each judge would have done
            line += "; " + ", ".join(
                f"{judge}: {j['runs_firing']} pull(s) firing, {j['false_alarms']} false alarm(s)"
                for judge, j in trial["judges"].items()
            )
        lines.append(line)
    return "\n".join(lines)


class RulesField(QWidget):
    """The checks and alert rules as TOML, their mistake, and *Try the alert rules on the
    history* with what it found."""

    def __init__(self, can_try: bool, parent: QWidget | None = None):
        super().__init__(parent)
        self.edit = QPlainTextEdit(accessibleName="Checks and alerts")
        self.edit.setFont(MONO)
        self.edit.setTabChangesFocus(True)
        self.edit.setPlaceholderText(PLACEHOLDER)
        self.try_button = QPushButton(
            "Try the alert rules on the history", accessibleName="Try the alert rules on the history"
        )
        self.try_button.setEnabled(can_try)
        self.try_info = QLabel(accessibleName="Alert rules tried on the history")
        self.try_info.setWordWrap(True)
        self.try_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Quality checks and alert rules (TOML, as under [metrics.NAME])"))
        layout.addWidget(self.edit, 1)
        self.error = error_label()
        layout.addWidget(self.error)
        trial = QHBoxLayout()
        trial.addWidget(self.try_info, 1)
        trial.addWidget(self.try_button, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(trial)

    def rules(self) -> dict[str, Any]:
        return parse_rules(self.edit.toPlainText())

    def show_running(self) -> None:
        self.try_button.setEnabled(False)
        self.try_info.setText("replaying the rules over the stored history…")

    def show_trials(self, trials: list[dict[str, Any]]) -> None:
        self.try_button.setEnabled(True)
        self.try_info.setText(trials_text(trials))

    def show_failure(self, message: str) -> None:
        self.try_button.setEnabled(True)
        self.try_info.setText(f"cannot try the rules: {message}")
