"""The source editor for sources in object storage (Parquet/CSV at a URL, Iceberg, Delta),
against the local S3 server: the URL-aware path, the key's fields, the secret kept in the
keyring and never in the file, *Test connection* and the schema browser."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

pytest.importorskip("PySide6.QtWidgets")

import keyring
import keyring.backend

import lookback_gui.ui  # noqa: F401
from lookback_gui.core.project import load_project
from lookback_gui.core.sources import describe_schema
from lookback_gui.core.storage.passwords import KEYRING_SERVICE
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.editors import SourceEditor
from tests.helpers import project_text
from tests.s3server import KEY_ID, REGION, SECRET


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring held in memory: the OS keyring service does not run here."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.kept: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.kept.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.kept[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.kept.pop((service, username), None)


@pytest.fixture
def memory_keyring():
    before = keyring.get_keyring()
    kept = MemoryKeyring()
    keyring.set_keyring(kept)
    yield kept
    keyring.set_keyring(before)


@pytest.fixture
def bridge(qtbot):
    bridge = Bridge()
    yield bridge
    bridge.shutdown()


def _parquet_in(server, bucket: str, folder: Path) -> str:
    """One Parquet file written by DuckDB, put into the bucket under events/day=1/."""
    file = folder / "part-0.parquet"
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT TIMESTAMP '2026-11-20 10:00' AS ordered_at, 'DE' AS country, "
        f"4.5::DOUBLE AS amount) TO '{file}' (FORMAT parquet)"
    )
    con.close()
    server.client().put_object(Bucket=bucket, Key="events/day=1/part-0.parquet", Body=file.read_bytes())
    return f"s3://{bucket}/events/*/*.parquet"


def _url_of(kind: str, server, tmp_path: Path) -> str:
    if kind == "parquet":
        return _parquet_in(server, server.bucket("edit"), tmp_path)
    from tests.test_lakehouse import Table

    table = Table(kind, "s3", tmp_path, server)
    table.append([(1, datetime(2026, 11, 20, 10), "DE", 4.5)])
    return table.location


def _fill(editor: SourceEditor, kind: str, url: str, server) -> None:
    editor.name.setText("events")
    editor.type.setCurrentText(kind)
    editor.path.setText(url)
    editor.storage.access_key_id.setText(KEY_ID)
    editor.storage.secret.setText(SECRET)
    editor.storage.endpoint.setText(server.endpoint)  # http://127.0.0.1:PORT: no TLS
    editor.storage.region.setText(REGION)
    editor.storage.path_style.setChecked(True)


@pytest.mark.parametrize("kind", ["parquet", "delta", "iceberg"])
def test_a_source_in_object_storage_is_tested_browsed_and_saved_with_its_secret_in_the_keyring(
    qtbot, bridge, tmp_path, s3_server, memory_keyring, kind, monkeypatch
):
    monkeypatch.delenv("LOOKBACK_TEST_S3_SECRET", raising=False)
    url = _url_of(kind, s3_server, tmp_path)
    path = tmp_path / "lookback.toml"
    path.write_text(project_text(), encoding="utf-8")
    editor = SourceEditor(load_project(path), bridge)
    qtbot.addWidget(editor)
    editor.type.setCurrentText(kind)
    editor.path.setText("events.parquet")  # a local path: no storage fields, Browse works
    assert not editor.form.isRowVisible(editor.rows["access_key_id"])
    assert editor.browse.isEnabled()
    _fill(editor, kind, url, s3_server)
    for key in ("access_key_id", "secret_env", "secret", "endpoint", "region", "url_style"):
        assert editor.form.isRowVisible(editor.rows[key]), key
    assert not editor.browse.isEnabled()  # a URL is typed, not browsed

    # the secret typed but not saved yet reaches the test connection, not the keyring
    editor.test.click()
    qtbot.waitUntil(lambda: editor.test.isEnabled(), timeout=60000)
    assert editor.test_result.text() == "connected: 1 table(s)", editor.test_result.text()
    table = editor.schema.topLevelItem(0)
    assert table.text(0) == "events"
    columns = {table.child(i).text(0) for i in range(table.childCount())}
    assert {"ordered_at", "country", "amount"} <= columns
    assert memory_keyring.kept == {}

    editor.save()
    assert editor.result() == editor.DialogCode.Accepted
    text = path.read_text(encoding="utf-8")
    assert SECRET not in text
    assert memory_keyring.kept == {(KEYRING_SERVICE, f"s3:{KEY_ID}"): SECRET}
    source = load_project(path).sources["events"]
    assert source.path == url and source.storage is not None
    assert (source.storage.access_key_id, source.storage.url_style) == (KEY_ID, "path")
    assert source.storage.secret_env is None
    # what was saved reads the bucket with the secret from the keyring
    assert {r["column"] for r in describe_schema(source)} >= {"ordered_at", "amount"}


def test_without_a_keyring_the_secret_is_refused_and_nothing_is_written(qtbot, bridge, tmp_path, s3_server):
    path = tmp_path / "lookback.toml"
    path.write_text(project_text(), encoding="utf-8")
    before = path.read_text(encoding="utf-8")
    editor = SourceEditor(load_project(path), bridge)
    qtbot.addWidget(editor)
    _fill(editor, "parquet", "s3://nowhere/events/*.parquet", s3_server)
    editor.save()
    assert editor.result() != editor.DialogCode.Accepted
    assert "no keyring service is available here" in editor.errors["secret"].text()
    assert path.read_text(encoding="utf-8") == before
    # a secret without the key it belongs to is said at the secret
    editor.storage.access_key_id.clear()
    editor.save()
    assert "access key id" in editor.errors["secret"].text()


def test_a_source_moved_from_a_url_to_a_local_file_loses_its_storage_keys(qtbot, bridge, tmp_path, s3_server):
    path = tmp_path / "lookback.toml"
    path.write_text(
        project_text(source=f'type = "parquet"\npath = "s3://b/events/*.parquet"\n{s3_server.source_keys()}'),
        encoding="utf-8",
    )
    project = load_project(path)
    editor = SourceEditor(project, bridge, project.sources["shop"])
    qtbot.addWidget(editor)
    assert editor.storage.access_key_id.text() == KEY_ID
    assert editor.storage.path_style.isChecked()
    (tmp_path / "events.parquet").write_bytes(b"")
    editor.path.setText("events.parquet")
    editor.save()
    assert editor.result() == editor.DialogCode.Accepted, editor.general_error.text()
    saved = load_project(path).sources["shop"]
    assert saved.storage is None and saved.path == "events.parquet"
    assert "access_key_id" not in path.read_text(encoding="utf-8")


def test_a_gs_source_keeps_its_endpoint_and_an_az_source_shows_no_s3_fields(qtbot, bridge, tmp_path):
    path = tmp_path / "lookback.toml"
    path.write_text(
        project_text(
            source='type = "parquet"\npath = "gs://lake/events/*.parquet"\naccess_key_id = "HMAC"\n'
            'secret_env = "GCS_SECRET"\nendpoint = "storage-lake.p.googleapis.com"\n'
            'url_style = "path"'
        ),
        encoding="utf-8",
    )
    project = load_project(path)
    editor = SourceEditor(project, bridge, project.sources["shop"])
    qtbot.addWidget(editor)
    for key in ("access_key_id", "secret_env", "secret", "endpoint", "url_style"):
        assert editor.form.isRowVisible(editor.rows[key]), key
    assert not editor.form.isRowVisible(editor.rows["region"])
    editor.save()
    assert editor.result() == editor.DialogCode.Accepted, editor.general_error.text()
    saved = load_project(path).sources["shop"].storage
    assert saved is not None
    assert (saved.endpoint, saved.url_style) == ("storage-lake.p.googleapis.com", "path")

    editor = SourceEditor(project, bridge)
    qtbot.addWidget(editor)
    editor.path.setText("az://data/events/*.parquet")
    for key in ("endpoint", "region", "url_style"):
        assert not editor.form.isRowVisible(editor.rows[key]), key
    assert editor.form.isRowVisible(editor.rows["access_key_id"])
