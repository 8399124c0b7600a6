"""The metric editor: a metric's source, grain, lookback and schedule (said in plain words), its
SQL with a preview of what it returns, and its checks and alert rules, which can be tried on the
stored history before they are saved. Renaming a metric moves its history in the store too."""

from __future__ import annotations

import dataclasses
import zoneinfo
from typing import Any

import tomlkit
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from lookback_gui.core.errors import LookbackError, ProjectError
from lookback_gui.core.project import MetricConfig, Project, ProjectDocument, parse_project
from lookback_gui.core.pull import Preview, preview_metric
from lookback_gui.core.sources import describe_schema
from lookback_gui.core.store import Store
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.editor_base import Editor
from lookback_gui.ui.metric_rules import RulesField, rules_text
from lookback_gui.ui.schedule_words import describe_schedule
from lookback_gui.ui.sql_field import SqlField, lines_as_written


class MetricEditor(Editor):
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
        self._make_fields(project, can_try=metric is not None and store is not None)
        if metric:
            self._fill(metric)
        else:
            self.grain.setCurrentText("day")
            self.timezone.setCurrentText("UTC")
            self.sql.setPlainText(self.template("my_table", "ts"))
        buttons = self._lay_out()
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

    def _make_fields(self, project: Project, can_try: bool) -> None:
        self.name = QLineEdit(self.original.name if self.original else "", accessibleName="Metric name")
        self.source = QComboBox(accessibleName="Source")
        self.source.addItems(list(project.sources))
        self.grain = QComboBox(accessibleName="Grain")
        self.grain.addItems(["minute", "hour", "day", "week", "month"])
        self.lookback = QLineEdit(
            str(self.original.lookback) if self.original else "7d", accessibleName="Lookback"
        )
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
        self.sql_field = SqlField()
        self.sql = self.sql_field.edit
        self.rules_field = RulesField(can_try)
        self.rules = self.rules_field.edit
        self.try_button = self.rules_field.try_button
        self.try_info = self.rules_field.try_info
        self.preview_button = self.sql_field.preview_button
        self.preview_info = self.sql_field.preview_info
        self.preview_model = self.sql_field.preview_model
        self.preview_table = self.sql_field.preview_table

    def _fill(self, metric: MetricConfig) -> None:
        """The fields as the metric has them."""
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
        self.rules.setPlainText(rules_text(self.project.path, metric.name))

    def _lay_out(self) -> QDialogButtonBox:
        """The fields in a form over the SQL and the rules (the two in a splitter); the
        dialog's buttons, to connect."""
        form = QFormLayout()
        self.field_row(form, "Name", "name", self.name)
        self.field_row(form, "Source", "source", self.source)
        self.field_row(form, "Grain", "grain", self.grain)
        self.field_row(form, "Lookback", "lookback", self.lookback)
        self.field_row(form, "Schedule", "schedule", self._row(self.schedule_kind, (self.schedule, 1)))
        self.errors["every"] = self.errors["schedule"]
        form.addRow("", self.schedule_preview)
        self.field_row(form, "Time zone", "timezone", self.timezone)
        form.addRow("", self._row(self.complete_only, self.allow_empty, None))
        self.errors["sql"] = self.sql_field.error
        self.errors["checks"] = self.rules_field.error
        self.errors["alerts"] = self.errors["checks"]

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.sql_field)
        splitter.addWidget(self.rules_field)
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
        return buttons

    @staticmethod
    def _row(*parts: QWidget | tuple[QWidget, int] | None) -> QWidget:
        """The widgets side by side (a tuple gives one its stretch; None is a stretch)."""
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        for part in parts:
            if part is None:
                layout.addStretch(1)
            elif isinstance(part, tuple):
                layout.addWidget(*part)
            else:
                layout.addWidget(part)
        return row

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

    def _schedule_changed(self) -> None:
        kind = self.schedule_kind.currentText()
        self.schedule.setEnabled(kind != "manual only")
        self.schedule.setPlaceholderText({"cron": "0 6 * * *", "every": "15m"}.get(kind, ""))
        self.schedule_preview.setText(self.describe_schedule())

    def describe_schedule(self) -> str:
        """The schedule in plain words with its next three fire times, or why it is wrong."""
        return describe_schedule(
            self.schedule_kind.currentText(), self.schedule.text(), self.timezone.currentText()
        )

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
        return self.rules_field.rules()

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
            self.sql_field.show_failure(f"cannot preview until {where} is fixed: {reason}")
            return
        project, metric = found
        self.sql_field.show_running()
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

        self.rules_field.show_running()
        self.bridge.submit(f"try-rules-{id(self)}", work, self._rules_tried, self._rules_failed)

    def _rules_tried(self, trials: list[dict[str, Any]]) -> None:
        self.rules_field.show_trials(trials)

    def _rules_failed(self, message: str) -> None:
        self.rules_field.show_failure(message)

    def _previewed(self, result: Preview) -> None:
        self._preview_error_shown = False
        self.sql_field.show_result(result)

    def _preview_failed(self, message: str) -> None:
        self.preview_button.setEnabled(True)
        self._preview_error_shown = True
        source = self.project.sources.get(self.source.currentText())
        if source is None or not source.pushdown:  # pushed-down SQL runs as written
            message = lines_as_written(message, self.values()["sql"])
        self.sql_field.show_failure(message)

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
