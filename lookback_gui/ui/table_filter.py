"""Filtering a table by a query of several words, typed into a box that never makes typing lag.

A query is words that must all match a row (case-insensitive): ``revenue`` matches a row with
"revenue" in any column; ``measure=revenue`` (or ``measure:revenue``) only in the column whose
header starts with "measure"; ``-failed`` keeps the rows with "failed" in no column; quotes keep
words together (``"new york"``). A word like ``country=GB`` whose name is no column matches as
written, so the series "country=GB" is found. The box applies a query once typing pauses.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt, QTimer
from PySide6.QtWidgets import QLineEdit, QWidget

# how long typing must pause before the table filters again
PAUSE_MS = 180


@dataclass(frozen=True)
class Term:
    text: str
    column: str | None = None
    negated: bool = False


def parse_query(query: str) -> list[Term]:
    """The terms of a query; an unbalanced quote is taken literally."""
    try:
        words = shlex.split(query)
    except ValueError:
        words = query.split()
    terms = []
    for word in words:
        negated = word.startswith("-") and len(word) > 1
        if negated:
            word = word[1:]
        match = re.fullmatch(r"([^\s=:]+)[=:](.+)", word)
        if match:
            terms.append(Term(match.group(2).casefold(), match.group(1).casefold(), negated))
        else:
            terms.append(Term(word.casefold(), None, negated))
    return terms


class QueryFilter(QSortFilterProxyModel):
    """Keeps the rows that match every term of a query (see the module's docstring)."""

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self._terms: list[Term] = []

    @property
    def query_terms(self) -> list[Term]:
        return list(self._terms)

    def set_query(self, query: str) -> None:
        terms = parse_query(query)
        if terms == self._terms:
            return
        self._change_filter(lambda: setattr(self, "_terms", terms))

    def _change_filter(self, change: Any) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.10 and newer
            self.beginFilterChange()
            change()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            change()
            self.invalidateFilter()

    def _columns(self) -> dict[str, int]:
        model = self.sourceModel()
        names = {}
        for column in range(model.columnCount()):
            header = model.headerData(column, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole)
            if header is not None:
                names[str(header).casefold()] = column
        return names

    def _column_of(self, name: str, columns: dict[str, int]) -> int | None:
        if name in columns:
            return columns[name]
        starting = [column for header, column in columns.items() if header.startswith(name)]
        return starting[0] if len(starting) == 1 else None

    def filterAcceptsRow(self, row: int, parent: Any) -> bool:
        if not self._terms:
            return True
        model = self.sourceModel()
        texts = []
        for column in range(model.columnCount()):
            value = model.data(model.index(row, column, parent), Qt.ItemDataRole.DisplayRole)
            texts.append("" if value is None else str(value).casefold())
        columns = self._columns()
        for term in self._terms:
            index = self._column_of(term.column, columns) if term.column else None
            if index is not None:
                found = term.text in texts[index]
            else:
                whole = f"{term.column}={term.text}" if term.column else term.text
                found = any(whole in text for text in texts)
            if found == term.negated:
                return False
        return True


def query_box(proxy: QueryFilter, name: str, placeholder: str, parent: QWidget | None = None) -> QLineEdit:
    """A search box that filters ``proxy`` once typing pauses (Enter applies at once)."""
    box = QLineEdit(parent, accessibleName=name)
    box.setPlaceholderText(placeholder)
    box.setClearButtonEnabled(True)
    box.setToolTip(
        'Words that must all match: revenue · measure=revenue · country=GB · -failed · "two words"'
    )
    pause = QTimer(box, singleShot=True, interval=PAUSE_MS)
    pause.timeout.connect(lambda: proxy.set_query(box.text()))
    box.textChanged.connect(lambda _: pause.start())

    def apply_now() -> None:
        pause.stop()
        proxy.set_query(box.text())

    box.returnPressed.connect(apply_now)
    return box
