"""What the user reads: valid JSON for every value, misaligned buckets, and clear messages for
inputs that used to be misread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store
from tests.helpers import make_orders, project_text, run_cli, ts

AS_OF = ts("2026-10-30T12:00")


def strict_json(text: str):
    def refuse(name: str):
        raise AssertionError(f"bare {name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_history_json_is_valid_json_with_nan_and_infinities(write_project, tmp_path):
    make_orders(tmp_path / "shop.duckdb", [])
    sql = (
        "SELECT TIMESTAMP '2026-10-25' AS bucket, 'nan'::DOUBLE AS a, 'inf'::DOUBLE AS b, "
        "'-inf'::DOUBLE AS c, 1.5::DOUBLE AS d"
    )
    path = write_project(sql=sql)
    assert run_cli("pull", "daily_orders", "--project", str(path), "--as-of", "2026-10-30T12:00")[0] == 0
    code, out, _ = run_cli("history", "daily_orders", "--project", str(path), "--json")
    assert code == 0
    values = {row["measure"]: row["value"] for row in strict_json(out)}
    assert values == {"a": "NaN", "b": "Infinity", "c": "-Infinity", "d": 1.5}
    first = {row["measure"]: row["first_value"] for row in strict_json(out)}
    assert first["a"] == "NaN"


@pytest.mark.parametrize(
    ("grain", "expression", "first"),
    [
        ("day", "ordered_at", "2026-10-25 10:00:00"),
        ("hour", "ordered_at + INTERVAL 30 MINUTE", "2026-10-25 10:30:00"),
        ("week", "date_trunc('day', ordered_at)", "2026-10-25 00:00:00"),
        ("month", "date_trunc('week', ordered_at)", "2026-10-19 00:00:00"),
    ],
)
def test_buckets_not_at_the_start_of_their_grain_fail_the_run(
    write_project, tmp_path, grain, expression, first
):
    make_orders(
        tmp_path / "shop.duckdb",
        [(1, ts("2026-10-25T10:00"), "DE", 10.0), (2, ts("2026-10-25T11:00"), "DE", 5.0)],
    )
    sql = f"SELECT {expression} AS bucket, country, count(*) AS orders FROM orders GROUP BY ALL"
    lookback = {"day": '"7d"', "hour": '"24h"', "week": '"4w"', "month": "3"}[grain]
    path = write_project(sql=sql, grain=grain, lookback=lookback)
    project = load_project(path)
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert run.status == "failed"
        assert run.error.startswith("metric daily_orders: quality check failed: ")
        assert f"not the start of a {grain} (first: {first})" in run.error
        assert store.history("daily_orders") == []


def test_a_bucket_with_a_time_zone_is_checked_in_the_metrics_zone(write_project, tmp_path):
    make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-25T10:00"), "DE", 10.0)])
    sql = (
        "SELECT timezone('Europe/Berlin', date_trunc('day', ordered_at)) AS bucket, "
        "count(*) AS orders FROM orders GROUP BY ALL"
    )
    path = write_project(sql=sql, extra='timezone = "Europe/Berlin"')
    project = load_project(path)
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
    assert run.status == "succeeded", run.error


def test_a_utf8_byte_order_mark_is_accepted(write_project, tmp_path):
    make_orders(tmp_path / "shop.duckdb", [])
    path = write_project()
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_project(path).metric("daily_orders").grain.value == "day"


def test_a_duckdb_source_that_is_a_csv_names_the_path(write_project, tmp_path):
    (tmp_path / "shop.csv").write_text("a,b\n1,2\n")
    path = write_project(source='type = "duckdb"\npath = "shop.csv"')
    project = load_project(path)
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
    assert run.status == "failed"
    assert run.error.startswith("source shop: shop.csv is not a DuckDB database (")
    assert run.attempts == 1


def test_an_empty_time_zone_is_an_error(write_project, tmp_path):
    path = write_project(extra='timezone = ""')
    code, _, err = run_cli("check", "--project", str(path))
    assert code == 2
    assert "metrics.daily_orders.timezone: the time zone is empty" in err


def test_a_cron_that_never_fires_is_refused(write_project, tmp_path):
    path = write_project(extra='schedule = "0 6 31 2 *"')
    code, _, err = run_cli("check", "--project", str(path))
    assert code == 2
    assert "metrics.daily_orders.schedule: '0 6 31 2 *' never fires" in err


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("USE memory", "USE"),
        ("CHECKPOINT", "CHECKPOINT"),
        ("SET threads = 1", "SET"),
        ("CALL pragma_version()", "CALL"),
    ],
)
def test_refused_statements_are_named_as_written(write_project, tmp_path, sql, kind):
    make_orders(tmp_path / "shop.duckdb", [])
    path = write_project(sql=sql)
    code, _, err = run_cli("check", "--project", str(path))
    assert code == 1
    assert f"metric daily_orders: the SQL is a {kind} statement" in err


def test_min_max_check_errors_name_the_metric(write_project, tmp_path):
    make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-25T10:00"), "DE", -10.0)])
    path: Path = write_project(
        project_text() + '\n[metrics.daily_orders.checks]\npos = { measure = "revenue", min = 0 }\n'
    )
    code, _, err = run_cli("pull", "daily_orders", "--project", str(path), "--as-of", "2026-10-30T12:00")
    assert code == 1
    assert "error: metric daily_orders: quality check failed: check pos:" in err
