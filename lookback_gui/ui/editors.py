"""Editors for sources and metrics.

Each editor validates its fields against the same rules as the project file (it builds the new
project text and runs the loader on it) and shows a mistake next to the field it is about. Saving
writes the project file through :class:`ProjectDocument`, which keeps the user's comments.
Connection tests, schema browsing and query previews run off the GUI thread.
"""

from __future__ import annotations

import dataclasses
import re
import zoneinfo
from datetime import UTC, datetime
from typing import Any, ClassVar

import tomlkit
from pygments.lexers.sql import SqlLexer
from pygments.token import Token
from PySide6.QtCore import QLocale, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat, QTextDocument
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lookback_gui.core.errors import LookbackError, ProjectError
from lookback_gui.core.project import (
    FILE_SOURCE_TYPES,
    SOURCE_TYPES,
    MetricConfig,
    Project,
    ProjectDocument,
    SourceConfig,
    parse_project,
)
from lookback_gui.core.project.keys import tooltip
from lookback_gui.core.pull import Preview, preview_metric
from lookback_gui.core.sources import describe_schema, keyring_user
from lookback_gui.core.storage.passwords import KEYRING_SERVICE
from lookback_gui.core.storage.urls import StorageConfig
from lookback_gui.core.store import Store
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.dialogs import open_file_name
from lookback_gui.ui.models import PreviewModel
from lookback_gui.ui.slots import weakly
from lookback_gui.ui.storage_fields import StorageFields, storage_kind

MONO = QFont("monospace")
MONO.setStyleHint(QFont.StyleHint.Monospace)


class SqlHighlighter(QSyntaxHighlighter):
    """SQL highlighting with Pygments' SQL lexer; the window parameters stand out."""

    STYLES: ClassVar[dict[Any, tuple[str, bool]]] = {
        Token.Keyword: ("#1565c0", True),
        Token.Name.Builtin: ("#6a1b9a", False),
        Token.Literal.String: ("#2e7d32", False),
        Token.Literal.Number: ("#ef6c00", False),
        Token.Comment: ("#757575", False),
        Token.Operator: ("#424242", False),
    }

    DARK_STYLES: ClassVar[dict[Any, tuple[str, bool]]] = {
        Token.Keyword: ("#82b1ff", True),
        Token.Name.Builtin: ("#ce93d8", False),
        Token.Literal.String: ("#a5d6a7", False),
        Token.Literal.Number: ("#ffb74d", False),
        Token.Comment: ("#9e9e9e", False),
        Token.Operator: ("#e0e0e0", False),
    }

    def __init__(self, document: QTextDocument):
        from lookback_gui.ui.theme import is_dark

        super().__init__(document)
        self._lexer = SqlLexer()
        self._formats: dict[Any, QTextCharFormat] = {}
        styles = self.DARK_STYLES if is_dark() else self.STYLES
        for token, (colour, bold) in styles.items():
            fmt = QTextCharFormat()
            fmt.setForeground(QColor(colour))
            if bold:
                fmt.setFontWeight(QFont.Weight.Bold)
            self._formats[token] = fmt
        self._param = QTextCharFormat()
        self._param.setForeground(QColor("#f48fb1" if is_dark() else "#c2185b"))
        self._param.setFontWeight(QFont.Weight.Bold)

    def highlightBlock(self, text: str) -> None:
        position = 0
        for token, value in self._lexer.get_tokens(text):
            length = len(value)
            while token not in self._formats and token.parent is not None:
                token = token.parent
            if token in self._formats:
                self.setFormat(position, length, self._formats[token])
            position += length
        for match in re.finditer(r"\$\w+", text):
            self.setFormat(match.start(), match.end() - match.start(), self._param)


