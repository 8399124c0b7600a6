"""A metric reaches its own source and nothing else; passwords stay out of every message.

Each door is tried with a secret that must not reach the run, its log or the store file, against
real SQLite files and the real PostgreSQL and MariaDB servers.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from lookback_gui.core.errors import CancelledError, QueryError, TransientSourceError
from lookback_gui.core.failures import classify
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.sources import load_extension
from lookback_gui.core.store import Store
from tests.helpers import make_orders, run_cli, server_role, ts

AS_OF = ts("2026-10-30T12:00")
SECRET = "hunter2-top-secret"
ROWS = [(1, "2026-10-25 10:00:00", "DE", 10.0)]
PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
MY_DSN = "host=127.0.0.1 port=3306 database=test user=root"


def pull(path: Path, **kwargs: object):
    project = load_project(path)
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF, **kwargs)  # type: ignore[arg-type]
        log = " ".join(line.message for line in store.run_log(run.id))
    return run, log, project.store_path.read_bytes().decode("latin-1")


def secret_query(source: str) -> str:
    """A metric SQL that would store the secret's length, and the secret as a dimension."""
    return (
        f"SELECT TIMESTAMP '2026-10-25' AS bucket, CAST(s AS VARCHAR) AS leaked, "
        f"length(CAST(s AS VARCHAR)) AS n FROM {source}"
    )


def assert_refused(path: Path, match: str) -> None:
    run, log, store_bytes = pull(path)
    assert run.status == "failed"
    assert match in run.error
    assert SECRET not in run.error + log + store_bytes


@pytest.fixture
def sqlite_project(write_project, tmp_path) -> Callable:
    con = sqlite3.connect(tmp_path / "shop.sqlite")
    con.execute("CREATE TABLE orders (x INTEGER)")
    con.commit()
    con.close()
    other = sqlite3.connect(tmp_path / "other.sqlite")
    other.execute("CREATE TABLE creds (s TEXT)")
    other.execute("INSERT INTO creds VALUES (?)", [SECRET])
    other.commit()
    other.close()

    def write(sql: str) -> Path:
        return write_project(source='type = "sqlite"\npath = "shop.sqlite"', sql=sql)

    return write


@pytest.mark.parametrize(
    "door",
    [
        "sqlite_scan('{other}', 'creds')",
        "sqlite_query('{other}', 'SELECT s FROM creds')",
        "(SELECT * FROM sqlite_attach('{other}'), (SELECT 'x' AS s))",
        "query('SELECT s FROM sqlite_scan(''{other}'', ''creds'')')",
    ],
)
def test_a_sqlite_metric_cannot_read_another_sqlite_file(sqlite_project, tmp_path, door):
    source = door.format(other=tmp_path / "other.sqlite", secret=SECRET)
    path = sqlite_project(secret_query(source))
    run, log, store_bytes = pull(path)
    assert run.status == "failed"
    assert "reaches past the metric's source" in run.error
    assert SECRET not in run.error + log + store_bytes


def test_duckdb_temp_and_home_folders_are_closed(write_project, tmp_path, monkeypatch):
    make_orders(tmp_path / "shop.duckdb", [])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "notes.csv").write_text(f"s\n{SECRET}\n")
    (tmp_path / "notes.csv").write_text(f"s\n{SECRET}\n")
    for reader in (
        "read_csv('.tmp/notes.csv')",
        f"read_csv('{tmp_path}/.tmp/notes.csv')",
        "read_csv('~/notes.csv')",
        "'.tmp/notes.csv'",
    ):
        path = write_project(sql=secret_query(reader))
        run, log, store_bytes = pull(path)
        assert run.status == "failed", reader
        assert SECRET not in run.error + log + store_bytes


def test_attach_and_other_statements_are_refused(sqlite_project, tmp_path):
    for sql, kind in (
        (f"ATTACH '{tmp_path / 'other.sqlite'}' AS o (TYPE sqlite)", "an ATTACH"),
        ("USE other", "a USE"),
        ("CHECKPOINT", "a CHECKPOINT"),
    ):
        run, _, _ = pull(sqlite_project(sql))
        assert run.status == "failed"
        assert f"the SQL is {kind} statement" in run.error


