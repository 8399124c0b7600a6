"""The desktop app with a real QApplication and real widgets over real stores."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import numpy as np
import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu

import lookback_gui.ui  # noqa: F401
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store
from lookback_gui.core.store import events as ev
from lookback_gui.ui.app import install_desktop
from lookback_gui.ui.editors import MetricEditor, SourceEditor
from lookback_gui.ui.health import health_rows
from lookback_gui.ui.main_window import MainWindow
from lookback_gui.ui.models import (
    AlertsModel,
    HealthModel,
    PreviewModel,
    RevisionsModel,
    RevisionView,
    RunsModel,
)
from tests.helpers import (
    DAILY_SQL,
    make_orders,
    project_text,
    store_held_by_another_process,
    ts,
)

EMPTY_PROJECT = '# my analytics project\n\n[store]\npath = "lookback.duckdb"  # keep next to me\n'


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    win = MainWindow(settings)
    qtbot.addWidget(win)
    yield win
    win.close_session(wait=True)


def open_and_wait(qtbot, window: MainWindow, path: Path, start_scheduler: bool = True) -> None:
    """Open the project at ``path`` in ``window`` and wait until it is open."""
    with qtbot.waitSignal(window.opened, timeout=20000):
        window.open_project(path, start_scheduler=start_scheduler)


def open_fails(qtbot, window: MainWindow, path: Path) -> str:
    """Try to open ``path``; return the message saying why it cannot be opened."""
    with qtbot.waitSignal(window.open_failed, timeout=20000) as blocker:
        window.open_project(path)
    return str(blocker.args[0])


def recent_shop(tmp_path: Path) -> Path:
    """A source whose orders fall inside today's lookback window."""
    from datetime import datetime, timedelta

    today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    rows = [
        (1, today - timedelta(days=2, hours=-10), "DE", 10.0),
        (2, today - timedelta(days=1, hours=-9), "FR", 5.0),
    ]
    return make_orders(tmp_path / "shop.duckdb", rows)


def test_editor_flow_new_source_metric_preview_save_run_chart(qtbot, window, tmp_path):
    shop = recent_shop(tmp_path)
    path = tmp_path / "lookback.toml"
    path.write_text(EMPTY_PROJECT)
    open_and_wait(qtbot, window, path)

    source_editor = SourceEditor(window.project, window.bridge, None, window)
    qtbot.addWidget(source_editor)
    source_editor.name.setText("shop")
    source_editor.type.setCurrentText("duckdb")
    source_editor.path.setText("shop.duckdb")
    source_editor.test.click()
    qtbot.waitUntil(lambda: source_editor.schema.topLevelItemCount() == 1, timeout=10000)
    assert source_editor.schema.topLevelItem(0).text(0) == "orders"
    assert "connected: 1 table(s)" in source_editor.test_result.text()
    source_editor.save()
    assert source_editor.result() == source_editor.DialogCode.Accepted
    window.reload_project()

    editor = MetricEditor(window.project, window.bridge, None, window)
    qtbot.addWidget(editor)
    editor.name.setText("daily_orders")
    editor.grain.setCurrentText("day")
    editor.lookback.setText("7d")
    editor.schedule_kind.setCurrentText("cron")
    editor.schedule.setText("0 6 * * *")
    assert editor.schedule_preview.text().startswith("At 06:00")
    assert editor.schedule_preview.text().count(":00") >= 4  # three next fire times
    editor.sql.setPlainText(DAILY_SQL.strip())
    editor.preview_button.click()
    qtbot.waitUntil(lambda: "row(s) for window" in editor.preview_info.text(), timeout=10000)
    assert "dimensions: country; measures: orders, revenue" in editor.preview_info.text()
    assert editor.preview_model.rowCount() == 2
    editor.save()
    assert editor.result() == editor.DialogCode.Accepted
    text = path.read_text()
    assert text.startswith("# my analytics project")
    assert "# keep next to me" in text
    window.reload_project()
    window.select_metric("daily_orders")
    assert window.selected_metric().schedule == "0 6 * * *"

    with qtbot.waitSignal(
        window.bridge.core_event, timeout=20000, check_params_cb=lambda e: isinstance(e, ev.RunFinished)
    ):
        window.run_now()
    con = duckdb.connect(str(shop))
    con.execute(
        "INSERT INTO orders SELECT 3, ordered_at + INTERVAL 1 MINUTE, 'DE', 1.0 "
        "FROM orders WHERE order_id = 1"
    )
    con.close()
    with qtbot.waitSignal(
        window.bridge.core_event, timeout=20000, check_params_cb=lambda e: isinstance(e, ev.RunFinished)
    ):
        window.run_now()
    chart = window.chart
    qtbot.waitUntil(lambda: chart.measure_box.findText("orders") >= 0, timeout=10000)
    with qtbot.waitSignal(
        chart.loaded,
        timeout=20000,
        check_params_cb=lambda d: d.measure == "orders" and int(d.arrays["versions"].max(initial=1)) == 2,
    ):
        if chart.measure_box.currentText() == "orders":
            chart.reload()
        else:
            chart.measure_box.setCurrentIndex(chart.measure_box.findText("orders"))
    assert "country=DE" in chart.series_box.currentText()
    tips = window.chart.marker_tips()
    revised = [t for t in tips if "last revised by run" in t]
    assert len(revised) == 1
    tip = revised[0]
    assert "(country=DE, orders)" in tip
    assert "value: 2" in tip and "first reported: 1" in tip
    assert "change: +1 (+100.0%)" in tip
    assert "versions: 2, last revised by run 2" in tip
    qtbot.waitUntil(lambda: window.runs_model.rowCount() == 2, timeout=10000)
    assert window.runs_model.record(0).trigger == "manual"


