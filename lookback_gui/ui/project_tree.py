"""The project tree: the sources and metrics of the open project, each metric with the state
of its newest run."""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

from lookback_gui.core.project import Project
from lookback_gui.core.store import RunRecord
from lookback_gui.ui.models import wrapped_tip

SYMBOLS = {"succeeded": "✓", "failed": "✗", "running": "…", "cancelled": "–", "interrupted": "!"}


class ProjectTree(QTreeWidget):
    """Sources and metrics; the selection picks the metric the other views show.

    Signals:
        selection_changed(): another item was selected.
        edit_requested(str, str): ("source" | "metric", name) was double-clicked.
    """

    selection_changed = Signal()
    edit_requested = Signal(str, str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAccessibleName("Sources and metrics")
        self.setHeaderLabels(["Project", "Last run"])
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setMinimumWidth(220)
        self.project: Project | None = None
        self.itemSelectionChanged.connect(self.selection_changed)
        self.itemDoubleClicked.connect(self._double_clicked)

    def set_project(self, project: Project | None) -> None:
        """Show ``project`` (None: nothing), keeping the selected metric if it is still there."""
        selected = self.selected_metric_name()
        self.blockSignals(True)
        self.clear()
        self.project = project
        if project is not None:
            sources = QTreeWidgetItem(self, ["Sources", ""])
            for source in project.sources.values():
                item = QTreeWidgetItem(sources, [source.name, source.type])
                item.setData(0, Qt.ItemDataRole.UserRole, ("source", source.name))
                item.setToolTip(0, source.path or source.dsn or "")
            metrics = QTreeWidgetItem(self, ["Metrics", ""])
            for metric in project.metrics.values():
                item = QTreeWidgetItem(metrics, [metric.name, ""])
                item.setData(0, Qt.ItemDataRole.UserRole, ("metric", metric.name))
                item.setToolTip(
                    0,
                    wrapped_tip(metric.description or f"{metric.grain.value}, lookback {metric.lookback}")
                    or "",
                )
                if metric.name == selected:
                    item.setSelected(True)
            self.expandAll()
            if not self.selectedItems() and metrics.childCount():
                metrics.child(0).setSelected(True)
        self.blockSignals(False)
        self.selection_changed.emit()

    def selected_item(self) -> tuple[str, str] | None:
        for item in self.selectedItems():
            data = item.data(0, Qt.ItemDataRole.UserRole)
            if data:
                return str(data[0]), str(data[1])
        return None

    def selected_metric_name(self) -> str | None:
        selected = self.selected_item()
        return selected[1] if selected and selected[0] == "metric" else None

    def select_metric(self, name: str) -> None:
        for item in self.metric_items():
            item.setSelected(item.data(0, Qt.ItemDataRole.UserRole)[1] == name)

    def metric_items(self) -> list[QTreeWidgetItem]:
        out: list[QTreeWidgetItem] = []
        for top in range(self.topLevelItemCount()):
            parent = self.topLevelItem(top)
            for index in range(parent.childCount()):
                child = parent.child(index)
                data = child.data(0, Qt.ItemDataRole.UserRole)
                if child is not None and data and data[0] == "metric":
                    out.append(child)
        return out

    def show_status(self, latest: Mapping[str, RunRecord], running: set[str]) -> None:
        """Each metric's newest run (or that it is being pulled now)."""
        for item in self.metric_items():
            name = item.data(0, Qt.ItemDataRole.UserRole)[1]
            metric = self.project.metrics.get(name) if self.project else None
            run = latest.get(name)
            status = "running" if name in running else (run.status if run else "never run")
            schedule = "scheduled" if metric and metric.scheduled else "manual only"
            item.setText(1, f"{SYMBOLS.get(status, '·')} {status}")
            tip = f"{status}; {schedule}"
            if run and run.error:
                tip += f"\n{run.error}"
            item.setToolTip(1, wrapped_tip(tip) or "")

    def _double_clicked(self, item: QTreeWidgetItem) -> None:
        data = item.data(0, Qt.ItemDataRole.UserRole)
        if data:
            self.edit_requested.emit(str(data[0]), str(data[1]))
