"""Exact measures (DESIGN, *Exact*): integer and DECIMAL values are stored and compared exactly;
JSON output is valid JSON for every value. And a removal counts in revision_pct."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from lookback_gui.core import jsonout
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store
from tests.helpers import project_text, ts

NOW = ts("2026-10-30T12:00")
SQL = "SELECT bucket, big, money, ratio FROM facts WHERE bucket >= $window_start AND bucket < $window_end"


@pytest.fixture
def facts(tmp_path: Path, write_project):
    con = duckdb.connect(str(tmp_path / "shop.duckdb"))
    con.execute("CREATE TABLE facts (bucket TIMESTAMP, big BIGINT, money DECIMAL(38,3), ratio DOUBLE)")
    con.execute(
        "INSERT INTO facts VALUES ('2026-10-28', 9007199254740993, "
        "12345678901234567890123456789012345.678, 0.5), "
        "('2026-10-29', 9223372036854775806, 1.000, 1.0)"
    )
    con.close()
    project = load_project(write_project(sql=SQL, lookback='"3d"'))
    with Store(project.store_path) as store:
        yield project, store, tmp_path / "shop.duckdb"


def edit(path: Path, sql: str) -> None:
    con = duckdb.connect(str(path))
    con.execute(sql)
    con.close()


def pull(project, store):
    run = run_pull(project, "daily_orders", store, as_of=NOW, clock=lambda: NOW)
    assert run.status == "succeeded", run.error
    return run


def test_integers_and_decimals_are_stored_and_compared_exactly(facts):
    project, store, source = facts
    pull(project, store)
    values = {(r.bucket, r.measure): r.value for r in store.history("daily_orders")}
    assert values[(ts("2026-10-28"), "big")] == 9007199254740993
    assert values[(ts("2026-10-28"), "money")] == Decimal("12345678901234567890123456789012345.678")
    assert values[(ts("2026-10-29"), "big")] == 9223372036854775806
    assert values[(ts("2026-10-29"), "money")] == 1  # 1.000 is 1

    edit(source, "UPDATE facts SET big = big - 1000000, money = money + 0.001 WHERE bucket = '2026-10-29'")
    edit(source, "UPDATE facts SET money = money - 0.001 WHERE bucket = '2026-10-28'")
    run = pull(project, store)
    assert (run.revised, run.unchanged) == (3, 3)
    revisions = {
        (r.bucket, r.measure): (r.old_value, r.new_value, r.delta) for r in store.revisions("daily_orders")
    }
    assert revisions == {
        (ts("2026-10-29"), "big"): (9223372036854775806, 9223372036853775806, -1000000),
        (ts("2026-10-29"), "money"): (1, Decimal("1.001"), Decimal("0.001")),
        (ts("2026-10-28"), "money"): (
            Decimal("12345678901234567890123456789012345.678"),
            Decimal("12345678901234567890123456789012345.677"),
            Decimal("-0.001"),
        ),
    }
    assert pull(project, store).revised == 0  # and nothing moves on a repeat


def test_json_output_is_exact_and_valid(facts, capsys):
    from lookback_gui.cli import main

    project, store, source = facts
    pull(project, store)
    store.close()
    assert main(["history", "daily_orders", "--project", str(project.path), "--json"]) == 0
    text = capsys.readouterr().out
    assert "9007199254740993" in text
    assert "12345678901234567890123456789012345.678" in text
    rows = json.loads(text, parse_float=Decimal)
    money = next(r for r in rows if r["measure"] == "money" and r["value"] != 1)
    assert money["value"] == Decimal("12345678901234567890123456789012345.678")


def test_json_writes_nan_and_infinities_as_strings():
    text = jsonout.dumps([math.nan, math.inf, -math.inf, Decimal("1.50"), 2.5, None])
    assert json.loads(text) == ["NaN", "Infinity", "-Infinity", 1.5, 2.5, None]
    json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name}"))


def test_a_removal_counts_as_a_revision_of_100_percent(tmp_path, write_project):
    con = duckdb.connect(str(tmp_path / "shop.duckdb"))
    con.execute("CREATE TABLE facts (bucket TIMESTAMP, big BIGINT, money DECIMAL(38,3), ratio DOUBLE)")
    con.execute("INSERT INTO facts VALUES ('2026-10-28', 1, 1, 1), ('2026-10-29', 5, 5, 5)")
    con.close()
    extra = '[metrics.daily_orders.checks]\nbig_revision = { revision_pct = 50, severity = "warn" }\n'
    project = load_project(write_project(project_text(sql=SQL, lookback='"3d"') + extra))
    with Store(project.store_path) as store:
        pull(project, store)
        edit(tmp_path / "shop.duckdb", "DELETE FROM facts WHERE bucket = '2026-10-28'")
        run = pull(project, store)
        assert run.removed == 3
        check = next(c for c in run.checks if c["name"] == "big_revision")
        assert not check["ok"]
        assert "the largest revision in this run is 100.0%" in check["message"]


@pytest.mark.parametrize(
    ("old", "new"),
    [("0.5", "'Infinity'"), ("'Infinity'", "0.5"), ("'Infinity'", "'-Infinity'"), ("1e300", "'-Infinity'")],
)
def test_a_change_to_or_from_infinity_is_a_revision(facts, old, new):
    """The relative tolerance never makes an infinity equal to a finite value or to the other
    infinity: |a - ∞| is ∞, and so is the tolerance's bound."""
    project, store, source = facts
    edit(source, f"UPDATE facts SET ratio = {old} WHERE bucket = '2026-10-28'")
    pull(project, store)
    edit(source, f"UPDATE facts SET ratio = {new} WHERE bucket = '2026-10-28'")
    run = pull(project, store)
    assert (run.revised, run.unchanged) == (1, 5)
    revisions = [(r.bucket, r.measure, r.old_value, r.new_value) for r in store.revisions("daily_orders")]
    assert revisions == [(ts("2026-10-28"), "ratio", float(old.strip("'")), float(new.strip("'")))]
    assert pull(project, store).revised == 0  # an infinity equals itself on a repeat


