"""Sources: each pull gets its own in-memory DuckDB connection that can reach one source only.

The source is attached READ_ONLY (a database) or exposed as a view named after it (Parquet/CSV
files), then file-system access is switched off and the configuration locked, so the metric's SQL
can neither write to the source nor reach the store, another source or any other file.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import queue
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

from lookback_gui.core.errors import PullError, QueryError, TransientSourceError
from lookback_gui.core.project import SourceConfig

KEYRING_SERVICE = "lookback-gui"
_EXTENSIONS = {"sqlite": "sqlite_scanner", "postgres": "postgres_scanner", "mysql": "mysql_scanner"}
WINDOW_PARAMETERS = ("window_start", "window_end", "as_of")


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class CheckedQuery:
    """A metric's SQL that passed :func:`check_query`.

    Attributes:
        text: the single statement, without a trailing semicolon.
        parameters: which of $window_start, $window_end, $as_of it uses.
    """

    text: str
    parameters: frozenset[str]


def check_query(sql: str) -> CheckedQuery:
    """Accept exactly one read-only query (SELECT / WITH / FROM ...); refuse anything else."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(f"the SQL does not parse: {clean_duckdb_message(str(exc))}") from None
    if not statements:
        raise QueryError("the SQL holds no statement")
    if len(statements) > 1:
        raise QueryError(
            f"the SQL holds {len(statements)} statements; a metric runs exactly one query"
        )
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        kind = statement.type.name.replace("_", " ")
        raise QueryError(
            f"the SQL is a {kind} statement; a metric may only read (SELECT, WITH or FROM ...)"
        )
    unknown = set(statement.named_parameters) - set(WINDOW_PARAMETERS)
    if unknown:
        names = ", ".join("$" + n for n in sorted(unknown))
        raise QueryError(
            f"the SQL uses {names}; the parameters at hand are "
            "$window_start, $window_end and $as_of"
        )
    text = statement.query.strip().rstrip(";").strip()
    return CheckedQuery(text=text, parameters=frozenset(statement.named_parameters))


_WRITE_WORDS = re.compile(
    r"\b(insert|update|delete|replace|merge|upsert|create|drop|alter|truncate|grant|revoke|call|"
    r"lock|unlock|set|handler|load|copy|vacuum|analyze|comment|do|execute|prepare|into)\b",
    re.IGNORECASE)


def check_pushdown_query(sql: str) -> CheckedQuery:
    """Accept one read-only query in the server's own dialect, for a pushdown source.

    DuckDB's parser decides where it understands the SQL; otherwise the text must be a single
    SELECT or WITH query with no writing keyword outside string literals and comments.
    """
    try:
        return check_query(sql)
    except QueryError as exc:
        if "does not parse" not in str(exc):
            raise
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.DOTALL)
    bare = re.sub(r"'(?:[^']|'')*'", "''", text).strip().rstrip(";").strip()
    if ";" in bare:
        raise QueryError("the SQL holds more than one statement; a metric runs exactly one query")
    first = bare.split(None, 1)[0].lower() if bare else ""
    if first not in ("select", "with"):
        raise QueryError(f"the SQL starts with {first.upper() or 'nothing'}; a metric may only "
                         "read (SELECT or WITH ...)")
    word = _WRITE_WORDS.search(bare)
    if word:
        raise QueryError(f"the SQL contains {word.group(1).upper()}; a metric may only read")
    names = frozenset(n for n in WINDOW_PARAMETERS if re.search(rf"\${n}\b", bare))
    unknown = set(re.findall(r"\$([A-Za-z_]\w*)", bare)) - set(WINDOW_PARAMETERS)
    if unknown:
        raise QueryError(f"the SQL uses ${sorted(unknown)[0]}; the parameters at hand are "
                         "$window_start, $window_end and $as_of")
    return CheckedQuery(text=sql.strip().rstrip(";").strip(), parameters=names)


def timestamp_literal(moment: Any) -> str:
    """A typed SQL literal for one of our own datetimes (never for text from a user)."""
    return f"TIMESTAMP '{moment:%Y-%m-%d %H:%M:%S.%f}'"


def render_pushdown(query: CheckedQuery, values: Mapping[str, Any]) -> str:
    """The metric SQL for the server, the window given as typed timestamp literals.

    The values are the window's own datetimes, formatted here, never text from a user.
    """
    return re.sub(r"\$(window_start|window_end|as_of)\b",
                  lambda match: timestamp_literal(values[match.group(1)]), query.text)


def clean_duckdb_message(message: str) -> str:
    """DuckDB's message on one line: its caret lines dropped, the rest joined.

    DuckDB spreads a SQL error over several lines ("LINE 2: FROM orderz" and a caret under the
    position); the line number and the text stay, so the position is still said.
    """
    lines = [line.strip() for line in message.strip().splitlines()]
    kept = [line for line in lines if line and set(line) - {"^", " "}]
    return " — ".join(kept) if len(kept) > 1 else (kept[0] if kept else "")


