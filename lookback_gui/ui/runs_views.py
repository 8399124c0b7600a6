"""The runs views: the runs of the selected metric, the runs log of all of them, and the
detail pane of one run. All three show the one RunsModel the window keeps up to date.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from lookback_gui.core.store import LogLine, RunRecord, Store
from lookback_gui.core.timing.moments import local
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.models import RecordTableModel, RunsModel, fmt_number, fmt_time
from lookback_gui.ui.table_filter import QueryFilter, query_box
from lookback_gui.ui.tables import table_view

COLUMN_WIDTHS = ((0, 60), (1, 130), (2, 100), (3, 90), (4, 150), (5, 270))


class RunsFilter(QueryFilter):
    """Filters runs by metric, status, trigger and a query; sorts by each column's value."""

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self.metric: str | None = None
        self.status: str | None = None
        self.trigger: str | None = None
        self.setSortRole(RecordTableModel.SORT_ROLE)

    def set_fields(
        self, metric: str | None = None, status: str | None = None, trigger: str | None = None
    ) -> None:
        def change() -> None:
            self.metric, self.status, self.trigger = metric, status, trigger

        self._change_filter(change)

    def filterAcceptsRow(self, row: int, parent: Any) -> bool:
        model = self.sourceModel()
        if not isinstance(model, RunsModel) or row >= model.rowCount():
            return False
        run = model.record(row)
        if self.metric and run.metric != self.metric:
            return False
        if self.status and run.status != self.status:
            return False
        if self.trigger and run.trigger != self.trigger:
            return False
        return super().filterAcceptsRow(row, parent)


class RunDetail(QTextBrowser):
    """The detail pane of one run, loaded off the GUI thread."""

    def __init__(self, bridge: Bridge, name: str, parent: QWidget | None = None):
        super().__init__(parent, accessibleName=name)
        self._bridge = bridge
        self.run_id: int | None = None

    def show_run(self, store: Store | None, run: RunRecord | None) -> None:
        if store is None or run is None:
            self.forget()
            return
        self.run_id = run.id
        self._bridge.submit(
            f"detail-{id(self)}",
            lambda: (store.run(run.id), store.run_log(run.id)),
            lambda found: self.setHtml(run_detail_html(*found)),
            owner=self,
        )

    def forget(self) -> None:
        """Show nothing (and drop a load still on its way)."""
        self.run_id = None
        self._bridge.submit(f"detail-{id(self)}", lambda: None, lambda _: self.clear(), owner=self)


class RunsPane(QWidget):
    """A table of runs over a filter, with the detail of the selected run below it.

    Signals:
        selected(object): the RunRecord selected, or None.
    """

    selected = Signal(object)

    def __init__(
        self, model: RunsModel, bridge: Bridge, name: str, detail_name: str, parent: QWidget | None = None
    ):
        super().__init__(parent)
        self.model = model
        self.filter = RunsFilter(self)
        self.filter.setSourceModel(model)
        self.view: QTableView = table_view(self.filter, name)
        self.view.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        for column, width in COLUMN_WIDTHS:
            self.view.setColumnWidth(column, width)
        # the counts and the duration fit their widest value (Rows of a big pull included)
        model.modelReset.connect(self._fit_counts)
        model.rowsInserted.connect(self._fit_counts)
        self.detail = RunDetail(bridge, detail_name)
        self.store: Store | None = None
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(self.view)
        self.split.addWidget(self.detail)
        self.split.setSizes([420, 280])
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.layout_.addWidget(self.split, 1)
        self.view.selectionModel().currentRowChanged.connect(self._show)

    def set_store(self, store: Store | None) -> None:
        """A new session: the old run shown is no longer there."""
        self.store = store
        self.view.clearSelection()
        self.view.setCurrentIndex(self.filter.index(-1, -1))
        self.detail.forget()

    def current_run(self) -> RunRecord | None:
        index = self.view.currentIndex()
        if not index.isValid() or not self.view.isVisible():
            return None
        run: RunRecord = self.model.record(self.filter.mapToSource(index).row())
        return run

    def _fit_counts(self, *_: Any) -> None:
        for column in range(len(COLUMN_WIDTHS), self.model.columnCount() - 1):
            self.view.resizeColumnToContents(column)

    def _show(self, index: Any) -> None:
        run = self.model.record(self.filter.mapToSource(index).row()) if index.isValid() else None
        self.detail.show_run(self.store, run)
        self.selected.emit(run)