@pytest.fixture
def pg_secret() -> Iterator[str]:
    """A table holding the secret in another database of the PostgreSQL server."""
    name = f"secret_{uuid.uuid4().hex[:8]}"
    con = duckdb.connect()
    load_extension(con, "postgres")
    con.execute("ATTACH 'host=127.0.0.1 port=5432 dbname=postgres user=postgres' AS other (TYPE postgres)")
    con.execute(f"CREATE TABLE other.public.{name} (s VARCHAR)")
    con.execute(f"INSERT INTO other.public.{name} VALUES (?)", [SECRET])
    try:
        yield name
    finally:
        con.execute(f"DROP TABLE other.public.{name}")
        con.close()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "door",
    [
        "postgres_scan('host=127.0.0.1 port=5432 dbname=postgres user=postgres', 'public', '{t}')",
        "postgres_scan_pushdown('host=127.0.0.1 port=5432 dbname=postgres user=postgres', 'public', '{t}')",
        "(SELECT * FROM postgres_attach('host=127.0.0.1 port=5432 dbname=postgres user=postgres'), "
        "(SELECT 'x' AS s))",
        "postgres_query('shop', 'SELECT s FROM dblink_or_other_db.{t}')",
        "postgres_execute('shop', 'CREATE TABLE {t}_copy AS SELECT 1')",
    ],
)
def test_a_postgres_metric_cannot_reach_another_database(write_project, pg_secret, door):
    path = write_project(
        source=f'type = "postgres"\ndsn = "{PG_DSN}"',
        sql=secret_query(door.format(t=pg_secret, secret=SECRET)),
    )
    assert_refused(path, "reaches past the metric's source")


@pytest.fixture
def mysql_secret() -> Iterator[str]:
    """A table holding the secret in another database of the MariaDB server."""
    database = f"secret_{uuid.uuid4().hex[:8]}"
    con = duckdb.connect()
    load_extension(con, "mysql")
    con.execute(f"ATTACH '{MY_DSN}' AS srv (TYPE mysql)")
    con.execute(f"CALL mysql_execute('srv', 'CREATE DATABASE {database}')")
    con.execute(f"CALL mysql_execute('srv', 'CREATE TABLE {database}.creds (s TEXT)')")
    con.execute(f"CALL mysql_execute('srv', 'INSERT INTO {database}.creds VALUES (''{SECRET}'')')")
    try:
        yield database
    finally:
        con.execute(f"CALL mysql_execute('srv', 'DROP DATABASE {database}')")
        con.close()


@pytest.mark.mysql
@pytest.mark.parametrize(
    "door",
    [
        "shop.{db}.creds",
        "{db}.creds",
        "mysql_query('shop', 'SELECT s FROM {db}.creds')",
        "mysql_scan('shop', '{db}', 'creds')",
    ],
)
def test_a_mysql_metric_cannot_read_another_database_on_its_server(write_project, mysql_secret, door):
    path = write_project(
        source=f'type = "mysql"\ndsn = "{MY_DSN}"', sql=secret_query(door.format(db=mysql_secret))
    )
    run, log, store_bytes = pull(path)
    assert run.status == "failed"
    assert "another database" in run.error or "reaches past" in run.error
    assert SECRET not in run.error + log + store_bytes


@pytest.mark.postgres
def test_check_warns_when_a_postgres_user_is_a_superuser(write_project):
    path = write_project(
        source=f'type = "postgres"\ndsn = "{PG_DSN}"', sql="SELECT now()::TIMESTAMP AS bucket, 1 AS n"
    )
    code, out, err = run_cli("check", "--project", str(path))
    assert "warning: source shop: its user is a PostgreSQL superuser" in err