def lookup_password(source: SourceConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The password for a server source: from ``password_env``, else the OS keyring, else None."""
    env = os.environ if environ is None else environ
    if source.password_env:
        if source.password_env not in env:
            raise TransientSourceError(
                f"source {source.name}: the environment variable {source.password_env} "
                "(password_env) is not set"
            )
        return env[source.password_env]
    return keyring_password(source)


def keyring_user(source: SourceConfig) -> str:
    """The keyring user name under which a server source's password is kept."""
    return f"{source.type}:{source.dsn}"


def keyring_password(source: SourceConfig) -> str | None:
    try:
        import keyring
        import keyring.errors

        return keyring.get_password(KEYRING_SERVICE, keyring_user(source))
    except Exception:  # no keyring service here: connect without a password
        return None


def _file_list(source: SourceConfig) -> list[str]:
    pattern = source.resolved_path or ""
    if glob.has_magic(pattern):
        matches = sorted(glob.glob(pattern, recursive=True))
        files = [m for m in matches if os.path.isfile(m)]
        if not files:
            raise TransientSourceError(
                f"source {source.name}: no file matches {source.path} ({pattern})"
            )
        return files
    if not os.path.exists(pattern):
        raise TransientSourceError(
            f"source {source.name}: file not found: {source.path} ({pattern})"
        )
    if os.path.isdir(pattern):
        raise TransientSourceError(
            f"source {source.name}: {source.path} is a folder; give a file or a glob like "
            f"'{source.path.rstrip('/') if source.path else ''}/*.{source.type}'"
        )
    return [pattern]


def load_extension(con: duckdb.DuckDBPyConnection, source_type: str) -> None:
    """Install (offline, from the pip package) and load the scanner for ``source_type``."""
    name = _EXTENSIONS[source_type]
    try:
        con.execute(f"LOAD {name}")
        return
    except duckdb.Error:
        pass
    import duckdb_extensions

    duckdb_extensions.import_extension(name, con=con)
    con.execute(f"LOAD {name}")


def _scrub(message: str, secret: str | None) -> str:
    if secret:
        message = message.replace(secret, "***")
    return re.sub(r"(?i)(password\s*=\s*)\S+", r"\1***", message)


_STOP: Any = object()  # tells the background thread of _SpareConnections to end


class _SpareConnections:
    """Fresh, empty in-memory DuckDB databases made ahead of time, and used ones closed, off the
    path of a pull.

    Opening a DuckDB database costs several milliseconds and closing one about a millisecond more,
    a large share of a small pull. Each pull still gets a database of its own that nothing else
    ever saw: one background thread closes the databases that pulls gave back and then makes the
    next ones, so this work happens between pulls rather than during them.
    """

    KEEP = 2  # ready at once: enough for the default two workers

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: list[duckdb.DuckDBPyConnection] = []
        self._used: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None

    @staticmethod
    def _new() -> duckdb.DuckDBPyConnection:
        return duckdb.connect(":memory:", config={"threads": max(1, min(4, os.cpu_count() or 1))})

    def take(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            con = self._ready.pop() if self._ready else None
        if con is None:
            self._wake(None)  # none was ready: have the next one made
            con = self._new()
        return con

    def give_back(self, con: duckdb.DuckDBPyConnection) -> None:
        """Close ``con`` (a database a pull used) soon, on the background thread."""
        self._wake(con)

    def _wake(self, con: duckdb.DuckDBPyConnection | None) -> None:
        self._used.put(con)
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="duckdb-spares",
                                                daemon=True)
                self._worker.start()

    def _work(self) -> None:
        while True:
            con = self._used.get()
            if con is _STOP:
                return
            if con is not None:
                with contextlib.suppress(duckdb.Error):
                    con.close()
            if not self._used.empty():
                continue  # close everything given back before making more
            with self._lock:
                short = len(self._ready) < self.KEEP
            if short:
                try:
                    fresh = self._new()
                except duckdb.Error:  # e.g. out of memory: the next pull makes its own
                    continue
                with self._lock:
                    self._ready.append(fresh)

    def close_all(self) -> None:
        """Stop the background thread and close every database still open here (at exit, so
        that no database is being made or closed while the process ends)."""
        with self._lock:
            worker = self._worker
        if worker is not None and worker.is_alive():
            self._used.put(_STOP)
            worker.join(timeout=5)  # a database still busy is not worth a hung exit
        while not self._used.empty():
            con = self._used.get_nowait()
            if con is not None and con is not _STOP:
                with contextlib.suppress(duckdb.Error):
                    con.close()
        with self._lock:
            ready, self._ready = self._ready, []
        for con in ready:
            with contextlib.suppress(duckdb.Error):
                con.close()


_spares = _SpareConnections()
atexit.register(_spares.close_all)


def release_source(con: duckdb.DuckDBPyConnection, source: SourceConfig) -> None:
    """Give back a connection from connect_source.

    A database source is detached at once (a file is free for its writers, a server connection
    closed, when this returns); the in-memory database itself is closed soon, off the caller's
    path.
    """
    if source.type not in ("parquet", "csv"):
        with contextlib.suppress(duckdb.Error):
            con.execute(f"USE memory; DETACH {quote_identifier(source.name)}")
    _spares.give_back(con)


def connect_source(
    source: SourceConfig, timezone: str = "UTC", environ: Mapping[str, str] | None = None,
    staging_dir: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory connection that sees ``source`` read-only and nothing else.

    ``staging_dir`` is a private folder of the pull's own, the one place it may write: the
    checked result goes there as Parquet for the store to read, so large results never become
    Python objects.

    Raises TransientSourceError when the source cannot be reached now (missing or locked file,
    refused connection) and PullError for anything retrying cannot fix.
    """
    con = _spares.take()
    password: str | None = None
    try:
        con.execute(f"SET TimeZone = {quote_literal(timezone)}")
        alias = quote_identifier(source.name)
        allowed: list[str] = []
        if source.type in ("parquet", "csv"):
            files = _file_list(source)
            reader = "read_parquet" if source.type == "parquet" else "read_csv"
            listed = ", ".join(quote_literal(f) for f in files)
            options = ", union_by_name = true" if len(files) > 1 else ""
            con.execute(f"CREATE VIEW {alias} AS SELECT * FROM {reader}([{listed}]{options})")
            allowed = files
        elif source.type in ("duckdb", "sqlite"):
            path = _file_list(source)[0]
            if source.type == "sqlite":
                load_extension(con, "sqlite")
                con.execute(f"ATTACH {quote_literal(path)} AS {alias} (TYPE sqlite, READ_ONLY)")
            else:
                con.execute(f"ATTACH {quote_literal(path)} AS {alias} (READ_ONLY)")
            con.execute(f"USE {alias}")
        else:
            load_extension(con, source.type)
            password = lookup_password(source, environ)
            options = f"TYPE {source.type}, READ_ONLY"
            if password is not None:
                con.execute(
                    f"CREATE SECRET lookback_source (TYPE {source.type}, "
                    f"PASSWORD {quote_literal(password)})"
                )
                options += ", SECRET lookback_source"
            con.execute(f"ATTACH {quote_literal(source.dsn or '')} AS {alias} ({options})")
            con.execute(f"USE {alias}")
        settings = []
        if allowed:
            settings.append(f"SET allowed_paths = [{', '.join(quote_literal(f) for f in allowed)}]")
        if staging_dir:
            folder = staging_dir.rstrip("/") + "/"
            settings.append(f"SET allowed_directories = [{quote_literal(folder)}]")
        settings += ["SET enable_external_access = false", "SET lock_configuration = true"]
        con.execute("; ".join(settings))
        return con
    except PullError:
        con.close()
        raise
    except duckdb.Error as exc:
        con.close()
        message = _scrub(clean_duckdb_message(str(exc)), password)
        if is_transient(exc):
            raise TransientSourceError(f"source {source.name}: {message}") from None
        raise PullError(f"source {source.name}: {message}") from None


def is_transient(exc: BaseException) -> bool:
    """Whether retrying may fix ``exc``: the source was unreachable, locked or went away."""
    if isinstance(exc, TransientSourceError):
        return True
    if isinstance(exc, duckdb.IOException | duckdb.ConnectionException | duckdb.HTTPException):
        return True
    text = str(exc).lower()
    return any(
        marker in text
        for marker in ("could not set lock", "connection refused", "server closed the connection",
                       "lost connection", "gone away", "can't connect", "could not connect",
                       "connection to server")
    )


def describe_schema(source: SourceConfig, environ: Mapping[str, str] | None = None
                    ) -> list[dict[str, Any]]:
    """The tables and columns the metric SQL can see in ``source``: a list of
    ``{"table", "column", "type"}``, for connection tests and the schema browser."""
    con = connect_source(source, environ=environ)
    try:
        rows = con.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_catalog = current_database() OR table_catalog = ?"
            " ORDER BY table_schema, table_name, ordinal_position",
            [source.name],
        ).fetchall()
    except duckdb.Error as exc:
        raise PullError(f"source {source.name}: {clean_duckdb_message(str(exc))}") from None
    finally:
        release_source(con, source)
    out = []
    for schema, table, column, kind in rows:
        name = table if schema in ("main", "public", None) else f"{schema}.{table}"
        out.append({"table": name, "column": column, "type": kind})
    return out
