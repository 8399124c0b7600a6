"""``lookback store stats`` and ``lookback store compact``: the counts are the store's, and a
compaction keeps every run and version, holds the store exclusively, and leaves it whole when
it is killed halfway."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from lookback_gui.cli import main
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store
from lookback_gui.core.store.housekeeping import TABLES
from tests.helpers import DAILY_SQL, PROCESS_S, make_orders, project_text, query, ts


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def used(tmp_path, write_project) -> Path:
    """A project of two metrics after a few pulls that revised and removed values."""
    make_orders(
        tmp_path / "shop.duckdb",
        [(i, ts(f"2026-10-{20 + i % 9:02d}T10:00"), ["DE", "FR", "ÜS"][i % 3], float(i)) for i in range(60)],
    )
    other = project_text(
        metric="weekly", grain="week", lookback='"4w"', sql=DAILY_SQL.replace("'day'", "'week'")
    ).split("\n\n", 2)[2]
    path = write_project(project_text() + "\n" + other)
    project = load_project(path)
    with Store(project.store_path) as store:
        for day, change in (
            (27, "amount = amount + 1"),
            (28, "amount = amount * 2"),
            (29, "country = 'DE'"),
            (30, "amount = amount - 1"),
        ):
            for metric in ("daily_orders", "weekly"):
                run = run_pull(
                    project,
                    metric,
                    store,
                    as_of=ts(f"2026-10-{day}T12:00"),
                    clock=lambda d=day: ts(f"2026-10-{d}T12:00"),
                )  # type: ignore[misc]
                assert run.status == "succeeded", run.error
            con = duckdb.connect(str(tmp_path / "shop.duckdb"))
            con.execute(f"UPDATE orders SET {change} WHERE order_id % 4 = {day % 4}")
            con.close()
    return path


def contents(path: Path) -> dict[str, object]:
    """Every row of every table (a large table as its count and a sum of row hashes), and
    the sequences' next values."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        found: dict[str, object] = {}
        for table in TABLES:
            count = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            found[table] = (
                sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                if count < 10_000
                else con.execute(f"SELECT count(*), sum(hash({table})) FROM {table}").fetchall()
            )
        found["sequences"] = con.execute(
            "SELECT sequence_name, last_value, start_value FROM duckdb_sequences() ORDER BY 1"
        ).fetchall()
        return found
    finally:
        con.close()


def test_store_stats_counts_by_metric(used):
    project = load_project(used)
    code, out, err = cli("store", "stats", "--project", str(used), "--json")
    assert code == 0, err
    stats = json.loads(out)
    assert list(stats) == ["path", "bytes", "free_bytes", "runs", "versions", "values", "metrics"]
    con = duckdb.connect(str(project.store_path), read_only=True)
    expected = {
        m: (runs, versions, values)
        for m, runs, versions, values in con.execute("""
        SELECT metric, (SELECT count(*) FROM runs r WHERE r.metric = m.metric),
               (SELECT count(*) FROM versions v WHERE v.metric = m.metric),
               (SELECT count(*) FROM current c WHERE c.metric = m.metric)
        FROM (SELECT DISTINCT metric FROM runs) m""").fetchall()
    }
    con.close()
    assert {m["metric"]: (m["runs"], m["versions"], m["values"]) for m in stats["metrics"]} == expected
    assert stats["runs"] == 8 and stats["versions"] == sum(v for _, v, _ in expected.values())
    assert stats["bytes"] == project.store_path.stat().st_size
    assert 0 < sum(m["bytes"] for m in stats["metrics"]) <= stats["bytes"]
    daily = next(m for m in stats["metrics"] if m["metric"] == "daily_orders")
    assert daily["revised_values"] > 0 and daily["first_bucket"].startswith("2026-10-")
    code, out, _ = cli("store", "stats", "--project", str(used))
    assert code == 0 and "8 runs" in out and "daily_orders" in out and "weekly" in out


def test_compact_keeps_every_run_and_version_and_the_ids_go_on(used):
    project = load_project(used)
    before = contents(project.store_path)
    size = project.store_path.stat().st_size
    code, out, err = cli("store", "compact", "--project", str(used))
    assert code == 0, err
    assert "every run and version kept" in out
    assert contents(project.store_path) == before
    assert project.store_path.stat().st_size <= size
    assert not project.store_path.with_name("lookback.duckdb.compact").exists()
    with Store(project.store_path) as store:  # the next run gets the next id and commit
        run = run_pull(
            project, "daily_orders", store, as_of=ts("2026-10-30T13:00"), clock=lambda: ts("2026-10-30T13:00")
        )
        assert run.status == "succeeded" and run.id == 9
        row = query(store, "SELECT max(commit_seq) FROM runs WHERE id < 9")[0][0]
        assert query(store, "SELECT commit_seq FROM runs WHERE id = 9")[0][0] == row + 1


def test_a_compaction_puts_each_metrics_current_values_together_again(used):
    """A pull adds the values of its new buckets after every other metric's; a compaction
    gathers each metric's values again, in bucket order, so that one metric is a range read."""
    project = load_project(used)

    def stored_order() -> list[tuple[str, object]]:
        con = duckdb.connect(str(project.store_path), read_only=True)
        try:
            return con.execute("SELECT metric, bucket FROM current ORDER BY rowid").fetchall()
        finally:
            con.close()

    before = stored_order()
    assert before != sorted(before)  # the pulls of the two metrics took turns
    code, _out, err = cli("store", "compact", "--project", str(used))
    assert code == 0, err
    assert stored_order() == sorted(before)


def grow(path: Path, versions: int) -> None:
    """Add ``versions`` versions of old buckets, so that a copy of the store takes a while."""
    with Store(path) as store, store.reading() as cur:
        cur.execute(
            "INSERT INTO versions SELECT 'daily_orders', '{\"country\":\"X' || (i % 5000) || "
            "'\"}', 'orders', TIMESTAMP '2020-01-01' + to_days(CAST(i // 5000 AS INTEGER)), 1,"
            " i, false, false, TIMESTAMP '2020-01-02', CAST(i AS VARCHAR), false FROM range(?) t(i)",
            [versions],
        )


def test_a_compaction_killed_halfway_leaves_the_store_whole(used):
    project = load_project(used)
    grow(project.store_path, 4_000_000)
    before = contents(project.store_path)
    fresh = project.store_path.with_name("lookback.duckdb.compact")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen(
        [sys.executable, "-m", "lookback_gui.cli", "store", "compact", "--project", str(used)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + PROCESS_S
    while not (fresh.exists() and fresh.stat().st_size > 0) and process.poll() is None:
        assert time.monotonic() < deadline
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.002)  # or until the compaction ends
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL, "the compaction finished before the kill"
    assert fresh.exists()  # killed while it wrote the copy
    assert contents(project.store_path) == before
    code, out, err = cli("store", "compact", "--project", str(used))  # and the next one works
    assert code == 0, err
    assert not fresh.exists()
    assert contents(project.store_path) == before


def test_a_compaction_waits_for_the_store_and_gives_up_naming_the_holder(used):
    project = load_project(used)
    before = contents(project.store_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "LOOKBACK_STORE_WAIT": "1"}
    with Store(project.store_path) as store, store.reading():  # this process is using it
        done = subprocess.run(
            [sys.executable, "-m", "lookback_gui.cli", "store", "compact", "--project", str(used)],
            env=env,
            capture_output=True,
            text=True,
            timeout=PROCESS_S,
        )
    assert done.returncode == 1
    assert "error:" in done.stderr and f"PID {os.getpid()}" in done.stderr
    assert contents(project.store_path) == before
