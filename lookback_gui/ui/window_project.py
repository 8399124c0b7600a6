"""The main window's File and Edit menus: creating, choosing, saving a project and the recent
ones; a fresh demo; and the editors of its sources and metrics."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lookback_gui.core.errors import LookbackError
from lookback_gui.core.project import ProjectDocument, write_atomically
from lookback_gui.ui.dialogs import open_file_name, save_file_name
from lookback_gui.ui.editors import MetricEditor, SourceEditor
from lookback_gui.ui.slots import weakly
from lookback_gui.ui.window_actions import make_action

if TYPE_CHECKING:
    from lookback_gui.ui.main_window import MainWindow


class ProjectController:
    """The project's files and definitions, edited from the window."""

    def __init__(self, window: MainWindow):
        self.window = window

    # -- project files --------------------------------------------------------------------

    def new_project(self) -> None:
        window = self.window
        path = save_file_name(
            window, "New project", str(self.dialog_folder() / "lookback.toml"), "Lookback project (*.toml)"
        )
        if not path:
            return
        target = Path(path)
        if target.exists():
            window.show_error("Cannot create the project", f"{target} already exists; open it instead")
            return
        try:
            write_atomically(target, '# Lookback GUI project\n\n[store]\npath = "lookback.duckdb"\n')
        except OSError as exc:
            window.show_error("Cannot create the project", f"{target}: {exc.strerror}")
            return
        window.open_project(target)

    def dialog_folder(self) -> Path:
        """Where the file dialogs start: the open project's folder, else the last one's."""
        if self.window.project is not None:
            return self.window.project.directory
        last = self.window.settings.value("project/last")
        if last and Path(str(last)).parent.exists():
            return Path(str(last)).parent
        return Path.home()

    def project_folder(self) -> Path:
        """Where the chart's exports go: the open project's folder, else the working one."""
        return self.window.project.directory if self.window.project else Path.cwd()

    def choose_project(self) -> None:
        path = open_file_name(
            self.window, "Open project", str(self.dialog_folder()), "Lookback project (*.toml)"
        )
        if path:
            self.window.open_project(path)

    def open_fresh_demo(self) -> None:
        from lookback_gui.core.demo import fresh_demo

        window = self.window
        window._detach()
        window.statusBar().showMessage("preparing a fresh demo project (six weeks of pulls)…")
        window.bridge.submit(
            "demo",
            lambda: str(fresh_demo()),
            window.open_project,
            lambda message: window.show_error("Cannot create the demo", message),
            owner=window,
        )

    def save_project(self) -> None:
        window = self.window
        if window.project is None:
            return
        try:
            ProjectDocument(window.project.path).save()
        except LookbackError as exc:
            window.show_error("Cannot save the project", str(exc))
            return
        window.statusBar().showMessage(f"saved {window.project.path}", 4000)

    # -- recent projects ------------------------------------------------------------------

    def update_recent_menu(self) -> None:
        menu = self.window.recent_menu
        menu.clear()
        recent = [p for p in self.recent() if Path(p).exists()]
        for path in recent:
            menu.addAction(make_action(self.window, path, weakly(self.window.open_project, path)))
        menu.setEnabled(bool(recent))

    def recent(self) -> list[str]:
        value = self.window.settings.value("project/recent", [])
        return [str(v) for v in (value if isinstance(value, list) else [value] if value else [])]

    def remember(self, path: Path) -> None:
        recent = [str(path)] + [p for p in self.recent() if p != str(path)]
        self.window.settings.setValue("project/recent", recent[:10])
        self.window.settings.setValue("project/last", str(path))
        self.update_recent_menu()

    # -- editors --------------------------------------------------------------------------

    def new_source(self) -> None:
        window = self.window
        if window.project is None:
            return
        if SourceEditor(window.project, window.bridge, None, window).exec():
            window.reload_project()

    def edit_source(self, name: str) -> None:
        window = self.window
        if window.project is None or name not in window.project.sources:
            return
        if SourceEditor(window.project, window.bridge, window.project.sources[name], window).exec():
            window.reload_project()

    def new_metric(self) -> None:
        window = self.window
        if window.project is None:
            return
        if not window.project.sources:
            window.show_error("No source yet", "Create a source first (Edit → New source).")
            return
        editor = MetricEditor(window.project, window.bridge, None, window)
        if editor.exec():
            window.reload_project()
            window.select_metric(editor.name.text().strip())

    def edit_metric(self) -> None:
        window = self.window
        metric = window.selected_metric()
        if window.project is None or metric is None:
            return
        editor = MetricEditor(window.project, window.bridge, metric, window, store=window.store)
        if editor.exec():
            window.reload_project()
            window.select_metric(editor.name.text().strip())

    def edit_selected(self) -> None:
        selected = self.window.tree.selected_item()
        if selected is not None:
            self.edit_item(*selected)

    def edit_item(self, kind: str, name: str) -> None:
        if kind == "source":
            self.edit_source(name)
        elif kind == "metric":
            self.edit_metric()
