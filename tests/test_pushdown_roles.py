"""Pushdown by verified least privilege (DESIGN, *pushdown*), against the real servers.

Each escape that a text filter cannot see is tried twice: through a pull (the text net and the
role check) and, for the least-privileged role, straight on the server (the role alone), so the
guarantee never rests on the text net. Every role and database made here has a unique name and
is dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from lookback_gui.core.errors import ProjectError
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.sources import connect_source, load_extension, release_source
from lookback_gui.core.sources.pushdown import mysql_grant_excess, read_only, remote_select
from lookback_gui.core.storage.dsn import parse_dsn
from lookback_gui.core.store import Store
from tests.helpers import run_cli, server_role, server_table, ts

AS_OF = ts("2026-10-30T12:00")
SECRET = "hunter2-top-secret"
ROWS = [(1, "2026-10-25 10:00:00", "DE", 10.0), (2, "2026-10-26 09:00:00", "FR", 7.5)]
PG = "host=127.0.0.1 port=5432 dbname=test user={user}"
MY = "host=127.0.0.1 port=3306 database=test user={user}"


def project(write_project, kind: str, user: str, sql: str, extra: str = "") -> Path:
    dsn = (PG if kind == "postgres" else MY).format(user=user)
    return write_project(source=f'type = "{kind}"\ndsn = "{dsn}"\npushdown = true{extra}', sql=sql)


def pull(path: Path):
    loaded = load_project(path)
    with Store(loaded.store_path) as store:
        run = run_pull(loaded, "daily_orders", store, as_of=AS_OF)
        log = " ".join(line.message for line in store.run_log(run.id))
        history = {(r.measure, str(r.dims)): r.value for r in store.history("daily_orders")}
    return run, log, loaded.store_path.read_bytes().decode("latin-1"), history


def on_server(write_project, kind: str, user: str, remote: str) -> list[tuple]:
    """Run ``remote`` as ``user`` exactly as a pushdown pull runs it (read-only, after the role
    check), with no text check in between."""
    source = load_project(project(write_project, kind, user, "SELECT 1")).sources["shop"]
    con = connect_source(source)
    try:
        with read_only(con, source):
            return con.execute(remote_select(source, remote)).fetchall()
    finally:
        release_source(con, source)


# -- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture
def pg_orders() -> Iterator[str]:
    with server_table("postgres", ROWS) as table:
        yield table


@pytest.fixture
def pg_reader(pg_orders) -> Iterator[str]:
    with server_role("postgres", tables=(pg_orders,)) as role:
        yield role


def orders_sql(table: str, kind: str) -> str:
    day = (
        "date_trunc('day', ordered_at)::timestamp"
        if kind == "postgres"
        else "CAST(DATE(ordered_at) AS DATETIME)"
    )
    return (
        f"SELECT {day} AS bucket, country, count(*) AS orders FROM {table} "
        "WHERE ordered_at >= $window_start AND ordered_at < $window_end GROUP BY 1, 2"
    )


@pytest.mark.postgres
def test_a_postgres_superuser_is_refused_for_pushdown(write_project, pg_orders):
    run, log, _, _ = pull(project(write_project, "postgres", "postgres", orders_sql(pg_orders, "postgres")))
    assert run.status == "failed" and run.attempts == 1
    assert "PostgreSQL user postgres, who can do more than read its own database (superuser)" in run.error
    assert (
        "CREATE ROLE lookback LOGIN PASSWORD '<password>'; GRANT SELECT ON ALL TABLES IN "
        "SCHEMA public TO lookback;" in run.error
    )
    assert "trust_role = true" in run.error


@pytest.mark.postgres
@pytest.mark.parametrize(
    "door",
    [
        "length(\"pg_read_file\"('/etc/hostname'))",
        "length(pg_catalog.\"pg_read_file\"('/etc/hostname'))",
        "(SELECT count(*) FROM pg_shadow)",
    ],
)
def test_postgres_escapes_are_refused_as_superuser(write_project, door):
    sql = f"SELECT TIMESTAMP '2026-10-25' AS bucket, {door} AS n"
    run, log, store_bytes, history = pull(project(write_project, "postgres", "postgres", sql))
    assert run.status == "failed"
    assert not history
    host = Path("/etc/hostname").read_text().strip()
    assert host not in run.error + log


@pytest.mark.postgres
@pytest.mark.parametrize(
    "door",
    [
        "SELECT pg_read_file('/etc/hostname')",
        "SELECT \"pg_read_file\"('/etc/hostname')",
        "SELECT pg_catalog.\"pg_read_file\"('/etc/hostname')",
        "SELECT passwd FROM pg_shadow",
        "SELECT * FROM pg_ls_dir('/')",
    ],
)
def test_a_least_privileged_postgres_role_cannot_read_files_or_secrets(write_project, pg_reader, door):
    with pytest.raises(duckdb.Error, match="permission denied"):
        on_server(write_project, "postgres", pg_reader, door)


@pytest.mark.postgres
def test_a_least_privileged_postgres_role_pulls_with_pushdown(write_project, pg_orders, pg_reader):
    run, _, _, history = pull(
        project(write_project, "postgres", pg_reader, orders_sql(pg_orders, "postgres"))
    )
    assert run.status == "succeeded", run.error
    assert history == {("orders", "{'country': 'DE'}"): 1, ("orders", "{'country': 'FR'}"): 1}


@pytest.mark.postgres
def test_postgres_pushdown_runs_in_a_read_only_transaction(write_project, pg_orders):
    sequence = f"seq_{uuid.uuid4().hex[:8]}"
    with server_role(
        "postgres",
        tables=(pg_orders,),
        grants=(
            f"CREATE SEQUENCE public.{sequence}",
            f"GRANT USAGE, UPDATE ON public.{sequence} TO {{role}}",
        ),
    ) as role:
        try:
            sql = f"SELECT TIMESTAMP '2026-10-25' AS bucket, nextval('{sequence}') AS n"
            run, _, _, history = pull(project(write_project, "postgres", role, sql))
            assert run.status == "failed"
            assert "read-only transaction" in run.error
            assert not history
        finally:
            con = duckdb.connect()
            load_extension(con, "postgres")
            con.execute(f"ATTACH '{PG.format(user='postgres')}' AS srv (TYPE postgres)")
            con.execute(f"CALL postgres_execute('srv', 'DROP SEQUENCE public.{sequence}')")
            con.close()


@pytest.mark.postgres
def test_a_member_of_pg_read_server_files_is_refused(write_project, pg_orders):
    with server_role(
        "postgres", tables=(pg_orders,), grants=("GRANT pg_read_server_files TO {role}",)
    ) as role:
        run, _, _, _ = pull(project(write_project, "postgres", role, orders_sql(pg_orders, "postgres")))
    assert run.status == "failed"
    assert "(member of pg_read_server_files)" in run.error


@pytest.mark.postgres
def test_trust_role_accepts_a_superuser_and_check_warns_every_time(write_project, pg_orders):
    path = project(
        write_project, "postgres", "postgres", orders_sql(pg_orders, "postgres"), extra="\ntrust_role = true"
    )
    run, _, _, _ = pull(path)
    assert run.status == "succeeded", run.error
    for _ in range(2):
        code, out, err = run_cli("check", "--project", str(path))
        assert code == 0, err
        assert (
            "warning: source shop: trust_role = true: pushdown SQL runs as PostgreSQL user "
            "postgres, who can do more than read its own database (superuser)"
        ) in err


@pytest.mark.postgres
def test_check_fails_a_pushdown_source_whose_role_can_do_more(write_project, pg_orders):
    path = project(write_project, "postgres", "postgres", orders_sql(pg_orders, "postgres"))
    code, out, err = run_cli("check", "--project", str(path))
    assert code == 1
    assert "error: source shop: pushdown runs the metric SQL on the server as PostgreSQL user postgres" in err
    assert "source shop (postgres): FAILED" in out


# -- MySQL / MariaDB --------------------------------------------------------------------------


@pytest.fixture
def other_database() -> Iterator[str]:
    """Another database on the MariaDB server, holding the secret in table ``secret``."""
    database = f"other_{uuid.uuid4().hex[:8]}"
    con = duckdb.connect()
    load_extension(con, "mysql")
    con.execute(f"ATTACH '{MY.format(user='root')}' AS srv (TYPE mysql)")
    for statement in (
        f"CREATE DATABASE {database}",
        f"CREATE TABLE {database}.secret (s TEXT)",
        f"INSERT INTO {database}.secret VALUES ('{SECRET}')",
    ):
        con.execute("CALL mysql_execute('srv', ?)", [statement])
    try:
        yield database
    finally:
        con.execute(f"CALL mysql_execute('srv', 'DROP DATABASE {database}')")
        con.close()


@pytest.fixture
def my_orders() -> Iterator[str]:
    with server_table("mysql", ROWS) as table:
        yield table


@pytest.fixture
def my_reader() -> Iterator[str]:
    with server_role("mysql") as user:
        yield user


@pytest.mark.mysql
def test_mysql_root_is_refused_for_pushdown(write_project, my_orders):
    run, _, _, _ = pull(project(write_project, "mysql", "root", orders_sql(my_orders, "mysql")))
    assert run.status == "failed" and run.attempts == 1
    assert "MySQL user root@" in run.error
    assert "ALL PRIVILEGES on *.* (every database)" in run.error
    assert (
        "CREATE USER 'lookback'@'%' IDENTIFIED BY '<password>'; GRANT SELECT ON `test`.* TO 'lookback'@'%';"
    ) in run.error


@pytest.mark.mysql
@pytest.mark.parametrize("user", ["root", "reader"])
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT TIMESTAMP('2026-10-25') AS bucket, count(*) AS n FROM {orders} /*!, {db}.secret */",
        "SELECT TIMESTAMP('2026-10-25') AS bucket, length(s) AS n, s AS leaked "
        "FROM (SELECT s FROM /*!{db}.*/secret) t",
        "SELECT TIMESTAMP('2026-10-25') AS bucket, length(/*!LOAD_FILE('/etc/passwd')*/) AS n",
        "SELECT TIMESTAMP('2026-10-25') AS bucket, count(*) AS n FROM /*!mysql.*/user",
        "SELECT TIMESTAMP('2026-10-25') AS bucket, s AS leaked, 1 AS n FROM `{orders}`, `{db}`.`secret`",
        "SELECT TIMESTAMP('2026-10-25') AS bucket, count(*) AS n FROM mysql.user",
    ],
)
def test_mysql_escapes_are_refused(write_project, my_orders, other_database, my_reader, user, sql):
    name = my_reader if user == "reader" else "root"
    path = project(write_project, "mysql", name, sql.format(orders=my_orders, db=other_database))
    run, log, store_bytes, history = pull(path)
    assert run.status == "failed"
    assert "/*!" in run.error or "another database" in run.error
    assert SECRET not in run.error + log + store_bytes
    assert "root:" not in run.error + log + store_bytes  # nothing of /etc/passwd


@pytest.mark.mysql
@pytest.mark.parametrize(
    "remote",
    [
        "SELECT s FROM {db}.secret",
        "SELECT s FROM `{db}`.`secret`",
        "SELECT User FROM mysql.user",
    ],
)
def test_a_least_privileged_mysql_user_cannot_read_other_databases(
    write_project, my_reader, other_database, remote
):
    with pytest.raises(duckdb.Error, match="denied"):
        on_server(write_project, "mysql", my_reader, remote.format(db=other_database))


@pytest.mark.mysql
def test_a_least_privileged_mysql_user_cannot_read_files(write_project, my_reader):
    assert on_server(write_project, "mysql", my_reader, "SELECT LOAD_FILE('/etc/passwd') AS f") == [(None,)]


@pytest.mark.mysql
def test_a_least_privileged_mysql_user_pulls_with_pushdown(write_project, my_orders, my_reader):
    run, _, _, history = pull(project(write_project, "mysql", my_reader, orders_sql(my_orders, "mysql")))
    assert run.status == "succeeded", run.error
    assert history == {("orders", "{'country': 'DE'}"): 1, ("orders", "{'country': 'FR'}"): 1}


@pytest.mark.mysql
@pytest.mark.parametrize(
    ("grant", "named"),
    [
        ("GRANT FILE ON *.* TO '{role}'@'%'", "FILE on *.* (every database)"),
        ("GRANT SELECT ON `{db}`.* TO '{role}'@'%'", "a grant on `{db}`.*, another database"),
        ("GRANT INSERT ON `test`.* TO '{role}'@'%'", "INSERT on `test`.*"),
    ],
)
def test_a_mysql_user_with_more_than_select_is_refused(
    write_project, my_orders, other_database, grant, named
):
    with server_role("mysql", grants=(grant.replace("{db}", other_database),)) as user:
        run, _, _, _ = pull(project(write_project, "mysql", user, orders_sql(my_orders, "mysql")))
    assert run.status == "failed"
    assert named.format(db=other_database) in run.error


@pytest.mark.mysql
def test_mysql_pushdown_runs_read_only_even_for_a_trusted_role(write_project):
    function = f"f_{uuid.uuid4().hex[:8]}"
    table = f"t_{uuid.uuid4().hex[:8]}"
    con = duckdb.connect()
    load_extension(con, "mysql")
    con.execute(f"ATTACH '{MY.format(user='root')}' AS srv (TYPE mysql)")
    run_sql = lambda s: con.execute("CALL mysql_execute('srv', ?)", [s])  # noqa: E731
    run_sql(f"CREATE TABLE test.{table} (x INT)")
    run_sql(
        f"CREATE FUNCTION test.{function}() RETURNS INT MODIFIES SQL DATA "
        f"BEGIN INSERT INTO test.{table} VALUES (1); RETURN 1; END"
    )
    try:
        with server_role(
            "mysql",
            grants=(
                f"GRANT EXECUTE ON FUNCTION test.{function} TO '{{role}}'@'%'",
                f"GRANT INSERT ON test.{table} TO '{{role}}'@'%'",
            ),
        ) as user:
            sql = f"SELECT TIMESTAMP('2026-10-25') AS bucket, {function}() AS n"
            run, _, _, history = pull(project(write_project, "mysql", user, sql, extra="\ntrust_role = true"))
        assert run.status == "failed"
        assert "READ ONLY" in run.error
        rows = con.execute(f"SELECT count(*) FROM srv.test.{table}").fetchone()
        assert rows == (0,)
    finally:
        run_sql(f"DROP FUNCTION test.{function}")
        run_sql(f"DROP TABLE test.{table}")
        con.close()


@pytest.mark.mysql
def test_a_mysql_uri_dsn_keeps_the_one_database_rule(write_project, other_database):
    path = write_project(
        source='type = "mysql"\ndsn = "mysql://root@127.0.0.1:3306/test"',
        sql=f"SELECT TIMESTAMP '2026-10-25' AS bucket, s AS leaked, 1 AS n FROM {other_database}.secret",
    )
    run, log, store_bytes, _ = pull(path)
    assert run.status == "failed"
    assert "another database than the source's own (test)" in run.error
    assert SECRET not in run.error + log + store_bytes


def test_a_mysql_dsn_without_a_database_is_a_project_file_error(write_project):
    for dsn in ("mysql://root@127.0.0.1:3306", "host=127.0.0.1 user=root"):
        path = write_project(source=f'type = "mysql"\ndsn = "{dsn}"')
        with pytest.raises(ProjectError, match="a mysql dsn must name its database"):
            load_project(path)


def test_trust_role_is_only_for_servers(write_project):
    path = write_project(source='type = "duckdb"\npath = "shop.duckdb"\ntrust_role = true')
    with pytest.raises(ProjectError, match="trust_role accepts the role of a postgres or mysql"):
        load_project(path)


# -- one parser for every DSN form -----------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "database", "user", "password_key"),
    [
        ("host=127.0.0.1 port=3306 database=test user=root", "test", "root", None),
        ("host=h dbname='my shop' user=a", "my shop", "a", None),
        ("host=h db=shop passwd=x", "shop", None, "passwd"),
        ("mysql://analyst@db:3306/shop", "shop", "analyst", None),
        ("mysql://analyst@db:3306", None, "analyst", None),
        ("mariadb://db/shop?user=a", "shop", "a", None),
        ("postgresql://a:s3cret@db/shop", "shop", "a", "user:password@"),
        ("postgres://db:5432/shop?user=a&password=x", "shop", "a", "password"),
        ("postgresql:///shop?host=/var/run/postgresql", "shop", None, None),
        ("host=h user=a", None, "a", None),
    ],
)
def test_every_dsn_form_is_read_by_one_parser(dsn, database, user, password_key):
    parsed = parse_dsn(dsn)
    assert (parsed.database, parsed.user, parsed.password_key) == (database, user, password_key)


def test_grants_beyond_select_on_the_own_database_are_named():
    assert (
        mysql_grant_excess(
            [
                "GRANT USAGE ON *.* TO `a`@`%`",
                "GRANT SELECT, SHOW VIEW ON `test`.* TO `a`@`%`",
                "GRANT SELECT (x, y) ON `test`.`t` TO `a`@`%`",
            ],
            "test",
        )
        == []
    )
    assert mysql_grant_excess(
        [
            "GRANT FILE, SUPER ON *.* TO `a`@`%`",
            "GRANT SELECT ON `my_db`.* TO `a`@`%`",
            "GRANT SELECT ON `other`.`t` TO `a`@`%`",
            "GRANT PROXY ON ''@'%' TO `a`@`%`",
            "GRANT `admin` TO `a`@`%`",
        ],
        "my_db",
    ) == [
        "FILE on *.* (every database)",
        "SUPER on *.* (every database)",
        "a grant on `my_db`.*, another database than its own (my_db)",
        "a grant on `other`.`t`, another database than its own (my_db)",
        "PROXY on ''@'%'",
        "the granted role `admin`",
    ]
    assert mysql_grant_excess(["GRANT SELECT ON `my\\_db`.* TO `a`@`%`"], "my_db") == []
