"""The team store (DESIGN: *The team store*): a DuckLake whose catalog is a database on the real
PostgreSQL server, shared by several processes at once."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from lookback_gui.core.errors import ProjectError
from lookback_gui.core.project import load_project, parse_project
from lookback_gui.core.store import open_store
from tests.helpers import (
    DAILY_SQL,
    PROCESS_S,
    PROCESSES_TEST_S,
    lookback_daemon,
    lookback_process,
    make_orders,
    project_text,
    run_cli,
)

SERVER = "host=127.0.0.1 port=5432 user=postgres"


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER} dbname=test", autocommit=True) as con:
        con.execute(sql)


@pytest.fixture
def catalog() -> Iterator[str]:
    """A fresh catalog database on the real server, dropped afterwards."""
    name = f"lookback_team_{uuid.uuid4().hex[:10]}"
    _admin(f"CREATE DATABASE {name}")
    try:
        yield f"{SERVER} dbname={name}"
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def team_text(catalog: str, data: str = "lake", **kwargs: str) -> str:
    text = project_text(**kwargs)
    return text.replace(
        '[store]\npath = "lookback.duckdb"\n',
        f'[store]\ntype = "ducklake"\ncatalog = "{catalog}"\ndata_path = "{data}"\n',
    )


ROWS = [
    (i, datetime(2026, 11, 20) + timedelta(hours=3 * i), ("DE", "FR", "ÉIRE")[i % 3], float(i % 7))
    for i in range(60)
]


@pytest.fixture
def team(tmp_path: Path, catalog: str) -> Path:
    """A project whose store is a team store, over a DuckDB source of orders."""
    make_orders(tmp_path / "shop.duckdb", ROWS)
    path = tmp_path / "lookback.toml"
    path.write_text(team_text(catalog))
    return path


@pytest.fixture(params=["folder", "s3"])
def any_team(request: pytest.FixtureRequest, tmp_path: Path, catalog: str) -> Path:
    """A project whose team store keeps its data files in a folder, or in a bucket of the
    local S3 server (its secret in an environment variable, as a member would set it)."""
    make_orders(tmp_path / "shop.duckdb", ROWS)
    path = tmp_path / "lookback.toml"
    if request.param == "folder":
        path.write_text(team_text(catalog))
    else:
        server = request.getfixturevalue("s3_server")
        request.getfixturevalue("s3_secret")
        text = team_text(catalog, data=f"s3://{server.bucket('team')}/lake")
        path.write_text(text.replace("data_path = ", server.source_keys() + "data_path = "))
    return path


# -- the project file ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "store, reason",
    [
        ('type = "ducklake"\ndata_path = "x"', "needs a 'catalog'"),
        ('type = "ducklake"\ncatalog = "dbname=x"', "needs a 'data_path'"),
        (
            'type = "ducklake"\ncatalog = "dbname=x password=hunter2"\ndata_path = "x"',
            "the catalog holds a password",
        ),
        (
            'type = "ducklake"\ncatalog = "postgresql://me:hunter2@db/x"\ndata_path = "x"',
            "the catalog holds a password",
        ),
        ('type = "ducklake"\npath = "a.duckdb"\ncatalog = "dbname=x"\ndata_path = "x"', "not a 'path'"),
        ('catalog = "dbname=x"', "a local store takes a 'path', not a 'catalog'"),
        ('type = "iceberg"', "unknown store type 'iceberg'"),
    ],
)
def test_a_wrong_store_table_is_a_project_error_naming_the_key(tmp_path, store, reason):
    text = f"[store]\n{store}\n"
    with pytest.raises(ProjectError) as caught:
        parse_project(text, tmp_path / "lookback.toml")
    assert reason in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_team_store_is_parsed_with_its_data_folder_beside_the_project(tmp_path):
    project = parse_project(
        '[store]\ntype = "ducklake"\ncatalog = "dbname=team"\n'
        'password_env = "TEAM_PW"\ndata_path = "shared/lake"\n',
        tmp_path / "lookback.toml",
    )
    assert project.store.team
    assert project.store.catalog == "dbname=team"
    assert project.store.password_env == "TEAM_PW"
    assert project.store.data_path == str((tmp_path / "shared" / "lake").resolve())
    s3 = parse_project(
        '[store]\ntype = "ducklake"\ncatalog = "dbname=team"\ndata_path = "s3://bucket/lake/"\n',
        tmp_path / "lookback.toml",
    )
    assert s3.store.data_path == "s3://bucket/lake/"


def test_an_unset_password_variable_is_named(team, monkeypatch):
    text = team.read_text().replace(
        'data_path = "lake"', 'data_path = "lake"\npassword_env = "LOOKBACK_NO_SUCH_PW"'
    )
    team.write_text(text)
    monkeypatch.delenv("LOOKBACK_NO_SUCH_PW", raising=False)
    code, _, err = run_cli("--project", str(team), "runs")
    assert code == 2 or code == 1
    assert "LOOKBACK_NO_SUCH_PW" in err and "is not set" in err


def test_an_unreachable_catalog_is_one_clear_error(tmp_path):
    make_orders(tmp_path / "shop.duckdb", ROWS)
    path = tmp_path / "lookback.toml"
    path.write_text(team_text("host=127.0.0.1 port=1 user=postgres dbname=nowhere"))
    code, out, err = run_cli("--project", str(path), "runs")
    assert code != 0
    assert err.startswith("error: team store host=127.0.0.1 port=1")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


# -- one process -----------------------------------------------------------------------------


def _history(project_path: Path, metric: str = "daily_orders") -> list[dict]:
    code, out, err = run_cli("--project", str(project_path), "history", metric, "--json")
    assert code == 0, err
    return json.loads(out)


def test_pulls_on_a_team_store_give_what_a_local_store_gives(team, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    make_orders(local / "shop.duckdb", ROWS)
    (local / "lookback.toml").write_text(project_text())
    for as_of in ("2026-11-25 00:00", "2026-11-27 12:00", "2026-11-30 00:00"):
        for path in (team, local / "lookback.toml"):
            code, _, err = run_cli("--project", str(path), "pull", "daily_orders", "--as-of", as_of)
            assert code == 0, err
    assert _history(team) == _history(local / "lookback.toml")
    assert len(_history(team)) > 10
    code, out, _ = run_cli("--project", str(team), "runs", "--json")
    runs = json.loads(out)
    assert [r["id"] for r in runs] == [3, 2, 1]
    assert all(r["status"] == "succeeded" for r in runs)
    code, out, err = run_cli("--project", str(team), "store", "stats")
    assert code == 0, err
    assert "3 runs" in out and "daily_orders" in out


@pytest.mark.timeout(PROCESSES_TEST_S)  # dozens of pulls on the catalog server: minutes when busy
def test_the_oracle_of_knowledge_time_holds_on_a_team_store():
    """The knowledge-time state machine (tests/test_knowledge_time.py), on a team store."""
    from hypothesis import HealthCheck, settings

    from tests.test_knowledge_time import KnowledgeTime

    class OnATeamStore(KnowledgeTime):
        def __init__(self) -> None:
            self.catalog_name = f"lookback_team_{uuid.uuid4().hex[:10]}"
            _admin(f"CREATE DATABASE {self.catalog_name}")
            super().__init__()

        def open_store(self, root: Path):  # type: ignore[override]
            text = (
                (root / "lookback.toml")
                .read_text()
                .replace(
                    '[store]\npath = "lookback.duckdb"\n',
                    f'[store]\ntype = "ducklake"\ncatalog = "{SERVER} dbname={self.catalog_name}"\n'
                    'data_path = "lake"\n',
                )
            )
            (root / "lookback.toml").write_text(text)
            project = load_project(root / "lookback.toml")
            assert project.store.team
            return project, open_store(project.store)

        def teardown(self) -> None:
            try:
                super().teardown()
            finally:
                _admin(f"DROP DATABASE IF EXISTS {self.catalog_name} WITH (FORCE)")

    test = OnATeamStore.TestCase
    test.settings = settings(
        max_examples=8,
        stateful_step_count=10,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    test("runTest").runTest()


# -- several processes -----------------------------------------------------------------------


def _aggregate(source: Path) -> dict:
    con = duckdb.connect(str(source), read_only=True)
    try:
        rows = con.execute(
            DAILY_SQL.replace("$window_start", "TIMESTAMP '2000-01-01'").replace(
                "$window_end", "TIMESTAMP '2100-01-01'"
            )
        ).fetchall()
    finally:
        con.close()
    return {(b.isoformat(timespec="seconds"), c): (n, r) for b, c, n, r in rows}


@pytest.mark.slow
@pytest.mark.timeout(PROCESSES_TEST_S)
def test_three_writers_and_a_reader_at_once_lose_nothing(team, tmp_path):
    """Two processes pull over and over while a third backfills and a fourth reads; then every
    run is there once, with its own id, and the values equal a fresh aggregate."""
    writers = [
        lookback_process(
            "--project",
            str(team),
            "backfill",
            "daily_orders",
            "--from",
            "2026-11-20",
            "--to",
            "2026-11-30 06:00",
        )
    ]
    script = textwrap.dedent("""
        import sys
        from lookback_gui.cli import main
        for as_of in sys.argv[2:]:
            code = main(["--project", sys.argv[1], "pull", "daily_orders", "--as-of", as_of])
            assert code == 0, code
    """)
    times = [f"2026-11-{d} {h:02d}:00" for d in (28, 29, 30) for h in (0, 8, 16) if d < 30 or h == 0]
    for chunk in (times[::2], times[1::2]):
        writers.append(
            subprocess.Popen(
                [sys.executable, "-c", script, str(team), *chunk],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    reads = 0
    deadline = time.monotonic() + PROCESS_S
    while any(w.poll() is None for w in writers):
        assert time.monotonic() < deadline, "the writers did not finish"
        code, out, err = run_cli("--project", str(team), "runs", "--json")
        assert code == 0, err
        json.loads(out)
        reads += 1
    for writer in writers:
        out, err = writer.communicate()
        assert writer.returncode == 0, err
    assert reads >= 2
    code, out, _ = run_cli("--project", str(team), "runs", "--json")
    runs = json.loads(out)
    ids = [r["id"] for r in runs]
    assert len(ids) == len(set(ids)) == 2 + len(times)  # two backfill chunks
    assert all(r["status"] == "succeeded" for r in runs), [
        (r["id"], r["status"], r["error"]) for r in runs if r["status"] != "succeeded"
    ]
    history: dict = {}
    for h in _history(team):
        history.setdefault((h["bucket"], h["dims"]["country"]), {})[h["measure"]] = h["value"]
    assert {k: (v["orders"], v["revenue"]) for k, v in history.items()} == _aggregate(
        tmp_path / "shop.duckdb"
    )


def test_two_processes_pulling_at_once_lose_nothing(any_team, tmp_path):
    """Two processes pull into one team store at the same time (its data files in a folder or
    in object storage): every run is there once, with its own id, and the values equal a
    fresh aggregate of the buckets the pulls covered."""
    team = any_team
    script = textwrap.dedent("""
        import sys
        from lookback_gui.cli import main
        for as_of in sys.argv[2:]:
            code = main(["--project", sys.argv[1], "pull", "daily_orders", "--as-of", as_of])
            assert code == 0, code
    """)
    chunks = (["2026-11-27 00:00", "2026-11-28 00:00"], ["2026-11-27 12:00", "2026-11-28 12:00"])
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(team), *chunk],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for chunk in chunks
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=240)
        assert writer.returncode == 0, err
    code, out, _ = run_cli("--project", str(team), "runs", "--json")
    runs = json.loads(out)
    assert sorted(r["id"] for r in runs) == [1, 2, 3, 4]
    assert all(r["status"] == "succeeded" for r in runs), [r["error"] for r in runs]
    history = {}
    for h in _history(team):
        history.setdefault((h["bucket"], h["dims"]["country"]), {})[h["measure"]] = h["value"]
    expected = {
        k: v for k, v in _aggregate(tmp_path / "shop.duckdb").items() if k[0] >= "2026-11-21"
    }  # the first pull's window starts there
    assert {k: (v["orders"], v["revenue"]) for k, v in history.items()} == expected


def test_a_team_store_in_object_storage_keeps_its_secret_to_duckdb(
    s3_server, s3_secret, catalog, tmp_path, monkeypatch
):
    """The data files go to the bucket under data_path; the key's secret reaches DuckDB only:
    it is in no message, no catalog table and not in the project file."""
    import psycopg

    make_orders(tmp_path / "shop.duckdb", ROWS)
    bucket = s3_server.bucket("team")
    path = tmp_path / "lookback.toml"
    text = team_text(catalog, data=f"s3://{bucket}/lake")
    path.write_text(text.replace("data_path = ", s3_server.source_keys() + "data_path = "))
    code, out, err = run_cli("--project", str(path), "pull", "daily_orders", "--as-of", "2026-11-25 00:00")
    assert code == 0, err
    listed = s3_server.client().list_objects_v2(Bucket=bucket)
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert keys and all(k.startswith("lake/") for k in keys), keys
    assert any(k.endswith(".parquet") for k in keys)
    assert s3_secret not in path.read_text() and s3_secret not in out + err
    with psycopg.connect(catalog, autocommit=True) as con:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
        for table in tables:
            for row in con.execute(f'SELECT t::text FROM "{table}" t'):
                assert s3_secret not in row[0], table
    # an unset secret: one line naming the variable
    monkeypatch.delenv("LOOKBACK_TEST_S3_SECRET")
    code, _, err = run_cli("--project", str(path), "runs")
    assert code != 0
    assert "LOOKBACK_TEST_S3_SECRET (secret_env) is not set" in err, err
    assert len(err.strip().splitlines()) == 1


def test_object_storage_out_of_reach_fails_a_pull_with_one_line_naming_the_store(
    catalog, tmp_path, monkeypatch
):
    make_orders(tmp_path / "shop.duckdb", ROWS)
    monkeypatch.setenv("LOOKBACK_UNREACHABLE_SECRET", "unreachable-secret-value")
    path = tmp_path / "lookback.toml"
    path.write_text(
        team_text(catalog, data="s3://nowhere/lake").replace(
            "data_path = ",
            'access_key_id = "k"\nsecret_env = "LOOKBACK_UNREACHABLE_SECRET"\n'
            'endpoint = "127.0.0.1:1"\nuse_ssl = false\nurl_style = "path"\ndata_path = ',
        )
    )
    code, _, err = run_cli("--project", str(path), "pull", "daily_orders", "--as-of", "2026-11-25 00:00")
    assert code == 1
    assert err.startswith("error: team store host=127.0.0.1"), err
    assert "a write failed" in err and "127.0.0.1:1" in err
    assert "this is a bug" not in err and len(err.strip().splitlines()) == 1
    assert "unreachable-secret-value" not in err


SCHEDULED = '\nevery = "1h"\n'


@pytest.mark.slow
@pytest.mark.timeout(PROCESSES_TEST_S)
def test_one_scheduler_holds_the_lease_and_a_standby_takes_over_when_it_is_killed(team, monkeypatch):
    """Two `lookback schedule` on one team store: one schedules, the other stands by; a kill -9
    of the first leaves its lease unrenewed, and the second takes over."""
    team.write_text(team.read_text().replace("retries = 0\n", "retries = 0" + SCHEDULED))
    monkeypatch.setenv("LOOKBACK_LEASE_S", "4")
    with lookback_daemon("--project", str(team), "schedule") as first:
        Lines(first).wait_for("scheduler started")
        with lookback_daemon("--project", str(team), "schedule") as second:
            lines = Lines(second)
            line = lines.wait_for("standing by")
            assert "already runs in another process (lookback PID " in line
            assert f"PID {first.pid} on " in line
            # a full lease goes by while the second stands by: the first renews it meanwhile
            catalog = load_project(team).store.catalog
            since = _lease_renewed(catalog)
            deadline = time.monotonic() + PROCESS_S
            while _lease_renewed(catalog) <= since + timedelta(seconds=4):
                assert time.monotonic() < deadline, "the first stopped renewing its lease"
                lines.wait_for_any(timeout=0.5)
            assert first.poll() is None and second.poll() is None
            assert "scheduler started" not in lines.text()
            first.send_signal(signal.SIGKILL)
            first.wait()
            lines.wait_for("scheduler started")  # once the lease of 4 s went unrenewed
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=PROCESS_S) == 0


def _lease_renewed(catalog: str) -> datetime:
    """When the holder of the scheduling lease last renewed it (the catalog's clock)."""
    import psycopg

    with psycopg.connect(catalog, autocommit=True) as con:
        row = con.execute("SELECT renewed_at FROM lookback_scheduler_lease").fetchone()
    assert row is not None
    return row[0]


class Lines:
    """The lines a process writes on stdout, collected by a thread as they come."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.lines: list[str] = []
        self._more = threading.Condition()
        self._ended = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._more:
                self.lines.append(line)
                self._more.notify_all()
        self.process.stdout.close()
        with self._more:
            self._ended = True
            self._more.notify_all()

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for_any(self, timeout: float) -> None:
        """Until the process writes a line or ends, at most ``timeout`` seconds."""
        with self._more:
            self._more.wait(timeout)

    def wait_for(self, words: str, timeout: float = PROCESS_S) -> str:
        def found() -> str | None:
            return next((line for line in self.lines if words in line), None)

        with self._more:
            if not self._more.wait_for(lambda: found() is not None or self._ended, timeout):
                raise AssertionError(f"no line with {words!r}: {self.text()}")
            line = found()
        if line is None:
            raise AssertionError(f"ended before {words!r}: {self.text()}")
        return line


# -- copies ----------------------------------------------------------------------------------


def test_a_local_store_copied_into_a_team_store_and_back_keeps_every_run_and_version(any_team, tmp_path):
    team = any_team  # data files in a folder, or in object storage
    local = tmp_path / "local"
    local.mkdir()
    make_orders(local / "shop.duckdb", ROWS)
    (local / "lookback.toml").write_text(project_text())
    for as_of in ("2026-11-25 00:00", "2026-11-27 12:00"):
        assert (
            run_cli("--project", str(local / "lookback.toml"), "pull", "daily_orders", "--as-of", as_of)[0]
            == 0
        )
    before = _history(local / "lookback.toml")
    code, out, err = run_cli("--project", str(local / "lookback.toml"), "store", "copy", "--to", str(team))
    assert code == 0, err
    assert "copied 2 runs" in out
    assert _history(team) == before
    # the team store goes on numbering after the copied runs
    assert run_cli("--project", str(team), "pull", "daily_orders", "--as-of", "2026-11-29 00:00")[0] == 0
    code, out, _ = run_cli("--project", str(team), "runs", "--json")
    assert [r["id"] for r in json.loads(out)] == [3, 2, 1]
    _, revisions_team, _ = run_cli("--project", str(team), "revisions", "daily_orders", "--json")
    # and back into a new local store
    back = tmp_path / "back"
    back.mkdir()
    (back / "lookback.toml").write_text(
        project_text().replace('path = "lookback.duckdb"', f'path = "{back / "copy.duckdb"}"')
    )
    code, out, err = run_cli("--project", str(team), "store", "copy", "--to", str(back / "lookback.toml"))
    assert code == 0, err
    assert "copied 3 runs" in out
    _, revisions_back, _ = run_cli(
        "--project", str(back / "lookback.toml"), "revisions", "daily_orders", "--json"
    )
    assert json.loads(revisions_back) == json.loads(revisions_team)
    assert _history(back / "lookback.toml") == _history(team)
    # a copy into a store that holds runs is refused, and changes nothing
    code, _, err = run_cli(
        "--project", str(local / "lookback.toml"), "store", "copy", "--to", str(back / "lookback.toml")
    )
    assert code == 2
    assert "already holds 3 runs" in err
    assert _history(back / "lookback.toml") == _history(team)


# -- a writer that holds the store -----------------------------------------------------------


@pytest.fixture
def team_held(team: Path) -> Iterator[subprocess.Popen]:
    """Another process in the middle of one long write to the team store of ``team``."""
    assert run_cli("--project", str(team), "pull", "daily_orders", "--as-of", "2026-11-25 00:00")[0] == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import sys
        from lookback_gui.core.project import load_project
        from lookback_gui.core.store import open_store
        store = open_store(load_project({str(team)!r}).store)
        with store.writing():
            print("ready", flush=True)
            sys.stdin.read()
    """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "ready"
    try:
        yield holder
    finally:
        holder.communicate(timeout=PROCESS_S)


def test_a_reader_gets_its_answer_while_another_process_writes(team, team_held, monkeypatch):
    monkeypatch.setenv("LOOKBACK_STORE_WAIT", "3")
    code, out, err = run_cli("--project", str(team), "runs", "--json")
    assert code == 0, err  # a reader that waited for the writer would give up after 3 s
    assert [r["id"] for r in json.loads(out)] == [1]
    assert "waiting" not in err


def test_a_writer_waits_names_the_holder_and_gives_up_after_the_wait(team, team_held, monkeypatch):
    monkeypatch.setenv("LOOKBACK_STORE_WAIT", "4")
    started = time.monotonic()
    code, _, err = run_cli("--project", str(team), "pull", "daily_orders", "--as-of", "2026-11-26 00:00")
    took = time.monotonic() - started
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[0].startswith("waiting for team store ")
    assert f"being written by lookback PID {team_held.pid} on " in lines[0]
    assert "was not free after 4 s" in lines[-1]
    assert took >= 4  # it waited the whole wait
    # nothing was recorded half: the refused pull left no run behind
    team_held.communicate(timeout=PROCESS_S)
    code, out, _ = run_cli("--project", str(team), "runs", "--json")
    assert [r["id"] for r in json.loads(out)] == [1]


# -- the desktop app -------------------------------------------------------------------------


def test_the_app_on_a_team_store_shows_runs_that_another_process_recorded(qtbot, team, tmp_path):
    from PySide6.QtCore import QSettings

    import lookback_gui.ui  # noqa: F401
    from lookback_gui.ui.main_window import MainWindow
    from tests.test_ui import open_and_wait

    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    try:
        open_and_wait(qtbot, window, team, start_scheduler=False)
        assert window.store is not None and window.store.team
        pulled = lookback_process(
            "--project", str(team), "pull", "daily_orders", "--as-of", "2026-11-26 00:00"
        )
        _, err = pulled.communicate(timeout=PROCESS_S)
        assert pulled.returncode == 0, err
        window._fallback.timeout.emit()  # the app's slow refresh
        qtbot.waitUntil(lambda: window.runs_model.rowCount() == 1, timeout=120_000)
        assert window.runs_model.record(0).status == "succeeded"
        window.select_metric("daily_orders")
        qtbot.waitUntil(
            lambda: window.chart._data is not None and window.chart._data.drawing is not None, timeout=120_000
        )
    finally:
        window.close_session(wait=True)


def _local(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    make_orders(folder / "shop.duckdb", ROWS)
    (folder / "lookback.toml").write_text(project_text())
    return folder / "lookback.toml"


def test_a_copy_is_refused_while_a_run_is_running_and_into_the_same_store(tmp_path):
    from lookback_gui.core.store import NewRun

    source, target = _local(tmp_path, "a"), _local(tmp_path, "b")
    assert run_cli("--project", str(source), "pull", "daily_orders", "--as-of", "2026-11-25 00:00")[0] == 0
    code, _, err = run_cli("--project", str(source), "store", "copy", "--to", str(source))
    assert code == 2 and "uses the same store" in err
    code, _, err = run_cli("--project", str(source), "store", "copy", "--to", str(tmp_path / "missing.toml"))
    assert code == 2 and "missing.toml" in err
    project = load_project(source)
    with open_store(project.store) as store:
        at = datetime(2026, 11, 26)
        store.begin_run(
            NewRun(
                metric="daily_orders",
                trigger="manual",
                timezone="UTC",
                grain="day",
                as_of=at,
                window_start=at - timedelta(days=7),
                window_end=at,
                partial_start=None,
                started_at=at,
                sql="",
                params={},
            )
        )
        code, _, err = run_cli("--project", str(source), "store", "copy", "--to", str(target))
    assert code == 2
    assert "run 2 is still running" in err
    code, out, _ = run_cli("--project", str(target), "runs", "--json")
    assert json.loads(out) == []


def test_compacting_a_team_store_merges_its_files_and_keeps_every_version(any_team):
    team = any_team  # data files in a folder, or in object storage
    for as_of in ("2026-11-24 00:00", "2026-11-25 00:00", "2026-11-26 00:00", "2026-11-27 00:00"):
        assert run_cli("--project", str(team), "pull", "daily_orders", "--as-of", as_of)[0] == 0
    before = (_history(team), run_cli("--project", str(team), "revisions", "daily_orders", "--json")[1])
    code, out, err = run_cli("--project", str(team), "store", "compact")
    assert code == 0, err
    files = re.search(r": (\d+) → (\d+) data files; every run and version kept", out)
    assert files, out
    assert int(files.group(2)) < int(files.group(1))
    assert (
        _history(team),
        run_cli("--project", str(team), "revisions", "daily_orders", "--json")[1],
    ) == before
    code, out, _ = run_cli("--project", str(team), "store", "stats", "--json")
    assert json.loads(out)["runs"] == 4


def test_the_app_takes_the_schedule_over_when_the_scheduler_elsewhere_dies(
    qtbot, team, tmp_path, monkeypatch
):
    from PySide6.QtCore import QSettings

    import lookback_gui.ui  # noqa: F401
    from lookback_gui.ui.main_window import MainWindow
    from tests.test_ui import open_and_wait

    team.write_text(team.read_text().replace("retries = 0\n", "retries = 0" + SCHEDULED))
    monkeypatch.setenv("LOOKBACK_LEASE_S", "4")
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    try:
        with lookback_daemon("--project", str(team), "schedule") as daemon:
            Lines(daemon).wait_for("scheduler started")
            open_and_wait(qtbot, window, team)
            session = window.session
            assert session is not None
            assert f"lookback PID {daemon.pid} on " in (session.scheduled_elsewhere or "")
            assert window._standby.isActive()
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
        # taken over on a worker, then said on the GUI thread
        qtbot.waitUntil(lambda: not window._standby.isActive(), timeout=120_000)
        assert session.scheduled_elsewhere is None
        assert session.scheduler.running
        assert "scheduled pulls run here now" in window.statusBar().currentMessage()
    finally:
        window.close_session(wait=True)


def test_a_run_that_ends_while_another_process_opens_the_store_is_not_marked_interrupted(team, monkeypatch):
    """A process opening the team store (readers never wait) sees a run `running` whose
    process then ends it and exits before the check of its life: the run stays as it ended."""
    from lookback_gui.core.store import NewRun
    from lookback_gui.core.store.team import TeamDatabase

    config = load_project(team).store
    first = open_store(config)
    at = datetime(2026, 11, 26)
    run_id = first.begin_run(
        NewRun(
            metric="daily_orders",
            trigger="manual",
            timezone="UTC",
            grain="day",
            as_of=at,
            window_start=at - timedelta(days=7),
            window_end=at,
            partial_start=None,
            started_at=at,
            sql="",
            params={},
        )
    )
    with first.writing() as cur:  # as if another process had started it
        cur.execute("UPDATE runs SET pid = 4194303, pid_started = 1.0 WHERE id = ?", [run_id])

    def ends_then_dies(self, pid, started):
        first.finish_run(run_id, status="failed", finished_at=at, attempts=1, error="boom")
        return False

    monkeypatch.setattr(TeamDatabase, "process_alive", ends_then_dies)
    second = open_store(config)
    try:
        assert second.interrupted_at_open == []
        assert second.run(run_id).status == "failed"
        assert second.run(run_id).error == "boom"
    finally:
        second.close()
        first.close()


def test_a_store_whose_catalog_session_was_dropped_makes_it_again(team):
    """The server dropped the process's catalog session (a restart, an idle timeout): the next
    pull makes a new one and goes on."""
    project = load_project(team)
    with open_store(project.store) as store:
        from lookback_gui.core.pull import run_pull

        assert run_pull(project, "daily_orders", store, as_of=datetime(2026, 11, 25)).status == "succeeded"
        _admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name "
            f"= 'lookback PID {os.getpid()} on {socket.gethostname()} (store)'"
        )
        run = run_pull(project, "daily_orders", store, as_of=datetime(2026, 11, 26))
        assert run.status == "succeeded", run.error
        assert [r.id for r in store.runs()] == [2, 1]
