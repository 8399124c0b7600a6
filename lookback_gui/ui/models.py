"""Table models over core data: runs, revisions, health, alerts and query previews.

Every model is a QAbstractTableModel over immutable core records; views filter and sort them
through a QSortFilterProxyModel. The models never query the store themselves: the window loads
data off the GUI thread and hands the records in.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from lookback_gui.core.numbers import fmt_number
from lookback_gui.core.store import AlertState, RevisionRow, RunRecord
from lookback_gui.core.timing.moments import iso, local

Index = QModelIndex | QPersistentModelIndex

STATUS_COLOURS = {
    "succeeded": QColor("#2e7d32"),
    "failed": QColor("#c62828"),
    "running": QColor("#1565c0"),
    "cancelled": QColor("#8d6e63"),
    "interrupted": QColor("#ef6c00"),
    "firing": QColor("#c62828"),
    "resolved": QColor("#2e7d32"),
}


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.isoformat(sep=" ", timespec="minutes" if not value.second else "seconds")


def wrapped_tip(text: str | None) -> str | None:
    """``text`` as a tooltip that Qt wraps to the screen instead of running off it (Qt wraps
    only rich text)."""
    if not text:
        return None
    body = html.escape(text).replace("\n", "<br>")
    if len(text) > 70:  # Qt wraps rich text narrowly; a long text gets a wider column
        return f"<qt><table width='440'><tr><td>{body}</td></tr></table></qt>"
    return f"<qt>{body}</qt>"


def fmt_duration_h(lag: timedelta) -> str:
    """How long after a bucket closed: hours up to two days, then days."""
    hours = lag.total_seconds() / 3600
    return "still open" if hours < 0 else f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def fmt_pct(pct: float) -> str:
    """A signed percentage with the digits that keep a change from reading as 0.0 %."""
    size = abs(pct)
    sign = "+" if pct > 0 else "-" if pct < 0 else ""
    if size >= 0.1 or size == 0:
        return f"{pct:+.1f}%" if pct else "0%"
    if size >= 0.001:
        return f"{sign}{size:.1g}%"
    return f"{sign}<0.001%"


def fmt_series(dims: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in dims.items()) or "(all)"


@dataclass(frozen=True)
class Column:
    """One column: its header, how to show a record, and how to sort it."""

    header: str
    display: Callable[[Any], str]
    sort: Callable[[Any], Any] | None = None
    numeric: bool = False


class RecordTableModel(QAbstractTableModel):
    """A read-only table of records with declared columns."""

    COLUMNS: Sequence[Column] = ()
    SORT_ROLE = Qt.ItemDataRole.UserRole

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self._rows: list[Any] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def record(self, row: int) -> Any:
        return self._rows[row]

    def records(self) -> list[Any]:
        return list(self._rows)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(self.COLUMNS)
        ):
            return self.COLUMNS[section].header
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._rows)):
            return None
        record = self._rows[index.row()]
        column = self.COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.display(record)
        if role == self.SORT_ROLE:
            value = column.sort(record) if column.sort else column.display(record)
            return "" if value is None else value
        if role == Qt.ItemDataRole.TextAlignmentRole and column.numeric:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self.foreground(record, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(record, column)
        return None

    def foreground(self, record: Any, column: Column) -> QBrush | None:
        return None

    def tooltip(self, record: Any, column: Column) -> str | None:
        return None

    def set_records(self, records: Sequence[Any]) -> None:
        self.beginResetModel()
        self._rows = list(records)
        self.endResetModel()


class RunsModel(RecordTableModel):
    """Runs, newest first; new runs are inserted at the top, changed ones updated in place,
    and older ones fetched a page at a time as the view scrolls down.

    Signals:
        wants_older(int): the view scrolled to the end; load the runs older than this id.
    """

    wants_older = Signal(int)

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self.more_available = False
        self._asked: int | None = None

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008
        return (
            not parent.isValid()
            and self.more_available
            and bool(self._rows)
            and self._asked != self._rows[-1].id
        )

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: B008
        if self.canFetchMore(parent):
            self._asked = self._rows[-1].id
            self.wants_older.emit(self._rows[-1].id)

    def append_older(self, runs: Sequence[RunRecord], more: bool) -> None:
        """Add a page of older runs at the end."""
        known = {r.id for r in self._rows}
        fresh = [r for r in runs if r.id not in known and (not self._rows or r.id < self._rows[-1].id)]
        self.more_available = more
        if fresh:
            self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows) + len(fresh) - 1)
            self._rows.extend(fresh)
            self.endInsertRows()

    COLUMNS = (
        Column("Run", lambda r: str(r.id), lambda r: r.id, True),
        Column("Metric", lambda r: r.metric),
        Column("Trigger", lambda r: r.trigger),
        Column("Status", lambda r: r.status),
        # a moment, in this computer's zone (the window: buckets in the metric's)
        Column(
            "As of", lambda r: fmt_time(local(r.as_of, r.timezone)), lambda r: iso(r.as_of, r.timezone) or ""
        ),
        Column(
            "Window",
            lambda r: f"{fmt_time(r.window_start)} → {fmt_time(r.window_end)}",
            lambda r: r.window_start.isoformat() if r.window_start else "",
        ),
        Column("Attempts", lambda r: str(r.attempts), lambda r: r.attempts, True),
        Column("Rows", lambda r: "" if r.rows is None else str(r.rows), lambda r: r.rows or 0, True),
        Column("New", lambda r: "" if r.new is None else str(r.new), lambda r: r.new or 0, True),
        Column(
            "Revised", lambda r: "" if r.revised is None else str(r.revised), lambda r: r.revised or 0, True
        ),
        Column(
            "Removed", lambda r: "" if r.removed is None else str(r.removed), lambda r: r.removed or 0, True
        ),
        Column(
            "Duration",
            lambda r: "" if r.duration_s is None else f"{r.duration_s:.2f} s",
            lambda r: r.duration_s or 0.0,
            True,
        ),
        Column("Error", lambda r: (r.error or "").splitlines()[0][:120] if r.error else ""),
    )

    def foreground(self, record: RunRecord, column: Column) -> QBrush | None:
        if column.header == "Status":
            return QBrush(STATUS_COLOURS.get(record.status, QColor("black")))
        if column.header == "Revised" and record.revised:
            return QBrush(QColor("#ef6c00"))
        return None

    def tooltip(self, record: RunRecord, column: Column) -> str | None:
        return wrapped_tip(record.error) if column.header in ("Error", "Status") else None

    def update(self, runs: Sequence[RunRecord]) -> None:
        """Merge a newest-first page: insert new runs at the top, refresh changed rows."""
        if not self._rows:
            self.set_records(runs)
            return
        known = {r.id: i for i, r in enumerate(self._rows)}
        newest = self._rows[0].id
        fresh = [r for r in runs if r.id > newest]
        if any(r.id not in known for r in runs if r.id <= newest and r.id >= self._rows[-1].id):
            self.set_records(runs)
            return
        if fresh:
            self.beginInsertRows(QModelIndex(), 0, len(fresh) - 1)
            self._rows[0:0] = fresh
            self.endInsertRows()
        for run in runs:
            row = known.get(run.id)
            if row is None:
                continue
            row += len(fresh)
            if self._rows[row] != run:
                self._rows[row] = run
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))


def _change(r: RevisionRow) -> str:
    if r.new_value is None:
        return "removed"
    if r.old_value is None:
        return "reappeared"
    pct = f" ({fmt_pct(r.change_pct)})" if r.change_pct is not None else ""
    return f"{fmt_number(r.delta, signed=True)}{pct}"


def _change_pct(r: RevisionRow) -> float:
    return float("inf") if r.change_pct is None else r.change_pct


@dataclass(frozen=True)
class RevisionView:
    """A revision with what the table shows beside it."""

    revision: RevisionRow
    lag: str
    lag_s: float


class RevisionsModel(RecordTableModel):
    COLUMNS = (
        Column("Bucket", lambda v: fmt_time(v.revision.bucket), lambda v: v.revision.bucket.isoformat()),
        Column("Series", lambda v: fmt_series(dict(v.revision.dims))),
        Column("Measure", lambda v: v.revision.measure),
        Column(
            "Old → new", lambda v: f"{fmt_number(v.revision.old_value)} → {fmt_number(v.revision.new_value)}"
        ),
        Column("Change", lambda v: _change(v.revision), lambda v: _change_pct(v.revision), True),
        Column("Run", lambda v: str(v.revision.run), lambda v: v.revision.run, True),
        Column("Lag after close", lambda v: v.lag, lambda v: v.lag_s, True),
    )

    def foreground(self, record: RevisionView, column: Column) -> QBrush | None:
        if column.header == "Change":
            if record.revision.new_value is None:
                return QBrush(QColor("#c62828"))
            return QBrush(QColor("#ef6c00"))
        return None


@dataclass(frozen=True)
class HealthRow:
    metric: str
    last_success: datetime | None
    freshness: str
    next_run: str
    last_duration: float | None
    failure_rate: float | None
    firing: int
    status: str


class HealthModel(RecordTableModel):
    COLUMNS = (
        Column("Metric", lambda h: h.metric),
        Column("Last run", lambda h: h.status),
        Column(
            "Last success",
            lambda h: fmt_time(h.last_success),
            lambda h: h.last_success.isoformat() if h.last_success else "",
        ),
        Column("Freshness", lambda h: h.freshness),
        Column("Next run", lambda h: h.next_run),
        Column(
            "Last duration",
            lambda h: "" if h.last_duration is None else f"{h.last_duration:.2f} s",
            lambda h: h.last_duration or 0.0,
            True,
        ),
        Column(
            "Failure rate",
            lambda h: "" if h.failure_rate is None else f"{h.failure_rate:.0f}%",
            lambda h: h.failure_rate or 0.0,
            True,
        ),
        Column("Firing alerts", lambda h: str(h.firing) if h.firing else "", lambda h: h.firing, True),
    )

    def foreground(self, record: HealthRow, column: Column) -> QBrush | None:
        if column.header == "Last run":
            return QBrush(STATUS_COLOURS.get(record.status, QColor("gray")))
        if column.header == "Firing alerts" and record.firing:
            return QBrush(STATUS_COLOURS["firing"])
        return None


class AlertsModel(RecordTableModel):
    COLUMNS = (
        Column("Metric", lambda a: a.metric),
        Column("Rule", lambda a: a.rule),
        Column("Kind", lambda a: a.kind),
        Column("State", lambda a: a.state),
        Column("Since", lambda a: fmt_time(a.since), lambda a: a.since.isoformat()),
        Column("Message", lambda a: a.message),
    )

    def foreground(self, record: AlertState, column: Column) -> QBrush | None:
        if column.header == "State":
            return QBrush(STATUS_COLOURS.get(record.state, QColor("black")))
        return None

    def tooltip(self, record: AlertState, column: Column) -> str | None:
        return wrapped_tip(record.message)


class PreviewModel(QAbstractTableModel):
    """The rows a query preview returned."""

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self._columns: tuple[str, ...] = ()
        self._rows: tuple[tuple[Any, ...], ...] = ()

    def set_result(self, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.beginResetModel()
        self._columns = tuple(columns)
        self._rows = tuple(tuple(r) for r in rows)
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._columns)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self._columns[section] if 0 <= section < len(self._columns) else None
        return str(section + 1)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        if not (0 <= index.row() < len(self._rows) and 0 <= index.column() < len(self._columns)):
            return None
        value = self._rows[index.row()][index.column()]
        if isinstance(value, datetime):
            return fmt_time(value)
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return fmt_number(value)
        return "NULL" if value is None else str(value)
