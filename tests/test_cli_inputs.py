"""Inputs that are usage or project-file mistakes: each is refused with exit status 2 and one
clear ``error:`` line naming what is wrong, never taken as something else."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import duckdb
import pytest

from lookback_gui.core.project import load_project
from lookback_gui.core.pull.replay import count_replay_times, replay_times
from tests.helpers import make_orders, project_text, run_cli, ts


def one_error_line(code: int, err: str, message: str, status: int = 2) -> None:
    assert code == status, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert "unexpected" not in err and "bug" not in err


@pytest.fixture
def pulled(project: Path) -> Path:
    """The shop project after two pulls."""
    for as_of in ("2026-10-30T12:00", "2026-10-31T12:00"):
        assert run_cli("pull", "daily_orders", "--project", str(project), "--as-of", as_of)[0] == 0
    return project


# -- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["history", "daily_orders", "--as-known-at", ""], "--as-known-at: an empty text is not"),
        (["history", "daily_orders", "--as-known-at", "  "], "--as-known-at: an empty text is not"),
        (["runs", "--limit", "0"], "--limit: must be at least 1, not 0"),
        (["runs", "--limit", "-3"], "--limit: must be at least 1, not -3"),
        (
            ["vintages", "daily_orders", "--measure", "orders", "--series", "region=EU"],
            "metric daily_orders has no dimension 'region' (its dimensions: country)",
        ),
        (["vintages", "daily_orders"], "has several measures (orders, revenue); choose one"),
    ],
)
def test_a_mistaken_argument_is_a_usage_error(pulled, args, message):
    code, out, err = run_cli(*args, "--project", str(pulled))
    one_error_line(code, err, message)
    assert out == ""


def test_runs_with_a_limit_lists_that_many(pulled):
    code, out, _ = run_cli("runs", "--project", str(pulled), "--limit", "1", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [2]


def test_vintages_of_a_metric_without_values_says_so(project):
    code, _, err = run_cli("vintages", "daily_orders", "--project", str(project))
    one_error_line(code, err, "metric daily_orders has no values in the store yet; pull it first")
    assert "''" not in err


def test_an_empty_project_name_is_refused(pulled, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # lookback.toml is here: '' must not quietly mean it
    code, out, err = run_cli("runs", "--project", "")
    one_error_line(code, err, "--project is empty")
    code, out, err = run_cli("--project", " ", "runs")
    one_error_line(code, err, "--project is empty")


def test_a_device_is_not_a_project_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    there = Path("/dev/lookback.duckdb").exists()
    code, out, err = run_cli("runs", "--project", "/dev/null")
    one_error_line(code, err, "/dev/null: is not a regular file")
    assert Path("/dev/lookback.duckdb").exists() == there  # no store was made beside it


def test_the_demo_into_a_used_folder_is_a_usage_error(tmp_path):
    assert run_cli("demo", str(tmp_path / "demo"))[0] == 0
    code, _, err = run_cli("demo", str(tmp_path / "demo"))
    one_error_line(code, err, "lookback.toml already exists")
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli("demo", str(tmp_path / "file"))
    one_error_line(code, err, "is a file, not a folder")
    other = tmp_path / "other"
    other.mkdir()
    make_orders(other / "shop.duckdb", [])
    code, _, err = run_cli("demo", str(other))
    one_error_line(code, err, "shop.duckdb already exists")


# -- the project file ---------------------------------------------------------------------------


ALERT = '\n[[metrics.daily_orders.alerts]]\nkind = "failure"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            project_text().replace('path = "lookback.duckdb"', 'path = ""'),
            "store.path: the store's path is empty",
        ),
        (project_text() + ALERT + 'command = ""\n', "command: the command is empty"),
        (project_text() + ALERT + 'command = "   "\n', "command: the command is empty"),
        (
            project_text() + ALERT + 'command = "notify \'team"\n',
            "cannot be split like a shell line: no closing quotation",
        ),
        (
            project_text() + '[metrics.daily_orders.checks]\nneg = { measure = "orders", min = nan }\n',
            "checks.neg.min: expected a number, got nan",
        ),
        (
            project_text() + '[metrics.daily_orders.checks]\nneg = { measure = "orders", max = -nan }\n',
            "checks.neg.max: expected a number, got nan",
        ),
        (
            project_text() + ALERT + 'name = "down"\n' + ALERT + 'name = "down"\n',
            "alerts[1].name: another alert rule of this metric is already named 'down'",
        ),
        (
            project_text().replace("retries = 0", "retries = 1000000"),
            "retries: must be at most 20, not 1000000",
        ),
        (
            project_text(source='type = "duckdb"\npath = "shop.duckdb"\nconcurrency = 100000'),
            "concurrency: must be at most 64, not 100000",
        ),
        (
            project_text(extra="change_probe = \"ATTACH 'other.duckdb' AS o\""),
            "change_probe: the change_probe is an ATTACH statement",
        ),
        (project_text(extra='change_probe = "SELECT 1; SELECT 2"'), "the change_probe holds 2 statements"),
    ],
)
def test_a_project_file_mistake_is_refused_naming_its_line(write_project, text, message):
    path = write_project(text)
    code, out, err = run_cli("runs", "--project", str(path))
    one_error_line(code, err, message)
    assert err.startswith(f"error: {path}:")  # the file and its line
    code, out, err = run_cli("check", "--project", str(path))
    one_error_line(code, err, message)


def test_the_bounds_themselves_are_accepted(write_project):
    text = project_text(source='type = "duckdb"\npath = "shop.duckdb"\nconcurrency = 64')
    project = load_project(write_project(text.replace("retries = 0", "retries = 20")))
    assert project.metrics["daily_orders"].retries == 20
    assert project.sources["shop"].concurrency == 64


def test_a_statement_is_named_with_its_article(project, tmp_path):
    text = project_text(sql="ATTACH 'other.duckdb' AS o")
    project.write_text(text)
    code, out, err = run_cli("check", "--project", str(project))
    assert code == 1
    assert "the SQL is an ATTACH statement" in err and "a ATTACH" not in err


@pytest.mark.postgres
def test_check_says_a_missing_password_once(write_project, monkeypatch):
    monkeypatch.delenv("LOOKBACK_TEST_UNSET_PASSWORD", raising=False)
    path = write_project(
        project_text(
            source='type = "postgres"\ndsn = "host=127.0.0.1 port=5432 dbname=test user=postgres"\n'
            'password_env = "LOOKBACK_TEST_UNSET_PASSWORD"'
        )
    )
    code, out, err = run_cli("check", "--project", str(path))
    assert code == 1
    assert err.count("error:") == 1 and err.count("\n") == 1, err
    assert "LOOKBACK_TEST_UNSET_PASSWORD" in err
    assert "metric daily_orders: not tried (its source shop failed)" in out


# -- a source file written by a newer DuckDB ----------------------------------------------------


def newer_duckdb_file(path: Path, version: int = 999) -> None:
    """A DuckDB file whose header says it was written with storage version ``version``: the
    version sits after the magic bytes, and the header's checksum is made again to match."""
    make_orders(path, [(1, ts("2026-10-29T10:00"), "DE", 1.0)])
    data = bytearray(path.read_bytes())
    assert data[8:12] == b"DUCK"
    struct.pack_into("<Q", data, 12, version)
    checksum = 5381
    for (word,) in struct.iter_unpack("<Q", bytes(data[8:4096])):
        checksum ^= (word * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    struct.pack_into("<Q", data, 0, checksum)
    path.write_bytes(bytes(data))
    with pytest.raises(duckdb.Error, match="version number 999"):
        duckdb.connect(str(path), read_only=True)


def test_a_source_written_by_a_newer_duckdb_fails_at_once(write_project, tmp_path):
    newer_duckdb_file(tmp_path / "shop.duckdb")
    path = write_project(project_text().replace("retries = 0", 'retries = 4\nretry_base = "1m"'))
    started = time.monotonic()
    code, out, err = run_cli("pull", "daily_orders", "--project", str(path))
    assert time.monotonic() - started < 50  # a retry would wait for minutes
    one_error_line(code, err, "was written by a newer DuckDB (storage version 999", status=1)
    assert "shop.duckdb" in err and duckdb.__version__ in err
    assert "after 1 attempt" in out
    code, out, err = run_cli("check", "--project", str(path))
    assert code == 1 and err.count("error:") == 1 and "newer DuckDB" in err


# -- alert rules: one way to write their names --------------------------------------------------


def test_a_rule_is_found_by_kind_and_position_even_when_it_has_a_name(pulled):
    threshold = ALERT.replace("failure", "threshold") + 'measure = "orders"\nabove = 0\n'
    pulled.write_text(pulled.read_text() + ALERT + 'name = "outage"\n' + threshold)
    for reference in ("threshold#2", "threshold #2", "failure#1", "outage"):
        code, out, err = run_cli("alerts", "--project", str(pulled), "--try", "daily_orders", reference)
        if reference.startswith("threshold"):
            assert code == 0, err
            assert out.startswith("daily_orders / threshold#2 (threshold)"), out
        else:
            one_error_line(code, err, "is a failure rule")
    code, _, err = run_cli("alerts", "--project", str(pulled), "--try", "daily_orders", "x#9")
    one_error_line(code, err, "its rules: 'outage' (failure#1), 'threshold#2'")


def test_an_alert_state_written_the_old_way_is_read_the_new_way(pulled, tmp_path):
    from lookback_gui.core.store import Store
    from lookback_gui.core.store.records import AlertState

    with Store(tmp_path / "lookback.duckdb") as store:
        with store._db.write() as cur:
            cur.execute(
                "INSERT INTO alerts VALUES ('daily_orders', 'failure #1', 'failure', "
                "'firing', TIMESTAMPTZ '2026-10-30 12:00:00+00', 'down')"
            )
        assert [s.rule for s in store.alert_states()] == ["failure#1"]
        assert store.alert_state("daily_orders", "failure#1").state == "firing"
        store.set_alert_state(
            AlertState("daily_orders", "failure#1", "failure", "resolved", ts("2026-10-31T12:00"), "up")
        )
        assert [(s.rule, s.state) for s in store.alert_states()] == [("failure#1", "resolved")]


# -- ranges -------------------------------------------------------------------------------------


def replay_project(write_project, schedule: str) -> Path:
    sql = (
        "SELECT date_trunc('day', ordered_at) AS bucket, count(*) AS orders FROM orders "
        "WHERE ordered_at >= $window_start AND ordered_at < $window_end "
        "AND ordered_at <= $as_of GROUP BY ALL"
    )
    return write_project(project_text(sql=sql, extra=schedule))


def test_a_replay_over_a_century_is_refused_at_once(write_project):
    path = replay_project(write_project, 'schedule = "*/5 * * * *"')
    started = time.monotonic()
    code, out, err = run_cli(
        "replay", "daily_orders", "--project", str(path), "--from", "1900-01-01", "--to", "now"
    )
    elapsed = time.monotonic() - started
    one_error_line(code, err, "pulls (more than 1000); narrow the range, or add --yes")
    count = int(err.split("would make ")[1].split(" pulls")[0].replace(",", ""))
    assert count > 56 * 365 * 288  # the cron trigger's times begin in 1970: 288 a day since
    assert elapsed < 30, f"took {elapsed:.1f} s to refuse"  # listing them takes minutes


@pytest.mark.parametrize(
    "schedule",
    [
        'schedule = "*/5 * * * *"',
        'schedule = "0 6 * * *"',
        'schedule = "15,45 */3 * * 1-5"',
        'schedule = "0 0 1,15 * *"',
        'schedule = "30 2 * 2-4 sun"',
        'schedule = "0 0 29 2 *"',
        'schedule = "7 9-17/4 */10 jan-jun *"',
        'schedule = "0 6 13 * fri"',
        'schedule = "5 4 */3 jan-mar mon-wed"',
        'schedule = "0 6 * * 0"',
        'every = "7h"',
        'every = "1d"',
    ],
)
@pytest.mark.parametrize(
    "span",
    [
        ("2026-10-03T05:17", "2026-10-03T23:00"),
        ("2026-01-30T05:17", "2026-05-02T01:00"),
        ("2023-12-31T23:59", "2024-03-03T00:00"),
        ("1969-12-25T00:00", "1972-03-02T00:00"),
    ],
)
def test_the_count_of_replay_pulls_is_the_number_of_scheduled_times(write_project, schedule, span):
    config = load_project(replay_project(write_project, schedule)).metrics["daily_orders"]
    start, end = ts(span[0]), ts(span[1])
    assert count_replay_times(config, start, end) == len(replay_times(config, start, end))
