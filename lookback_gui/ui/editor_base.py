"""What the source and metric editors share: mistakes shown next to the field they are about,
validation by loading the project text as edited, and a question before unsaved changes are
thrown away."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QDialog, QFormLayout, QLabel, QMessageBox, QVBoxLayout, QWidget

from lookback_gui.core.errors import LookbackError, ProjectError
from lookback_gui.core.project import Project, ProjectDocument
from lookback_gui.core.project.keys import tooltip
from lookback_gui.ui.bridge import Bridge


def error_label() -> QLabel:
    """A label for a mistake: red, wrapped, hidden until it has something to say."""
    label = QLabel()
    label.setStyleSheet("color: #c62828;")
    label.setWordWrap(True)
    label.setVisible(False)
    return label


def ask_to_discard(parent: QWidget, what: str) -> bool:
    """Whether the user wants to throw away the unsaved changes of ``what``."""
    answer = QMessageBox.question(
        parent,
        "Unsaved changes",
        f"Discard your changes to {what}?",
        QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Cancel,
    )
    return answer == QMessageBox.StandardButton.Discard


class Editor(QDialog):
    """Shared plumbing: inline errors keyed by project-file key, validation by reloading, and
    a question before unsaved changes are thrown away.

    Once a mistake was shown, every edit re-checks the fields (after a short pause), so an
    error text goes as soon as its mistake is fixed, and a new one is said as it is made.

    Its ``confirm_discard`` is asked (with what is being edited) before Escape or Cancel
    throws changes away; tests replace it.
    """

    def __init__(self, project: Project, bridge: Bridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.project = project
        self.bridge = bridge
        self.errors: dict[str, QLabel] = {}
        self.rows: dict[str, QWidget] = {}
        self.general_error = error_label()
        self._opened_with: object = None
        self._live = False  # once a mistake was shown, edits are checked as they are made
        self._recheck = QTimer(self, singleShot=True, interval=300)
        self._recheck.timeout.connect(self._check_again)

    def confirm_discard(self, what: str) -> bool:
        """Whether the user agrees to throw away the changes to ``what``."""
        return ask_to_discard(self, what)

    def snapshot(self) -> object:
        """What the fields hold, to tell whether anything was changed."""
        raise NotImplementedError

    def watch(self, *signals: Any) -> None:
        """Re-check the fields after an edit whenever a mistake is on show."""
        self._opened_with = self.snapshot()
        for signal in signals:
            signal.connect(self._edited)

    def _edited(self, *_: object) -> None:
        if self._live:
            self._recheck.start()

    def _check_again(self) -> None:
        self.validate_quietly()

    def validate_quietly(self) -> None:
        """Show the mistakes of the fields as they are now (and no others)."""

    def changed(self) -> bool:
        return self._opened_with is not None and self.snapshot() != self._opened_with

    def reject(self) -> None:
        title = self.windowTitle()
        if self.changed() and not self.confirm_discard(title[:1].lower() + title[1:]):
            return
        super().reject()

    # the table of the project file whose keys this editor edits (project_keys.TABLES)
    KEY_TABLE = ""

    def field_row(self, form: QFormLayout, label: str, key: str, widget: QWidget) -> None:
        if not widget.toolTip() and self.KEY_TABLE:  # what the manual says of the key
            widget.setToolTip(tooltip(self.KEY_TABLE, key))
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(widget)
        error = error_label()
        error.setAccessibleName(f"{label} error")
        layout.addWidget(error)
        self.errors[key] = error
        self.rows[key] = box
        form.addRow(label, box)
        self.form = form

    def clear_errors(self) -> None:
        for label in [*self.errors.values(), self.general_error]:
            label.clear()
            label.setVisible(False)

    def show_error(self, key: str | None, message: str) -> None:
        self._live = True
        label = self.errors.get(key or "", self.general_error)
        label.setText(message)
        label.setVisible(True)

    def show_project_error(self, exc: ProjectError) -> None:
        key = (exc.key or "").split(".")
        field = key[2] if len(key) > 2 else None
        self.show_error(field, exc.reason if field in self.errors else str(exc))

    def try_save(self, apply: Any) -> bool:
        """Apply the change to the project file, validate it, and write it; show mistakes."""
        self.clear_errors()
        try:
            document = ProjectDocument(self.project.path)
            apply(document)
            document.save()
        except ProjectError as exc:
            self.show_project_error(exc)
            return False
        except (OSError, LookbackError) as exc:
            self.show_error(None, f"cannot save {self.project.path}: {exc}")
            return False
        return True