# -- passwords --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://postgres:{SECRET}@127.0.0.1:5432/test",
        f"postgres://postgres:{SECRET}@127.0.0.1/test",
        f"mysql://root:{SECRET}@127.0.0.1:3306/test",
        f"host=127.0.0.1 user=root passwd={SECRET}",
        f"postgresql://127.0.0.1/test?user=postgres&password={SECRET}",
    ],
)
def test_a_password_in_a_dsn_is_a_project_file_error(write_project, dsn):
    kind = "mysql" if "mysql" in dsn or "passwd" in dsn else "postgres"
    path = write_project(source=f'type = "{kind}"\ndsn = "{dsn}"')
    code, out, err = run_cli("pull", "daily_orders", "--project", str(path))
    assert code == 2
    assert "sources.shop.dsn: the dsn holds a password" in err
    assert SECRET not in out + err
    assert not (path.parent / "lookback.duckdb").exists()


@pytest.mark.mysql
def test_a_short_password_does_not_garble_messages(write_project, monkeypatch):
    monkeypatch.setenv("SHOP_PASSWORD", "a")
    path = write_project(
        source='type = "mysql"\ndsn = "host=127.0.0.1 port=3399 database=test '
        'user=root"\npassword_env = "SHOP_PASSWORD"'
    )
    run, log, _ = pull(path)
    assert run.status == "failed"
    assert "Failed to connect to MySQL database" in run.error
    assert "***" not in run.error + log


@pytest.fixture
def mysql_user_with_password() -> Iterator[str]:
    user = f"lb_{uuid.uuid4().hex[:8]}"
    con = duckdb.connect()
    load_extension(con, "mysql")
    con.execute(f"ATTACH '{MY_DSN}' AS srv (TYPE mysql)")
    con.execute(f"CALL mysql_execute('srv', 'CREATE USER ''{user}''@''%'' IDENTIFIED BY ''right-password''')")
    try:
        yield user
    finally:
        con.execute(f"CALL mysql_execute('srv', 'DROP USER ''{user}''@''%''')")
        con.close()


@pytest.mark.mysql
def test_a_refused_login_is_permanent_and_never_repeats_the_password(
    write_project, monkeypatch, mysql_user_with_password
):
    monkeypatch.setenv("SHOP_PASSWORD", SECRET)
    path = write_project(
        source=f'type = "mysql"\ndsn = "host=127.0.0.1 port=3306 database=test '
        f'user={mysql_user_with_password}"\npassword_env = "SHOP_PASSWORD"'
    )
    path.write_text(path.read_text().replace("retries = 0", "retries = 3"))
    delays: list[float] = []
    run, log, store_bytes = pull(path, sleep=delays.append)
    assert run.status == "failed"
    assert "Access denied" in run.error
    assert run.attempts == 1 and delays == []
    assert SECRET not in run.error + log + store_bytes


@pytest.mark.mysql
def test_no_keyring_and_no_password_env_says_so(write_project, mysql_user_with_password):
    path = write_project(
        source=f'type = "mysql"\ndsn = "host=127.0.0.1 port=3306 database=test '
        f'user={mysql_user_with_password}"'
    )
    run, _, _ = pull(path)
    assert run.status == "failed"
    assert "source shop: the server wants a password and none is set" in run.error
    assert "no keyring service is available here" in run.error
    assert "password_env" in run.error
    assert run.attempts == 1


# -- one classifier ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_pushdown_server_error_is_not_retried(write_project):
    sql = "SELECT now()::timestamp AS bucket, 1 / 0 AS n"
    with server_role("postgres") as role:  # pushdown wants a read-only role
        path = write_project(
            source=f'type = "postgres"\ndsn = "{PG_DSN}"\npushdown = true'.replace(
                "user=postgres", f"user={role}"
            ),
            sql=sql,
        )
        path.write_text(path.read_text().replace("retries = 0", "retries = 3"))
        delays: list[float] = []
        run, _, _ = pull(path, sleep=delays.append)
    assert run.status == "failed" and "division by zero" in run.error
    assert run.attempts == 1 and delays == []


@pytest.mark.mysql
def test_a_mysql_pushdown_server_error_is_not_retried(write_project):
    with server_role("mysql") as user:  # pushdown wants a read-only user
        path = write_project(
            source=f'type = "mysql"\ndsn = "{MY_DSN}"\npushdown = true'.replace("user=root", f"user={user}"),
            sql="SELECT now() AS bucket, count(*) AS n FROM no_such_table_here",
        )
        path.write_text(path.read_text().replace("retries = 0", "retries = 3"))
        delays: list[float] = []
        run, _, _ = pull(path, sleep=delays.append)
    assert run.status == "failed" and "no_such_table_here" in run.error
    assert run.attempts == 1 and delays == []


