"""The team store under faults (DESIGN: *The team store*, *What must hold*: retries, several
processes): members opening a new store at once, the catalog's sessions dropped in the middle of
a pull, a commit that races another, and a catalog role without the rights the store needs. All
against the real PostgreSQL server."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from lookback_gui.core.errors import StoreError, TransientStoreError
from lookback_gui.core.failures import classify
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store, open_store
from lookback_gui.core.store.catalog import RIGHTS
from tests.helpers import PROCESS_S, PROCESSES_TEST_S, make_orders, project_text, run_cli
from tests.test_team_store import ROWS, SERVER, _admin, team_text


def _fresh_catalog() -> str:
    name = f"lookback_faults_{uuid.uuid4().hex[:10]}"
    _admin(f"CREATE DATABASE {name}")
    return name


@pytest.fixture
def catalog_name() -> Iterator[str]:
    name = _fresh_catalog()
    try:
        yield name
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _team_project(tmp_path: Path, catalog: str, retries: int) -> Path:
    make_orders(tmp_path / "shop.duckdb", ROWS)
    path = tmp_path / "lookback.toml"
    path.write_text(
        team_text(catalog).replace(
            "retries = 0\n", f'retries = {retries}\nretry_base = "1s"\nretry_max = "1s"\n'
        )
    )
    return path


def _terminate_sessions(name: str) -> int:
    """End every session with catalog database ``name`` on the server, as an administrator
    (or a server restart) does; how many there were."""
    import psycopg

    with psycopg.connect(f"{SERVER} dbname=test", autocommit=True) as con:
        rows = con.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
            "datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchall()
    return len(rows)


def _inside_first_commit(
    store: Store, monkeypatch: pytest.MonkeyPatch, fault: Callable[[int], None]
) -> list[int]:
    """Make ``fault(run_id)`` happen inside the first commit's write transaction (after its
    first read, before its COMMIT); the list holds the runs it happened in."""
    real = store.begin_commit
    hit: list[int] = []

    @contextlib.contextmanager
    def begin_commit(run_id: int):  # type: ignore[no-untyped-def]
        with real(run_id) as commit:
            if not hit:
                hit.append(run_id)
                commit._cur.execute("SELECT count(*) FROM current").fetchall()
                fault(run_id)
            yield commit

    monkeypatch.setattr(store, "begin_commit", begin_commit)
    return hit


# -- item 6: a new store opened by several processes at once ---------------------------------


OPENER = textwrap.dedent("""
    import sys
    from lookback_gui.core.project import load_project
    from lookback_gui.core.store import open_store
    config = load_project(sys.argv[1]).store
    print("ready", flush=True)
    sys.stdin.readline()
    store = open_store(config)
    print(len(store.runs()), flush=True)
    store.close()
