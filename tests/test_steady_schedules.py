"""Steady schedules (DESIGN, *What must hold*): reloading the project file changes the timers
of the metrics whose schedule changed, and only theirs."""

from __future__ import annotations

import os

from lookback_gui.core.project import load_project
from lookback_gui.core.schedule.scheduler import Scheduler
from lookback_gui.core.store import Store
from tests.helpers import DAILY_SQL

TWO = f'''
[store]
path = "lookback.duckdb"

[sources.shop]
type = "duckdb"
path = "shop.duckdb"

[metrics.steady]  # pulled every minute
source = "shop"
grain = "day"
lookback = "7d"
every = "1m"
audit_every = "1h"
sql = """{DAILY_SQL}"""

[metrics.changing]
source = "shop"
grain = "day"
lookback = "7d"
every = "2m"
sql = """{DAILY_SQL}"""
'''


def save(path, text: str) -> None:
    """Write the project file as an editor saves it: a new modification time every time."""
    before = path.stat().st_mtime if path.exists() else 0
    path.write_text(text)
    os.utime(path, (before + 5, before + 5))


def test_saving_the_project_file_keeps_the_timers_of_unchanged_schedules(tmp_path):
    path = tmp_path / "lookback.toml"
    save(path, TWO)
    project = load_project(path)
    with Store(project.store_path) as store:
        scheduler = Scheduler(project, store)
        scheduler.start(catch_up=False)
        try:
            first = scheduler.next_fire_times()
            assert first["steady"] is not None and first["changing"] is not None
            audit = {j.id: j.next_run_time for j in scheduler._aps.get_jobs()}["steady::audit"]
            for _ in range(3):  # saved again and again, with a comment, unchanged schedules
                save(path, path.read_text() + "# saved\n")
                assert scheduler.reload_if_changed() is True
                assert scheduler.next_fire_times() == first
            save(path, path.read_text().replace('every = "2m"', 'every = "3m"'))
            assert scheduler.reload_if_changed() is True
            now = scheduler.next_fire_times()
            assert now["steady"] == first["steady"]  # its timer runs on
            assert now["changing"] != first["changing"]  # a new timer for the new schedule
            assert {j.id: j.next_run_time for j in scheduler._aps.get_jobs()}["steady::audit"] == audit
            scheduler.pause("steady")
            save(path, path.read_text() + "# saved while paused\n")
            assert scheduler.reload_if_changed() is True
            jobs = {j.id: j for j in scheduler._aps.get_jobs()}
            assert jobs["steady"].next_run_time is None  # still paused
            assert jobs["changing"].next_run_time == now["changing"]
        finally:
            scheduler.shutdown(grace_s=0)
