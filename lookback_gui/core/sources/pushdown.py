"""Pushdown: metric SQL that the server runs itself, guarded by the server's own permissions.

No text check of ours sees all of what a server will run (MySQL executes ``/*! ... */``
comments, PostgreSQL accepts quoted function names), so the guarantee comes from the role a
pushdown source connects as, verified each time it connects (:func:`verify_role`):

- PostgreSQL: not a superuser, not a member of ``pg_read_server_files``,
  ``pg_execute_server_program``, ``pg_read_all_data``, ``pg_write_all_data`` or
  ``pg_write_server_files``, and no EXECUTE on the functions that read the server's files;
- MySQL/MariaDB (``SHOW GRANTS``): no global privilege but USAGE, nothing but SELECT (and SHOW
  VIEW) on its own database, no grant on any other database, no PROXY and no granted role.

A role that can do more is refused, with the privilege named and the two SQL lines that make a
read-only role, unless the source sets ``trust_role = true`` (``lookback check`` then warns
every time). And every pushdown query runs in a read-only transaction: PostgreSQL's through
``postgres_execute('SET TRANSACTION READ ONLY')`` in the DuckDB transaction that runs it (the
scanner's connection is the same one), MariaDB's as ``SET STATEMENT tx_read_only=1 FOR`` in
front of the query (in a ``/*M! */`` comment, which MySQL itself skips: there the SELECT-only
grant is what keeps it from writing).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import duckdb

from lookback_gui.core.duck import quote_literal
from lookback_gui.core.errors import PullError
from lookback_gui.core.project import SourceConfig
from lookback_gui.core.storage.dsn import parse_dsn

PG_SERVER_ROLES = (
    "pg_read_server_files",
    "pg_execute_server_program",
    "pg_read_all_data",
    "pg_write_all_data",
    "pg_write_server_files",
)
PG_FILE_FUNCTIONS = (
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "lo_import",
    "lo_export",
)
_PG_ROLE_QUERY = f"""
SELECT current_user::text AS who, r.rolsuper AS superuser,
  array_to_string(ARRAY(SELECT g.rolname FROM pg_roles g
    WHERE g.rolname IN ({", ".join(quote_literal(n) for n in PG_SERVER_ROLES)})
      AND pg_has_role(current_user, g.oid, 'MEMBER') ORDER BY 1), ',') AS roles,
  array_to_string(ARRAY(SELECT DISTINCT p.proname::text FROM pg_proc p
    WHERE p.proname IN ({", ".join(quote_literal(n) for n in PG_FILE_FUNCTIONS)})
      AND p.pronamespace = 'pg_catalog'::regnamespace
      AND has_function_privilege(current_user, p.oid, 'EXECUTE') ORDER BY 1), ',') AS functions
FROM pg_roles r WHERE r.rolname = current_user
"""
# MariaDB runs what is inside /*M! ... */, MySQL skips it
MARIADB_READ_ONLY = "/*M!SET STATEMENT tx_read_only=1 FOR*/ "
_MYSQL_READ_PRIVILEGES = {"SELECT", "SHOW VIEW", "USAGE"}
_GRANT = re.compile(r"^GRANT\s+(?P<privileges>.+?)\s+ON\s+(?P<object>.+?)\s+TO\s+", re.IGNORECASE)
_ROLE_GRANT = re.compile(r"^GRANT\s+(?P<roles>.+?)\s+TO\s+", re.IGNORECASE)


def read_only_role_sql(source: SourceConfig) -> str:
    """The two SQL lines that make a role which can only read the source's own database."""
    if source.type == "postgres":
        return (
            "CREATE ROLE lookback LOGIN PASSWORD '<password>'; "
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO lookback;"
        )
    database = (parse_dsn(source.dsn or "").database or "shop").replace("_", "\\_")
    return (
        "CREATE USER 'lookback'@'%' IDENTIFIED BY '<password>'; "
        f"GRANT SELECT ON `{database}`.* TO 'lookback'@'%';"
    )


def remote_select(source: SourceConfig, remote: str) -> str:
    """The DuckDB SQL that runs ``remote`` (the server's own dialect) on the source's server,
    read-only."""
    if source.type == "postgres":
        return f"SELECT * FROM postgres_query({quote_literal(source.name)}, {quote_literal(remote)})"
    return (
        f"SELECT * FROM mysql_query({quote_literal(source.name)}, "
        f"{quote_literal(MARIADB_READ_ONLY + remote)})"
    )