""")


@pytest.mark.slow
@pytest.mark.timeout(PROCESSES_TEST_S)
@pytest.mark.parametrize("trial", range(3))
def test_processes_opening_a_new_team_store_at_once_all_succeed(tmp_path, trial):
    """Three processes open one new team store together: the first creates DuckLake's catalog
    tables and the store's sequences, the others wait for it and find them made."""
    name = _fresh_catalog()
    try:
        path = _team_project(tmp_path, f"{SERVER} dbname={name}", retries=0)
        openers = [
            subprocess.Popen(
                [sys.executable, "-c", OPENER, str(path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        try:
            for opener in openers:  # every one imported and loaded the project: start together
                assert opener.stdout is not None and opener.stdout.readline() == "ready\n"
            for opener in openers:
                assert opener.stdin is not None
                opener.stdin.write("go\n")
                opener.stdin.flush()
            results = [opener.communicate(timeout=PROCESS_S) for opener in openers]
        finally:
            for opener in openers:
                if opener.poll() is None:
                    opener.kill()
                    opener.communicate()
        assert [
            (o.returncode, out.strip().splitlines()[-1:], err.strip()[-300:])
            for o, (out, err) in zip(openers, results, strict=True)
        ] == [(0, ["0"], "")] * 3
        code, _, err = run_cli("--project", str(path), "pull", "daily_orders", "--as-of", "2026-11-25 00:00")
        assert code == 0, err
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- item 7: the catalog's sessions dropped during a pull; a commit that raced another ------


def test_sessions_dropped_during_a_commit_are_one_line_and_the_commit_is_tried_again(
    tmp_path, catalog_name, monkeypatch
):
    path = _team_project(tmp_path, f"{SERVER} dbname={catalog_name}", retries=2)
    project = load_project(path)
    with open_store(project.store) as store:
        hit = _inside_first_commit(store, monkeypatch, lambda run_id: _terminate_sessions(catalog_name))
        run = run_pull(project, "daily_orders", store, as_of=datetime(2026, 11, 25))
        assert hit == [run.id]
        assert (run.status, run.attempts, run.error) == ("succeeded", 2, None)
        log = [line.message for line in store.run_log(run.id)]
        [said] = [m for m in log if "failed" in m]
        assert said.startswith("attempt 1 failed: team store host=127.0.0.1 ")
        assert "the catalog database went away" in said and "committing again" in said
        assert "\n" not in said and "Error" not in said
        # committed once: the history is that of an undisturbed pull elsewhere
        values = store.history("daily_orders")
    local = tmp_path / "local"
    local.mkdir()
    make_orders(local / "shop.duckdb", ROWS)
    (local / "lookback.toml").write_text(project_text())
    with Store(local / "lookback.duckdb") as other:
        assert (
            run_pull(
                load_project(local / "lookback.toml"), "daily_orders", other, as_of=datetime(2026, 11, 25)
            ).status
            == "succeeded"
        )
        assert [(h.bucket, h.dims, h.measure, h.value, h.versions) for h in values] == [
            (h.bucket, h.dims, h.measure, h.value, h.versions) for h in other.history("daily_orders")
        ]


def test_sessions_dropped_while_a_run_begins_are_transient_and_the_run_is_begun_again(
    tmp_path, catalog_name, monkeypatch
):
    """The catalog's sessions dropped while a pull records its run (the write lock held): the
    failure to begin it is transient and said in one line, and the pull begins it again
    under the metric's retry policy, from the scheduler as from the command line."""
    path = _team_project(tmp_path, f"{SERVER} dbname={catalog_name}", retries=2)
    project = load_project(path)
    with open_store(project.store) as store:
        db = store._db
        real = db.next_id
        hit: list[str] = []

        def next_id(cur, sequence):  # type: ignore[no-untyped-def]
            if sequence == "run_ids" and len(hit) < 2:  # the first two times it begins a run
                hit.append(sequence)
                _terminate_sessions(catalog_name)
            return real(cur, sequence)

        monkeypatch.setattr(db, "next_id", next_id)
        with pytest.raises(TransientStoreError, match="the catalog database went away") as caught:
            store.begin_run(_new_run(project))
        assert classify(caught.value) == "transient" and "\n" not in str(caught.value)
        assert store.runs() == []  # nothing of it was kept
        from lookback_gui.core.schedule.scheduler import Scheduler

        said: list[str] = []
        scheduler = Scheduler(project, store)
        scheduler.events.subscribe(lambda event: said.append(str(getattr(event, "message", ""))))
        try:
            scheduler.run_now("daily_orders", as_of=datetime(2026, 11, 25))
            assert scheduler.wait_idle(timeout=PROCESS_S)
        finally:
            scheduler.shutdown(grace_s=0)
        assert len(hit) == 2
        [run] = store.runs()
        assert (run.status, run.error) == ("succeeded", None)
        assert not [m for m in said if "internal error" in m], said


def _new_run(project):  # type: ignore[no-untyped-def]
    from lookback_gui.core.store.runs import NewRun

    config = project.metric("daily_orders")
    now = datetime(2026, 11, 25)
    return NewRun(
        metric=config.name,
        trigger="manual",
        timezone=config.timezone,
        grain=config.grain.value,
        as_of=now,
        window_start=now,
        window_end=now,
        partial_start=None,
        started_at=now,
        sql=config.sql,
        params={},
    )


def test_sessions_dropped_with_no_retries_left_fail_the_run_in_one_line(
    tmp_path, catalog_name, monkeypatch, caplog
):
    """The command line and the scheduler both say it in one line naming the team store; no
    traceback, no "internal error"."""
    path = _team_project(tmp_path, f"{SERVER} dbname={catalog_name}", retries=0)
    project = load_project(path)
    with open_store(project.store) as store:
        _inside_first_commit(store, monkeypatch, lambda run_id: _terminate_sessions(catalog_name))
        from lookback_gui.core.schedule.scheduler import Scheduler

        said: list[str] = []
        scheduler = Scheduler(project, store)
        scheduler.events.subscribe(lambda event: said.append(str(getattr(event, "message", ""))))
        try:
            with caplog.at_level(logging.WARNING):
                scheduler.run_now("daily_orders", as_of=datetime(2026, 11, 25))
                assert scheduler.wait_idle(timeout=PROCESS_S)
        finally:
            scheduler.shutdown(grace_s=0)
        [run] = store.runs()
    assert run.status == "failed"
    assert run.error is not None and "\n" not in run.error
    assert run.error.startswith(f"team store {SERVER} dbname={catalog_name} (data in ")
    assert "the catalog database went away" in run.error
    assert "internal error" not in run.error
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert not [m for m in said if "internal error" in m]


def test_a_command_whose_commit_loses_the_catalog_says_one_line(tmp_path, catalog_name, monkeypatch):
    path = _team_project(tmp_path, f"{SERVER} dbname={catalog_name}", retries=0)
    real = Store.begin_commit

    @contextlib.contextmanager
    def begin_commit(self, run_id):  # type: ignore[no-untyped-def]
        with real(self, run_id) as commit:
            commit._cur.execute("SELECT count(*) FROM current").fetchall()
            _terminate_sessions(catalog_name)
            yield commit

    monkeypatch.setattr(Store, "begin_commit", begin_commit)
    code, _, err = run_cli("--project", str(path), "pull", "daily_orders", "--as-of", "2026-11-25 00:00")
    assert code == 1
    assert "Traceback" not in err and "internal error" not in err
    assert "the catalog database went away" in err


def test_a_commit_that_conflicts_with_another_process_is_tried_again(tmp_path, catalog_name, monkeypatch):
    """A process that writes the store without taking turns (DuckLake itself, a tool) commits
    a change to the same run while the pull commits: DuckLake refuses the pull's commit as a
    conflict, and the pull commits again."""
    path = _team_project(tmp_path, f"{SERVER} dbname={catalog_name}", retries=2)
    project = load_project(path)
    other = duckdb.connect()
    with open_store(project.store) as store:
        from lookback_gui.core.store.catalog import attach

        attach(other, project.store, None)

        def conflict(run_id: int) -> None:
            other.execute("UPDATE runs SET attempts = attempts WHERE id = ?", [run_id])

        hit = _inside_first_commit(store, monkeypatch, conflict)
        run = run_pull(project, "daily_orders", store, as_of=datetime(2026, 11, 25))
        assert hit == [run.id]
        assert (run.status, run.attempts) == ("succeeded", 2), run.error
        [said] = [line.message for line in store.run_log(run.id) if "failed" in line.message]
        assert "a write conflicted with another process's commit" in said
        assert len([h for h in store.history("daily_orders")]) > 10
    other.close()


def test_store_failures_that_retrying_may_fix_are_transient():
    from lookback_gui.core.storage.store_config import StoreConfig
    from lookback_gui.core.store.catalog import lake_failure

    config = StoreConfig(type="ducklake", catalog="dbname=x", data_path="/x")
    lost = lake_failure(
        config,
        duckdb.BinderException(
            "Binder Error: Failed to get data file list from DuckLake: Failed to prepare query "
            '"SELECT 1": server closed the connection unexpectedly\n\tThis probably means the '
            "server terminated abnormally\n\n\nLINE 2: SELECT * FROM postgres_query('x',"
        ),
    )
    raced = lake_failure(
        config,
        duckdb.TransactionException(
            "TransactionContext Error: Failed to commit: Failed to commit DuckLake transaction.\n"
            'Transaction conflict - attempting to insert into table with index "1"'
        ),
    )
    for said in (lost, raced):
        assert isinstance(said, TransientStoreError)
        assert classify(said) == "transient"
        assert str(said).startswith("team store dbname=x (data in /x): ")
        assert "\n" not in str(said)
    assert lake_failure(config, duckdb.BinderException("Binder Error: column x not found")) is None
    assert classify(StoreError("store x is closed")) == "permanent"


# -- item 8: a catalog role without the rights the store needs -------------------------------


@pytest.fixture
def bare_role(catalog_name: str) -> Iterator[str]:
    """A login role with no rights beyond what PUBLIC has (PostgreSQL 15 and later: no CREATE
    on the schema public); what it was granted in the catalog goes before it."""
    import psycopg

    role = f"lookback_bare_{uuid.uuid4().hex[:10]}"
    _admin(f"CREATE ROLE {role} LOGIN")
    try:
        yield role
    finally:
        with psycopg.connect(f"{SERVER} dbname={catalog_name}", autocommit=True) as con:
            con.execute(f"DROP OWNED BY {role}")
        _admin(f"DROP ROLE IF EXISTS {role}")


def test_a_catalog_role_that_may_not_create_tables_is_told_which_rights_it_needs(
    tmp_path, catalog_name, bare_role
):
    path = _team_project(
        tmp_path, f"host=127.0.0.1 port=5432 user={bare_role} dbname={catalog_name}", retries=0
    )
    code, _, err = run_cli("--project", str(path), "runs")
    assert code == 1 or code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"error: team store host=127.0.0.1 port=5432 user={bare_role} ")
    assert f"the catalog role {bare_role} lacks a right the store needs" in lines[0]
    assert "permission denied for schema public" in lines[0]
    assert RIGHTS in lines[0]
    assert "unexpected" not in err and "this is a bug" not in err


def test_a_role_that_may_not_use_a_store_made_by_another_is_told_which_rights(
    tmp_path, catalog_name, bare_role
):
    """The store was created by a role that could; this member's role has no grant on its
    tables."""
    path = _team_project(tmp_path, f"{SERVER} dbname={catalog_name}", retries=0)
    assert run_cli("--project", str(path), "pull", "daily_orders", "--as-of", "2026-11-25 00:00")[0] == 0
    path.write_text(path.read_text().replace("user=postgres", f"user={bare_role}"))
    code, _, err = run_cli("--project", str(path), "runs", "--json")
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"the catalog role {bare_role} lacks a right the store needs" in lines[0]
    assert "permission denied for " in lines[0]
    assert RIGHTS in lines[0]
    # with the rights the README names, the same role reads and writes the store
    for grant in (
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}",
        "GRANT USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {r}",
    ):
        import psycopg

        with psycopg.connect(f"{SERVER} dbname={catalog_name}", autocommit=True) as con:
            con.execute(grant.format(r=bare_role))
    code, out, err = run_cli("--project", str(path), "runs", "--json")
    assert code == 0, err
    assert [r["id"] for r in json.loads(out)] == [1]
    code, _, err = run_cli("--project", str(path), "pull", "daily_orders", "--as-of", "2026-11-26 00:00")
    assert code == 0, err
