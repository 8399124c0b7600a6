"""Signals to the ``lookback`` program, sent to real processes: Ctrl+C at any moment is one
line and exit status 130; SIGTERM during a pull records its run ``cancelled`` and exits 143."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lookback_gui
from lookback_gui.core.store import Store
from tests.helpers import run_cli
from tests.test_cli_limits import add_slow_metric, wait_for_staging

PACKAGE = str(Path(lookback_gui.__file__).parent) + os.sep
# what the installed ``lookback`` script does
ENTRY = "import sys\nfrom lookback_gui.start import start\nsys.exit(start())"


def lookback(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", ENTRY, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )  # type: ignore[call-overload]


@pytest.mark.slow
def test_ctrl_c_in_the_first_moments_is_one_line_and_130(project, tmp_path):
    """Ctrl+C at random moments of a command that takes about 0.6 s on a quiet machine (while
    the program's modules load, while a query runs, or as it ends). Before Python has started
    the program at all (its own start-up, which no program can reach) Python itself answers;
    from the program's first line on, the answer is one ``error:`` line and status 130, or the
    command's own output if it finished first."""
    assert run_cli("pull", "daily_orders", "--project", str(project), "--as-of", "2026-10-30T12:00")[0] == 0
    command = ("history", "daily_orders", "--project", str(project))
    started = time.monotonic()
    proc = lookback(*command, cwd=tmp_path)
    proc.communicate(timeout=120)
    whole = time.monotonic() - started  # a busy machine stretches every phase alike
    rng = random.Random(20)
    reached = 0
    for trial in range(24):
        proc = lookback(*command, cwd=tmp_path)
        time.sleep(rng.uniform(0.1, 1) * whole)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        if (
            PACKAGE not in err
            and proc.returncode in (-signal.SIGINT, 1)
            and (not err or "KeyboardInterrupt" in err)
        ):
            continue  # Python's own start-up: the program had not begun
        reached += 1
        if proc.returncode == 0:  # it had finished before the signal came
            assert err == "" and "DE" in out
            continue
        assert proc.returncode == 130, (trial, proc.returncode, err)
        assert err == "error: interrupted by Ctrl+C\n", (trial, err)
    assert reached >= 4, "the signal never reached the program"


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["pull", "slow", "--as-of", "2026-10-30T12:00"],
        ["backfill", "slow", "--from", "2026-10-22", "--to", "2026-11-05", "--workers", "1"],
        ["replay", "slow_replay", "--from", "2026-10-28", "--to", "2026-10-31"],
    ],
)
def test_sigterm_records_the_run_cancelled_and_exits_143(project, tmp_path, command):
    add_slow_metric(project)
    temp = tmp_path / "temp"
    temp.mkdir()
    proc = lookback(*command, "--project", str(project), env={**os.environ, "TMPDIR": str(temp)})
    wait_for_staging(temp, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, (proc.returncode, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "cancelled by SIGTERM" in err and "recorded as cancelled" in err
    with Store(tmp_path / "lookback.duckdb") as store:
        runs = store.runs()
    assert [r.status for r in runs] == ["cancelled"]  # not "interrupted" at the next start


@pytest.mark.slow
def test_ctrl_c_during_a_store_copy_leaves_the_target_empty(tmp_path):
    """Ctrl+C while a store with a few million versions is written into an empty one."""
    import duckdb

    from tests.helpers import make_orders, project_text, ts

    make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-25T10:00"), "DE", 1.0)])
    source = tmp_path / "lookback.toml"
    source.write_text(project_text())
    assert run_cli("pull", "daily_orders", "--project", str(source), "--as-of", "2026-10-30T12:00")[0] == 0
    with Store(tmp_path / "lookback.duckdb") as store, store._db.write() as cur:
        cur.execute(
            "INSERT INTO versions SELECT v.* REPLACE (v.bucket - INTERVAL (i) DAY AS "
            "bucket) FROM versions v, range(1, 2000000) r(i)"
        )
    target = tmp_path / "other"
    target.mkdir()
    (target / "lookback.toml").write_text(project_text())
    proc = lookback(
        "store",
        "copy",
        "--to",
        str(target / "lookback.toml"),
        "--project",
        str(source),
        "--verbose",
        cwd=tmp_path,
    )
    assert proc.stderr is not None
    said = []
    for line in proc.stderr:  # --verbose says each step as it comes
        said.append(line)
        if line.startswith("writing") and "rows of versions" in line:
            break
    else:
        pytest.fail(f"the copy never wrote the versions: {said}")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert err.startswith("error: store copy cancelled by Ctrl+C; nothing was copied"), err
    assert err.count("\n") == 1 and "bug" not in err, err
    con = duckdb.connect(str(target / "lookback.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM versions").fetchone() == (0,)
    finally:
        con.close()