WIDE_SQL = (
    "SELECT bucket, h, u, sum(big) AS total, money FROM wide "
    "WHERE bucket >= $window_start AND bucket < $window_end GROUP BY ALL"
)
H, U = 2**127 - 1, 2**128 - 1
MONEY = "12345678901234567890123456789012345.678"


def test_hugeint_and_uhugeint_measures_are_stored_compared_and_printed_exactly(
    tmp_path, write_project, capsys
):
    """Parquet (the staged result) has no 128-bit integer: a HUGEINT or UHUGEINT measure, and
    the HUGEINT that sum() of a BIGINT gives, must still come out digit for digit."""
    from lookback_gui.cli import main

    con = duckdb.connect(str(tmp_path / "shop.duckdb"))
    con.execute(
        "CREATE TABLE wide (bucket TIMESTAMP, h HUGEINT, u UHUGEINT, big BIGINT, money DECIMAL(38,3))"
    )
    con.execute(
        f"INSERT INTO wide VALUES ('2026-10-28', {H - 1}, {U - 1}, {2**62}, {MONEY}), "
        f"('2026-10-28', {H - 1}, {U - 1}, {2**62 + 1}, {MONEY})"
    )
    con.close()
    project = load_project(write_project(sql=WIDE_SQL, lookback='"3d"'))
    with Store(project.store_path) as store:
        pull(project, store)
        edit(tmp_path / "shop.duckdb", "UPDATE wide SET h = h + 1, u = u + 1, big = big + (big % 2)")
        run = pull(project, store)
        assert (run.revised, run.unchanged) == (3, 1)  # a change of 1 on 2**127 - 1 is one
        values = {r.measure: r.value for r in store.history("daily_orders")}
        assert values == {"h": H, "u": U, "total": 2**63 + 2, "money": Decimal(MONEY)}
        deltas = {r.measure: r.delta for r in store.revisions("daily_orders")}
        assert deltas == {"h": 1, "u": 1, "total": 1}
    where = ["--project", str(project.path)]
    outputs = []
    for args in (
        ["history", "daily_orders", "--json"],
        ["history", "daily_orders", "--csv"],
        ["history", "daily_orders"],
        ["revisions", "daily_orders", "--json"],
        ["revisions", "daily_orders"],
        ["vintages", "daily_orders", "--measure", "h", "--csv"],
        ["vintages", "daily_orders", "--measure", "u", "--csv"],
    ):
        assert main([*args, *where]) == 0
        outputs.append(capsys.readouterr().out)
    assert all(str(H) in text for text in outputs[:5] + outputs[5:6]), outputs
    assert str(U) in outputs[6] and str(U) in outputs[0]
    assert "e+" not in "".join(outputs)
    rows = json.loads(outputs[0])
    assert {r["measure"]: r["value"] for r in rows}["u"] == U


def test_vintages_csv_prints_decimal_38_3_digits(facts, capsys):
    from lookback_gui.cli import main

    project, store, source = facts
    pull(project, store)
    store.close()
    assert (
        main(["vintages", "daily_orders", "--measure", "money", "--csv", "--project", str(project.path)]) == 0
    )
    text = capsys.readouterr().out
    assert "12345678901234567890123456789012345.678" in text
    assert "e+" not in text