def test_editors_show_mistakes_next_to_the_field_and_keep_the_file(qtbot, window, tmp_path):
    recent_shop(tmp_path)
    path = tmp_path / "lookback.toml"
    path.write_text(project_text())
    before = path.read_text()
    open_and_wait(qtbot, window, path, start_scheduler=False)
    editor = MetricEditor(window.project, window.bridge, window.project.metrics["daily_orders"], window)
    qtbot.addWidget(editor)
    editor.lookback.setText("36h")
    editor.save()
    assert editor.errors["lookback"].isVisibleTo(editor)
    assert "not a whole number of day buckets" in editor.errors["lookback"].text()
    assert path.read_text() == before

    editor.lookback.setText("7d")
    editor.schedule_kind.setCurrentText("cron")
    editor.schedule.setText("0 25 * * *")
    assert editor.schedule_preview.text().startswith("✗")
    editor.save()
    assert "not a valid cron expression" in editor.errors["schedule"].text()

    editor.schedule_kind.setCurrentText("manual only")
    editor.sql.setPlainText("SELEC bucket FROM orders")
    editor.preview_button.click()
    qtbot.waitUntil(lambda: "syntax error" in editor.preview_info.text(), timeout=10000)
    editor.sql.setPlainText("DELETE FROM orders")
    editor.preview_button.click()
    qtbot.waitUntil(lambda: "may only read" in editor.preview_info.text(), timeout=10000)
    assert path.read_text() == before

    source = SourceEditor(window.project, window.bridge, window.project.sources["shop"], window)
    qtbot.addWidget(source)
    source.path.setText("missing.duckdb")
    source.test.click()
    qtbot.waitUntil(lambda: "file not found: missing.duckdb" in source.test_result.text(), timeout=10000)


def test_a_store_busy_in_another_process_is_a_message_not_a_crash(qtbot, window, tmp_path):
    path = tmp_path / "lookback.toml"
    path.write_text(project_text())
    window.store_wait_s = 3
    with store_held_by_another_process(tmp_path / "lookback.duckdb", busy=True) as holder:
        assert f"PID {holder.pid}" in open_fails(qtbot, window, path)
        assert f"PID {holder.pid}" in window.last_error
        assert window.project is None


def test_the_app_opens_a_store_that_another_process_has_open(qtbot, window, tmp_path):
    path = tmp_path / "lookback.toml"
    path.write_text(project_text())
    with store_held_by_another_process(tmp_path / "lookback.duckdb"):
        with qtbot.waitSignal(window.opened, timeout=20000):
            window.open_project(path, start_scheduler=False)
        assert window.project is not None


def test_a_broken_project_file_names_the_line(qtbot, window, tmp_path):
    path = tmp_path / "lookback.toml"
    path.write_text(project_text().replace('grain = "day"', 'grain = "dya"'))
    open_fails(qtbot, window, path)
    assert f"{path}:10: metrics.daily_orders.grain: unknown grain 'dya'" in window.last_error