@contextlib.contextmanager
def read_only(con: duckdb.DuckDBPyConnection, source: SourceConfig) -> Iterator[None]:
    """Run what the block executes on ``con`` in a read-only transaction on the server.

    PostgreSQL: one DuckDB transaction, whose server transaction is set READ ONLY before the
    query runs in it. MySQL/MariaDB: :func:`remote_select` puts the read-only setting in the
    statement itself; nothing to do here.
    """
    if source.type != "postgres":
        yield
        return
    con.execute("BEGIN")
    try:
        con.execute(f"CALL postgres_execute({quote_literal(source.name)}, 'SET TRANSACTION READ ONLY')")
        yield
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def role_excess(con: duckdb.DuckDBPyConnection, source: SourceConfig) -> tuple[str, list[str]]:
    """Who the source connects as, and what that role can do beyond reading its own database
    (empty when nothing)."""
    if source.type == "postgres":
        with read_only(con, source):
            row = con.execute(remote_select(source, _PG_ROLE_QUERY)).fetchone()
        if row is None:
            return "?", ["an unknown role (it is not in pg_roles)"]
        who, superuser, roles, functions = row
        if superuser:
            return who, ["superuser"]
        found = [f"member of {r}" for r in (roles or "").split(",") if r]
        found += [f"EXECUTE on {f}()" for f in (functions or "").split(",") if f]
        return who, found
    rows = con.execute(remote_select(source, "SHOW GRANTS")).fetchall()
    who_row = con.execute(remote_select(source, "SELECT CURRENT_USER() AS who")).fetchone()
    own = parse_dsn(source.dsn or "").database
    return (str(who_row[0]) if who_row else "?"), mysql_grant_excess([r[0] for r in rows], own)


def _split_privileges(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [re.sub(r"\s*\(.*\)$", "", p).upper() for p in parts if p]


def _grant_database(target: str) -> str | None:
    """The database a grant's object names, as written (with its escapes); None for ``*.*``."""
    target = re.sub(
        r"^(PROCEDURE|FUNCTION|PACKAGE|PACKAGE BODY|TABLE)\s+", "", target.strip(), flags=re.IGNORECASE
    )
    match = re.match(r"^(`(?:[^`]|``)*`|[^.\s]+)\s*\.", target)
    if not match:
        return target
    name = match.group(1)
    if name == "*":
        return None
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def _is_own(pattern: str, own: str | None) -> bool:
    """Whether a grant's database pattern names exactly the own database: ``_`` and ``%`` are
    wildcards in a grant unless escaped."""
    if own is None:
        return False
    if re.search(r"(?<!\\)[_%]", pattern):
        return False
    return pattern.replace("\\_", "_").replace("\\%", "%") == own


def mysql_grant_excess(grants: list[str], own: str | None) -> list[str]:
    """What ``SHOW GRANTS`` lines give beyond SELECT on the own database."""
    found: list[str] = []
    for line in grants:
        grant = _GRANT.match(line)
        if grant is None:
            role = _ROLE_GRANT.match(line)
            if role:
                found.append(f"the granted role {role.group('roles').strip()}")
            continue
        privileges = _split_privileges(grant.group("privileges"))
        target = grant.group("object").strip()
        if "PROXY" in privileges:
            found.append(f"PROXY on {target}")
            continue
        database = _grant_database(target)
        if database is None:
            extra = [p for p in privileges if p != "USAGE"]
            found += [f"{p} on *.* (every database)" for p in extra]
        elif not _is_own(database, own):
            found.append(f"a grant on {target}, another database than its own ({own})")
        else:
            found += [f"{p} on {target}" for p in privileges if p not in _MYSQL_READ_PRIVILEGES]
    return found


def verify_role(con: duckdb.DuckDBPyConnection, source: SourceConfig) -> list[str]:
    """Check the role of a pushdown source on its fresh connection ``con``.

    Returns the warnings to show when ``trust_role`` accepts a role that can do more; raises
    PullError (naming the privilege, and how to make a read-only role) when it does not.
    """
    who, excess = role_excess(con, source)
    if not excess:
        return []
    kind = "PostgreSQL" if source.type == "postgres" else "MySQL"
    what = ", ".join(excess)
    if source.trust_role:
        return [
            f"source {source.name}: trust_role = true: pushdown SQL runs as {kind} user "
            f"{who}, who can do more than read its own database ({what})"
        ]
    raise PullError(
        f"source {source.name}: pushdown runs the metric SQL on the server as {kind} user "
        f"{who}, who can do more than read its own database ({what}); connect as a read-only "
        f"role:  {read_only_role_sql(source)}  (or set trust_role = true on the source to "
        "accept this role knowingly)"
    )
