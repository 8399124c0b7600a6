"""Several processes, one store (DESIGN): the desktop app, the scheduler daemon and command-line
pulls and reads use one project at the same time, with real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from lookback_gui.core.project import load_project
from lookback_gui.core.store import Store
from tests.helpers import (
    PROCESS_S,
    PROCESSES_TEST_S,
    lookback_daemon,
    lookback_process,
    make_orders,
    project_text,
)
from tests.test_team_store import Lines

pytestmark = [pytest.mark.slow, pytest.mark.timeout(PROCESSES_TEST_S)]

SECONDS = float(os.environ.get("LOOKBACK_PROCESS_TEST_S", "60"))

# the desktop app, offscreen, pulling by hand every second and a half (the daemon holds the
# scheduler, so the app's schedule does not run)
APP = textwrap.dedent("""
    import os, sys, threading, time
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication
    import lookback_gui.ui
    from lookback_gui.ui.main_window import MainWindow

    path, folder = sys.argv[1], sys.argv[2]
    app = QApplication([])
    window = MainWindow(QSettings(os.path.join(folder, "settings.ini"), QSettings.Format.IniFormat))
    pulls = []

    def pull():
        if window.scheduler is not None and window.scheduler.run_now("daily_orders"):
            pulls.append(time.monotonic())

    def opened(session):
        print("opened", session.scheduled_elsewhere is not None, flush=True)
        timer.start()

    timer = QTimer(interval=1500)
    timer.timeout.connect(pull)
    window.opened.connect(opened)
    window.open_failed.connect(lambda message: (print("failed", message, flush=True), app.exit(1)))
    # the test says when to stop (a line on stdin): the app's own start may take minutes on a
    # busy machine, so no clock of the app's decides how long it runs
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()

    def stop_when_told():
        if stop.is_set():
            watch.stop()
            timer.stop()
            window.close_session(wait=True)
            app.quit()

    watch = QTimer(interval=200)
    watch.timeout.connect(stop_when_told)
    watch.start()
    window.open_project(path)
    code = app.exec()
    print("pulls", len(pulls), flush=True)
    sys.exit(code)
