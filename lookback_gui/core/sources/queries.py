"""The sandbox's reading of a metric's SQL before it runs: one statement that only reads, reaching
no other database or file (:func:`check_query`), and for pushdown sources the server's own SQL
checked and rendered with its parameters (:func:`check_pushdown_query`, :func:`render_pushdown`).
"""

from __future__ import annotations

import atexit
import functools
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

from lookback_gui.core.errors import QueryError
from lookback_gui.core.project import SourceConfig
from lookback_gui.core.sources.lakehouse import refuse_reach
from lookback_gui.core.storage.dsn import parse_dsn

WINDOW_PARAMETERS = ("window_start", "window_end", "as_of")


@dataclass(frozen=True)
class CheckedQuery:
    """A metric's SQL that passed :func:`check_query`.

    Attributes:
        text: the single statement, without a trailing semicolon.
        parameters: which of $window_start, $window_end, $as_of it uses.
    """

    text: str
    parameters: frozenset[str]


_STATEMENT_WORDS = (
    "USE",
    "CHECKPOINT",
    "FORCE CHECKPOINT",
    "SET",
    "RESET",
    "CALL",
    "PRAGMA",
    "INSTALL",
    "FORCE INSTALL",
    "LOAD",
    "ATTACH",
    "DETACH",
    "EXPORT",
    "IMPORT",
)


def _statement_kind(statement: Any) -> str:
    """The statement's kind as the user wrote it (DuckDB files USE under SET, CHECKPOINT under
    CALL)."""
    words = " ".join(statement.query.split()[:2]).upper()
    for word in _STATEMENT_WORDS:
        if words == word or words.startswith(word + " "):
            return word
    return str(statement.type.name.replace("_", " "))


def _article(word: str) -> str:
    """ "a" or "an" before ``word`` as it is read out (an ATTACH, an UPDATE, a SET, a USE)."""
    first = word[:1].upper()
    return "an" if first in "AEIO" or (first == "U" and not word.upper().startswith("US")) else "a"


def check_query(sql: str, source: SourceConfig | None = None) -> CheckedQuery:
    """Accept exactly one read-only query (SELECT / WITH / FROM ...); refuse anything else.

    The query must also stay inside its source (see :func:`check_reach`); ``source``, when
    given, adds the checks that depend on the source (another database on its server).
    """
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(f"the SQL does not parse: {clean_duckdb_message(str(exc))}") from None
    if not statements:
        raise QueryError("the SQL holds no statement")
    if len(statements) > 1:
        raise QueryError(f"the SQL holds {len(statements)} statements; a metric runs exactly one query")
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        kind = _statement_kind(statement)
        raise QueryError(
            f"the SQL is {_article(kind)} {kind} statement; a metric may only read (SELECT, WITH or FROM ...)"
        )
    unknown = set(statement.named_parameters) - set(WINDOW_PARAMETERS)
    if unknown:
        names = ", ".join("$" + n for n in sorted(unknown))
        raise QueryError(
            f"the SQL uses {names}; the parameters at hand are $window_start, $window_end and $as_of"
        )
    text = statement.query.strip().rstrip(";").strip()
    check_reach(text, source)
    return CheckedQuery(text=text, parameters=frozenset(statement.named_parameters))


# Table functions that reach past the source: another SQLite file, another PostgreSQL or MySQL
# database (by DSN, or the server's own SQL on the source's connection), or a query built from a
# string, which would hide any of these. SQL for the server itself is what ``pushdown`` is for.
_REACHING_FUNCTIONS = re.compile(
    r"^(sqlite_\w+|postgres_\w+|mysql_\w+|pg_clear_cache|query|query_table|duckdb_secrets|"
    r"which_secret)$",
    re.IGNORECASE,
)


def _own_database(source: SourceConfig | None) -> str | None:
    """The database a MySQL source's DSN names (its server holds others), else None."""
    if source is None or source.type != "mysql" or not source.dsn:
        return None
    database = parse_dsn(source.dsn).database
    return database.lower() if database else None


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


_parser_lock = threading.Lock()
_parser: list[duckdb.DuckDBPyConnection] = []


