"""The command line under pressure: Ctrl+C, out-of-range input, huge backfills, killed pulls'
leftovers and failing alert commands."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb
import psutil
import pytest

from lookback_gui.core.project import load_project
from lookback_gui.core.pull import (
    STAGING_PREFIX,
    backfill_chunk_count,
    backfill_windows,
    run_pull,
)
from lookback_gui.core.store import Store
from tests.helpers import PROCESS_S, lookback_process, run_cli, ts

SLOW = (
    "SELECT date_trunc('day', ordered_at) AS bucket, count(*) AS orders "
    "FROM orders, range(100000000000) WHERE ordered_at >= $window_start "
    "AND ordered_at < $window_end GROUP BY ALL"
)


def add_slow_metric(project: Path) -> None:
    project.write_text(
        project.read_text()
        + textwrap.dedent(f'''
        [metrics.slow]
        source = "shop"
        grain = "day"
        lookback = "7d"
        retries = 0
        sql = "{SLOW}"

        [metrics.slow_replay]
        source = "shop"
        grain = "day"
        lookback = "7d"
        every = "1d"
        retries = 0
        sql = "{SLOW} HAVING max(ordered_at) <= $as_of"
    ''')
    )


def wait_for_staging(folder: Path, proc) -> None:
    """Wait until the process has a pull under way (its staging folder exists)."""
    deadline = time.monotonic() + PROCESS_S
    while not any(p.name.startswith(f"{STAGING_PREFIX}{proc.pid}-") for p in folder.iterdir()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the slow pull never started"
        psutil.Process(proc.pid).cpu_percent(interval=0.05)


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["pull", "slow", "--as-of", "2026-10-30T12:00"],
        ["backfill", "slow", "--from", "2026-10-22", "--to", "2026-11-05", "--workers", "1"],
        ["replay", "slow_replay", "--from", "2026-10-28", "--to", "2026-10-31"],
    ],
)
def test_ctrl_c_cancels_the_pull_records_it_cancelled_and_exits_130(project, tmp_path, command):
    add_slow_metric(project)
    temp = tmp_path / "temp"
    temp.mkdir()
    proc = lookback_process(*command, "--project", str(project), env={**os.environ, "TMPDIR": str(temp)})
    wait_for_staging(temp, proc)
    os.kill(proc.pid, signal.SIGINT)
    sent = time.monotonic()
    out, err = proc.communicate(timeout=PROCESS_S)
    assert time.monotonic() - sent < 5, "the pull did not stop within a few seconds"
    assert proc.returncode == 130, err
    assert "internal error" not in out + err and "this is a bug" not in err
    assert "error: " in err and "cancelled" in err
    with Store(tmp_path / "lookback.duckdb") as store:
        runs = store.runs()
    assert runs and all(r.status == "cancelled" for r in runs), [r.status for r in runs]
    assert len(runs) == 1  # a backfill or replay starts no pull after Ctrl+C
    assert not list(temp.iterdir())  # its staging folder went with it


# -- out-of-range input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pull", "daily_orders", "--as-of", "9999-12-31T23:59"], "--as-of: '9999-12-31T23:59' is"),
        (["pull", "daily_orders", "--as-of", "0001-01-01"], "out of range"),
        (["pull", "daily_orders", "--as-of", "-99999999d"], "out of range"),
        (["pull", "daily_orders", "--as-of", "-9999999999999999d"], "too long a duration"),
        (["pull", "daily_orders", "--as-of", "2199-01-01"], "is in the future"),
        (["pull", "daily_orders", "--as-of", ""], "an empty text is not a timestamp"),
        (["backfill", "daily_orders", "--from", "0001-01-01", "--to", "9999-12-31"], "out of range"),
        (
            ["backfill", "daily_orders", "--from", "2026-10-01", "--to", "2026-10-08", "--workers", "0"],
            "--workers: must be at least 1, not 0",
        ),
        (
            ["backfill", "daily_orders", "--from", "2026-10-01", "--to", "2026-10-08", "--workers=-5"],
            "--workers: must be at least 1, not -5",
        ),
        (["schedule", "--workers", "0"], "--workers: must be at least 1, not 0"),
        (["schedule", "--workers=-5"], "--workers: must be at least 1, not -5"),
    ],
)
def test_out_of_range_input_is_a_usage_error(project, args, message):
    code, out, err = run_cli(*args, "--project", str(project))
    assert code == 2, err
    assert err.startswith("error: ") and message in err
    assert "unexpected" not in err and "bug" not in err
    assert not (project.parent / "lookback.duckdb").exists()


@pytest.mark.parametrize(
    ("lookback", "grain"),
    [("1000000", "day"), ('"99999999999999999d"', "day"), ("5000", "month"), ("60000000", "minute")],
)
def test_a_lookback_beyond_100_years_is_refused_by_the_project_check(
    write_project, tmp_path, lookback, grain
):
    path = write_project(lookback=lookback, grain=grain)
    code, out, err = run_cli("check", "--project", str(path))
    assert code == 2
    assert "metrics.daily_orders.lookback" in err
    assert "too long" in err


# -- backfill guard -----------------------------------------------------------------------------


def test_a_huge_backfill_says_how_many_pulls_and_needs_yes(project, tmp_path):
    text = (
        project.read_text()
        .replace('grain = "day"', 'grain = "minute"')
        .replace('lookback = "7d"', 'lookback = "1h"')
    )
    project.write_text(text)
    started = time.monotonic()
    code, out, err = run_cli(
        "backfill", "daily_orders", "--project", str(project), "--from", "1900-01-01", "--to", "2100-01-01"
    )
    assert time.monotonic() - started < 5
    assert code == 2
    assert "would make 1753176 chunk(s) of up to 60 minute bucket(s), one pull each" in err
    assert "more than 1000 is refused unless confirmed with --yes" in err
    assert not (tmp_path / "lookback.duckdb").exists()


def test_chunk_count_matches_the_chunks(project):
    config = load_project(project).metric("daily_orders")
    for start, end in (
        ("2026-10-01", "2026-10-08"),
        ("2026-10-01T05:00", "2026-11-30"),
        ("2026-01-01", "2026-01-01T00:01"),
    ):
        assert backfill_chunk_count(config, ts(start), ts(end)) == len(
            backfill_windows(config, ts(start), ts(end))
        )


def test_a_backfill_from_before_the_data_leaves_no_failed_runs(project, tmp_path):
    code, out, err = run_cli(
        "backfill", "daily_orders", "--project", str(project), "--from", "2026-09-01", "--to", "2026-10-31"
    )
    assert code == 0, err
    assert "9 chunk(s)" in out
    assert "warning: daily_orders: the query returned no rows" in err
    with Store(tmp_path / "lookback.duckdb") as store:
        assert {r.status for r in store.runs()} == {"succeeded"}
        assert len(store.history("daily_orders")) == 4


def test_an_empty_backfill_chunk_over_stored_values_still_fails(project, tmp_path):
    assert run_cli("pull", "daily_orders", "--project", str(project), "--as-of", "2026-10-30T12:00")[0] == 0
    con = duckdb.connect(str(tmp_path / "shop.duckdb"))
    con.execute("DELETE FROM orders")
    con.close()
    code, out, err = run_cli(
        "backfill", "daily_orders", "--project", str(project), "--from", "2026-10-11", "--to", "2026-10-31"
    )
    assert code == 1
    assert "error: 2 of 3 backfill chunk(s) of daily_orders failed" in err
    with Store(tmp_path / "lookback.duckdb") as store:
        statuses = [r.status for r in reversed(store.runs())]
        assert len(store.history("daily_orders")) == 4
    assert statuses == ["succeeded", "succeeded", "failed", "failed"]


# -- leftovers of killed pulls -----------------------------------------------------------------


def test_the_next_pull_removes_staging_folders_of_dead_processes(project, tmp_path, monkeypatch):
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    dead = lookback_process("--help")
    dead.communicate()
    me = psutil.Process()
    leftovers = {
        "dead": temp / f"{STAGING_PREFIX}{dead.pid}-{int(time.time()) - 5}-abc",
        "reused_pid": temp / f"{STAGING_PREFIX}{me.pid}-{int(me.create_time()) - 999}-abc",
        "alive": temp / f"{STAGING_PREFIX}{me.pid}-{int(me.create_time())}-abc",
        "other": temp / "someone-elses-folder",
    }
    for folder in leftovers.values():
        folder.mkdir()
        (folder / "result.parquet").write_bytes(b"x" * 1000)
    project_ = load_project(project)
    with Store(project_.store_path) as store:
        assert run_pull(project_, "daily_orders", store, as_of=ts("2026-10-30T12:00")).status == "succeeded"
    assert not leftovers["dead"].exists() and not leftovers["reused_pid"].exists()
    assert leftovers["alive"].exists() and leftovers["other"].exists()


# -- alert commands -----------------------------------------------------------------------------


def test_a_failing_alert_command_is_a_warning_in_stderr_and_the_run_log(project, tmp_path):
    project.write_text(
        project.read_text()
        + textwrap.dedent(f'''
        [[metrics.daily_orders.alerts]]
        kind = "threshold"
        name = "few orders"
        measure = "orders"
        below = 100
        command = "{sys.executable} -c 'import sys; sys.exit(3)'"
    ''')
    )
    code, out, err = run_cli("pull", "daily_orders", "--project", str(project), "--as-of", "2026-10-30T12:00")
    assert code == 0
    lines = [line for line in err.splitlines() if line]
    assert lines and all(line.startswith("warning: ") for line in lines), err
    assert any("alert command" in line and "exited 3" in line for line in lines)
    with Store(tmp_path / "lookback.duckdb") as store:
        log = store.run_log(store.runs()[0].id)
    assert any(line.level == "warning" and "exited 3" in line.message for line in log)


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('every = "99999999d"', "every"),
        ('retry_max = "9999999999d"', "retry_max"),
        ('audit_every = "1d"\naudit_factor = 99999999', "audit_factor"),
    ],
)
def test_durations_beyond_100_years_are_refused_by_the_project_check(write_project, extra, key):
    path = write_project(extra=extra)
    code, out, err = run_cli("check", "--project", str(path))
    assert code == 2
    assert f"metrics.daily_orders.{key}" in err and "too long" in err


def test_a_huge_limit_means_every_run(project):
    assert run_cli("pull", "daily_orders", "--project", str(project), "--as-of", "2026-10-30T12:00")[0] == 0
    code, out, err = run_cli("runs", "--limit", "99999999999999999999", "--project", str(project))
    assert code == 0, err
    assert "daily_orders" in out


@pytest.mark.slow
def test_ctrl_c_during_retry_failed_cancels_and_exits_130(project, tmp_path):
    add_slow_metric(project)
    broken = project.read_text().replace("FROM orders, range", "FROM orderz, range")
    project.write_text(broken)
    assert run_cli("pull", "slow", "--project", str(project), "--as-of", "2026-10-30T12:00")[0] == 1
    project.write_text(broken.replace("FROM orderz, range", "FROM orders, range"))
    temp = tmp_path / "temp"
    temp.mkdir()
    proc = lookback_process(
        "retry-failed", "slow", "--project", str(project), env={**os.environ, "TMPDIR": str(temp)}
    )
    wait_for_staging(temp, proc)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=PROCESS_S)
    assert proc.returncode == 130, err
    with Store(tmp_path / "lookback.duckdb") as store:
        assert [r.status for r in store.runs()] == ["cancelled", "failed"]