def test_classify_sorts_failures_into_three_kinds():
    assert classify(CancelledError("cancelled")) == "cancelled"
    assert classify(KeyboardInterrupt()) == "cancelled"
    assert classify(TransientSourceError("file locked")) == "transient"
    assert classify(QueryError("bad SQL")) == "permanent"
    assert classify(duckdb.IOException("IO Error: Could not set lock on file")) == "transient"
    assert (
        classify(duckdb.IOException("IO Error: Failed to prepare COPY: ERROR:  division by zero"))
        == "permanent"
    )
    assert classify(duckdb.IOException("Access denied for user 'x'@'h' (using password: YES)")) == "permanent"
    assert (
        classify(duckdb.IOException("connection to server at 127.0.0.1 failed: Connection refused"))
        == "transient"
    )
    assert classify(duckdb.BinderException("Referenced column x not found")) == "permanent"
    assert classify(duckdb.InterruptException("Query interrupted")) == "cancelled"


def test_a_change_probe_cannot_read_another_sqlite_file(sqlite_project, tmp_path):
    path = sqlite_project("SELECT TIMESTAMP '2026-10-25' AS bucket, 1 AS n")
    other = tmp_path / "other.sqlite"
    path.write_text(
        path.read_text().replace(
            "retries = 0",
            f"retries = 0\nchange_probe = \"SELECT TIMESTAMP '2026-10-25' AS bucket, "
            f"s FROM sqlite_scan('{other}', 'creds')\"",
        )
    )
    assert_refused(path, "reaches past the metric's source")


@pytest.mark.postgres
def test_an_unset_password_env_is_not_retried(write_project, monkeypatch):
    monkeypatch.delenv("NOPE_PASSWORD", raising=False)
    path = write_project(source=f'type = "postgres"\ndsn = "{PG_DSN}"\npassword_env = "NOPE_PASSWORD"')
    path.write_text(path.read_text().replace("retries = 0", "retries = 3"))
    delays: list[float] = []
    run, _, _ = pull(path, sleep=delays.append)
    assert run.status == "failed" and "NOPE_PASSWORD (password_env) is not set" in run.error
    assert run.attempts == 1 and delays == []


@pytest.mark.mysql
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT TIMESTAMP('2026-10-25') AS bucket, s AS leaked, length(s) AS n FROM {db}.creds",
        "SELECT TIMESTAMP('2026-10-25') AS bucket, c.s AS leaked, 1 AS n FROM `{db}`.`creds` c "
        "JOIN `{db}`.`creds` d",
        "SELECT TIMESTAMP('2026-10-25') AS bucket, length(load_file('/etc/hostname')) AS n",
    ],
)
def test_mysql_pushdown_sql_cannot_reach_another_database_or_server_files(write_project, mysql_secret, sql):
    path = write_project(
        source=f'type = "mysql"\ndsn = "{MY_DSN}"\npushdown = true', sql=sql.format(db=mysql_secret)
    )
    run, log, store_bytes = pull(path)
    assert run.status == "failed"
    assert "another database" in run.error or "reaches past" in run.error
    assert SECRET not in run.error + log + store_bytes


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT TIMESTAMP '2026-10-25' AS bucket, length(pg_read_file('/etc/hostname')) AS n",
        "SELECT TIMESTAMP '2026-10-25' AS bucket, count(*) AS n FROM dblink('dbname=postgres', "
        "'SELECT 1') AS t(x int)",
    ],
)
def test_postgres_pushdown_sql_cannot_read_server_files_or_other_databases(write_project, sql):
    path = write_project(source=f'type = "postgres"\ndsn = "{PG_DSN}"\npushdown = true', sql=sql)
    run, _, _ = pull(path)
    assert run.status == "failed"
    assert "reaches past the metric's source" in run.error
