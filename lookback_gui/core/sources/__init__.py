"""Sources: each pull gets its own in-memory DuckDB connection that can reach one source only.

The source is attached READ_ONLY (a database) or exposed as a view named after it (Parquet/CSV
files), then file-system access is switched off and the configuration locked, so the metric's SQL
can neither write to the source nor reach the store, another source or any other file.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import glob
import json
import os
import queue
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from lookback_gui.core.duck import load_named_extension, quote_identifier, quote_literal
from lookback_gui.core.errors import PullError, QueryError, TransientSourceError
from lookback_gui.core.failures import is_login_refused, is_transient
from lookback_gui.core.project import SourceConfig
from lookback_gui.core.sources.lakehouse import Reach, expose, is_lake, refuse_reach
from lookback_gui.core.sources.pushdown import role_excess, verify_role
from lookback_gui.core.storage.dsn import parse_dsn
from lookback_gui.core.storage.passwords import keyring_get

_EXTENSIONS = {"sqlite": "sqlite_scanner", "postgres": "postgres_scanner", "mysql": "mysql_scanner"}
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


_STATEMENT_WORDS = ("USE", "CHECKPOINT", "FORCE CHECKPOINT", "SET", "RESET", "CALL", "PRAGMA",
                    "INSTALL", "FORCE INSTALL", "LOAD", "ATTACH", "DETACH", "EXPORT", "IMPORT")


def _statement_kind(statement: Any) -> str:
    """The statement's kind as the user wrote it (DuckDB files USE under SET, CHECKPOINT under
    CALL)."""
    words = " ".join(statement.query.split()[:2]).upper()
    for word in _STATEMENT_WORDS:
        if words == word or words.startswith(word + " "):
            return word
    return str(statement.type.name.replace("_", " "))


def _article(word: str) -> str:
    """"a" or "an" before ``word`` as it is read out (an ATTACH, an UPDATE, a SET, a USE)."""
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
        raise QueryError(
            f"the SQL holds {len(statements)} statements; a metric runs exactly one query"
        )
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        kind = _statement_kind(statement)
        raise QueryError(
            f"the SQL is {_article(kind)} {kind} statement; a metric may only read "
            "(SELECT, WITH or FROM ...)"
        )
    unknown = set(statement.named_parameters) - set(WINDOW_PARAMETERS)
    if unknown:
        names = ", ".join("$" + n for n in sorted(unknown))
        raise QueryError(
            f"the SQL uses {names}; the parameters at hand are "
            "$window_start, $window_end and $as_of"
        )
    text = statement.query.strip().rstrip(";").strip()
    check_reach(text, source)
    return CheckedQuery(text=text, parameters=frozenset(statement.named_parameters))


# Table functions that reach past the source: another SQLite file, another PostgreSQL or MySQL
# database (by DSN, or the server's own SQL on the source's connection), or a query built from a
# string, which would hide any of these. SQL for the server itself is what ``pushdown`` is for.
_REACHING_FUNCTIONS = re.compile(
    r"^(sqlite_\w+|postgres_\w+|mysql_\w+|pg_clear_cache|query|query_table|duckdb_secrets|"
    r"which_secret)$", re.IGNORECASE)


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
                    "", own_database, "information_schema"):
                raise QueryError(
                    f"the SQL reads {schema}.{node.get('table_name')}, a table of another "
                    f"database than the source's own ({own_database})"
                )


_WRITE_WORDS = re.compile(
    r"\b(insert|update|delete|replace|merge|upsert|create|drop|alter|truncate|grant|revoke|call|"
    r"lock|unlock|set|handler|load|copy|vacuum|analyze|comment|do|execute|prepare|into)\b",
    re.IGNORECASE)


# Server functions that read the server's own files or reach another database, and the server's
# tables of secrets (checked with quotes taken off: "pg_read_file"(...) is the same call)
_SERVER_REACH = re.compile(
    r"\b(dblink\w*|pg_read_file|pg_read_binary_file|pg_ls_\w+|pg_stat_file|lo_import|lo_get|"
    r"lo_export|load_file|sys_exec|sys_eval)\s*\(", re.IGNORECASE)
_SERVER_SECRETS = re.compile(
    r"\b(pg_shadow|pg_authid|pg_user_mappings?|pg_hba_file_rules|pg_ident_file_mappings|"
    r"pg_file_settings)\b", re.IGNORECASE)
_QUALIFIED_TABLE = re.compile(r"\b(?:from|join)\s+(\w+)\s*\.\s*\w+", re.IGNORECASE)
# a FROM clause up to the next clause; its comma-separated items are tables too
_FROM_CLAUSE = re.compile(
    r"\bfrom\b(.*?)(?=\b(?:where|group|having|order|limit|union|window|on|using|except|"
    r"intersect|for|into|lock)\b|[()]|$)", re.IGNORECASE | re.DOTALL)
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
        raise QueryError("the SQL holds a /*! ... */ comment, which MySQL runs as code; a "
                         "pushdown query is written without one")
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.DOTALL)
    bare = re.sub(r"'(?:[^']|'')*'", "''", text).strip().rstrip(";").strip()
    unquoted = re.sub(r"[\"`]", "", bare)
    reach = _SERVER_REACH.search(unquoted)
    if reach:
        raise QueryError(f"the SQL calls {reach.group(1)}(), which reaches past the metric's "
                         "source (the server's files or another database)")
    secret = _SERVER_SECRETS.search(unquoted)
    if secret:
        raise QueryError(f"the SQL reads {secret.group(1)}, the server's own table of secrets, "
                         "which reaches past the metric's source")
    own = _own_database(source)
    if own is not None:
        for database in _databases_named(unquoted):
            if database.lower() not in (own, "information_schema"):
                raise QueryError(f"the SQL reads a table of {database}, another database "
                                 f"than the source's own ({own})")
    try:
        return check_query(sql, source)
    except QueryError as exc:
        if "does not parse" not in str(exc):
            raise
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
        if source.password_env not in env:  # retrying in this process cannot set it
            raise PullError(
                f"source {source.name}: the environment variable {source.password_env} "
                "(password_env) is not set"
            )
        return env[source.password_env]
    return keyring_password(source)


def keyring_user(source: SourceConfig) -> str:
    """The keyring user name under which a server source's password is kept."""
    return f"{source.type}:{source.dsn}"


