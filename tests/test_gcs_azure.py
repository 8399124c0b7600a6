"""GCS and Azure sources, as far as they can be tried without an account.

- ``gs://`` goes through GCS's S3-compatible XML API with an HMAC key: DuckDB's ``gcs`` secret
  speaks it, so a ``gs://`` source given the local S3 server (moto) as its endpoint is read end
  to end, through the same listing, secret, scope and locked reach as in GCS itself.
- ``az://`` needs the Azure Blob API, which no server here speaks: what is tried is the secret
  (made, scoped to the URL's prefix, its key redacted), the project file's checks, and an
  account that cannot be reached, which is said in one line naming the URL and retried.

What stays untried (reading from real GCS or Azure accounts, Azure AD credentials) is listed in
the README (*Sources in object storage*).
"""

from __future__ import annotations

import socket
import uuid
from datetime import date, datetime

import duckdb
import pytest

from lookback_gui.core.project import SourceConfig, load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.sources import connect_source, release_source
from lookback_gui.core.storage.objectstore import create_secret
from lookback_gui.core.storage.urls import StorageConfig
from lookback_gui.core.store import open_store
from tests.helpers import project_text, run_cli
from tests.s3server import KEY_ID, SECRET
from tests.test_object_storage import fill_shop_bucket


def _gcs_keys(server) -> str:
    """A gs:// source's keys for the local server: an HMAC key, its endpoint, path style."""
    return (
        f'access_key_id = "{KEY_ID}"\nsecret_env = "LOOKBACK_TEST_S3_SECRET"\n'
        f'endpoint = "127.0.0.1:{server.port}"\nurl_style = "path"\nuse_ssl = false\n'
    )


@pytest.fixture
def gcs_bucket(s3_server, s3_secret) -> str:
    return fill_shop_bucket(s3_server, "gcs")


def test_a_gs_source_is_read_with_an_hmac_key(write_project, s3_server, gcs_bucket, tmp_path):
    source = f'type = "parquet"\npath = "gs://{gcs_bucket}/orders/*.parquet"\n{_gcs_keys(s3_server)}'
    path = write_project(project_text(source=source, source_name="orders"))
    mark = s3_server.mark()
    code, out, err = run_cli("--project", str(path), "pull", "daily_orders", "--as-of", "2026-10-30T12:00")
    assert code == 0, err
    assert any(r.key.startswith(f"{gcs_bucket}/orders/") for r in s3_server.requests_since(mark))
    with open_store(load_project(path).store) as store:
        rows = {
            (r.bucket.date(), r.dims["country"], r.measure): r.value for r in store.history("daily_orders")
        }
    assert rows[(date(2026, 10, 25), "DE", "orders")] == 1
    assert rows[(date(2026, 10, 29), "DE", "revenue")] == 7.0
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert SECRET.encode() not in file.read_bytes(), file
    code, out, err = run_cli("--project", str(path), "check")
    assert code == 0, err


def test_a_gs_source_reaches_nothing_but_its_objects(s3_server, gcs_bucket):
    url = f"gs://{gcs_bucket}/orders/*.parquet"
    source = SourceConfig(
        name="shop",
        type="parquet",
        path=url,
        resolved_path=url,
        storage=StorageConfig(
            access_key_id=KEY_ID,
            secret_env="LOOKBACK_TEST_S3_SECRET",
            endpoint=f"127.0.0.1:{s3_server.port}",
            url_style="path",
            use_ssl=False,
        ),
    )
    con = connect_source(source)
    try:
        assert con.execute("SELECT count(*) FROM shop").fetchone() == (3,)
        secrets = con.execute("SELECT type, scope, secret_string FROM duckdb_secrets()").fetchall()
        assert [(kind, scope) for kind, scope, _ in secrets] == [("gcs", [f"gs://{gcs_bucket}/orders/"])]
        assert SECRET not in str(secrets)
        for other in (
            f"gs://{gcs_bucket}/private/salaries.parquet",
            f"s3://{gcs_bucket}/private/salaries.parquet",
        ):
            with pytest.raises(duckdb.PermissionException):
                con.execute(f"SELECT * FROM read_parquet('{other}')").fetchall()
    finally:
        release_source(con, source)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_storage_that_cannot_be_reached_is_one_line_naming_the_url(write_project, s3_secret):
    """DuckDB's message for a failed listing ended with the listing's own SQL ("LINE 1: SELECT
    file FROM glob(?)"); the error names the source's URL instead."""
    url = "s3://shop/orders/*.parquet"
    source = (
        f'type = "parquet"\npath = "{url}"\naccess_key_id = "{KEY_ID}"\n'
        'secret_env = "LOOKBACK_TEST_S3_SECRET"\n'
        f'endpoint = "127.0.0.1:{_closed_port()}"\nurl_style = "path"\nuse_ssl = false\n'
    )
    path = write_project(project_text(source=source, source_name="orders"))
    code, out, err = run_cli("--project", str(path), "pull", "daily_orders", "--as-of", "2026-10-30T12:00")
    assert code == 1
    assert err.startswith(f"error: source orders: {url} cannot be listed: "), err
    assert err.count("\n") == 1 and "glob" not in err and "LINE" not in err, err


