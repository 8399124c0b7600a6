"""``history --json/--csv`` and ``revisions --json`` are written by DuckDB in batches; their
output means exactly what the record-based output (the HistoryRow / RevisionRow ``to_json``
through :mod:`jsonout`) says: same keys in the same order, same values in the same forms."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from lookback_gui.cli import main
from lookback_gui.core import jsonout
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import HistoryRow, Store, export
from tests.helpers import project_text, query, ts

SQL = (
    "SELECT bucket, place, big, money, ratio FROM facts"
    " WHERE bucket >= $window_start AND bucket < $window_end"
)


def edit(path: Path, sql: str) -> None:
    con = duckdb.connect(str(path))
    con.execute(sql)
    con.close()


@pytest.fixture
def varied(tmp_path: Path, write_project) -> Path:
    """A store with revisions, a removal and a reappearance, non-ASCII and awkward dims, exact
    BIGINT and DECIMAL values, NaN, infinities, fractions and whole floats."""
    source = tmp_path / "shop.duckdb"
    edit(
        source,
        "CREATE TABLE facts (bucket TIMESTAMP, place VARCHAR, big BIGINT, money DECIMAL(38,3), ratio DOUBLE)",
    )
    edit(
        source,
        """INSERT INTO facts VALUES
        ('2026-10-27', 'Zürich', 9007199254740993, 12345678901234567890123456789012345.678, 0.1),
        ('2026-10-27', 'a,b "c"', -5, 0.001, 'NaN'),
        ('2026-10-28', 'Zürich', 9223372036854775806, 1.000, 'Infinity'),
        ('2026-10-28', '東京', 0, -2.5, 1e-7),
        ('2026-10-29', 'Zürich', 1, 3, 2.0),
        ('2026-10-29', 'a,b "c"', 2, 4, -1e300),
        ('2026-10-29', 'two' || chr(10) || 'lines', 3, 1.5, 1e-300),
        ('2026-10-27', 'Ünïcode', 4, 5, 123456.0),
        ('2026-10-28', 'Ünïcode', 5, 6, 9007199254740992.0)""",
    )
    project = load_project(write_project(sql=SQL, lookback='"4d"'))
    with Store(project.store_path) as store:

        def pull(at: str) -> None:
            run = run_pull(project, "daily_orders", store, as_of=ts(at), clock=lambda: ts(at))
            assert run.status == "succeeded", run.error

        pull("2026-10-29T12:00")
        edit(
            source,
            "UPDATE facts SET big = big - 1, money = money + 0.001, "
            "ratio = '-Infinity' WHERE place = 'Zürich' AND bucket = '2026-10-28'",
        )
        edit(source, "DELETE FROM facts WHERE place = '東京'")
        edit(source, "UPDATE facts SET ratio = 0.30000000000000004 WHERE ratio = 2.0")
        pull("2026-10-30T06:00")
        # Zürich's Infinity became -Infinity above (a revision): one stays current here
        edit(
            source,
            "INSERT INTO facts VALUES ('2026-10-28', '東京', 7, 7.125, 'NaN'), "
            "('2026-10-29', '東京', 8, 8, '-Infinity'), "
            "('2026-10-27', '東京', 9, 9, 'Infinity')",
        )
        pull("2026-10-30T12:00")
    return project.path


def cli(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    assert main(list(args), out=out, err=err) == 0, err.getvalue()
    return out.getvalue()


def record_csv(rows: list[HistoryRow]) -> str:
    """``history --csv`` as the command line wrote it from records (csv module, per row)."""
    dims: list[str] = []
    for row in rows:
        for key in row.dims:
            if key not in dims:
                dims.append(key)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["bucket", *dims, "measure", "value", "first_value", "versions", "revised", "partial"])
    for row in rows:
        data = row.to_json()
        writer.writerow(
            [
                data["bucket"],
                *(row.dims.get(d, "") for d in dims),
                row.measure,
                "" if data["value"] is None else data["value"],
                "" if data["first_value"] is None else data["first_value"],
                row.versions,
                str(row.revised).lower(),
                str(row.partial).lower(),
            ]
        )
    return out.getvalue()


def exactly(text: str) -> Any:
    """Parsed JSON with every number as written (Decimal / int), and no bare NaN."""

    def bare(name: str) -> None:
        pytest.fail(f"bare {name} in the JSON output")

    return json.loads(text, parse_float=Decimal, parse_constant=bare)


def same(streamed: str, records: str) -> None:
    ours, theirs = exactly(streamed), exactly(records)
    assert [list(r) for r in ours] == [list(r) for r in theirs]  # keys in the same order
    assert ours == theirs
    # and the numbers are written alike (Decimal equality ignores 1.0 vs 1)
    assert [[type(v) for v in r.values()] for r in ours] == [[type(v) for v in r.values()] for r in theirs]
    assert [[str(v) for v in r.values()] for r in ours] == [[str(v) for v in r.values()] for r in theirs]


@pytest.mark.parametrize(
    "when", [[], ["--as-of-run", "1"], ["--as-of-run", "2"], ["--as-known-at", "2026-10-30T07:00"]]
)
def test_streamed_history_means_what_the_records_say(varied, when, monkeypatch):
    monkeypatch.setattr(export, "CHUNK_ROWS", 5)  # written in several bucket ranges
    p = str(varied)
    with Store(load_project(varied).store_path) as store:
        run = int(when[1]) if when and when[0] == "--as-of-run" else None
        at = ts(when[1]) if when and when[0] == "--as-known-at" else None
        rows = store.history("daily_orders", as_of_run=run, as_known_at=at)
    assert len(rows) > 8
    if not when:
        values = {r["value"] for r in json.loads(jsonout.dumps([r.to_json() for r in rows]))}
        assert {"NaN", "Infinity", "-Infinity"} <= values
    same(
        cli("history", "daily_orders", "--project", p, "--json", *when),
        jsonout.dumps([r.to_json() for r in rows]),
    )
    streamed = cli("history", "daily_orders", "--project", p, "--csv", *when)
    assert list(csv.reader(io.StringIO(streamed))) == list(csv.reader(io.StringIO(record_csv(rows))))


@pytest.mark.parametrize("chunk", [1, 1000])
def test_streamed_revisions_mean_what_the_records_say(varied, chunk, monkeypatch):
    monkeypatch.setattr(export, "CHUNK_ROWS", chunk)  # 5 versions a known-time range, or all
    with Store(load_project(varied).store_path) as store:
        rows = store.revisions("daily_orders")
    assert any(r.new_value is None for r in rows)  # a removal
    assert any(r.old_value is None for r in rows)  # a reappearance
    streamed = cli("revisions", "daily_orders", "--project", str(varied), "--json")
    same(streamed, jsonout.dumps([r.to_json() for r in rows]))
    assert '"new_value": "NaN"' in streamed
    assert '"old_value": 9223372036854775806, "new_value": 9223372036854775805' in streamed


def test_an_empty_history_is_an_empty_list(tmp_path, write_project):
    edit(
        tmp_path / "shop.duckdb",
        "CREATE TABLE facts (bucket TIMESTAMP, place VARCHAR, big BIGINT, money DECIMAL(38,3), ratio DOUBLE)",
    )
    p = str(write_project(project_text(sql=SQL)))
    assert json.loads(cli("history", "daily_orders", "--project", p, "--json")) == []
    assert json.loads(cli("revisions", "daily_orders", "--project", p, "--json")) == []
    assert (
        cli("history", "daily_orders", "--project", p, "--csv")
        == "bucket,measure,value,first_value,versions,revised,partial\n"
    )


def test_a_process_writes_the_same_bytes_as_a_call(varied):
    """The command as a process (its output copied to stdout as bytes) writes what ``main``
    writes to a text stream."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for args in (
        ["history", "daily_orders", "--json"],
        ["history", "daily_orders", "--csv"],
        ["revisions", "daily_orders", "--json"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "lookback_gui.cli", *args, "--project", str(varied)],
            capture_output=True,
            env=env,
            check=True,
        )
        assert done.stdout.decode("utf-8") == cli(*args, "--project", str(varied))


def test_the_bucket_ranges_hold_every_bucket_once(varied):
    with Store(load_project(varied).store_path) as store:
        buckets = sorted({r.bucket for r in store.history("daily_orders")})
        for rows in (1, 2, 5, 1000):
            spans = export.bucket_spans(store, "daily_orders", rows=rows)
            assert all(a < b == c for (a, b), (c, _) in itertools.pairwise(spans))
            assert sorted(b for b in buckets for lo, hi in spans if lo <= b < hi) == buckets
            assert len(spans) > 1 or rows == 1000


def test_the_known_time_ranges_hold_every_version_once(varied):
    with Store(load_project(varied).store_path) as store:
        known = query(store, "SELECT known_at, bucket FROM versions")
        for rows in (1, 3, 1000):
            spans = export.known_spans(store, "daily_orders", rows=rows)
            assert all(b <= c for (_, b, _, _), (c, _, _, _) in itertools.pairwise(spans))
            for k, bucket in known:
                assert [lo <= bucket <= hi for a, b, lo, hi in spans if a <= k < b] == [True]
            assert len(spans) > 1 or rows == 1000
