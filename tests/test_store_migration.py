"""A store written by the previous schema opens, migrates in place and keeps every run and
version (tests/data/store_schema1.duckdb; tests/data/make_store_schema1.py says how it was made).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from lookback_gui.core.store import SCHEMA_VERSION, NewRun, Store
from tests.helpers import query, ts

OLD = Path(__file__).parent / "data" / "store_schema1.duckdb"


def old_store(tmp_path: Path) -> Path:
    path = tmp_path / "lookback.duckdb"
    shutil.copy(OLD, path)
    return path


def test_a_schema_1_store_opens_and_keeps_every_run_and_version(tmp_path):
    path = old_store(tmp_path)
    con = duckdb.connect(str(path), read_only=True)
    versions_before = con.execute(
        "SELECT metric, dims, measure, bucket, run_id, value, removed FROM versions ORDER BY ALL"
    ).fetchall()
    log_before = con.execute("SELECT count(*) FROM run_log").fetchone()
    con.close()

    with Store(path) as store:
        runs = {r.id: r for r in store.runs()}
        assert sorted(runs) == list(range(1, 8))
        assert [runs[i].status for i in range(1, 8)] == ["succeeded"] * 6 + ["failed"]
        # SQL that replays with $as_of is known at its as-of; plain SQL when it ran
        assert [runs[i].known_at for i in range(1, 5)] == [runs[i].as_of for i in range(1, 5)]
        assert runs[5].known_at == runs[5].started_at and runs[6].known_at == runs[6].started_at
        assert runs[7].known_at is None
        assert [r.to_json()["known_at"] for r in store.runs(metric="replayed")] == [
            "2026-10-26T00:00:00+00:00",
            "2026-10-25T10:00:00+00:00",
            "2026-10-23T12:00:00+00:00",
            "2026-10-22T12:00:00+00:00",
        ]
        assert store.alert_states()[0].rule == "threshold#1"
        assert len(store.run_log(7)) >= 2

        values = {
            (str(r.bucket.date()), r.dims.get("country"), r.measure): r.value
            for r in store.history("replayed")
        }
        assert values == {
            ("2026-10-20", "DE", "orders"): 1,
            ("2026-10-20", "DE", "revenue"): 10.0,
            ("2026-10-21", "DE", "orders"): 1,
            ("2026-10-21", "DE", "revenue"): 5.0,
            ("2026-10-22", "München", "orders"): 2,
            ("2026-10-22", "München", "revenue"): 10.0,
            ("2026-10-24", "FR", "orders"): 1,
            ("2026-10-24", "FR", "revenue"): 1.0,
            ("2026-10-25", "DE", "orders"): 1,
            ("2026-10-25", "DE", "revenue"): 3.0,
        }
        # run 4 (as of 10-26 00:00) saw every bucket up to 10-26 complete
        assert not any(r.partial for r in store.history("replayed"))
        plain = store.history("plain")
        assert [(r.bucket, r.value, r.versions) for r in plain] == [
            (ts("2026-10-24"), None, 2),
            (ts("2026-10-25"), 1, 1),
        ]
        revisions = store.revisions("replayed")
        assert [(r.run, r.old_value, r.new_value, r.known_at) for r in revisions] == [
            (3, 1, 2, ts("2026-10-25T10:00")),
            (3, 7.5, 10.0, ts("2026-10-25T10:00")),
        ]
        assert store.history("replayed", as_of_run=2) == store.history(
            "replayed", as_known_at=ts("2026-10-23T12:00")
        )

    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        assert (
            con.execute(
                "SELECT metric, dims, measure, bucket, run_id, value, removed FROM versions ORDER BY ALL"
            ).fetchall()
            == versions_before
        )
        assert con.execute("SELECT count(*) FROM versions WHERE known_at IS NULL").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM run_log").fetchone()[0] >= log_before[0]
    finally:
        con.close()


def test_a_migrated_store_takes_new_pulls_and_its_ids_go_on(tmp_path, write_project):
    path = old_store(tmp_path)
    with Store(path) as store:
        first = store.begin_run(
            NewRun(
                metric="plain",
                trigger="manual",
                timezone="UTC",
                grain="day",
                as_of=ts("2026-10-27T12:00"),
                window_start=ts("2026-10-25"),
                window_end=ts("2026-10-28"),
                partial_start=ts("2026-10-27"),
                started_at=ts("2026-10-27T12:00"),
                sql="SELECT 1",
                params={},
            )
        )
        assert first == 8
    with Store(path) as store:  # opening again migrates nothing more
        assert [r.id for r in store.runs(limit=1)] == [8]


def _schema(path: Path) -> dict[str, object]:
    """The tables, columns, constraints and sequences of the store file at ``path``."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            "columns": con.execute(
                "SELECT table_name, column_name, data_type, is_nullable, column_default"
                " FROM information_schema.columns WHERE table_schema = 'main'"
                " ORDER BY table_name, ordinal_position"
            ).fetchall(),
            "constraints": con.execute(
                "SELECT table_name, constraint_type, constraint_column_names"
                " FROM duckdb_constraints() WHERE schema_name = 'main'"
                " ORDER BY ALL"
            ).fetchall(),
            "sequences": con.execute("SELECT sequence_name FROM duckdb_sequences() ORDER BY ALL").fetchall(),
            "version": con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall(),
        }
    finally:
        con.close()


def test_a_migrated_store_has_exactly_the_tables_of_a_new_one(tmp_path):
    migrated = old_store(tmp_path)
    Store(migrated).close()
    new = tmp_path / "new" / "lookback.duckdb"
    Store(new).close()
    assert _schema(migrated) == _schema(new)
    assert _schema(new)["version"] == [(str(SCHEMA_VERSION),)]


def test_a_new_store_numbers_its_runs_and_commits_from_one(project):
    from lookback_gui.core.project import load_project
    from lookback_gui.core.pull import run_pull

    loaded = load_project(project)
    with Store(loaded.store_path) as store:
        for _ in range(2):
            run_pull(loaded, "daily_orders", store, as_of=ts("2026-10-30T12:00"))
        assert query(store, "SELECT id, commit_seq FROM runs ORDER BY id") == [(1, 1), (2, 2)]