def _store_with_history(tmp_path: Path) -> tuple[Store, object]:
    make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-25T10:00"), "DE", 10.0)])
    path = tmp_path / "lookback.toml"
    path.write_text(project_text())
    project = load_project(path)
    store = Store(project.store_path)
    run_pull(project, "daily_orders", store, as_of=ts("2026-10-30T12:00"))
    con = duckdb.connect(str(tmp_path / "shop.duckdb"))
    con.execute("INSERT INTO orders VALUES (2, '2026-10-25 11:00', 'DE', 1.0)")
    con.close()
    run_pull(project, "daily_orders", store, as_of=ts("2026-10-30T13:00"))
    return store, project


def test_every_table_model_passes_the_model_tester(qtmodeltester, qtbot, window, tmp_path):
    store, _project = _store_with_history(tmp_path)
    try:
        runs = RunsModel()
        runs.update(store.runs())
        qtmodeltester.check(runs)
        revisions = RevisionsModel()
        revisions.set_records([RevisionView(r, "1.0 h", 3600.0) for r in store.revisions("daily_orders")])
        assert revisions.rowCount() == 2
        qtmodeltester.check(revisions)
        alerts = AlertsModel()
        qtmodeltester.check(alerts)
        preview = PreviewModel()
        preview.set_result(("bucket", "n"), [(ts("2026-10-25"), 1), (ts("2026-10-26"), None)])
        qtmodeltester.check(preview)
        health = HealthModel()
        health.set_records(
            health_rows(load_project(tmp_path / "lookback.toml"), store.runs(), {}, {}, [], {})
        )
        assert health.rowCount() == 1
        qtmodeltester.check(health)
    finally:
        store.close()


def test_runs_model_inserts_new_runs_at_the_top(qtbot, tmp_path):
    store, project = _store_with_history(tmp_path)
    try:
        model = RunsModel()
        model.update(store.runs())
        with qtbot.waitSignal(model.rowsInserted, timeout=1000):
            run_pull(project, "daily_orders", store, as_of=ts("2026-10-30T14:00"))
            model.update(store.runs())
        assert [model.record(i).id for i in range(3)] == [3, 2, 1]
    finally:
        store.close()


