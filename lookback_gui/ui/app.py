"""``lookback-gui``: start the desktop app. This is the one place that wires the services.

lookback-gui [--project FILE]            open a project (default: the last one)
lookback-gui --demo                      create (once) and open the demo project
lookback-gui --demo --fresh              create a new demo project and open it
lookback-gui --screenshot PATH [--demo | --project FILE]
                                         render the main window offscreen and exit
lookback-gui --install-desktop           install the icon and launcher for this user
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lookback_gui.core.sources import SourceConnections

APP_NAME = "lookback-gui"


def launch_command() -> str:
    """How a desktop launcher starts this app: an absolute path, since the folder of the
    virtual environment it is installed in is rarely on the desktop's PATH."""
    script = Path(sys.executable).parent / "lookback-gui"
    if script.exists():
        return _desktop_quote(str(script.absolute()))
    found = shutil.which("lookback-gui")
    if found:
        return _desktop_quote(str(Path(found).absolute()))
    return f"{_desktop_quote(str(Path(sys.executable).absolute()))} -m lookback_gui.ui.app"


def _desktop_quote(argument: str) -> str:
    """One argument of an Exec line (Desktop Entry Specification, "The Exec key")."""
    if not any(c in argument for c in " \t\n\"'\\><~|&;$*?#()`"):
        return argument
    escaped = argument.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`")
    return '"' + escaped.replace("$", "\\$") + '"'


def install_desktop(home: Path | None = None) -> list[Path]:
    """Install the icon and the .desktop launcher into the user's XDG folders."""
    from lookback_gui.resources import resource

    share = Path(os.environ.get("XDG_DATA_HOME") or (home or Path.home()) / ".local" / "share")
    icon = share / "icons" / "hicolor" / "scalable" / "apps" / "lookback-gui.svg"
    launcher = share / "applications" / "lookback-gui.desktop"
    icon.parent.mkdir(parents=True, exist_ok=True)
    launcher.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(resource("lookback-gui.svg"), icon)
    text = resource("lookback-gui.desktop").read_text(encoding="utf-8")
    launcher.write_text(text.replace("Exec=lookback-gui", f"Exec={launch_command()}"), encoding="utf-8")
    return [icon, launcher]


def start_log() -> Path | None:
    """Keep the log file (errors with their tracebacks from every thread, and a native crash's
    stacks); a log folder that cannot be written is said once, and the app runs without."""
    from lookback_gui.core.applog import enable_logging, log_dir

    try:
        return enable_logging()
    except OSError as exc:
        print(f"warning: no log file: cannot write {log_dir()}: {exc.strerror}", file=sys.stderr)
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lookback-gui", description="Lookback GUI desktop app")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--project", metavar="FILE", help="the project file to open")
    source.add_argument("--demo", action="store_true", help="create (once) and open the demo project")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="with --demo: write a new demo project instead of reopening the old",
    )
    parser.add_argument(
        "--screenshot", metavar="PATH", help="render the main window offscreen on a chart, save it, and exit"
    )
    parser.add_argument(
        "--install-desktop", action="store_true", help="install the icon and .desktop launcher for this user"
    )
    parser.add_argument("file", nargs="?", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from lookback_gui.core.runtime import prefer_the_gui_thread, prepare_process
    from lookback_gui.core.sources import SourceConnections

    args = build_parser().parse_args(argv)
    prepare_process()
    prefer_the_gui_thread()
    start_log()
    # the databases the pulls see their sources through, for as long as the app runs
    with SourceConnections() as connections:
        return _run(args, connections)


def _run(args: argparse.Namespace, connections: SourceConnections) -> int:
    if args.install_desktop:
        for path in install_desktop():
            print(f"installed {path}")
        return 0
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from lookback_gui.ui.system_libraries import xcb_problem

    problem = xcb_problem()
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    import lookback_gui.ui  # noqa: F401  (PySide6 before pyqtgraph)
    from lookback_gui.core.demo import ensure_demo, fresh_demo
    from lookback_gui.ui.demo_progress import DemoProgress
    from lookback_gui.ui.main_window import MainWindow, app_icon

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setApplicationDisplayName("Lookback GUI")
    app.setDesktopFileName(APP_NAME)
    app.setWindowIcon(app_icon())
    app.setQuitOnLastWindowClosed(True)
    settings = QSettings(APP_NAME, APP_NAME)
    window = MainWindow(settings, connections=connections)

    project = args.project or args.file
    make_demo = fresh_demo if args.fresh else ensure_demo
    if args.fresh and not args.demo:
        print("error: --fresh goes with --demo", file=sys.stderr)
        return 2
    if args.demo and args.screenshot:
        try:
            project = str(make_demo())
        except Exception as exc:
            print(f"error: cannot create the demo project: {exc}", file=sys.stderr)
            return 1
    elif args.demo:
        window.show()
        building = DemoProgress(window)

        def built(path: str) -> None:
            building.finish()
            window.open_project(path)

        def failed(message: str) -> None:
            building.finish()
            window.show_error("Cannot create the demo", message)

        window.bridge.submit("demo", lambda: str(make_demo(progress=building.step.emit)), built, failed)
        return app.exec()
    elif project is None:
        last = settings.value("project/last")
        project = str(last) if last and Path(str(last)).exists() else None

    if args.screenshot:
        return _screenshot(app, window, project, Path(args.screenshot))

    window.show()
    if project:
        QTimer.singleShot(0, window, lambda: window.open_project(project))
    else:
        window.statusBar().showMessage(
            "Open a project (Ctrl+O) or create one (Ctrl+N); lookback-gui --demo opens a demo."
        )
    return app.exec()


def _screenshot(app: object, window: object, project: str | None, path: Path) -> int:
    from PySide6.QtCore import QEventLoop, QTimer

    from lookback_gui.ui.main_window import MainWindow

    assert isinstance(window, MainWindow)
    if project is None:
        print("error: --screenshot needs --demo or --project FILE", file=sys.stderr)
        return 2
    window.resize(1400, 860)
    window.show()
    loop = QEventLoop()
    failed: list[str] = []

    def open_failed(message: str) -> None:
        failed.append(message)
        loop.quit()

    window.open_failed.connect(open_failed)
    window.opened.connect(lambda _: loop.quit())
    window.open_project(project, start_scheduler=False)
    loop.exec()
    if failed:
        print(f"error: {failed[0]}", file=sys.stderr)
        return 1
    drawn = {"done": False, "quiet": 0}

    def finished(_: object) -> None:
        drawn["done"] = True

    def settled() -> None:  # drawn, and nothing more on its way (runs, a reload) for 200 ms
        drawn["quiet"] = drawn["quiet"] + 1 if drawn["done"] and not window.bridge.pending else 0
        if drawn["quiet"] >= 4:
            loop.quit()

    window.chart.loaded.connect(finished)
    poll = QTimer(interval=50)
    poll.timeout.connect(settled)
    poll.start()
    QTimer.singleShot(20000, loop.quit)
    loop.exec()
    poll.stop()
    if not drawn["done"]:
        print("error: the chart did not load in time", file=sys.stderr)
        return 1
    # show a series that has revisions, hovering nothing
    window.tabs.setCurrentIndex(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(path))
    window.quitting = True
    window.close()
    if not ok:
        print(f"error: cannot write {path}", file=sys.stderr)
        return 1
    print(f"screenshot saved: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
