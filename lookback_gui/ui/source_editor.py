"""The source editor: a source's type with the fields it needs (a path, with object storage's
keys for a URL; or a DSN and password), *Test connection* with the schema it found, and saving
(passwords and secrets go to the OS keyring, never to the project file)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lookback_gui.core.errors import ProjectError
from lookback_gui.core.project import FILE_SOURCE_TYPES, SOURCE_TYPES, Project, ProjectDocument, SourceConfig
from lookback_gui.core.sources import describe_schema, keyring_user
from lookback_gui.core.storage.passwords import KEYRING_SERVICE
from lookback_gui.core.storage.urls import StorageConfig
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.dialogs import open_file_name
from lookback_gui.ui.editor_base import Editor
from lookback_gui.ui.slots import weakly
from lookback_gui.ui.storage_fields import StorageFields, storage_kind


class SourceEditor(Editor):
    """Create or change one source."""

    KEY_TABLE = "source"

    def __init__(
        self,
        project: Project,
        bridge: Bridge,
        source: SourceConfig | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(project, bridge, parent)
        self.setWindowTitle(f"Source {source.name}" if source else "New source")
        self.original = source
        self._make_fields(source)
        buttons = self._lay_out()
        self.resize(640, 560)

        self.watch(
            self.name.textChanged,
            self.type.currentTextChanged,
            self.path.textChanged,
            self.dsn.textChanged,
            self.password_env.textChanged,
            *self.storage.signals(),
        )
        self.type.currentTextChanged.connect(self._type_changed)
        self.path.textChanged.connect(weakly(self._retype))
        self.browse.clicked.connect(self._browse)
        self.test.clicked.connect(self.test_connection)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        self._type_changed(self.type.currentText())

    def _make_fields(self, source: SourceConfig | None) -> None:
        self.name = QLineEdit(source.name if source else "", accessibleName="Source name")
        self.type = QComboBox(accessibleName="Source type")
        self.type.addItems(SOURCE_TYPES)
        if source:
            self.type.setCurrentText(source.type)
        self.path = QLineEdit(source.path or "" if source else "", accessibleName="Path or glob")
        self.path.setPlaceholderText("a file or glob, or a URL: s3://bucket/events/*.parquet")
        self.storage = StorageFields(source.storage if source else None)
        self.browse = QPushButton("Browse…", accessibleName="Choose a file")
        self.dsn = QLineEdit(source.dsn or "" if source else "", accessibleName="DSN")
        self.dsn.setPlaceholderText("host=127.0.0.1 port=5432 dbname=shop user=analyst")
        self.password_env = QLineEdit(
            source.password_env or "" if source else "", accessibleName="Password environment variable"
        )
        self.password = QLineEdit(accessibleName="Password for the keyring")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("kept in the OS keyring, never in the project file")
        self.test = QPushButton("Test connection", accessibleName="Test connection")
        self.test_result = QLabel()
        self.test_result.setWordWrap(True)
        self.schema = QTreeWidget(accessibleName="Schema browser")
        self.schema.setHeaderLabels(["Table / column", "Type"])

    def _lay_out(self) -> QDialogButtonBox:
        """The fields in a form (each with its mistake below it), the connection test and the
        schema it found; the dialog's buttons, to connect."""
        form = QFormLayout()
        self.field_row(form, "Name", "name", self.name)
        self.field_row(form, "Type", "type", self.type)
        path_row = QWidget()
        path_layout = QHBoxLayout(path_row)
        path_layout.setContentsMargins(0, 0, 0, 0)
        path_layout.addWidget(self.path, 1)
        path_layout.addWidget(self.browse)
        self.field_row(form, "Path", "path", path_row)
        for key, label in (
            ("access_key_id", "Access key id"),
            ("secret_env", "Secret variable"),
            ("secret", "Secret"),
            ("endpoint", "Endpoint"),
            ("region", "Region"),
            ("url_style", "URL style"),
        ):
            self.field_row(form, label, key, self.storage.widgets()[key])
        self.field_row(form, "DSN", "dsn", self.dsn)
        self.field_row(form, "Password variable", "password_env", self.password_env)
        self.field_row(form, "Password", "password", self.password)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test)
        test_row.addWidget(self.test_result, 1)
        layout.addLayout(test_row)
        layout.addWidget(self.schema, 1)
        layout.addWidget(self.general_error)
        layout.addWidget(buttons)
        return buttons

    def _retype(self) -> None:
        """The path changed: a URL of object storage shows its storage keys, a file does not."""
        self._type_changed(self.type.currentText())

    def _type_changed(self, kind: str) -> None:
        """Show the path for file sources (with the storage keys when it is a URL of object
        storage), the DSN and password for servers."""
        is_file = kind in FILE_SOURCE_TYPES
        self.form.setRowVisible(self.rows["path"], is_file)
        for key in ("dsn", "password_env", "password"):
            self.form.setRowVisible(self.rows[key], not is_file)
        url = is_file and "://" in self.path.text()
        shown = self.storage.visible_keys(storage_kind(self.path.text()) if is_file else None)
        for key in StorageFields.KEYS:
            self.form.setRowVisible(self.rows[key], key in shown)
        self.browse.setEnabled(is_file and not url)

    def _browse(self) -> None:
        path = open_file_name(self, "Choose the source file", str(self.project.directory))
        if path:
            try:
                from pathlib import Path

                path = str(Path(path).relative_to(self.project.directory))
            except ValueError:
                pass
            self.path.setText(path)

    def snapshot(self) -> object:
        return (
            self.name.text(),
            self.type.currentText(),
            self.path.text(),
            self.dsn.text(),
            self.password_env.text(),
            self.password.text(),
            self.storage.snapshot(),
        )

    def validate_quietly(self) -> None:
        self._candidate()

    def values(self) -> dict[str, Any]:
        kind = self.type.currentText()
        if kind in FILE_SOURCE_TYPES:
            path = self.path.text().strip()
            return {
                "type": kind,
                "path": path,
                "dsn": None,
                "password_env": None,
                **self.storage.values(path),
            }
        return {
            "type": kind,
            "path": None,
            "dsn": self.dsn.text().strip(),
            "password_env": self.password_env.text().strip() or None,
            **self.storage.values(""),
        }

    def _apply(self, document: ProjectDocument) -> None:
        name = self.name.text().strip()
        if self.original and self.original.name != name:
            document.rename_source(self.original.name, name)
        document.set_source(name, self.values())

    def _candidate(self) -> SourceConfig | None:
        self.clear_errors()
        name = self.name.text().strip()
        if not name:
            self.show_error("name", "give the source a name")
            return None
        document = ProjectDocument(self.project.path)
        try:
            self._apply(document)
            project = document.validate()
        except ProjectError as exc:
            if exc.key and exc.key.startswith("metrics."):
                # a metric still names the old source; the source itself is fine to test
                return SourceConfig(
                    name=name,
                    type=self.type.currentText(),
                    path=self.values()["path"],
                    resolved_path=str(self.project.directory / (self.values()["path"] or "")),
                    dsn=self.values()["dsn"],
                    password_env=self.values()["password_env"],
                    storage=self._candidate_storage(),
                )
            self.show_project_error(exc)
            return None
        return project.sources[name]

    def _candidate_storage(self) -> StorageConfig | None:
        values = self.values()
        if storage_kind(values["path"] or "") is None:
            return None
        return StorageConfig(
            access_key_id=values["access_key_id"],
            secret_env=values["secret_env"],
            endpoint=values.get("endpoint"),
            region=values.get("region"),
            url_style=values.get("url_style"),
        )

    def test_connection(self) -> None:
        candidate = self._candidate()
        if candidate is None:
            return
        source, environ = self.storage.for_test(candidate)
        self.test.setEnabled(False)
        self.test_result.setText("connecting…")
        self.schema.clear()
        self.bridge.submit(
            f"test-{id(self)}", lambda: describe_schema(source, environ), self._tested, self._test_failed
        )

    def _tested(self, rows: list[dict[str, Any]]) -> None:
        self.test.setEnabled(True)
        tables: dict[str, QTreeWidgetItem] = {}
        for row in rows:
            item = tables.get(row["table"])
            if item is None:
                item = QTreeWidgetItem(self.schema, [row["table"], ""])
                tables[row["table"]] = item
            QTreeWidgetItem(item, [row["column"], row["type"]])
        if len(tables) <= 5:
            self.schema.expandAll()
        self.schema.resizeColumnToContents(0)
        self.test_result.setStyleSheet("color: #2e7d32;")
        self.test_result.setText(f"connected: {len(tables)} table(s)")

    def _test_failed(self, message: str) -> None:
        self.test.setEnabled(True)
        self.test_result.setStyleSheet("color: #c62828;")
        self.test_result.setText(message)

    def save(self) -> None:
        if not self.name.text().strip():
            self.clear_errors()
            self.show_error("name", "give the source a name")
            return
        password = self.password.text()
        if password and self.type.currentText() not in FILE_SOURCE_TYPES:
            source = SourceConfig(
                name=self.name.text().strip(), type=self.type.currentText(), dsn=self.dsn.text().strip()
            )
            try:
                import keyring

                keyring.set_password(KEYRING_SERVICE, keyring_user(source), password)
            except Exception as exc:
                self.clear_errors()
                self.show_error(
                    "password",
                    "no keyring service is available here, so the "
                    "password cannot be stored safely; set a password variable "
                    f"(password_env) instead ({type(exc).__name__})",
                )
                return
        path = self.path.text().strip() if self.type.currentText() in FILE_SOURCE_TYPES else ""
        problem = self.storage.secret_problem(path)
        if problem:
            self.clear_errors()
            self.show_error("secret", problem)
            return
        try:
            self.storage.keep_secret(path)
        except Exception as exc:
            self.clear_errors()
            self.show_error(
                "secret",
                "no keyring service is available here, so the secret "
                "cannot be stored safely; set a secret variable (secret_env) "
                f"instead ({type(exc).__name__})",
            )
            return
        if self.try_save(self._apply):
            self.accept()