def _account() -> str:
    """An Azure storage account name that nobody holds (3-24 lower-case letters and digits)."""
    return "lookback" + uuid.uuid4().hex[:12]


def test_an_azure_secret_is_made_scoped_with_its_key_redacted():
    key = "c2VjcmV0LWFjY291bnQta2V5"
    for storage, provider in (
        (StorageConfig(access_key_id=_account(), secret_env="AZ_KEY"), "config"),
        (StorageConfig(access_key_id=_account(), credential_chain=True), "credential_chain"),
    ):
        con = duckdb.connect()
        try:
            create_secret(
                con,
                "lookback_source",
                "az://data/orders/*.parquet",
                storage,
                "source orders",
                environ={"AZ_KEY": key},
            )
            rows = con.execute("SELECT type, provider, scope, secret_string FROM duckdb_secrets()").fetchall()
        finally:
            con.close()
        assert [(kind, given, scope) for kind, given, scope, _ in rows] == [
            ("azure", provider, ["az://data/orders/"])
        ]
        assert key not in str(rows)


def test_an_azure_account_that_cannot_be_reached_is_retried_and_named(write_project, monkeypatch):
    """No server here speaks the Azure Blob API: an account that does not exist fails as one
    unreachable, which a retry may fix (a network down) — tried twice, said in one line."""
    key = "c2VjcmV0LWFjY291bnQta2V5"
    monkeypatch.setenv("LOOKBACK_TEST_AZ_KEY", key)
    account = _account()
    url = "az://data/orders/*.parquet"
    source = (
        f'type = "parquet"\npath = "{url}"\naccess_key_id = "{account}"\nsecret_env = "LOOKBACK_TEST_AZ_KEY"'
    )
    text = project_text(source=source, source_name="orders")
    path = write_project(text.replace("retries = 0\n", 'retries = 1\nretry_base = "1s"\n'))
    project = load_project(path)
    with open_store(project.store) as store:
        run = run_pull(project, "daily_orders", store, as_of=datetime(2026, 10, 30, 12))
    assert run.status == "failed" and run.attempts == 2
    error = run.error or ""
    assert error.startswith(f"source orders: {url} cannot be listed: "), error
    assert f"{account}.blob.core.windows.net" in error and "\n" not in error
    assert key not in error and "glob" not in error


@pytest.mark.parametrize(
    ("source", "said"),
    [
        (
            'type = "parquet"\npath = "gs://b/x/*.parquet"\nregion = "europe-west3"',
            "region is for S3 and S3-compatible stores (s3://)",
        ),
        (
            'type = "parquet"\npath = "az://c/x/*.parquet"\nendpoint = "127.0.0.1:9"',
            "endpoint is for S3-compatible stores and GCS (s3://, gs://)",
        ),
        (
            'type = "parquet"\npath = "az://c/x/*.parquet"\nurl_style = "path"',
            "url_style is for S3-compatible stores and GCS (s3://, gs://)",
        ),
    ],
)
def test_keys_a_gcs_or_azure_path_does_not_take_are_refused(write_project, source, said):
    path = write_project(project_text(source=source))
    code, out, err = run_cli("--project", str(path), "check")
    assert code == 2
    assert said in err and err.startswith("error:") and err.count("\n") == 1, err


def test_a_gs_endpoint_is_accepted_in_the_project_file(write_project):
    path = write_project(
        project_text(
            source='type = "parquet"\npath = "gs://b/x/*.parquet"\n'
            'endpoint = "storage-lake.p.googleapis.com"\nurl_style = "path"'
        )
    )
    storage = load_project(path).sources["shop"].storage
    assert (storage.endpoint, storage.url_style) == ("storage-lake.p.googleapis.com", "path")
