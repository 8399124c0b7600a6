"""A pre-data backfill is no coverage anchor (DESIGN, *No gaps*): the gap fill starts at the
first bucket any pull found data for, and a gap fill of more than 1000 pulls waits for a
confirmation instead of starting."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import pytest

from lookback_gui.core.project import load_project
from lookback_gui.core.pull import MAX_BACKFILL_CHUNKS, run_pull
from lookback_gui.core.schedule.scheduler import Scheduler, plan_catch_up
from lookback_gui.core.store import Store
from lookback_gui.core.store.events import GapFillHeld, RunFinished
from tests.helpers import make_orders, run_cli, ts


def test_an_empty_backfill_before_the_data_plans_no_gap_fill_back_to_it(project, monkeypatch):
    monkeypatch.chdir(project.parent)
    code, out, err = run_cli("backfill", "daily_orders", "--from", "1900-01-01", "--to", "1900-01-02")
    assert code == 0, err
    loaded = load_project(project)
    config = dataclasses.replace(loaded.metrics["daily_orders"], every=timedelta(hours=6))
    now = ts("2026-11-20T12:00")
    with Store(loaded.store_path) as store:
        # nothing was found: no gap to fill, one catch-up pull
        assert [p.trigger for p in plan_catch_up(config, store, now)] == ["catch-up"]
        first = run_pull(
            loaded, config, store, as_of=ts("2026-10-26T12:00"), clock=lambda: ts("2026-11-20T12:00")
        )
        assert first.status == "succeeded", first.error
        plans = plan_catch_up(config, store, now)
        fills = [p.window for p in plans if p.trigger == "backfill"]
        # the gap after the data (its first pull covered up to 10-27); nothing back to 1900
        assert fills and fills[0].start == ts("2026-10-27")
        assert len(plans) < 10
        facts = store.catch_up_facts()["daily_orders"]
        assert plan_catch_up(config, store, now, facts) == plans


HOURLY = '''
[store]
path = "lookback.duckdb"

[sources.shop]
type = "duckdb"
path = "shop.duckdb"

[metrics.hourly]
source = "shop"
grain = "hour"
lookback = "1h"
every = "1h"
retries = 0
allow_empty = true
sql = """
SELECT date_trunc('hour', ordered_at) AS bucket, count(*) AS orders
FROM orders WHERE ordered_at >= $window_start AND ordered_at < $window_end GROUP BY ALL
"""
'''


def test_a_gap_fill_of_more_than_1000_pulls_waits_and_says_how_to_run_it(tmp_path):
    make_orders(
        tmp_path / "shop.duckdb",
        [(1, ts("2026-08-01T10:30"), "DE", 1.0), (2, ts("2026-10-30T11:30"), "DE", 1.0)],
    )
    (tmp_path / "lookback.toml").write_text(HOURLY)
    project = load_project(tmp_path / "lookback.toml")
    then = ts("2026-08-01T10:45")
    now = datetime(2026, 10, 30, 12, 0, tzinfo=UTC)
    events: list[object] = []
    lock = threading.Lock()

    def record(event: object) -> None:
        with lock:
            events.append(event)

    with Store(project.store_path) as store:
        assert run_pull(project, "hourly", store, as_of=then, clock=lambda: then).new == 1
        scheduler = Scheduler(project, store, clock=lambda: now)
        scheduler.events.subscribe(record)
        scheduler.start(catch_up=True)
        try:
            assert scheduler.wait_idle(timeout=120)
            with lock:
                seen = list(events)
            [held] = [e for e in seen if isinstance(e, GapFillHeld)]
            assert held.pulls > MAX_BACKFILL_CHUNKS
            assert held.start == ts("2026-08-01T10:00")  # seen partial by the first pull
            assert "--yes" in held.message and "lookback backfill hourly" in held.message
            assert [e.run.trigger for e in seen if isinstance(e, RunFinished)] == ["catch-up"]
            assert scheduler.held_gap_fill("hourly") == held.pulls
        finally:
            scheduler.shutdown(grace_s=0)


@pytest.mark.qt_log_ignore("propagateSizeHints")
def test_the_app_asks_before_a_gap_fill_of_more_than_1000_pulls(qtbot, tmp_path):
    pytest.importorskip("PySide6.QtWidgets")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QMessageBox

    import lookback_gui.ui  # noqa: F401
    from lookback_gui.ui.main_window import MainWindow
    from tests.test_ui import open_and_wait

    now = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    then = now - timedelta(days=60)
    make_orders(
        tmp_path / "shop.duckdb",
        [(1, then + timedelta(minutes=10), "DE", 1.0), (2, now - timedelta(hours=2), "DE", 1.0)],
    )
    (tmp_path / "lookback.toml").write_text(HOURLY)
    project = load_project(tmp_path / "lookback.toml")
    with Store(project.store_path) as store:
        assert run_pull(project, "hourly", store, as_of=then, clock=lambda: then).new == 1
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    try:
        open_and_wait(qtbot, window, tmp_path / "lookback.toml")
        qtbot.waitUntil(lambda: window.gap_fill_question is not None, timeout=60000)
        box = window.gap_fill_question
        assert "hourly" in box.windowTitle() and "pulls" in box.text()
        assert window.session.scheduler.held_gap_fill("hourly") > MAX_BACKFILL_CHUNKS
        box.button(QMessageBox.StandardButton.No).click()
        assert window.session.scheduler.held_gap_fill("hourly") > MAX_BACKFILL_CHUNKS
    finally:
        window.close_session(wait=True)
