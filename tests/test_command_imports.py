"""A command loads only what it needs: ``lookback`` as a process (as it is installed) never
loads pandas, and a command that only reads the store or pulls a metric without alert rules
loads no numpy either (each is a large part of a short command's time)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# the process as the ``lookback`` script runs it, writing the modules it loaded when it ends
RUN = """
import atexit, json, os, runpy, sys
def loaded():
    with open(os.environ["LOOKBACK_TEST_MODULES"], "w") as out:
        json.dump(sorted(m for m, v in sys.modules.items() if v is not None), out)
atexit.register(loaded)
sys.argv = ["lookback", *sys.argv[1:]]
runpy.run_module("lookback_gui.start", run_name="__main__")
"""


def loaded_by(tmp_path: Path, *args: str) -> set[str]:
    modules = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOOKBACK_TEST_MODULES": str(modules)}
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, text=True, env=env, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return {name.split(".")[0] for name in json.loads(modules.read_text())}


@pytest.fixture
def pulled(project: Path) -> Path:
    from lookback_gui.cli import main

    assert (
        main(
            ["pull", "daily_orders", "--project", str(project), "--as-of", "2026-10-30T12:00"],
            out=io.StringIO(),
            err=io.StringIO(),
        )
        == 0
    )
    return project


def test_the_help_loads_neither_duckdb_nor_numpy_nor_pandas(tmp_path):
    assert not {"duckdb", "numpy", "pandas", "PySide6"} & loaded_by(tmp_path, "--help")


@pytest.mark.parametrize(
    "command",
    [
        ["history", "daily_orders", "--json"],
        ["history", "daily_orders", "--csv"],
        ["revisions", "daily_orders", "--json"],
        ["runs", "--json"],
    ],
)
def test_a_read_of_the_store_loads_no_numpy_and_no_pandas(pulled, tmp_path, command):
    modules = loaded_by(tmp_path, *command, "--project", str(pulled))
    assert "duckdb" in modules
    assert not {"numpy", "pandas", "pyarrow", "PySide6"} & modules


def test_a_pull_without_alert_rules_loads_no_numpy_and_no_pandas(pulled, tmp_path):
    modules = loaded_by(
        tmp_path, "pull", "daily_orders", "--project", str(pulled), "--as-of", "2026-10-31T12:00"
    )
    assert not {"numpy", "pandas", "pyarrow", "PySide6"} & modules