def test_install_desktop_writes_icon_and_launcher(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    icon, launcher = install_desktop()
    assert icon == tmp_path / "share/icons/hicolor/scalable/apps/lookback-gui.svg"
    assert icon.read_text().startswith("<svg")
    text = launcher.read_text()
    assert "Name=Lookback GUI" in text and "Icon=lookback-gui" in text
    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    program = exec_line.removeprefix("Exec=").split()[0].strip('"')
    assert Path(program).is_absolute() and Path(program).exists()
    validate = __import__("shutil").which("desktop-file-validate")
    if validate:  # no errors, warnings or hints
        result = subprocess.run([validate, str(launcher)], capture_output=True, text=True)
        assert result.returncode == 0 and result.stdout.strip() == "", result.stdout


def test_screenshot_of_the_demo(tmp_path):
    shot = tmp_path / "shot.png"
    env = {
        **__import__("os").environ,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "QT_QPA_PLATFORM": "offscreen",
    }
    result = subprocess.run(
        [sys.executable, "-m", "lookback_gui.ui.app", "--demo", "--screenshot", str(shot)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "data/lookback-gui/demo/lookback.toml").exists()


def test_closing_the_window_leaves_no_widgets_behind(qtbot, settings, tmp_path):
    from PySide6.QtWidgets import QApplication

    recent_shop(tmp_path)
    path = tmp_path / "lookback.toml"
    path.write_text(project_text())
    before = set(QApplication.topLevelWidgets())
    win = MainWindow(settings)
    open_and_wait(qtbot, win, path)
    editor = MetricEditor(win.project, win.bridge, win.project.metrics["daily_orders"], win)
    editor.reject()
    win.quitting = True
    win.close()
    assert win.scheduler is None and win.store is None
    win.deleteLater()
    del editor, win
    gc.collect()  # pyqtgraph's context menus go with their Python owners

    def leftovers() -> list[str]:
        gc.collect()
        return [type(w).__name__ for w in set(QApplication.topLevelWidgets()) - before]

    qtbot.waitUntil(lambda: leftovers() == [], timeout=5000)
    # the store was closed: another process could open it now
    Store(tmp_path / "lookback.duckdb").close()


def test_advisor_tab_shows_the_recommendation_and_applies_it(qtbot, window, tmp_path):
    from tests.test_advisor import build

    project, _events = build(tmp_path, (0.70, 0.25, 0.05), (2, 10), 9)
    text = project.path.read_text()
    project.path.write_text("# tuned by hand\n" + text)
    open_and_wait(qtbot, window, project.path, start_scheduler=False)
    with qtbot.waitSignal(window.advisor.loaded, timeout=30000, check_params_cb=lambda a: a.enough_history):
        window.tabs.setCurrentWidget(window.advisor)  # measured when its tab is shown
    advice = window.advisor.advice
    recommended = advice.recommendation["lookback"]
    buckets = advice.recommendation["lookback_buckets"]
    assert window.advisor.sentence.text().startswith(f"A lookback of {buckets} day")
    assert window.advisor.apply_button.isEnabled()
    from lookback_gui.ui.advisor_tab import lookback_edge

    line = window.advisor.recommended_line
    # "recommended: 12d" stands at 12 on the age axis (it stood at 11.5)
    assert line is not None and line.value() == lookback_edge(buckets, False) == buckets
    asked: list[str] = []
    window.advisor.confirm = lambda question: asked.append(question) is not None
    window.advisor.apply_button.click()  # declined: the file stays as it was
    assert len(asked) == 1 and f"to {recommended}?" in asked[0]
    assert project.path.read_text().startswith("# tuned by hand")
    assert f'lookback = "{recommended}"' not in project.path.read_text()
    window.advisor.confirm = lambda question: True
    with qtbot.waitSignal(window.advisor.applied, timeout=5000):
        window.advisor.apply_button.click()
    saved = project.path.read_text()
    assert saved.startswith("# tuned by hand")
    assert f'lookback = "{recommended}"' in saved
    assert window.project.metrics["daily_orders"].lookback == recommended
    # the chart's provisional region follows the measured settling age, and says so
    with qtbot.waitSignal(window.chart.loaded, timeout=30000):
        window.chart.reload()
    label = window.chart.region_label.textItem.toPlainText()
    assert label.startswith("provisional: settles in") and label.endswith("(measured)")


def test_the_runs_log_fetches_older_runs_a_page_at_a_time(qtbot, window, tmp_path):
    from PySide6.QtCore import QModelIndex

    from lookback_gui.ui.main_window import RUN_PAGE

    path = tmp_path / "lookback.toml"
    path.write_text(project_text())
    store = Store(tmp_path / "lookback.duckdb")
    with store.reading() as cur:
        cur.execute(
            "INSERT INTO runs (id, metric, trigger, status, as_of, window_start, window_end, "
            "attempts) SELECT i, 'daily_orders', 'schedule', 'succeeded', "
            "TIMESTAMP '2026-01-01' + to_hours(i), TIMESTAMP '2026-01-01', "
            "TIMESTAMP '2026-01-02', 1 FROM range(1, 701) t(i)"
        )
    store.close()
    with qtbot.waitSignal(window.refreshed, timeout=10000):
        open_and_wait(qtbot, window, path, start_scheduler=False)
    model = window.runs_model
    assert model.rowCount() == RUN_PAGE and model.record(0).id == 700
    assert model.canFetchMore(QModelIndex())
    with qtbot.waitSignal(model.rowsInserted, timeout=10000):
        model.fetchMore(QModelIndex())
    assert model.rowCount() == 2 * RUN_PAGE
    assert model.record(2 * RUN_PAGE - 1).id == 700 - 2 * RUN_PAGE + 1
    with qtbot.waitSignal(model.rowsInserted, timeout=10000):
        model.fetchMore(QModelIndex())
    assert model.rowCount() == 700 and not model.canFetchMore(QModelIndex())


def test_a_new_metric_starts_from_the_sources_time_column(qtbot, window, tmp_path):
    recent_shop(tmp_path)
    path = tmp_path / "lookback.toml"
    path.write_text(project_text())
    open_and_wait(qtbot, window, path, start_scheduler=False)
    editor = MetricEditor(window.project, window.bridge, None, window)
    qtbot.addWidget(editor)
    qtbot.waitUntil(lambda: "FROM orders" in editor.sql.toPlainText(), timeout=10000)
    assert "date_trunc('day', ordered_at) AS bucket" in editor.sql.toPlainText()
    assert "ordered_at >= $window_start AND ordered_at < $window_end" in editor.sql.toPlainText()


def test_the_app_can_paint_for_as_long_as_it_runs(qtbot, window, tmp_path):
    """Painting must not eat references to None: on Python 3.11 a binding with that fault
    (PySide6 6.12.0 drops one per call of a method returning nothing) aborts the app with
    "deallocating None" after a few hundred frames."""
    store, project = _store_with_history(tmp_path)
    store.close()
    open_and_wait(qtbot, window, project.path)
    window.resize(1000, 700)
    qtbot.waitUntil(lambda: window.chart._data is not None, timeout=10000)
    window.grab()
    before = sys.getrefcount(None)
    for _ in range(20):
        window.grab()
    assert sys.getrefcount(None) >= before - 50


def test_chart_tooltips_and_csv_export_name_the_run_of_every_bucket(qtbot, window, tmp_path, monkeypatch):
    import csv

    from lookback_gui.ui.chart import write_series_csv

    make_orders(
        tmp_path / "shop.duckdb",
        [(1, ts("2026-10-25T10:00"), "DE", 10.0), (2, ts("2026-10-26T10:00"), "DE", 4.0)],
    )
    path = tmp_path / "lookback.toml"
    path.write_text(project_text())
    project = load_project(path)
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store, as_of=ts("2026-10-30T12:00"))
        con = duckdb.connect(str(tmp_path / "shop.duckdb"))
        con.execute("INSERT INTO orders VALUES (3, '2026-10-26 11:00', 'DE', 1.0)")
        con.close()
        run_pull(project, "daily_orders", store, as_of=ts("2026-10-30T13:00"))
    open_and_wait(qtbot, window, path)
    chart = window.chart
    qtbot.waitUntil(lambda: chart._data is not None and chart._data.drawing is not None, timeout=10000)
    data = chart._data
    # a plain bucket's run is read off the GUI thread: the tooltip names it once it is known
    from lookback_gui.core.store.database import Database

    gui_reads: list[int] = []
    original = Database._connection

    def watched(self: Database):  # type: ignore[no-untyped-def]
        if threading.current_thread() is threading.main_thread():
            gui_reads.append(1)
        return original(self)

    monkeypatch.setattr(Database, "_connection", watched)
    assert chart._tip(0, 0, 0).count("run") == 0
    assert gui_reads == []
    qtbot.waitUntil(lambda: "versions: 1, run 1" in chart._tip(0, 0, 0), timeout=10000)
    assert gui_reads == []
    tips = [chart._tip(0, 0, i) for i in range(len(data.arrays["bucket"]))]
    assert "versions: 1, run 1" in tips[0]  # 2026-10-25: stored by run 1, never revised
    assert "versions: 2, last revised by run 2" in tips[1]

    out = tmp_path / "series.csv"
    done: list[object] = []
    window.bridge.submit(
        "export", lambda: write_series_csv(window.store, data, str(out)), done.append, done.append
    )
    qtbot.waitUntil(lambda: bool(done), timeout=10000)
    assert done == [2]  # rows written, not an error message
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["bucket"], r["versions"], r["last_run"]) for r in rows] == [
        ("2026-10-25 00:00:00", "1", "1"),
        ("2026-10-26 00:00:00", "2", "2"),
    ]
    first, latest = {"revenue": ("4.0", "5.0"), "orders": ("1.0", "2.0")}[data.measure]
    assert (rows[1]["first_value"], rows[1]["value"]) == (first, latest)


