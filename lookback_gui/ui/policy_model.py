"""The Advisor's table of pull policies tried on the stored history, one per row, the recommended
one in bold."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont

Index = QModelIndex | QPersistentModelIndex


def pct(share: float | None) -> str:
    """A share as a percentage, always with two decimals (99.99 % beside 99.60 %)."""
    return "–" if share is None else f"{share * 100:.2f} %"


class PolicyModel(QAbstractTableModel):
    """The candidate policies of an Advice, one per row; the recommended one in bold.

    Attributes:
        recommended: the ``policy`` text of the recommended policy.
    """

    HEADERS = (
        "Policy",
        "Revised magnitude caught",
        "Revisions caught",
        "Caught by the lookback",
        "Pulls",
        "Rows read",
        "Largest error by age (0, 1, 2, …)",
    )
    RIGHT = frozenset({1, 2, 3, 4, 5})

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []
        self.recommended: str | None = None

    def set_candidates(self, rows: list[dict[str, Any]], recommended: str | None) -> None:
        self.beginResetModel()
        self.rows, self.recommended = list(rows), recommended
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(self.HEADERS)
        ):
            return self.HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        row, column = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            horizontal = Qt.AlignmentFlag.AlignRight if column in self.RIGHT else Qt.AlignmentFlag.AlignLeft
            return int(horizontal | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and row["policy"] == self.recommended:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            notes = []
            if row["policy"] == self.recommended:
                notes.append("the recommended policy")
            if row.get("current"):
                notes.append("the metric's current policy")
            return "; ".join(notes) or None
        return None

    @staticmethod
    def _text(row: dict[str, Any], column: int) -> str:
        if column == 0:
            return row["policy"] + (" (current)" if row.get("current") else "")
        if column == 1:
            return pct(row["magnitude_share"])
        if column == 2:
            return pct(row["revisions_share"])
        if column == 3:
            return pct(row["lookback_magnitude_share"])
        if column == 6:
            parts = []
            for entry in row["max_error_by_age"]:
                value = entry["max_error_pct"]
                parts.append("–" if value is None else f"{value:.3g} %")
                if value == 0 or len(parts) == 8:
                    break
            return ", ".join(parts)
        if column == 4:
            return f"{row['pulls']:,}"
        rows = row["rows_read"] if row["rows_read"] is not None else row["buckets_read"]
        return f"{rows:,}"
