"""Damaged environments: a full disk and a store with damaged blocks.

Read-only commands work on a full disk, even before the store's lock files exist; a command
that writes says the disk is full, naming the folder; and whatever goes wrong, every line a
command prints on stderr is an ``error:`` or ``warning:`` line.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers import run_cli

READERS = [
    ["runs"],
    ["history", "daily_orders"],
    ["revisions", "daily_orders"],
    ["store", "stats"],
    ["advise", "daily_orders"],
    ["nowcast", "daily_orders"],
    ["show", "1"],
    ["alerts"],
]


def pulled_project(folder: Path) -> Path:
    """The project of the shop fixture in ``folder``, after two pulls."""
    from tests.helpers import make_orders, project_text, ts

    folder.mkdir(parents=True, exist_ok=True)
    make_orders(
        folder / "shop.duckdb",
        [(1, ts("2026-10-25T10:00"), "DE", 10.0), (2, ts("2026-10-29T11:00"), "FR", 5.0)],
    )
    path = folder / "lookback.toml"
    path.write_text(project_text())
    for as_of in ("2026-10-30T12:00", "2026-10-31T12:00"):
        assert run_cli("pull", "daily_orders", "--project", str(path), "--as-of", as_of)[0] == 0
    return path


def fill(folder: Path) -> None:
    """Take every free block (and inode) of the file system of ``folder``."""
    with open(folder / "filler", "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    for index in range(10_000):
        try:
            (folder / f"inode{index}").touch()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
            return


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real file system of 8 MB and 16 inodes (a tmpfs), mounted for the test."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,nr_inodes=16", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def lookback(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lookback_gui.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def one_line(err: str, text: str) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert text in err and "unexpected" not in err and "bug" not in err, err


@pytest.mark.parametrize("lock_files", [False, True], ids=["no lock files", "lock files"])
def test_a_full_disk_lets_readers_read_and_tells_writers(tmp_path, small_disk, lock_files):
    pulled_project(tmp_path / "made")
    for name in ("lookback.toml", "shop.duckdb", "lookback.duckdb"):
        shutil.copy(tmp_path / "made" / name, small_disk / name)
    if lock_files:  # left by an earlier command, before the disk filled up
        for suffix in (".lock", ".want"):
            (small_disk / f"lookback.duckdb{suffix}").touch()
    fill(small_disk)
    assert shutil.disk_usage(small_disk).free == 0
    for args in READERS:
        done = lookback(*args, cwd=small_disk)
        assert done.returncode == 0, (args, done.stderr)
        assert done.stderr == "", (args, done.stderr)
    assert "daily_orders  command-line  succeeded" in lookback("runs", cwd=small_disk).stdout
    done = lookback("pull", "daily_orders", cwd=small_disk)
    assert done.returncode == 1
    one_line(done.stderr, f"the disk holding {small_disk} is full")
    done = lookback("store", "compact", cwd=small_disk)
    assert done.returncode == 1
    one_line(done.stderr, f"the disk holding {small_disk} is full")
    assert not (small_disk / "lookback.duckdb.compact").exists()
    assert "2 runs" in lookback("store", "stats", cwd=small_disk).stdout  # nothing lost


def test_lock_files_that_cannot_be_created_do_not_stop_a_reader(tmp_path, monkeypatch):
    """The same at the boundary, where no file system can be mounted: creating a file fails
    with ENOSPC."""
    import builtins

    import lookback_gui.core.store.lock as storelock

    project = pulled_project(tmp_path)
    for suffix in (".lock", ".want"):
        (tmp_path / f"lookback.duckdb{suffix}").unlink()

    def full_open(path, mode="r", *args, **kwargs):
        if "a" in mode and not Path(path).exists():
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return builtins.open(path, mode, *args, **kwargs)

    monkeypatch.setattr(storelock, "open", full_open, raising=False)
    code, out, err = run_cli("runs", "--project", str(project))
    assert code == 0 and err == "" and "succeeded" in out
    code, out, err = run_cli("pull", "daily_orders", "--project", str(project))
    assert code == 1
    one_line(err, f"the disk holding {tmp_path} is full (no space left for its lock file")


@pytest.mark.slow
def test_a_pull_on_a_damaged_store_prints_only_error_and_warning_lines(tmp_path):
    """Blocks of the store zeroed one at a time: whatever the pull meets, it says so in
    ``error:`` / ``warning:`` lines (the run's summary goes to stdout)."""
    from lookback_gui.core.demo import write_demo

    now = datetime(2026, 11, 20, 12, 0)
    project = write_demo(tmp_path / "demo", now=now)
    for days in (3, 2):
        as_of = (now - timedelta(days=days)).isoformat()
        assert run_cli("pull", "daily_orders", "--project", str(project), "--as-of", as_of)[0] == 0
    store = tmp_path / "demo" / "lookback.duckdb"
    clean = store.read_bytes()
    block = 262_144
    said = []
    for index in range((len(clean) - 12_288) // block):
        data = bytearray(clean)
        start = 12_288 + index * block
        data[start : start + block] = bytes(block)
        store.write_bytes(bytes(data))
        done = lookback(
            "pull",
            "daily_orders",
            "--project",
            str(project),
            "--as-of",
            (now - timedelta(days=1)).isoformat(),
            cwd=tmp_path,
        )
        for line in done.stderr.splitlines():
            assert line.startswith(("error: ", "warning: ")), (index, done.stderr)
        for line in done.stdout.splitlines():
            assert line.startswith("run "), (index, done.stdout)
        assert "Traceback" not in done.stderr
        assert "unexpected" not in done.stderr and "this is a bug" not in done.stderr, (index, done.stderr)
        said.append(done.stderr)
    assert any(s.startswith("warning: daily_orders: its alert rules were not evaluated") for s in said), said


def test_a_log_record_of_the_core_is_a_warning_or_error_line(project, tmp_path):
    """A record the core logs where no handler listens (Python would print it bare) comes out
    of a command as a ``warning:`` / ``error:`` line; with --verbose an error's traceback
    follows."""
    script = (
        "import logging, sys\n"
        "from lookback_gui import cli\n"
        "from lookback_gui.cli import reads\n"
        "def noisy(args, out, err):\n"
        "    log = logging.getLogger('lookback_gui.core.pull')\n"
        "    log.warning('alerts of daily_orders: the store is damaged')\n"
        "    try:\n"
        "        1 / 0\n"
        "    except ZeroDivisionError:\n"
        "        log.exception('a planned pull of daily_orders failed')\n"
        "    return 0\n"
        "reads.cmd_runs = noisy\n"
        "sys.exit(cli.main(sys.argv[1:]))\n"
    )
    for verbose in ([], ["--verbose"]):
        done = subprocess.run(
            [sys.executable, "-c", script, "runs", "--project", str(project), *verbose],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        lines = done.stderr.splitlines()
        assert lines[:2] == [
            "warning: alerts of daily_orders: the store is damaged",
            "error: a planned pull of daily_orders failed",
        ], lines
        if verbose:
            assert "ZeroDivisionError" in done.stderr
        else:
            assert len(lines) == 2
