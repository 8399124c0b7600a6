"""Every source type against real files and the real PostgreSQL and MariaDB servers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import pytest

from lookback_gui.core.errors import PullError, TransientSourceError
from lookback_gui.core.project import SourceConfig, load_project
from lookback_gui.core.pull import check_metric, run_pull
from lookback_gui.core.sources import connect_source, describe_schema
from lookback_gui.core.store import Store
from tests.helpers import DAILY_SQL, server_role, server_table, ts

AS_OF = ts("2026-10-30T12:00")
ROWS = [
    (1, "2026-10-25 10:00:00", "DE", 10.0),
    (2, "2026-10-25 11:00:00", "DE", 5.0),
    (3, "2026-10-26 09:00:00", "FR", 7.5),
]
EXPECTED = {
    ("2026-10-25", "DE", "orders"): 2,
    ("2026-10-25", "DE", "revenue"): 15.0,
    ("2026-10-26", "FR", "orders"): 1,
    ("2026-10-26", "FR", "revenue"): 7.5,
}


def pull_and_read(project_path: Path) -> dict:
    project = load_project(project_path)
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert run.status == "succeeded", run.error
        assert run.new == 4
        return {
            (str(r.bucket.date()), r.dims["country"], r.measure): r.value
            for r in store.history("daily_orders")
        }


def test_sqlite_source(write_project, tmp_path):
    con = sqlite3.connect(tmp_path / "shop.sqlite")
    con.execute("CREATE TABLE orders (order_id INTEGER, ordered_at TEXT, country TEXT, amount REAL)")
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", ROWS)
    con.commit()
    con.close()
    sql = DAILY_SQL.replace("ordered_at", "CAST(ordered_at AS TIMESTAMP)")
    path = write_project(source='type = "sqlite"\npath = "shop.sqlite"', sql=sql)
    assert pull_and_read(path) == EXPECTED
    con = sqlite3.connect(tmp_path / "shop.sqlite")
    assert con.execute("SELECT count(*) FROM orders").fetchone() == (3,)


def _write_files(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    con = duckdb.connect()
    for index, row in enumerate(ROWS):
        con.execute(
            f"COPY (SELECT {row[0]} AS order_id, TIMESTAMP '{row[1]}' AS ordered_at, "
            f"'{row[2]}' AS country, {row[3]} AS amount) TO '{folder}/part{index}.{kind}'"
            + (" (FORMAT parquet)" if kind == "parquet" else " (HEADER)")
        )
    con.close()


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_file_sources_with_a_glob_are_a_view_named_after_the_source(write_project, tmp_path, kind):
    _write_files(tmp_path, kind)
    sql = DAILY_SQL.replace("FROM orders", "FROM shop")
    path = write_project(source=f'type = "{kind}"\npath = "exports/*.{kind}"', sql=sql)
    assert pull_and_read(path) == EXPECTED


def test_a_replaced_file_is_seen_at_the_next_pull(write_project, tmp_path):
    _write_files(tmp_path, "parquet")
    sql = DAILY_SQL.replace("FROM orders", "FROM shop")
    path = write_project(source='type = "parquet"\npath = "exports/part0.parquet"', sql=sql)
    project = load_project(path)
    with Store(project.store_path) as store:
        assert run_pull(project, "daily_orders", store, as_of=AS_OF).new == 2
        con = duckdb.connect()
        con.execute(
            f"COPY (SELECT 1 AS order_id, TIMESTAMP '2026-10-25 10:00' AS ordered_at, "
            f"'DE' AS country, 99.0 AS amount) TO '{tmp_path}/exports/part0.parquet'"
        )
        con.close()
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert run.revised == 1 and run.unchanged == 1


def test_a_glob_that_matches_nothing_names_the_path(tmp_path):
    source = SourceConfig(
        name="shop",
        type="parquet",
        path="exports/*.parquet",
        resolved_path=str(tmp_path / "exports/*.parquet"),
    )
    with pytest.raises(TransientSourceError, match=r"no file matches exports/\*\.parquet"):
        connect_source(source)


def test_the_source_is_read_only(tmp_path):
    path = tmp_path / "shop.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con.close()
    source = SourceConfig(name="shop", type="duckdb", path="shop.duckdb", resolved_path=str(path))
    con = connect_source(source)
    with pytest.raises(duckdb.Error, match=r"read-only|read only"):
        con.execute("INSERT INTO t VALUES (2)")
    with pytest.raises(duckdb.Error, match="disabled by configuration"):
        con.execute(f"ATTACH '{tmp_path / 'other.duckdb'}' AS other")
    with pytest.raises(duckdb.Error):
        con.execute("SET enable_external_access = true")
    con.close()


def test_describe_schema_lists_tables_and_columns(tmp_path):
    path = tmp_path / "shop.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE orders (id INTEGER, ordered_at TIMESTAMP)")
    con.close()
    source = SourceConfig(name="shop", type="duckdb", path="shop.duckdb", resolved_path=str(path))
    assert describe_schema(source) == [
        {"table": "orders", "column": "id", "type": "INTEGER"},
        {"table": "orders", "column": "ordered_at", "type": "TIMESTAMP"},
    ]


# -- servers ----------------------------------------------------------------------------------


@pytest.fixture
def pg_table():
    with server_table("postgres", ROWS) as name:
        yield name


@pytest.fixture
def mysql_table():
    with server_table("mysql", ROWS) as name:
        yield name


@pytest.mark.postgres
def test_postgres_source(write_project, pg_table):
    sql = DAILY_SQL.replace("FROM orders", f"FROM {pg_table}")
    path = write_project(
        source='type = "postgres"\ndsn = "host=127.0.0.1 port=5432 dbname=test user=postgres"', sql=sql
    )
    assert pull_and_read(path) == EXPECTED


@pytest.mark.postgres
def test_postgres_password_never_appears_in_errors(write_project, monkeypatch):
    monkeypatch.setenv("SHOP_PASSWORD", "s3cret-hunter2")
    path = write_project(
        source='type = "postgres"\ndsn = "host=127.0.0.1 port=5499 dbname=test user=postgres"\n'
        'password_env = "SHOP_PASSWORD"'
    )
    project = load_project(path)
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert run.status == "failed"
        assert "5499" in run.error
        logs = " ".join(line.message for line in store.run_log(run.id))
    assert "s3cret-hunter2" not in run.error + logs
    assert "s3cret-hunter2" not in project.store_path.read_bytes().decode("latin-1")


@pytest.mark.postgres
def test_password_env_that_is_not_set_is_named(write_project, monkeypatch):
    monkeypatch.delenv("NOPE_PASSWORD", raising=False)
    path = write_project(
        source='type = "postgres"\ndsn = "host=127.0.0.1 dbname=test user=postgres"\n'
        'password_env = "NOPE_PASSWORD"'
    )
    project = load_project(path)
    with pytest.raises(PullError, match="NOPE_PASSWORD"):
        check_metric(project, "daily_orders")


@pytest.mark.mysql
def test_mysql_source(write_project, mysql_table):
    sql = DAILY_SQL.replace("FROM orders", f"FROM {mysql_table}")
    path = write_project(
        source='type = "mysql"\ndsn = "host=127.0.0.1 port=3306 database=test user=root"', sql=sql
    )
    assert pull_and_read(path) == EXPECTED


@pytest.mark.mysql
def test_mysql_refused_connection_is_transient_and_retried(write_project):
    path = write_project(source='type = "mysql"\ndsn = "host=127.0.0.1 port=3399 database=test user=root"')
    path.write_text(path.read_text().replace("retries = 0", 'retries = 1\nretry_base = "1s"'))
    project = load_project(path)
    delays: list[float] = []
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF, sleep=delays.append)
    assert run.status == "failed" and run.attempts == 2 and len(delays) == 1
    assert "source shop" in run.error


PG_DSN = 'type = "postgres"\ndsn = "host=127.0.0.1 port=5432 dbname=test user=postgres"'


@pytest.mark.postgres
def test_postgres_pushdown_runs_the_whole_query_on_the_server(write_project, pg_table):
    # generate_series and ::date casts are PostgreSQL's dialect: only the server can run this
    sql = (
        f"SELECT date_trunc('day', ordered_at)::timestamp AS bucket, country, "
        f"count(*) AS orders, sum(amount)::float8 AS revenue FROM {pg_table} "
        f"WHERE ordered_at >= $window_start AND ordered_at < $window_end "
        f"AND EXISTS (SELECT 1 FROM generate_series(1, 1)) GROUP BY 1, 2"
    )
    with server_role("postgres", tables=(pg_table,)) as role:  # pushdown wants a read-only role
        path = write_project(
            source=PG_DSN.replace("user=postgres", f"user={role}") + "\npushdown = true", sql=sql
        )
        assert pull_and_read(path) == EXPECTED
    project = load_project(path)
    with Store(project.store_path) as store:
        run = store.runs()[0]
    assert run.status == "succeeded"


@pytest.mark.mysql
def test_mysql_pushdown(write_project, mysql_table):
    sql = (
        f"SELECT CAST(DATE(ordered_at) AS DATETIME) AS bucket, country, count(*) AS orders, "
        f"sum(amount) AS revenue FROM {mysql_table} "
        f"WHERE ordered_at >= $window_start AND ordered_at < $window_end GROUP BY 1, 2"
    )
    with server_role("mysql") as user:  # pushdown wants a read-only user
        path = write_project(
            source=f'type = "mysql"\ndsn = "host=127.0.0.1 port=3306 database=test user={user}"\n'
            "pushdown = true",
            sql=sql,
        )
        assert pull_and_read(path) == EXPECTED


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DELETE FROM orders", "DELETE statement"),
        ("WITH x AS (DELETE FROM orders RETURNING *) SELECT * FROM x", "contains DELETE"),
        ("SELECT 1 AS bucket; DROP TABLE orders", "holds 2 statements"),
        ("SELECT * INTO new_table FROM orders", "contains INTO"),
    ],
)
def test_pushdown_refuses_writing_sql(write_project, sql, message):
    path = write_project(source=PG_DSN + "\npushdown = true", sql=sql)
    project = load_project(path)
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
    assert run.status == "failed" and message in run.error


def test_pushdown_is_only_for_servers(write_project):
    from lookback_gui.core.errors import ProjectError

    path = write_project(source='type = "duckdb"\npath = "shop.duckdb"\npushdown = true')
    with pytest.raises(ProjectError, match="pushdown runs the SQL on a postgres or mysql server"):
        load_project(path)