@functools.lru_cache(maxsize=256)
def _syntax_tree(text: str) -> dict[str, Any]:
    """DuckDB's syntax tree of ``text`` (a metric's SQL repeats from pull to pull: kept)."""
    with _parser_lock:
        if not _parser:
            _parser.append(duckdb.connect())
            atexit.register(_close_parser)  # on first use, never on import
        row = _parser[0].execute("SELECT json_serialize_sql(?)", [text]).fetchone()
    tree: dict[str, Any] = json.loads(row[0]) if row else {"error": True}
    return tree


def _close_parser() -> None:
    with _parser_lock:
        while _parser:
            _parser.pop().close()


def check_reach(text: str, source: SourceConfig | None = None) -> None:
    """Refuse a query that reaches past its source: a table function that opens another file or
    database, or (for a MySQL source) a table of another database on the server.

    The rest is closed by the connection itself (:func:`connect_source`): file access off, only
    the source's own files and the pull's own folder allowed, no temp folder, settings locked.
    """
    tree = _syntax_tree(text)
    if tree.get("error"):
        raise QueryError(f"the SQL cannot be checked: {tree.get('error_message', 'unknown')}")
    own_database = _own_database(source)
    for node in _nodes(tree):
        refuse_reach(node, source)  # object storage and lakehouse tables: their view only
        if node.get("type") == "TABLE_FUNCTION":
            name = str((node.get("function") or {}).get("function_name", ""))
            if _REACHING_FUNCTIONS.match(name):
                raise QueryError(
                    f"the SQL calls {name}(), which reaches past the metric's source; a metric "
                    "reads only its own source (to run SQL on a PostgreSQL or MySQL server, "
                    "set pushdown = true on the source)"
                )
        elif node.get("type") == "BASE_TABLE" and own_database is not None and source:
            catalog = str(node.get("catalog_name") or "").lower()
            schema = str(node.get("schema_name") or "").lower()
            if catalog in ("", source.name.lower()) and schema not in (
                "",
                own_database,
                "information_schema",
            ):
                raise QueryError(
                    f"the SQL reads {schema}.{node.get('table_name')}, a table of another "
                    f"database than the source's own ({own_database})"
                )


_WRITE_WORDS = re.compile(
    r"\b(insert|update|delete|replace|merge|upsert|create|drop|alter|truncate|grant|revoke|call|"
    r"lock|unlock|set|handler|load|copy|vacuum|analyze|comment|do|execute|prepare|into)\b",
    re.IGNORECASE,
)


# Server functions that read the server's own files or reach another database, and the server's
# tables of secrets (checked with quotes taken off: "pg_read_file"(...) is the same call)
_SERVER_REACH = re.compile(
    r"\b(dblink\w*|pg_read_file|pg_read_binary_file|pg_ls_\w+|pg_stat_file|lo_import|lo_get|"
    r"lo_export|load_file|sys_exec|sys_eval)\s*\(",
    re.IGNORECASE,
)
_SERVER_SECRETS = re.compile(
    r"\b(pg_shadow|pg_authid|pg_user_mappings?|pg_hba_file_rules|pg_ident_file_mappings|"
    r"pg_file_settings)\b",
    re.IGNORECASE,
)
_QUALIFIED_TABLE = re.compile(r"\b(?:from|join)\s+(\w+)\s*\.\s*\w+", re.IGNORECASE)
# a FROM clause up to the next clause; its comma-separated items are tables too
_FROM_CLAUSE = re.compile(
    r"\bfrom\b(.*?)(?=\b(?:where|group|having|order|limit|union|window|on|using|except|"
    r"intersect|for|into|lock)\b|[()]|$)",
    re.IGNORECASE | re.DOTALL,
)
_LISTED_TABLE = re.compile(r"(?:^|,)\s*(\w+)\s*\.\s*\w+", re.IGNORECASE)
# MySQL runs what is inside /*! ... */ (and MariaDB /*M! ... */): code, not a comment
_EXECUTED_COMMENT = re.compile(r"/\*M?!", re.IGNORECASE)