class RunsLog(RunsPane):
    """Every metric's runs, with a search box and status and trigger filters."""

    def __init__(self, model: RunsModel, bridge: Bridge, parent: QWidget | None = None):
        super().__init__(model, bridge, "Runs log", "Run detail", parent)
        self.find_box = query_box(
            self.filter, "Find in runs", "Find runs: words, or column=value (status=failed)  Ctrl+F"
        )
        self.status_filter = QComboBox(accessibleName="Filter by status")
        self.status_filter.addItems(
            ["any status", "running", "succeeded", "failed", "cancelled", "interrupted"]
        )
        self.trigger_filter = QComboBox(accessibleName="Filter by trigger")
        self.trigger_filter.addItems(
            [
                "any trigger",
                "schedule",
                "manual",
                "catch-up",
                "backfill",
                "replay",
                "command-line",
                "retry",
                "audit",
            ]
        )
        self.status_filter.currentTextChanged.connect(self._filters_changed)
        self.trigger_filter.currentTextChanged.connect(self._filters_changed)
        bar = QHBoxLayout()
        bar.addWidget(self.find_box, 1)
        bar.addWidget(self.status_filter)
        bar.addWidget(self.trigger_filter)
        self.layout_.setContentsMargins(9, 9, 9, 9)
        self.layout_.insertLayout(0, bar)

    def focus_find(self) -> None:
        self.find_box.setFocus()
        self.find_box.selectAll()

    def _filters_changed(self) -> None:
        status = self.status_filter.currentText()
        trigger = self.trigger_filter.currentText()
        self.filter.set_fields(
            status=None if status.startswith("any") else status,
            trigger=None if trigger.startswith("any") else trigger,
        )


def _plural(count: int, word: str) -> str:
    return f"{fmt_number(count)} {word}{'' if count == 1 else 's'}"


def run_detail_html(run: RunRecord, log: list[LogLine]) -> str:
    """The detail pane of one run: counts, window, parameters, checks, the log and the SQL.

    The result has rows; the counts are of values (series × measure × bucket), so they are
    said apart."""
    esc = html.escape
    values = (
        None
        if run.new is None
        else (
            f"{fmt_number(run.new)} new, {fmt_number(run.revised)} revised, "
            f"{fmt_number(run.removed)} removed, {fmt_number(run.unchanged)} unchanged"
        )
    )
    rows = [
        ("Status", run.status),
        ("Trigger", run.trigger),
        ("Window", f"[{fmt_time(run.window_start)}, {fmt_time(run.window_end)})"),
        ("As of", fmt_time(local(run.as_of, run.timezone))),
        ("Started", fmt_time(local(run.started_at, run.timezone))),
        ("Finished", fmt_time(local(run.finished_at, run.timezone))),
        ("Attempts", str(run.attempts)),
        ("Result", "" if run.rows is None else _plural(run.rows, "row")),
        ("Values", values or ""),
    ]
    out = [f"<h3>Run {run.id} — {esc(run.metric)}</h3><table>"]
    out += [f"<tr><td><b>{esc(k)}</b></td><td>{esc(v)}</td></tr>" for k, v in rows]
    out.append("</table>")
    if values:
        out.append("<p style='color:gray'>a value is one (series, measure, bucket) of the window</p>")
    if run.error:
        out.append(f"<p style='color:#c62828'><b>Error:</b> {esc(run.error)}</p>")
    if run.checks:
        out.append("<h4>Checks</h4><ul>")
        for check in run.checks:
            mark = "✓" if check.get("ok") else ("✗" if check.get("severity") == "error" else "⚠")
            out.append(
                f"<li>{mark} {esc(str(check.get('name')))} ({esc(str(check.get('severity')))})"
                f"{'' if check.get('ok') else ': ' + esc(str(check.get('message')))}</li>"
            )
        out.append("</ul>")
    out.append("<h4>Log</h4><pre>")
    for line in log:
        out.append(esc(f"{line.at:%H:%M:%S} {line.level:<7} {line.message}") + "\n")
    out.append("</pre><h4>Parameters</h4><pre>")
    for key, value in run.params.items():
        out.append(esc(f"${key} = TIMESTAMP '{value}'") + "\n")
    out.append(f"</pre><h4>SQL</h4><pre>{esc(run.sql or '')}</pre>")
    return "".join(out)
