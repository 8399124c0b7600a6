"""Table views as the app shows them: sortable, one row selected at a time, compact rows."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QHeaderView, QTableView


def table_view(model: Any, name: str) -> QTableView:
    """A read-only table over ``model``, named ``name`` for screen readers."""
    view = QTableView(accessibleName=name)
    view.setModel(model)
    view.setSortingEnabled(True)
    view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QTableView.SelectionMode.SingleSelection)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 8)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    view.horizontalHeader().setStretchLastSection(True)
    return view
