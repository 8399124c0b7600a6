"""The demo's history is seeded in one pass, and the store holds what its pulls would have made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from lookback_gui.core.demo import history_plan, write_demo
from lookback_gui.core.errors import UsageError
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.pull.seeding import PlannedPull, seed
from lookback_gui.core.store import open_store

# every column of the runs but the ones that tell when and where it ran
RUN_FACTS = (
    "id, metric, trigger, status, timezone, grain, as_of, window_start, window_end, "
    "partial_start, attempts, rows, new, revised, removed, unchanged, error, sql, "
    "params, measures, schema_change, warnings, checks, known_at, settled_end, "
    "commit_seq, definition"
)


def facts(store_path: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(store_path), read_only=True)
    try:
        return {
            "runs": con.execute(f"SELECT {RUN_FACTS} FROM runs ORDER BY id").fetchall(),
            "versions": con.execute("SELECT * FROM versions ORDER BY ALL").fetchall(),
            "current": con.execute("SELECT * FROM current ORDER BY ALL").fetchall(),
            "log": con.execute("SELECT run_id, seq, level, message FROM run_log ORDER BY ALL").fetchall(),
            "alerts": con.execute(
                "SELECT metric, rule, kind, state, message FROM alerts ORDER BY ALL"
            ).fetchall(),
            "probes": con.execute("SELECT * FROM probes ORDER BY ALL").fetchall(),
        }
    finally:
        con.close()


def small_demo(folder: Path, now: datetime) -> tuple[Path, list[PlannedPull]]:
    path = write_demo(folder, now=now)
    return path, history_plan(load_project(path), now, days=10)


def test_a_seeded_demo_holds_what_its_pulls_would_have_made(tmp_path):
    now = (datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)).replace(microsecond=0)
    pulled_path, plan = small_demo(tmp_path / "pulled", now)
    seeded_path, same_plan = small_demo(tmp_path / "seeded", now)
    assert plan == same_plan and len(plan) == 10 + 5 + 72 + 2

    project = load_project(pulled_path)
    with open_store(project.store) as store:
        for pull in plan:
            run = run_pull(project, pull.metric, store, trigger=pull.trigger, window=pull.window)
            assert run.status == "succeeded", run.error
    project = load_project(seeded_path)
    steps = []
    with open_store(project.store) as store:
        records = seed(project, store, plan, progress=lambda done, total: steps.append(done))
    assert [r.status for r in records] == ["succeeded"] * len(plan)
    assert steps == list(range(1, 2 * len(plan) + 1))

    pulled = facts(tmp_path / "pulled" / "lookback.duckdb")
    seeded = facts(tmp_path / "seeded" / "lookback.duckdb")
    for table in pulled:
        assert seeded[table] == pulled[table], table
    # the comparison has something to compare: revisions, checks and a restatement alert
    assert sum(run[13] for run in pulled["runs"]) > 50  # revised
    assert any('"big_revision"' in run[22] for run in pulled["runs"])
    assert pulled["alerts"] and pulled["alerts"][0][2] == "restatement"


def test_a_metric_that_cannot_see_its_past_is_not_seeded(tmp_path):
    path = write_demo(tmp_path / "demo")
    path.write_text(path.read_text().replace("  AND arrived_at <= $as_of\n", ""))
    project = load_project(path)
    plan = history_plan(project, days=2)
    with open_store(project.store) as store, pytest.raises(UsageError, match="daily_orders"):
        seed(project, store, plan)
    with open_store(project.store) as store:
        assert store.runs() == []


CHILD = """
import sys
from pathlib import Path

from lookback_gui.core.demo import ensure_demo

def progress(done, total):
    if done == total - 5:  # the runs are being committed
        print("seeding", flush=True)
        sys.stdin.readline()  # held here until the test stops the process

ensure_demo(Path(sys.argv[1]), progress=progress)
print("built", flush=True)
"""


def test_a_demo_whose_seeding_was_killed_is_built_anew_at_the_next_start(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from lookback_gui.core.demo import ensure_demo

    folder = tmp_path / "demo"
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    ) as child:
        try:
            assert child.stdout is not None
            # the line the child says, after any progress bar DuckDB drew on a busy machine
            said = ""
            for line in iter(child.stdout.readline, ""):
                said = line.strip()
                if said.endswith("seeding") or said == "built":
                    break
            assert said.endswith("seeding"), said
            child.send_signal(signal.SIGTERM)
            assert child.wait(timeout=60) == -signal.SIGTERM
        finally:
            child.kill()
    assert not folder.exists()  # nothing half-built where the app looks
    left = [p.name for p in tmp_path.iterdir()]
    assert left == [f".demo.building-{child.pid}"]

    project_path = ensure_demo(folder)  # the next start
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]
    project = load_project(project_path)
    plan = history_plan(project)
    with open_store(project.store) as store:
        runs = store.runs()
    assert len(runs) == len(plan)
    assert {run.metric for run in runs} == {"daily_orders", "hourly_revenue"}
    assert {run.status for run in runs} == {"succeeded"}
