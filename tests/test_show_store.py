"""``lookback show RUN``, the daemon's log of warnings, and stores that are damaged or cannot be
written."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lookback_gui.cli import describe_event
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store
from lookback_gui.core.store.events import RunFinished
from tests.helpers import run_cli, ts


def test_show_tells_one_run_in_full(project, tmp_path):
    shop = tmp_path / "shop.duckdb"
    shop.rename(tmp_path / "away.duckdb")
    project.write_text(project.read_text().replace("retries = 0", "retries = 1"))
    loaded = load_project(project)
    delays: list[float] = []
    with Store(loaded.store_path) as store:
        failed = run_pull(loaded, "daily_orders", store, as_of=ts("2026-10-30T12:00"), sleep=delays.append)
    (tmp_path / "away.duckdb").rename(shop)
    assert run_cli("pull", "daily_orders", "--project", str(project), "--as-of", "2026-10-30T12:00")[0] == 0

    code, out, _ = run_cli("show", str(failed.id), "--project", str(project), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["id"] == failed.id and data["status"] == "failed" and data["attempts"] == 2
    assert data["window_start"] == "2026-10-24T00:00:00" and data["as_of"] == "2026-10-30T12:00:00+00:00"
    assert "known_at" in data
    assert [t["attempt"] for t in data["tries"]] == [1, 2]
    assert "file not found: shop.duckdb" in data["tries"][0]["error"]
    assert data["tries"][0]["retry_after_s"] == pytest.approx(delays[0], abs=0.01)
    assert data["tries"][1]["retry_after_s"] is None
    assert data["parameters"] == {"window_end": "2026-10-31T00:00:00", "window_start": "2026-10-24T00:00:00"}
    assert "FROM orders" in data["sql"]
    assert any("attempt 1 failed" in line["message"] for line in data["log"])

    code, out, _ = run_cli("show", "2", "--project", str(project))
    assert code == 0
    assert out.startswith("run 2 daily_orders succeeded (command-line); times in local zone (UTC")
    for text in (
        "window      [2026-10-24 00:00, 2026-10-31 00:00) (buckets in UTC, day, partial",
        "attempt 1 succeeded",
        "2 rows: 4 new, 0 revised",
        "ok    empty (error)",
        "$window_start = 2026-10-24 00:00:00",
        "  sql\n    SELECT date_trunc",
    ):
        assert text in out, text

    code, _, err = run_cli("show", "99", "--project", str(project))
    assert code == 2 and "no run 99" in err


def test_the_daemon_log_prints_a_runs_warnings(project):
    project.write_text(
        project.read_text().replace("WHERE ordered_at >= $window_start AND ordered_at < $window_end", "")
    )
    loaded = load_project(project)
    with Store(loaded.store_path) as store:
        run = run_pull(loaded, "daily_orders", store, as_of=ts("2026-10-27T12:00"))
    assert run.status == "succeeded" and run.warnings
    lines = describe_event(RunFinished(run)).splitlines()
    assert lines[0].startswith(f"run {run.id} daily_orders succeeded")
    assert "warning: daily_orders: 1 row(s) outside the window" in lines[1]


def zero_blocks(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.seek(4096)
        handle.write(b"\0" * 8192)


def test_a_damaged_store_names_the_file_and_what_to_do(project, tmp_path):
    assert run_cli("pull", "daily_orders", "--project", str(project), "--as-of", "2026-10-30T12:00")[0] == 0
    store = tmp_path / "lookback.duckdb"
    zero_blocks(store)
    for command in (["runs"], ["history", "daily_orders"], ["pull", "daily_orders"]):
        code, _, err = run_cli(*command, "--project", str(project))
        assert code == 1
        assert err.startswith(f"error: store {store} is damaged (")
        assert "restore it from a backup, or move it aside" in err
        assert "bug" not in err and "in use by another process" not in err
        assert err.count("\n") == 1


@contextlib.contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make ``paths`` unwritable, even for root (immutable), until the block ends."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("needs chattr to make a file read-only for root")
        for path in paths:
            if subprocess.run(["chattr", "+i", str(path)], check=False).returncode:
                pytest.skip("this file system cannot make files immutable")
        try:
            yield
        finally:
            for path in paths:
                subprocess.run(["chattr", "-i", str(path)], check=False)
    else:
        modes = {p: p.stat().st_mode for p in paths}
        for path in paths:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)


def test_read_only_commands_work_on_a_read_only_store(project, tmp_path):
    assert run_cli("pull", "daily_orders", "--project", str(project), "--as-of", "2026-10-30T12:00")[0] == 0
    store = tmp_path / "lookback.duckdb"
    folder = tmp_path / "store"
    folder.mkdir()
    store.rename(folder / "lookback.duckdb")
    project.write_text(
        project.read_text().replace('path = "lookback.duckdb"', 'path = "store/lookback.duckdb"')
    )
    with read_only(folder / "lookback.duckdb", folder):
        for command in (
            ["runs", "--json"],
            ["history", "daily_orders", "--json"],
            ["revisions", "daily_orders"],
            ["alerts"],
            ["advise", "daily_orders"],
            ["show", "1"],
        ):
            code, out, err = run_cli(*command, "--project", str(project))
            assert code == 0, (command, err)
        assert len(json.loads(run_cli("runs", "--json", "--project", str(project))[1])) == 1
        code, _, err = run_cli("pull", "daily_orders", "--project", str(project))
        assert code == 1 and err.startswith("error: store ")