def _databases_named(bare: str) -> list[str]:
    """The database part of every qualified table name in ``bare`` (after FROM or JOIN, or
    listed in a FROM clause)."""
    names = [m.group(1) for m in _QUALIFIED_TABLE.finditer(bare)]
    for clause in _FROM_CLAUSE.finditer(bare):
        names += [m.group(1) for m in _LISTED_TABLE.finditer(clause.group(1))]
    return names


def check_pushdown_query(sql: str, source: SourceConfig | None = None) -> CheckedQuery:
    """Accept one read-only query in the server's own dialect, for a pushdown source.

    This is a first net only: what the SQL can reach on the server is bounded by the source's
    role, verified when it connects (:mod:`pushdown`). DuckDB's parser decides where it
    understands the SQL; otherwise the text must be a single SELECT or WITH query with no
    writing keyword outside string literals and comments. Either way it may not call the
    server's functions that read its files or other databases, read its tables of secrets,
    hold MySQL's executed comments, or (MySQL) name a table of another database.
    """
    if source is not None and source.type == "mysql" and _EXECUTED_COMMENT.search(sql):
        raise QueryError(
            "the SQL holds a /*! ... */ comment, which MySQL runs as code; a "
            "pushdown query is written without one"
        )
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.DOTALL)
    bare = re.sub(r"'(?:[^']|'')*'", "''", text).strip().rstrip(";").strip()
    unquoted = re.sub(r"[\"`]", "", bare)
    reach = _SERVER_REACH.search(unquoted)
    if reach:
        raise QueryError(
            f"the SQL calls {reach.group(1)}(), which reaches past the metric's "
            "source (the server's files or another database)"
        )
    secret = _SERVER_SECRETS.search(unquoted)
    if secret:
        raise QueryError(
            f"the SQL reads {secret.group(1)}, the server's own table of secrets, "
            "which reaches past the metric's source"
        )
    own = _own_database(source)
    if own is not None:
        for database in _databases_named(unquoted):
            if database.lower() not in (own, "information_schema"):
                raise QueryError(
                    f"the SQL reads a table of {database}, another database than the source's own ({own})"
                )
    try:
        return check_query(sql, source)
    except QueryError as exc:
        if "does not parse" not in str(exc):
            raise
    if ";" in bare:
        raise QueryError("the SQL holds more than one statement; a metric runs exactly one query")
    first = bare.split(None, 1)[0].lower() if bare else ""
    if first not in ("select", "with"):
        raise QueryError(
            f"the SQL starts with {first.upper() or 'nothing'}; a metric may only read (SELECT or WITH ...)"
        )
    word = _WRITE_WORDS.search(bare)
    if word:
        raise QueryError(f"the SQL contains {word.group(1).upper()}; a metric may only read")
    names = frozenset(n for n in WINDOW_PARAMETERS if re.search(rf"\${n}\b", bare))
    unknown = set(re.findall(r"\$([A-Za-z_]\w*)", bare)) - set(WINDOW_PARAMETERS)
    if unknown:
        raise QueryError(
            f"the SQL uses ${sorted(unknown)[0]}; the parameters at hand are "
            "$window_start, $window_end and $as_of"
        )
    return CheckedQuery(text=sql.strip().rstrip(";").strip(), parameters=names)


def timestamp_literal(moment: Any) -> str:
    """A typed SQL literal for one of our own datetimes (never for text from a user)."""
    return f"TIMESTAMP '{moment:%Y-%m-%d %H:%M:%S.%f}'"


def render_pushdown(query: CheckedQuery, values: Mapping[str, Any]) -> str:
    """The metric SQL for the server, the window given as typed timestamp literals.

    The values are the window's own datetimes, formatted here, never text from a user.
    """
    return re.sub(
        r"\$(window_start|window_end|as_of)\b",
        lambda match: timestamp_literal(values[match.group(1)]),
        query.text,
    )


def clean_duckdb_message(message: str) -> str:
    """DuckDB's message on one line: its caret lines dropped, the rest joined.

    DuckDB spreads a SQL error over several lines ("LINE 2: FROM orderz" and a caret under the
    position); the line number and the text stay, so the position is still said.
    """
    lines = [line.strip() for line in message.strip().splitlines()]
    kept = [line for line in lines if line and set(line) - {"^", " "}]
    return " — ".join(kept) if len(kept) > 1 else (kept[0] if kept else "")
