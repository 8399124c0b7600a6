"""Parquet/CSV sources in object storage, read over HTTP from a local S3 server (moto).

The server runs in a process of its own (tests/s3server.py); DuckDB's httpfs talks to it as to
any S3 endpoint, with the key's secret handed over as a DuckDB secret.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from lookback_gui.core.errors import PullError, QueryError
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.sources import connect_source, release_source
from lookback_gui.core.store import open_store
from tests.helpers import DAILY_SQL, project_text, run_cli
from tests.s3server import SECRET


def _parquet_bytes(sql: str) -> bytes:
    con = duckdb.connect()
    try:
        path = f"/dev/shm/lb-{id(con)}.parquet" if Path("/dev/shm").is_dir() else None
        if path is None:
            import tempfile

            path = tempfile.mktemp(suffix=".parquet")
        con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
        data = Path(path).read_bytes()
        Path(path).unlink()
        return data
    finally:
        con.close()


def _orders_parquet(rows: list[tuple[int, str, str, float]]) -> bytes:
    values = ", ".join(f"({i}::BIGINT, TIMESTAMP '{at}', '{c}', {a}::DOUBLE)" for i, at, c, a in rows)
    return _parquet_bytes(f"SELECT * FROM (VALUES {values}) AS t(order_id, ordered_at, country, amount)")


def fill_shop_bucket(s3_server, name: str) -> str:
    """A bucket with two days of orders under orders/, and a 'secret' file under private/."""
    bucket = s3_server.bucket(name)
    client = s3_server.client()
    client.put_object(
        Bucket=bucket,
        Key="orders/2026-10-25.parquet",
        Body=_orders_parquet([(1, "2026-10-25 10:00", "DE", 10.0), (2, "2026-10-25 11:00", "FR", 4.0)]),
    )
    client.put_object(
        Bucket=bucket,
        Key="orders/2026-10-29.parquet",
        Body=_orders_parquet([(3, "2026-10-29 09:00", "DE", 7.0)]),
    )
    client.put_object(
        Bucket=bucket,
        Key="private/salaries.parquet",
        Body=_parquet_bytes("SELECT 'alice' AS name, 99999 AS salary"),
    )
    return bucket


@pytest.fixture
def shop_bucket(s3_server, s3_secret) -> str:
    return fill_shop_bucket(s3_server, "shop")


def _s3_project(
    write_project,
    s3_server,
    bucket: str,
    path: str = "orders/*.parquet",
    sql: str = DAILY_SQL,
    extra: str = "",
) -> Path:
    source = f'type = "parquet"\npath = "s3://{bucket}/{path}"\n{s3_server.source_keys()}'
    return write_project(project_text(source=source, sql=sql, extra=extra, source_name="orders"))


def test_a_parquet_glob_in_s3_is_pulled_and_the_secret_is_written_nowhere(
    write_project, s3_server, shop_bucket, tmp_path
):
    path = _s3_project(write_project, s3_server, shop_bucket)
    code, out, err = run_cli("--project", str(path), "pull", "daily_orders", "--as-of", "2026-10-30T12:00")
    assert code == 0, err
    project = load_project(path)
    with open_store(project.store) as store:
        rows = {
            (r.bucket.date(), r.dims["country"], r.measure): r.value for r in store.history("daily_orders")
        }
    assert rows[(date(2026, 10, 25), "DE", "orders")] == 1
    assert rows[(date(2026, 10, 25), "FR", "revenue")] == 4.0
    assert rows[(date(2026, 10, 29), "DE", "revenue")] == 7.0
    # the secret is in no file the project keeps: neither the project file nor the store
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert SECRET.encode() not in file.read_bytes(), file
    code, out, err = run_cli("--project", str(path), "show", "1")
    assert SECRET not in out + err


def test_a_new_object_is_seen_at_the_next_pull(write_project, s3_server, shop_bucket):
    path = _s3_project(write_project, s3_server, shop_bucket)
    project = load_project(path)
    with open_store(project.store) as store:
        first = run_pull(project, "daily_orders", store, as_of=datetime(2026, 10, 30, 12))
        s3_server.client().put_object(
            Bucket=shop_bucket,
            Key="orders/2026-10-25-late.parquet",
            Body=_orders_parquet([(4, "2026-10-25 23:00", "DE", 1.0)]),
        )
        second = run_pull(project, "daily_orders", store, as_of=datetime(2026, 10, 30, 13))
    assert first.status == second.status == "succeeded"
    assert second.revised == 2  # DE orders and revenue of 2026-10-25


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('s3://{other}/private/salaries.parquet')",
        "SELECT * FROM 's3://{other}/private/salaries.parquet'",
        "SELECT * FROM read_parquet('s3://{bucket}/private/salaries.parquet')",
        "SELECT * FROM read_parquet('s3://{bucket}/orders/../private/salaries.parquet')",
        "SELECT * FROM parquet_metadata('s3://{bucket}/private/salaries.parquet')",
    ],
)
def test_the_sql_cannot_reach_another_bucket_or_prefix(write_project, s3_server, shop_bucket, sql):
    other = s3_server.bucket("other")
    s3_server.client().put_object(
        Bucket=other, Key="private/salaries.parquet", Body=_parquet_bytes("SELECT 'bob' AS name, 1 AS salary")
    )
    text = (
        f"SELECT DATE '2026-10-29' AS bucket, count(*) AS n FROM "
        f"({sql.format(other=other, bucket=shop_bucket)})"
    )
    path = _s3_project(write_project, s3_server, shop_bucket, sql=text)
    project = load_project(path)
    with open_store(project.store) as store:
        run = run_pull(project, "daily_orders", store, as_of=datetime(2026, 10, 30, 12))
    assert run.status == "failed"
    assert "salar" not in (run.error or "").replace("salaries.parquet", "")
    assert re.search(r"reads its source|by its path|opens files", run.error or ""), run.error


def test_the_connection_itself_refuses_another_prefix(s3_server, shop_bucket):
    """Beneath the SQL check, the locked connection opens nothing but the listed objects."""
    project_dir = Path("/nonexistent")
    from lookback_gui.core.project import SourceConfig
    from lookback_gui.core.storage.urls import StorageConfig

    source = SourceConfig(
        name="shop",
        type="parquet",
        path=f"s3://{shop_bucket}/orders/*.parquet",
        resolved_path=f"s3://{shop_bucket}/orders/*.parquet",
        storage=StorageConfig(
            access_key_id="lookback-test-key",
            secret_env="LOOKBACK_TEST_S3_SECRET",
            endpoint=f"127.0.0.1:{s3_server.port}",
            region="us-east-1",
            url_style="path",
            use_ssl=False,
        ),
    )
    con = connect_source(source)
    try:
        assert con.execute("SELECT count(*) FROM shop").fetchone() == (3,)
        for url in (
            f"s3://{shop_bucket}/private/salaries.parquet",
            f"s3://{shop_bucket}/orders/../private/salaries.parquet",
            f"http://127.0.0.1:{s3_server.port}/{shop_bucket}/private/salaries.parquet",
        ):
            with pytest.raises(duckdb.PermissionException):
                con.execute(f"SELECT * FROM read_parquet('{url}')").fetchall()
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
        secrets = con.execute("SELECT secret_string FROM duckdb_secrets()").fetchall()
        assert SECRET not in str(secrets)
    finally:
        release_source(con, source)
    assert project_dir  # the source needs no project folder


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("orders/*.csv.gz", "no object matches s3://{bucket}/orders/*.csv.gz"),
        ("orders/2026-10-26.parquet", "object not found: s3://{bucket}/orders/2026-10-26.parquet"),
    ],
)
def test_nothing_at_the_url_is_an_error_naming_it(write_project, s3_server, shop_bucket, path, said):
    project_path = _s3_project(write_project, s3_server, shop_bucket, path=path)
    code, out, err = run_cli(
        "--project", str(project_path), "pull", "daily_orders", "--as-of", "2026-10-30T12:00"
    )
    assert code == 1
    assert said.format(bucket=shop_bucket) in err


def test_a_missing_secret_variable_is_named(write_project, s3_server, shop_bucket, monkeypatch):
    monkeypatch.delenv("LOOKBACK_TEST_S3_SECRET")
    path = _s3_project(write_project, s3_server, shop_bucket)
    code, out, err = run_cli("--project", str(path), "pull", "daily_orders", "--as-of", "2026-10-30T12:00")
    assert code == 1
    assert "LOOKBACK_TEST_S3_SECRET (secret_env) is not set" in err


@pytest.mark.parametrize(
    ("source", "said"),
    [
        (
            'type = "parquet"\npath = "data/*.parquet"\naccess_key_id = "AK"',
            "access_key_id is for object storage",
        ),
        ('type = "parquet"\npath = "s3://b/x/*.parquet"\nsecret_env = "S"', "set access_key_id too"),
        ('type = "parquet"\npath = "https://example.com/x/*.parquet"', "cannot be a glob"),
        ('type = "csv"\npath = "https://example.com/x.csv"\naccess_key_id = "AK"', "takes no access_key_id"),
        ('type = "parquet"\npath = "s3://b/x.parquet"\nurl_style = "sideways"', "url_style is"),
        ('type = "parquet"\npath = "ftp://b/x.parquet"', "unknown URL scheme"),
        ('type = "duckdb"\npath = "s3://b/shop.duckdb"', "object storage holds parquet"),
        ('type = "parquet"\npath = "s3://b/x.parquet"\nsnapshot_as_of = true', "keeps no snapshots"),
    ],
)
def test_object_storage_keys_are_checked_in_the_project_file(write_project, source, said):
    path = write_project(project_text(source=source))
    code, out, err = run_cli("--project", str(path), "check")
    assert code == 2
    assert said in err and err.startswith("error:") and err.count("\n") == 1, err


def test_a_pull_of_7_days_reads_only_those_days_partitions(write_project, s3_server, s3_secret):
    """A year of daily hive partitions: a 7-day window opens the window's files, plus the one
    file DuckDB reads to learn the columns, and no other."""
    bucket = s3_server.bucket("year")
    writer = duckdb.connect()
    try:  # one hive partition per day, written through DuckDB's httpfs
        writer.execute("LOAD httpfs")
        writer.execute(
            f"CREATE SECRET w (TYPE s3, KEY_ID 'lookback-test-key', SECRET '{SECRET}', "
            f"ENDPOINT '127.0.0.1:{s3_server.port}', URL_STYLE 'path', "
            "USE_SSL false, REGION 'us-east-1')"
        )
        writer.execute(
            "COPY (SELECT TIMESTAMP '2025-01-01' + INTERVAL (i) HOUR AS event_at, "
            "(i % 24)::DOUBLE AS amount, CAST(event_at AS DATE) AS day FROM range(365 * 24) t(i)) "
            f"TO 's3://{bucket}/events' (FORMAT parquet, PARTITION_BY (day))"
        )
    finally:
        writer.close()
    sql = (
        "SELECT date_trunc('day', event_at) AS bucket, count(*) AS events, sum(amount) AS amount "
        "FROM events WHERE day >= CAST($window_start AS DATE) "
        "AND day < CAST($window_end AS DATE) GROUP BY ALL"
    )
    source = f'type = "parquet"\npath = "s3://{bucket}/events/*/*.parquet"\n{s3_server.source_keys()}'
    path = write_project(project_text(source=source, sql=sql, source_name="events"))
    project = load_project(path)
    with open_store(project.store) as store:
        mark = s3_server.mark()
        run = run_pull(project, "daily_orders", store, as_of=datetime(2025, 6, 7, 12))
        requests = s3_server.requests_since(mark)
    assert run.status == "succeeded", run.error
    assert run.rows == 7
    read = {
        m.group(1)
        for r in requests
        if r.method in ("GET", "HEAD")
        for m in [re.search(r"day=(\d{4}-\d\d-\d\d)/", r.key)]
        if m
    }
    window = {str(date(2025, 6, 1) + timedelta(days=n)) for n in range(7)}
    assert window <= read
    assert len(read - window) <= 1, sorted(read - window)  # the file that gives the schema
    listings = [r for r in requests if "list-type" in r.path or "prefix=" in r.path]
    assert len(listings) <= 2  # the glob is listed, not probed object by object


def test_check_tries_an_object_storage_source(write_project, s3_server, shop_bucket):
    path = _s3_project(write_project, s3_server, shop_bucket)
    code, out, err = run_cli("--project", str(path), "check")
    assert code == 0, err
    bad = _s3_project(write_project, s3_server, shop_bucket, path="nothing/*.parquet")
    code, out, err = run_cli("--project", str(bad), "check")
    assert code == 1
    assert f"no object matches s3://{shop_bucket}/nothing/*.parquet" in out + err


def test_query_check_refuses_file_readers_for_lake_sources():
    from lookback_gui.core.project import SourceConfig
    from lookback_gui.core.sources import check_query

    source = SourceConfig(
        name="shop", type="parquet", path="s3://b/x.parquet", resolved_path="s3://b/x.parquet"
    )
    with pytest.raises(QueryError, match="read_csv"):
        check_query("SELECT * FROM read_csv('s3://b/y.csv')", source)
    check_query("SELECT * FROM shop, range(3)", source)
    assert PullError  # the error family of failed pulls