def keyring_password(source: SourceConfig) -> str | None:
    """The source's password from the OS keyring; None when the keyring holds none or when
    there is no keyring service here (:func:`keyring_available` tells which)."""
    return keyring_get(keyring_user(source))


def keyring_available() -> bool:
    """Whether an OS keyring service can be used here."""
    try:
        import keyring
        import keyring.backends.fail

        return not isinstance(keyring.get_keyring(), keyring.backends.fail.Keyring)
    except Exception:
        return False


def _no_password_message(source: SourceConfig) -> str:
    where = ("the keyring holds none for it" if keyring_available()
             else "no keyring service is available here")
    return (f"source {source.name}: the server wants a password and none is set ({where}); "
            "set password_env to the name of an environment variable that holds it")


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


def _check_database_file(source: SourceConfig, path: str) -> None:
    """Refuse a file that is not the kind of database the source says (a CSV export named in a
    duckdb source, say), naming the path; DuckDB's own message would not."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise TransientSourceError(f"source {source.name}: {source.path} cannot be read: "
                                   f"{exc.strerror} ({path})") from None
    if source.type == "duckdb":
        ok = head[8:12] == b"DUCK"
        kind = "a DuckDB database"
    else:
        ok = head.startswith(b"SQLite format 3\x00") or not head
        kind = "an SQLite database"
    if not ok:
        raise PullError(f"source {source.name}: {source.path} is not {kind} ({path})")


_NEWER_FILE = re.compile(r"database file with version number (\d+), but we can only read "
                         r"versions between (\d+) and (\d+)", re.IGNORECASE)


def load_extension(con: duckdb.DuckDBPyConnection, source_type: str) -> None:
    """Install (offline, from the pip package) and load the scanner for ``source_type``."""
    load_named_extension(con, _EXTENSIONS[source_type])


_STOP: Any = object()  # tells the closing thread of SourceConnections to end


def _new_database() -> duckdb.DuckDBPyConnection:
    """A fresh, empty in-memory DuckDB database for one pull (made on the calling thread)."""
    return duckdb.connect(":memory:", config={"threads": max(1, min(4, os.cpu_count() or 1))})


class SourceConnections:
    """The in-memory DuckDB databases that pulls see their sources through: made ready ahead
    of a pull, and closed off its path.

    Opening a DuckDB database costs several milliseconds and closing one about a millisecond, a
    large share of a small pull. Each pull still gets a database of its own that nothing else
    ever saw. A database is only ever made on the thread that will use it: a thread that is
    idle between pulls (a scheduler's worker, after its pull) calls :meth:`prepare`, and its next
    pull takes that database at once; making one on another thread while DuckDB is in use
    crashed the process now and then. Used databases are closed by one background thread.

    The entry points (the command line, the desktop app, the benchmarks) make one for the
    process, hand it to the pulls, and :meth:`close` it when they end; without one, a pull
    opens and closes its database itself.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: dict[threading.Thread, duckdb.DuckDBPyConnection] = {}
        self._used: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closer: threading.Thread | None = None
        self._closed = False

    def prepare(self) -> None:
        """Make the calling thread's next database now, while it has nothing else to do."""
        thread = threading.current_thread()
        with self._lock:
            if self._closed or thread in self._ready:
                return
        try:
            con = _new_database()
        except duckdb.Error:  # e.g. out of memory: the next pull makes its own
            return
        with self._lock:
            if not self._closed and thread not in self._ready:
                self._ready[thread] = con
                return
        con.close()

    def take(self) -> duckdb.DuckDBPyConnection:
        """A fresh database for a pull on the calling thread."""
        with self._lock:
            con = self._ready.pop(threading.current_thread(), None)
        return con if con is not None else _new_database()

    def prune(self) -> int:
        """Close the databases made ready for threads that have ended since (the pull threads
        of a closed project's scheduler); return how many."""
        with self._lock:
            gone = [thread for thread in self._ready if not thread.is_alive()]
            cons = [self._ready.pop(thread) for thread in gone]
        for con in cons:
            self.give_back(con)
        return len(cons)

    def ready_count(self) -> int:
        """How many databases wait for a pull."""
        with self._lock:
            return len(self._ready)

    def give_back(self, con: duckdb.DuckDBPyConnection) -> None:
        """Close ``con`` (a database a pull used) soon, on the background thread."""
        with self._lock:
            if not self._closed:
                self._used.put(con)
                if self._closer is None or not self._closer.is_alive():
                    self._closer = threading.Thread(target=self._close_given_back,
                                                    name="duckdb-closer", daemon=True)
                    self._closer.start()
                return
        with contextlib.suppress(duckdb.Error):  # closed already: close it here
            con.close()

    def _close_given_back(self) -> None:
        while True:
            con = self._used.get()
            if con is _STOP:
                return
            with contextlib.suppress(duckdb.Error):
                con.close()

    def close(self) -> None:
        """Stop the background thread and close every database still open here (when the
        entry point ends, so that no database is being closed while the process ends)."""
        with self._lock:
            self._closed = True
            closer = self._closer
            ready, self._ready = list(self._ready.values()), {}
        if closer is not None and closer.is_alive():
            self._used.put(_STOP)
            closer.join(timeout=5)  # a database still busy is not worth a hung exit
        while not self._used.empty():
            con = self._used.get_nowait()
            if con is not _STOP:
                with contextlib.suppress(duckdb.Error):
                    con.close()
        for con in ready:
            with contextlib.suppress(duckdb.Error):
                con.close()

    def __enter__(self) -> SourceConnections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def release_source(con: duckdb.DuckDBPyConnection, source: SourceConfig,
                   connections: SourceConnections | None = None) -> None:
    """Give back a connection from connect_source.

    A database source is detached at once (a file is free for its writers, a server connection
    closed, when this returns); the in-memory database itself is closed soon, off the caller's
    path, when ``connections`` (the one it came from) is given, else now.
    """
    if source.type not in ("parquet", "csv") and not is_lake(source):
        with contextlib.suppress(duckdb.Error):
            con.execute(f"USE memory; DETACH {quote_identifier(source.name)}")
    if connections is not None:
        connections.give_back(con)
    else:
        with contextlib.suppress(duckdb.Error):
            con.close()


def connect_source(
    source: SourceConfig, timezone: str = "UTC", environ: Mapping[str, str] | None = None,
    staging_dir: str | None = None, connections: SourceConnections | None = None,
    as_of: datetime | None = None,
) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory connection that sees ``source`` read-only and nothing else.

    ``staging_dir`` is a private folder of the pull's own, the one place it may write: the
    checked result goes there as Parquet for the store to read, so large results never become
    Python objects.

    ``connections`` gives the database (made ready ahead) when given; else it is made here.
    ``as_of`` is the pull's as-of, for a lakehouse table read as it was then.

    Raises TransientSourceError when the source cannot be reached now (missing or locked file,
    refused connection) and PullError for anything retrying cannot fix.
    """
    con = connections.take() if connections is not None else _new_database()
    password: str | None = None
    try:
        con.execute(f"SET TimeZone = {quote_literal(timezone)}")
        alias = quote_identifier(source.name)
        allowed: list[str] = []
        reach = Reach()
        if is_lake(source):
            reach = expose(con, source, as_of=as_of, environ=environ)
            allowed = list(reach.paths)
        elif source.type in ("parquet", "csv"):
            files = _file_list(source)
            reader = "read_parquet" if source.type == "parquet" else "read_csv"
            listed = ", ".join(quote_literal(f) for f in files)
            options = ", union_by_name = true" if len(files) > 1 else ""
            con.execute(f"CREATE VIEW {alias} AS SELECT * FROM {reader}([{listed}]{options})")
            allowed = files
        elif source.type in ("duckdb", "sqlite"):
            path = _file_list(source)[0]
            _check_database_file(source, path)
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
                # the password reaches DuckDB only as a secret: DuckDB repeats the connection
                # string in its errors, never a secret, so no message can hold the password
                try:
                    con.execute(f"CREATE SECRET lookback_source (TYPE {source.type}, "
                                f"PASSWORD {quote_literal(password)})")
                except duckdb.Error:  # its message could quote the statement: not repeated
                    raise PullError(f"source {source.name}: the password could not be handed "
                                    "to DuckDB (does it hold a control character?)") from None
                options += ", SECRET lookback_source"
            con.execute(f"ATTACH {quote_literal(source.dsn or '')} AS {alias} ({options})")
            con.execute(f"USE {alias}")
            if source.pushdown:  # SQL the server runs is bounded by the role: verified first
                verify_role(con, source)
        settings = []
        if allowed:
            settings.append(f"SET allowed_paths = [{', '.join(quote_literal(f) for f in allowed)}]")
        # DuckDB allows its temp folder (.tmp in the current folder) to every query: spill into
        # the pull's own folder instead, or nowhere
        spill = os.path.join(staging_dir, "spill") if staging_dir else ""
        settings.append(f"SET temp_directory = {quote_literal(spill)}")
        folders = list(reach.directories)
        if staging_dir:
            folders.append(staging_dir.rstrip("/") + "/")
        if folders:
            listed = ", ".join(quote_literal(folder) for folder in folders)
            settings.append(f"SET allowed_directories = [{listed}]")
        settings += ["SET enable_external_access = false", "SET lock_configuration = true"]
        con.execute("; ".join(settings))
        return con
    except PullError:
        con.close()
        raise
    except duckdb.Error as exc:
        con.close()
        message = clean_duckdb_message(str(exc))
        newer = _NEWER_FILE.search(str(exc))
        if newer and source.type == "duckdb":  # permanent: no retry makes this DuckDB read it
            raise PullError(
                f"source {source.name}: {source.path} was written by a newer DuckDB (storage "
                f"version {newer.group(1)}; this DuckDB {duckdb.__version__} reads "
                f"{newer.group(2)} to {newer.group(3)}); export it from that DuckDB "
                f"(EXPORT DATABASE) or keep the source at a format this one reads") from None
        if source.type in ("postgres", "mysql") and password is None and is_login_refused(exc):
            raise PullError(_no_password_message(source)) from None
        if is_transient(exc):
            raise TransientSourceError(f"source {source.name}: {message}") from None
        raise PullError(f"source {source.name}: {message}") from None


def source_warnings(source: SourceConfig, environ: Mapping[str, str] | None = None) -> list[str]:
    """What ``lookback check`` should warn about a server source: a pushdown source whose role
    ``trust_role`` accepts although it can do more than read its own database (every time), and
    a PostgreSQL superuser, who could read the server's files with the server's own SQL."""
    if source.type not in ("postgres", "mysql"):
        return []
    con = connect_source(source, environ=environ)
    try:
        if source.pushdown:
            return verify_role(con, source)
        if source.type != "postgres":
            return []
        try:
            _, excess = role_excess(con, source)
        except duckdb.Error:
            return []
    finally:
        release_source(con, source)
    if "superuser" in excess:
        return [f"source {source.name}: its user is a PostgreSQL superuser, who can read the "
                "server's files and every database with the server's own SQL (pushdown); "
                "connect as a user that may only read the tables the metrics need"]
    return []


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
