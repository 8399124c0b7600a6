"""Helpers to build real sources and project files for the tests."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb

# How long a test waits for another process to start, answer or end: minutes, so that it holds
# on a machine at load 10-20 (a test waits on its condition, and is as fast as the machine).
PROCESS_S = float(os.environ.get("LOOKBACK_TEST_PROCESS_S", "600"))
# the whole of a test that starts processes, waits on several and works for a while among them
PROCESSES_TEST_S = int(os.environ.get("LOOKBACK_TEST_PROCESSES_S", "1500"))

ORDERS_SCHEMA = "order_id BIGINT, ordered_at TIMESTAMP, country VARCHAR, amount DOUBLE"


def query(store, sql: str, params=None) -> list[tuple]:
    """Rows of ``sql`` read from an open store (a reading cursor for the block)."""
    with store.reading() as cur:
        return cur.execute(sql, params).fetchall() if params is not None else cur.execute(sql).fetchall()


def make_orders(path: Path, rows: list[tuple]) -> Path:
    """A DuckDB source file with an ``orders`` table holding ``rows``."""
    con = duckdb.connect(str(path))
    try:
        con.execute("DROP TABLE IF EXISTS orders")
        con.execute(f"CREATE TABLE orders ({ORDERS_SCHEMA})")
        if rows:
            con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", rows)
    finally:
        con.close()
    return path


DAILY_SQL = """
SELECT date_trunc('day', ordered_at) AS bucket, country,
       count(*) AS orders, sum(amount) AS revenue
FROM orders
WHERE ordered_at >= $window_start AND ordered_at < $window_end
GROUP BY ALL
"""


def project_text(
    source: str = 'type = "duckdb"\npath = "shop.duckdb"',
    sql: str = DAILY_SQL,
    extra: str = "",
    metric: str = "daily_orders",
    grain: str = "day",
    lookback: str = '"7d"',
    source_name: str = "shop",
) -> str:
    return (
        f'[store]\npath = "lookback.duckdb"\n\n[sources.{source_name}]\n{source}\n\n'
        f'[metrics.{metric}]\nsource = "{source_name}"\ngrain = "{grain}"\n'
        f'lookback = {lookback}\nretries = 0\n{extra}\nsql = """\n{sql.strip()}\n"""\n'
    )


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def lookback_process(*args: str, **kwargs: object) -> subprocess.Popen:
    """``lookback ARGS`` as a process of its own, its output captured as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "lookback_gui.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )  # type: ignore[call-overload]


@contextmanager
def lookback_daemon(*args: str) -> Iterator[subprocess.Popen]:
    """``lookback ARGS`` as a process of its own, killed if it still runs when the block ends."""
    process = lookback_process(*args)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()  # closes its pipes (a pipe already closed is left alone)


@contextmanager
def store_held_by_another_process(path: Path, busy: bool = False) -> Iterator[subprocess.Popen]:
    """Another process that has the store at ``path`` open until the block ends: idle (it
    makes way for others between its uses), or ``busy`` in one long write."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import contextlib, sys
            from lookback_gui.core.store import Store
            s = Store({str(path)!r})
            with s.writing() if {busy!r} else contextlib.nullcontext():
                print("ready", flush=True)
                sys.stdin.read()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        yield holder
    finally:
        holder.communicate(timeout=PROCESS_S)


@contextmanager
def server_table(kind: str, rows: list[tuple]) -> Iterator[str]:
    """A fresh orders table holding ``rows`` on the real PostgreSQL or MariaDB server, dropped
    afterwards."""
    from lookback_gui.core.sources import load_extension

    name = f"orders_{uuid.uuid4().hex[:10]}"
    con = duckdb.connect()
    load_extension(con, kind)
    if kind == "postgres":
        con.execute("ATTACH 'host=127.0.0.1 port=5432 dbname=test user=postgres' AS srv (TYPE postgres)")
        table = f"srv.public.{name}"
    else:
        con.execute("ATTACH 'host=127.0.0.1 port=3306 database=test user=root' AS srv (TYPE mysql)")
        table = f"srv.{name}"
    con.execute(
        f"CREATE TABLE {table} (order_id BIGINT, ordered_at TIMESTAMP, country VARCHAR, amount DOUBLE)"
    )
    for row in rows:
        con.execute(f"INSERT INTO {table} VALUES (?, ?, ?, ?)", list(row))
    try:
        yield name
    finally:
        con.execute(f"DROP TABLE {table}")
        con.close()


def run_cli(*args: str) -> tuple[int, str, str]:
    """``lookback ARGS`` in this process: (exit status, stdout, stderr)."""
    from lookback_gui.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@contextmanager
def server_role(kind: str, tables: tuple[str, ...] = (), grants: tuple[str, ...] = ()) -> Iterator[str]:
    """A fresh login role on the real PostgreSQL or MariaDB server that can only read: SELECT
    on ``tables`` of the test database (PostgreSQL) or on the test database (MariaDB), plus the
    statements ``grants`` (``{role}`` stands for its name, ``'{role}'@'%'`` on MariaDB). Dropped
    afterwards."""
    from lookback_gui.core.sources import load_extension

    name = f"lb_{uuid.uuid4().hex[:10]}"
    con = duckdb.connect()
    load_extension(con, kind)
    if kind == "postgres":
        con.execute("ATTACH 'host=127.0.0.1 port=5432 dbname=test user=postgres' AS srv (TYPE postgres)")
        statements = [f"CREATE ROLE {name} LOGIN"]
        statements += [f"GRANT SELECT ON public.{t} TO {name}" for t in tables]
        drops = [f"DROP OWNED BY {name}", f"DROP ROLE {name}"]
    else:
        con.execute("ATTACH 'host=127.0.0.1 port=3306 database=test user=root' AS srv (TYPE mysql)")
        statements = [f"CREATE USER '{name}'@'%'", f"GRANT SELECT ON `test`.* TO '{name}'@'%'"]
        drops = [f"DROP USER '{name}'@'%'"]
    function = "postgres_execute" if kind == "postgres" else "mysql_execute"
    try:
        for statement in [*statements, *(g.format(role=name) for g in grants)]:
            con.execute(f"CALL {function}('srv', ?)", [statement])
        yield name
    finally:
        for statement in drops:
            con.execute(f"CALL {function}('srv', ?)", [statement])
        con.close()
