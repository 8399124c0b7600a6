"""The main window's actions and menus, made from two tables: what each action is called, its
shortcut, status tip and slot (a method of the window or of one of its controllers), and which
actions each menu holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence

from lookback_gui.ui.slots import weakly

if TYPE_CHECKING:
    from lookback_gui.ui.main_window import MainWindow

KEYS = QKeySequence.StandardKey


class Row(NamedTuple):
    """One action: the window's attribute that holds it, its text, and its slot: ``owner`` is
    the window's attribute of the controller that has the method (``""`` for the window), and
    ``arg`` what the method is called with, if anything."""

    name: str
    text: str
    owner: str
    slot: str
    shortcut: Any = None
    tip: str = ""
    arg: str | None = None
    checkable: bool = False


# one row per action, in the order they are made
ACTIONS: tuple[Row, ...] = (
    Row("new_project_action", "&New project…", "projects", "new_project", KEYS.New),
    Row("open_action", "&Open project…", "projects", "choose_project", KEYS.Open),
    Row(
        "fresh_demo_action",
        "Open a fresh &demo",
        "projects",
        "open_fresh_demo",
        None,
        "Write a new demo project with six weeks of pulls and open it",
    ),
    Row(
        "save_action",
        "&Save",
        "projects",
        "save_project",
        KEYS.Save,
        "Write the project file (editors save on OK)",
    ),
    Row(
        "close_project_action",
        "&Close project",
        "",
        "close_project",
        KEYS.Close,
        "Close the open project: its pulls are cancelled, its scheduler stopped",
    ),
    Row("quit_action", "&Quit", "", "quit", KEYS.Quit),
    Row("run_now_action", "&Run now", "pulls", "run_now", "Ctrl+R", "Pull the selected metric now"),
    Row("retry_action", "Re&try run", "pulls", "retry_run", None, "Re-run the selected failed run's window"),
    Row(
        "cancel_action",
        "&Cancel pull",
        "pulls",
        "cancel_pull",
        "Ctrl+.",
        "Cancel the selected metric's running pull",
    ),
    Row("backfill_action", "&Backfill…", "pulls", "backfill", "Ctrl+B"),
    Row("new_metric_action", "New &metric…", "projects", "new_metric", "Ctrl+M"),
    Row("new_source_action", "New &source…", "projects", "new_source", "Ctrl+Shift+N"),
    Row("edit_action", "&Edit…", "projects", "edit_selected", "Ctrl+E"),
    Row("find_action", "&Find runs", "views", "focus_find", KEYS.Find),
    Row("pause_action", "&Pause scheduler", "pulls", "toggle_pause", "Ctrl+P", checkable=True),
    Row(
        "tray_action",
        "Keep running in the &tray when closed",
        "views",
        "tray_setting_changed",
        checkable=True,
    ),
    Row(
        "dashboard_action",
        "&Dashboard",
        "views",
        "show_tab",
        "Ctrl+D",
        "the charts of several metrics at once",
        "dashboard",
    ),
    Row(
        "compare_action",
        "&Compare series",
        "views",
        "show_tab",
        "Ctrl+Shift+C",
        "several series of the metric in one chart",
        "compare",
    ),
    Row(
        "log_folder_action",
        "Open &log folder",
        "views",
        "open_log_folder",
        None,
        "Show the folder of the log file, where errors are recorded with their details",
    ),
    Row("about_action", "&About Lookback GUI", "views", "about"),
)

# each menu's actions, in order: "-" is a separator, "recent" the Open recent menu, "theme" the
# Theme menu
MENUS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "&File",
        (
            "new_project_action",
            "open_action",
            "recent",
            "fresh_demo_action",
            "save_action",
            "close_project_action",
            "-",
            "quit_action",
        ),
    ),
    ("&Edit", ("new_source_action", "new_metric_action", "edit_action", "find_action")),
    ("&Metric", ("run_now_action", "retry_action", "cancel_action", "backfill_action")),
    ("&View", ("dashboard_action", "compare_action", "theme", "pause_action", "tray_action")),
    ("&Help", ("log_folder_action", "about_action")),
)

THEMES = ("system", "light", "dark")


def make_action(parent: QObject, text: str, slot: Any, shortcut: Any = None, tip: str = "") -> QAction:
    """An action of ``parent`` that calls ``slot``; its status tip is ``tip``, else its text
    without the mnemonic's '&' and the '…'."""
    action = QAction(text, parent)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.setStatusTip(tip or text.replace("&", "").replace("…", ""))
    action.triggered.connect(slot)
    return action


def build_actions(window: MainWindow) -> None:
    """Make the window's actions (each an attribute of the window, named as in
    :data:`ACTIONS`) and its menu bar."""
    for row in ACTIONS:
        method = getattr(getattr(window, row.owner) if row.owner else window, row.slot)
        slot = method if row.arg is None else weakly(method, row.arg)
        action = make_action(window, row.text, slot, row.shortcut, row.tip)
        action.setCheckable(row.checkable)
        setattr(window, row.name, action)
    for title, names in MENUS:
        menu = window.menuBar().addMenu(title)
        for name in names:
            if name == "-":
                menu.addSeparator()
            elif name == "recent":
                window.recent_menu = menu.addMenu("Open &recent")
            elif name == "theme":
                window.theme_menu = menu.addMenu("&Theme")
                for theme in THEMES:
                    action = make_action(window, theme.title(), weakly(window.views.set_theme, theme))
                    action.setCheckable(True)
                    action.setData(theme)
                    window.theme_menu.addAction(action)
            else:
                menu.addAction(getattr(window, name))
    window.projects.update_recent_menu()