def lines_as_written(message: str, sql: str) -> str:
    """A query error's "LINE n:" counted in ``sql`` as the editor shows it.

    A pull runs the SQL as ``SELECT * FROM (\\n<sql without its leading blank lines>\\n)``, so
    DuckDB counts one line more, plus the blank lines it was given first. An error found while
    the SQL alone was parsed ("does not parse") already counts right.
    """
    if "does not parse" in message:
        return message
    shift = 1 + sql[: len(sql) - len(sql.lstrip())].count("\n")
    return re.sub(r"\bLINE (\d+):", lambda m: f"LINE {max(1, int(m.group(1)) - shift)}:", message)


def _error_label() -> QLabel:
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


class _Editor(QDialog):
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
        self.general_error = _error_label()
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
        error = _error_label()
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


class SourceEditor(_Editor):
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


class MetricEditor(_Editor):
    """Create or change one metric, with a schedule preview and a query preview."""

    KEY_TABLE = "metric"

    def __init__(
        self,
        project: Project,
        bridge: Bridge,
        metric: MetricConfig | None = None,
        parent: QWidget | None = None,
        store: Store | None = None,
    ):
        super().__init__(project, bridge, parent)
        self.setWindowTitle(f"Metric {metric.name}" if metric else "New metric")
        self.original = metric
        self._store = store
        self.renamed: Any = None  # what a rename moved, once saved
        self.name = QLineEdit(metric.name if metric else "", accessibleName="Metric name")
        self.source = QComboBox(accessibleName="Source")
        self.source.addItems(list(project.sources))
        self.grain = QComboBox(accessibleName="Grain")
        self.grain.addItems(["minute", "hour", "day", "week", "month"])
        self.lookback = QLineEdit(str(metric.lookback) if metric else "7d", accessibleName="Lookback")
        self.lookback.setPlaceholderText('"7d", "36h", "4w" or a number of buckets')
        self.schedule_kind = QComboBox(accessibleName="Schedule kind")
        self.schedule_kind.addItems(["manual only", "cron", "every"])
        self.schedule = QLineEdit(accessibleName="Schedule")
        self.schedule_preview = QLabel(accessibleName="Schedule in plain words")
        self.schedule_preview.setWordWrap(True)
        self.timezone = QComboBox(accessibleName="Time zone")
        self.timezone.setEditable(True)
        self.timezone.addItems(sorted(zoneinfo.available_timezones()))
        self.complete_only = QCheckBox("complete buckets only", accessibleName="Complete buckets only")
        self.allow_empty = QCheckBox("an empty result is a real zero", accessibleName="Allow an empty result")
        self.sql = QPlainTextEdit(accessibleName="SQL")
        self.sql.setFont(MONO)
        self.sql.setTabChangesFocus(True)  # Tab leaves the editor; indent with spaces
        self.highlighter = SqlHighlighter(self.sql.document())
        self.rules = QPlainTextEdit(accessibleName="Checks and alerts")
        self.rules.setFont(MONO)
        self.rules.setTabChangesFocus(True)
        self.rules.setPlaceholderText(
            '[checks]\norders_not_negative = { measure = "orders", min = 0 }\n\n[[alerts]]\nkind = "failure"'
        )
        self.try_button = QPushButton(
            "Try the alert rules on the history", accessibleName="Try the alert rules on the history"
        )
        self.try_button.setEnabled(metric is not None and store is not None)
        self.try_info = QLabel(accessibleName="Alert rules tried on the history")
        self.try_info.setWordWrap(True)
        self.try_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.preview_button = QPushButton("Preview", accessibleName="Preview the query")
        self.preview_info = QLabel(accessibleName="Preview result")
        self.preview_info.setWordWrap(True)
        self.preview_model = PreviewModel(self)
        self.preview_table = QTableView(accessibleName="Preview rows")
        self.preview_table.setModel(self.preview_model)
        self.preview_table.setWordWrap(False)
        self.preview_table.verticalHeader().setDefaultSectionSize(
            self.preview_table.fontMetrics().height() + 6
        )

        if metric:
            self.source.setCurrentText(metric.source)
            self.grain.setCurrentText(metric.grain.value)
            if metric.schedule:
                self.schedule_kind.setCurrentText("cron")
                self.schedule.setText(metric.schedule)
            elif metric.every:
                self.schedule_kind.setCurrentText("every")
                from lookback_gui.core.timing.durations import format_duration

                self.schedule.setText(format_duration(metric.every))
            self.timezone.setCurrentText(metric.timezone)
            self.complete_only.setChecked(metric.complete_buckets_only)
            self.allow_empty.setChecked(metric.allow_empty)
            self.sql.setPlainText(metric.sql.strip())
            self.rules.setPlainText(self._rules_text(metric.name))
        else:
            self.grain.setCurrentText("day")
            self.timezone.setCurrentText("UTC")
            self.sql.setPlainText(self.template("my_table", "ts"))

        form = QFormLayout()
        self.field_row(form, "Name", "name", self.name)
        self.field_row(form, "Source", "source", self.source)
        self.field_row(form, "Grain", "grain", self.grain)
        self.field_row(form, "Lookback", "lookback", self.lookback)
        schedule_row = QWidget()
        row = QHBoxLayout(schedule_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.schedule_kind)
        row.addWidget(self.schedule, 1)
        self.field_row(form, "Schedule", "schedule", schedule_row)
        self.errors["every"] = self.errors["schedule"]
        form.addRow("", self.schedule_preview)
        self.field_row(form, "Time zone", "timezone", self.timezone)
        options = QWidget()
        options_row = QHBoxLayout(options)
        options_row.setContentsMargins(0, 0, 0, 0)
        options_row.addWidget(self.complete_only)
        options_row.addWidget(self.allow_empty)
        options_row.addStretch(1)
        form.addRow("", options)

        params = QHBoxLayout()
        params.addWidget(QLabel("Insert:"))
        for name in ("$window_start", "$window_end", "$as_of"):
            button = QPushButton(name, accessibleName=f"Insert {name}")
            button.clicked.connect(weakly(self._insert, name))
            params.addWidget(button)
        params.addStretch(1)
        params.addWidget(self.preview_button)

        sql_box = QWidget()
        sql_layout = QVBoxLayout(sql_box)
        sql_layout.setContentsMargins(0, 0, 0, 0)
        sql_layout.addWidget(
            QLabel("SQL (the source is the default catalog, or a view named after it for files)")
        )
        sql_layout.addWidget(self.sql, 1)
        self.errors["sql"] = _error_label()
        sql_layout.addWidget(self.errors["sql"])
        sql_layout.addLayout(params)
        sql_layout.addWidget(self.preview_info)
        sql_layout.addWidget(self.preview_table, 1)

        rules_box = QWidget()
        rules_layout = QVBoxLayout(rules_box)
        rules_layout.setContentsMargins(0, 0, 0, 0)
        rules_layout.addWidget(QLabel("Quality checks and alert rules (TOML, as under [metrics.NAME])"))
        rules_layout.addWidget(self.rules, 1)
        self.errors["checks"] = _error_label()
        self.errors["alerts"] = self.errors["checks"]
        rules_layout.addWidget(self.errors["checks"])
        trial = QHBoxLayout()
        trial.addWidget(self.try_info, 1)
        trial.addWidget(self.try_button, 0, Qt.AlignmentFlag.AlignTop)
        rules_layout.addLayout(trial)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(sql_box)
        splitter.addWidget(rules_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.general_error)
        layout.addWidget(buttons)
        self.resize(860, 900)

        self.schedule_kind.currentTextChanged.connect(self._schedule_changed)
        self.schedule.textChanged.connect(self._schedule_changed)
        self.timezone.currentTextChanged.connect(self._schedule_changed)
        self.preview_button.clicked.connect(self.preview)
        self.try_button.clicked.connect(self.try_rules)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        self._schedule_changed()
        self.watch(
            self.name.textChanged,
            self.source.currentTextChanged,
            self.grain.currentTextChanged,
            self.lookback.textChanged,
            self.schedule_kind.currentTextChanged,
            self.schedule.textChanged,
            self.timezone.currentTextChanged,
            self.sql.textChanged,
            self.rules.textChanged,
            self.complete_only.toggled,
            self.allow_empty.toggled,
        )
        # a failed preview is run again once the SQL or its source is edited and typing pauses,
        # so its error goes as soon as the SQL is fixed
        self._preview_error_shown = False
        self._repreview = QTimer(self, singleShot=True, interval=800)
        self._repreview.timeout.connect(self.preview)
        self.sql.textChanged.connect(self._query_edited)
        self.source.currentTextChanged.connect(self._query_edited)
        if metric is None:
            self.source.currentTextChanged.connect(self._suggest_sql)
            self._suggest_sql()

    def _insert(self, name: str) -> None:
        self.sql.insertPlainText(name)

    def _query_edited(self, *_: object) -> None:
        if self._preview_error_shown:
            self.preview_info.setStyleSheet("color: palette(mid);")
            self._repreview.start()

    def template(self, table: str, column: str) -> str:
        grain = self.grain.currentText() or "day"
        return (
            f"SELECT date_trunc('{grain}', {column}) AS bucket, count(*) AS n\n"
            f"FROM {table}\nWHERE {column} >= $window_start AND {column} < $window_end\n"
            "GROUP BY ALL"
        )

    def _suggest_sql(self) -> None:
        """Start a new metric's SQL from the source's first table that has a time column."""
        source = self.project.sources.get(self.source.currentText())
        if source is None:
            return
        untouched = self.sql.toPlainText()

        def suggest(rows: list[dict[str, Any]]) -> None:
            if self.sql.toPlainText() != untouched:
                return  # the user has started writing
            for row in rows:
                if row["type"].upper().startswith(("TIMESTAMP", "DATE")):
                    table = row["table"] if source.type not in ("parquet", "csv") else source.name
                    self.sql.setPlainText(self.template(table, row["column"]))
                    return

        self.bridge.submit(
            f"suggest-{id(self)}", lambda: describe_schema(source), suggest, lambda message: None, owner=self
        )

    def _rules_text(self, name: str) -> str:
        try:
            document = ProjectDocument(self.project.path)
            table = document.document["metrics"][name]
        except (LookbackError, KeyError):
            return ""
        out = tomlkit.document()
        if "checks" in table:
            out["checks"] = table["checks"]
        if "alerts" in table:
            out["alerts"] = table["alerts"]
        return tomlkit.dumps(out).strip()

    def _schedule_changed(self) -> None:
        kind = self.schedule_kind.currentText()
        self.schedule.setEnabled(kind != "manual only")
        self.schedule.setPlaceholderText({"cron": "0 6 * * *", "every": "15m"}.get(kind, ""))
        self.schedule_preview.setText(self.describe_schedule())

    def describe_schedule(self) -> str:
        """The schedule in plain words with its next three fire times, or why it is wrong."""
        kind = self.schedule_kind.currentText()
        text = self.schedule.text().strip()
        if kind == "manual only":
            return "pulled only when you ask (Run now)"
        if not text:
            return ""
        try:
            zone = zoneinfo.ZoneInfo(self.timezone.currentText() or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return "unknown time zone"
        from apscheduler.triggers.interval import IntervalTrigger

        from lookback_gui.core.timing.cron import cron_trigger
        from lookback_gui.core.timing.durations import parse_duration

        try:
            if kind == "cron":
                from cron_descriptor import ExpressionDescriptor, Options

                if len(text.split()) != 5:
                    raise ValueError("a cron expression has 5 fields: minute hour day month weekday")
                trigger: Any = cron_trigger(text, zone)
                options = Options()
                # the locale's clock: 06:00 where it has a 24-hour one, 06:00 AM where not
                options.use_24hour_time_format = (
                    "a" not in QLocale().timeFormat(QLocale.FormatType.ShortFormat).lower()
                )
                words = ExpressionDescriptor(text, options).get_description()
            else:
                every = parse_duration(text)
                if every.total_seconds() <= 0:
                    raise ValueError("must be longer than zero")
                trigger = IntervalTrigger(seconds=int(every.total_seconds()), timezone=zone)
                words = f"every {text}"
        except Exception as exc:
            return f"✗ {exc}"
        now = datetime.now(UTC).astimezone(zone)
        fires = []
        previous = None
        for _ in range(3):
            fire = trigger.get_next_fire_time(previous, now if previous is None else previous)
            if fire is None:
                break
            if previous is not None and fire <= previous:
                break
            fires.append(fire)
            previous = fire
            now = fire
        return f"{words}; next: " + ", ".join(f.strftime("%a %Y-%m-%d %H:%M") for f in fires)

    def snapshot(self) -> object:
        return (
            self.name.text(),
            self.source.currentText(),
            self.grain.currentText(),
            self.lookback.text(),
            self.schedule_kind.currentText(),
            self.schedule.text(),
            self.timezone.currentText(),
            self.complete_only.isChecked(),
            self.allow_empty.isChecked(),
            self.sql.toPlainText(),
            self.rules.toPlainText(),
        )

    def validate_quietly(self) -> None:
        if self.candidate() is not None and self.preview_info.text().startswith("cannot preview"):
            self.preview_info.clear()  # what stopped the preview is fixed

    def values(self) -> dict[str, Any]:
        lookback_text = self.lookback.text().strip()
        lookback: int | str = int(lookback_text) if lookback_text.isdigit() else lookback_text
        kind = self.schedule_kind.currentText()
        text = self.schedule.text().strip()
        values: dict[str, Any] = {
            "source": self.source.currentText(),
            "grain": self.grain.currentText(),
            "lookback": lookback,
            "schedule": text if kind == "cron" and text else None,
            "every": text if kind == "every" and text else None,
            "timezone": self.timezone.currentText().strip() or "UTC",
            "complete_buckets_only": self.complete_only.isChecked(),
            "allow_empty": self.allow_empty.isChecked(),
            "sql": self.sql.toPlainText().strip(),
        }
        return values

    def _rules(self) -> dict[str, Any]:
        text = self.rules.toPlainText().strip()
        if not text:
            return {"checks": None, "alerts": None}
        document = tomlkit.parse(text)
        unknown = [k for k in document if k not in ("checks", "alerts")]
        if unknown:
            raise ValueError(f"only [checks] and [[alerts]] belong here, not '{unknown[0]}'")
        return {"checks": document.get("checks"), "alerts": document.get("alerts")}

    def _apply(self, document: ProjectDocument) -> None:
        name = self.name.text().strip()
        if self.original and self.original.name != name:
            document.rename_metric(self.original.name, name)
        document.set_metric(name, {**self.values(), **self._rules()})

    def candidate(self) -> tuple[Project, MetricConfig] | None:
        """The edited metric as the loader reads it, or None after showing the mistake."""
        self.clear_errors()
        name = self.name.text().strip()
        if not name:
            self.show_error("name", "give the metric a name")
            return None
        try:
            document = ProjectDocument(self.project.path)
            self._apply(document)
            project = parse_project(document.text(), self.project.path)
        except ProjectError as exc:
            self.show_project_error(exc)
            return None
        except (ValueError, tomlkit.exceptions.TOMLKitError) as exc:
            self.show_error("checks", f"checks and alerts: {exc}")
            return None
        return project, project.metrics[name]

    def preview(self) -> None:
        found = self.candidate()
        if found is None:
            shown = [(key, label.text()) for key, label in self.errors.items() if label.isVisibleTo(self)]
            if self.general_error.isVisibleTo(self):
                shown.append(("", self.general_error.text()))
            key, reason = shown[0] if shown else ("", "")
            where = f"the {key.replace('_', ' ')}" if key else "the metric"
            self.preview_model.set_result((), ())
            self.preview_info.setStyleSheet("color: #c62828;")
            self.preview_info.setText(f"cannot preview until {where} is fixed: {reason}")
            return
        project, metric = found
        self.preview_button.setEnabled(False)
        self.preview_info.setStyleSheet("")
        self.preview_info.setText("running the query for the current window…")
        self.bridge.submit(
            f"preview-{id(self)}",
            lambda: preview_metric(project, metric),
            self._previewed,
            self._preview_failed,
        )

    def try_rules(self) -> None:
        """How often the threshold and restatement rules as edited would have fired over the
        metric's stored history (off the GUI thread; nothing is recorded)."""
        found = self.candidate()
        store, original = self._store, self.original
        if found is None or store is None or original is None:
            return
        _project, metric = found
        metric = dataclasses.replace(metric, name=original.name)  # its history, as stored
        rules = [r for r in metric.alerts if r.kind in ("threshold", "restatement")]
        if not rules:
            self.try_info.setText("no threshold or restatement rule to try")
            return

        def work() -> list[dict[str, Any]]:
            from lookback_gui.core.insight.alerts import try_rule

            return [try_rule(metric, store, rule) for rule in rules]

        self.try_button.setEnabled(False)
        self.try_info.setText("replaying the rules over the stored history…")
        self.bridge.submit(f"try-rules-{id(self)}", work, self._rules_tried, self._rules_failed)

    def _rules_tried(self, trials: list[dict[str, Any]]) -> None:
        self.try_button.setEnabled(True)
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
        self.try_info.setText("\n".join(lines))

    def _rules_failed(self, message: str) -> None:
        self.try_button.setEnabled(True)
        self.try_info.setText(f"cannot try the rules: {message}")

    def _previewed(self, result: Preview) -> None:
        self.preview_button.setEnabled(True)
        self._preview_error_shown = False
        self.preview_model.set_result(result.columns, result.rows)
        self.preview_table.resizeColumnsToContents()
        shape = result.shape
        window = f"[{result.window.start:%Y-%m-%d %H:%M}, {result.window.end:%Y-%m-%d %H:%M})"
        text = (
            f"{result.total_rows} row(s) for window {window}. bucket: {shape.bucket}; "
            f"dimensions: {', '.join(shape.dimensions) or 'none'}; measures: "
            f"{', '.join(shape.measures)}"
        )
        if result.warnings:
            text += "\n⚠ " + "\n⚠ ".join(result.warnings)
        self.preview_info.setStyleSheet("color: #2e7d32;")
        self.preview_info.setText(text)

    def _preview_failed(self, message: str) -> None:
        self.preview_button.setEnabled(True)
        self._preview_error_shown = True
        source = self.project.sources.get(self.source.currentText())
        if source is None or not source.pushdown:  # pushed-down SQL runs as written
            message = lines_as_written(message, self.values()["sql"])
        self.preview_model.set_result((), ())
        self.preview_info.setStyleSheet("color: #c62828;")
        self.preview_info.setText(message)

    def save(self) -> None:
        if self.candidate() is None:
            return
        name = self.name.text().strip()
        if self.original is not None and self.original.name != name and self._store is not None:
            self._rename(self.original.name, name, self._store)
            return
        if self.try_save(self._apply):
            self.accept()

    def confirm_rename(self, old: str, new: str) -> bool:
        """Say what a rename does to the store, and ask whether to go on."""
        answer = QMessageBox.question(
            self,
            f"Rename {old}",
            f"Renaming {old} to {new} also moves its history in the "
            "store to the new name: its runs, versions and alert states. Rename it?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _rename(self, old: str, new: str, store: Store) -> None:
        """Rename the metric in the project file (with the other edits) and in the store, in
        one step, after saying so."""
        from lookback_gui.core.project.rename import rename_metric

        if not self.confirm_rename(old, new):
            return
        self.clear_errors()
        try:
            done = rename_metric(
                self.project,
                store,
                old,
                new,
                edit=lambda document: document.set_metric(new, {**self.values(), **self._rules()}),
            )
        except ProjectError as exc:
            self.show_project_error(exc)
            return
        except (OSError, LookbackError, ValueError) as exc:
            self.show_error(None, f"cannot rename {old}: {exc}")
            return
        self.renamed = done
        self.accept()