def test_a_long_series_thins_its_markers_to_the_screen_and_shows_all_when_zoomed_in(qtbot, window, tmp_path):
    from lookback_gui.ui.chart import (
        ENVELOPE_COLUMNS,
        MARKER_SIZE_PX,
        MAX_MARKERS,
        MAX_PLAIN_POINTS,
    )

    minutes = 40_000
    con = duckdb.connect(str(tmp_path / "clicks.duckdb"))
    con.execute(
        "CREATE TABLE clicks AS SELECT TIMESTAMP '2026-09-01' + to_minutes(i) AS ts, "
        "(i % 97)::DOUBLE AS v FROM range(?) t(i)",
        [minutes],
    )
    con.close()
    sql = (
        "SELECT date_trunc('minute', ts) AS bucket, sum(v) AS v FROM clicks "
        "WHERE ts >= $window_start AND ts < $window_end GROUP BY ALL"
    )
    path = tmp_path / "lookback.toml"
    path.write_text(
        project_text(
            source='type = "duckdb"\npath = "clicks.duckdb"',
            sql=sql,
            metric="clicks",
            grain="minute",
            lookback=f'"{minutes}m"',
            extra="complete_buckets_only = true",
        )
    )
    project = load_project(path)
    end = ts("2026-09-01") + (ts("2026-09-02") - ts("2026-09-01")) * minutes / 1440
    with Store(project.store_path) as store:
        assert run_pull(project, "clicks", store, as_of=end).new == minutes
        con = duckdb.connect(str(tmp_path / "clicks.duckdb"))
        con.execute("UPDATE clicks SET v = v + 1 WHERE minute(ts) % 10 = 3")  # 10 % revised
        con.close()
        assert run_pull(project, "clicks", store, as_of=end).revised == minutes // 10
    open_and_wait(qtbot, window, path)
    window.resize(1200, 800)
    chart = window.chart
    qtbot.waitUntil(lambda: chart._data is not None and chart._data.drawing is not None, timeout=10000)
    view = chart.plot.getViewBox()

    def pixels(xs, ys) -> np.ndarray:
        (x0, x1), (y0, y1) = view.viewRange()
        return np.column_stack(
            [
                (np.asarray(xs) - x0) / (x1 - x0) * view.width(),
                (np.asarray(ys) - y0) / (y1 - y0) * view.height(),
            ]
        )

    # everything the window loads on opening (the runs, the chart) has arrived and been drawn,
    # and the markers follow the view's final range
    qtbot.waitUntil(lambda: window.bridge.pending == 0 and not chart._fit_later.isActive(), timeout=10000)
    # the whole series: 4,000 revised buckets are more than fit; the markers shown are fewer
    # but leave none of them uncovered: each lies within a marker's size of a marker shown
    shown = chart.revised_points.points()
    assert 0 < len(shown) <= MAX_MARKERS
    drawn = pixels([p.pos().x() for p in shown], [p.pos().y() for p in shown])
    a = chart._data.arrays
    revised = a["marked"][a["versions"] > 1]
    every = pixels(chart._data.drawing.x[revised], a["value"][revised])
    nearest = np.abs(every[:, None, :] - drawn[None, :, :]).max(axis=2).min(axis=1)
    assert nearest.max() <= MARKER_SIZE_PX
    assert len(chart.plain_points.points()) == 0  # 40,000 plain buckets: the curve shows them
    # the curve holds a few points per pixel column, with every column's lowest and highest
    curve_x, curve_y = chart.curve.getData()
    assert len(curve_x) <= 2 * max(view.width(), ENVELOPE_COLUMNS) + 4
    values = chart._data.arrays["value"]
    assert (curve_y.min(), curve_y.max()) == (values.min(), values.max())

    # the last 100 minutes: every bucket in view has its marker, the plain ones a dot
    x = chart._data.drawing.x
    with qtbot.waitSignal(view.sigRangeChanged, timeout=5000):
        view.setXRange(float(x[-100]), float(x[-1]), padding=0)
    qtbot.waitUntil(lambda: len(chart.revised_points.points()) == 10, timeout=5000)
    assert MAX_PLAIN_POINTS >= 100
    assert len(chart.plain_points.points()) == 90
    curve_x, curve_y = chart.curve.getData()  # zoomed in: every bucket, one beyond each side
    np.testing.assert_array_equal(curve_x, x[-101:])
    np.testing.assert_array_equal(curve_y, values[-101:])
    tips = [chart._tip(0, 0, p.data()) for p in chart.revised_points.points()]
    assert all("versions: 2, last revised by run 2" in t for t in tips)


def test_the_menus_status_tips_read_as_words(window):
    """The status bar says what a menu item does in words: no '&' of its keyboard mnemonic."""
    actions = [a for menu in window.menuBar().findChildren(QMenu) for a in menu.actions() if a.text()]
    assert len(actions) > 10
    tips = {a.text(): a.statusTip() for a in actions}
    assert not [text for text, tip in tips.items() if "&" in tip], tips
    assert tips["&Close project"].startswith("Close the open project")
    assert tips["&New project…"] == "New project"