""")


def fresh_aggregate(source: Path, start: datetime, end: datetime) -> dict:
    con = duckdb.connect(str(source), read_only=True)
    try:
        rows = con.execute(
            "SELECT date_trunc('day', ordered_at), country, count(*), sum(amount) "
            "FROM orders WHERE ordered_at >= ? AND ordered_at < ? GROUP BY ALL",
            [start, end],
        ).fetchall()
    finally:
        con.close()
    out = {}
    for bucket, country, n, total in rows:
        out[(bucket, country, "orders")] = n
        out[(bucket, country, "revenue")] = total
    return out


def test_the_app_the_daemon_and_commands_share_one_store(tmp_path):
    today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    rows = [
        (i, today - timedelta(days=i % 6, hours=-(i % 20)), "DE" if i % 3 else "FR", float(i))
        for i in range(300)
    ]
    source = make_orders(tmp_path / "shop.duckdb", rows)
    path = tmp_path / "lookback.toml"
    path.write_text(project_text(extra='every = "2s"'))
    env = {**os.environ, "LOOKBACK_STORE_WAIT": "60"}

    with lookback_daemon("schedule", "--project", str(path)) as daemon:
        daemon_lines = Lines(daemon)
        # its stderr is read as it comes, too: a full pipe would stop the daemon at a write
        assert daemon.stderr is not None
        daemon_errors: list[str] = []
        drain = threading.Thread(target=lambda: daemon_errors.append(daemon.stderr.read()), daemon=True)
        drain.start()
        daemon_lines.wait_for("scheduler started", timeout=PROCESS_S)
        with (tmp_path / "app.err").open("w") as app_errors:
            app = subprocess.Popen(
                [sys.executable, "-c", APP, str(path), str(tmp_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=app_errors,
                text=True,
                env=env,
            )
        app_lines = Lines(app)
        pulled: list[int] = []
        reads = 0
        try:
            # the app's start is not timed: SECONDS of work begin once it has opened the project
            opened = app_lines.wait_for("opened", timeout=PROCESS_S)
            deadline = time.monotonic() + SECONDS
            while time.monotonic() < deadline:
                pull = lookback_process("pull", "daily_orders", "--project", str(path), env=env)
                read = lookback_process("runs", "--project", str(path), "--json", env=env)
                out, err = pull.communicate(timeout=PROCESS_S)
                assert pull.returncode == 0, err
                pulled.append(int(out.split()[1]))  # "run N daily_orders succeeded: ..."
                out, err = read.communicate(timeout=PROCESS_S)
                assert read.returncode == 0, err
                assert all(r["status"] in ("running", "succeeded") for r in json.loads(out))
                history = lookback_process(
                    "history", "daily_orders", "--project", str(path), "--json", env=env
                )
                out, err = history.communicate(timeout=PROCESS_S)
                assert history.returncode == 0, err
                assert json.loads(out)
                reads += 2
            assert app.stdin is not None
            app.stdin.write("stop\n")
            app.stdin.flush()
            app_lines.wait_for("pulls", timeout=PROCESS_S)
            app.wait(timeout=PROCESS_S)
        finally:
            if app.poll() is None:
                app.kill()
                app.wait()
        app_pulls_line = app_lines.wait_for("pulls", timeout=PROCESS_S)
        if app.stdin is not None:  # the app has exited (its stdout closes at its end)
            app.stdin.close()
        app_err = (tmp_path / "app.err").read_text()
        assert app.returncode == 0, app_err
        assert opened.strip() == "opened True"  # the daemon has the schedule
        app_pulls = int(app_pulls_line.split()[1])
        daemon.send_signal(2)
        daemon.wait(timeout=PROCESS_S)
        daemon_lines.wait_for("scheduler stopped", timeout=PROCESS_S)
        daemon_out = daemon_lines.text()
        drain.join(PROCESS_S)
        daemon_err = "".join(daemon_errors)
    assert daemon.returncode == 0, daemon_err
    daemon_runs = {
        int(words[3])
        for words in map(str.split, daemon_out.splitlines())
        if len(words) > 3 and words[2] == "run"
    }

    project = load_project(path)
    with Store(project.store_path) as store:
        runs = store.runs()
        ids = [r.id for r in runs]
        assert len(ids) == len(set(ids)) == max(ids)  # every run there once, none lost
        by_id = {r.id: r for r in runs}
        assert all(by_id[i].status == "succeeded" for i in pulled)
        assert {r.trigger for r in runs} >= {"command-line", "manual", "schedule"}
        assert sum(r.trigger == "manual" for r in runs) == app_pulls > 0
        assert daemon_runs <= set(ids)
        # every run succeeded, but for a pull of the daemon or the app that their stop cancelled
        # (running pulls get 10 s: on a busy machine one may still run then)
        assert all(
            r.status == "succeeded" or (r.status == "cancelled" and r.trigger != "command-line") for r in runs
        ), [(r.status, r.error) for r in runs if r.error]
        assert sum(r.status == "cancelled" for r in runs) <= 2
        last = runs[0]
        expected = fresh_aggregate(source, last.window_start, last.window_end)
        stored = {
            (r.bucket, r.dims["country"], r.measure): r.value
            for r in store.history("daily_orders")
            if last.window_start <= r.bucket < last.window_end and r.value is not None
        }
        assert stored == expected
    assert len(pulled) >= 5 and reads >= 10


@pytest.mark.qt_log_ignore("propagateSizeHints")  # the offscreen platform says so
def test_the_app_s_file_dialogs_do_not_open_the_store(qtbot, tmp_path):
    """A process drops DuckDB's lock on a file when it closes any descriptor of it; Qt's file
    dialog opened the store to guess its type. The app's dialogs name files by kind only."""
    from PySide6.QtWidgets import QFileDialog, QFileSystemModel

    import lookback_gui.ui  # noqa: F401
    from lookback_gui.ui.dialogs import file_dialog

    path = tmp_path / "lookback.duckdb"
    con = duckdb.connect(str(path))
    inode = os.stat(path).st_ino

    def locked() -> bool:
        return any(f":{inode} " in line for line in Path("/proc/locks").read_text().splitlines())

    try:
        assert locked()
        dialog = file_dialog(
            None, "Open project", str(tmp_path), "All files (*)", QFileDialog.AcceptMode.AcceptOpen
        )
        qtbot.addWidget(dialog)
        dialog.show()
        model = dialog.findChild(QFileSystemModel)
        folder = model.index(str(tmp_path))
        qtbot.waitUntil(lambda: model.rowCount(folder) > 0, timeout=10000)
        entry = model.index(str(path))
        dialog.grab()  # paints the list: icons and types are asked for
        qtbot.waitUntil(lambda: bool(model.data(entry.siblingAtColumn(2))), timeout=10000)
        assert model.fileIcon(entry) is not None
        assert locked()
        assert model.data(entry.siblingAtColumn(2)) == "DUCKDB file"
    finally:
        con.close()
