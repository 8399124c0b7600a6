"""Sources: each pull gets its own in-memory DuckDB connection that can reach one source only.

The source is attached READ_ONLY (a database) or exposed as a view named after it (Parquet/CSV
files), then file-system access is switched off and the configuration locked, so the metric's SQL
can neither write to the source nor reach the store, another source or any other file.

The package's parts: this module attaches a source and keeps the source databases an entry point
owns (:class:`SourceConnections`); ``queries`` checks a metric's SQL before it runs;
``pushdown`` checks a pushdown source's role and runs its SQL read-only; ``lakehouse`` exposes
Iceberg and Delta tables.
"""

from __future__ import annotations

import contextlib
import glob
import os
import queue
import re
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import duckdb

from lookback_gui.core.duck import load_named_extension, quote_identifier, quote_literal
from lookback_gui.core.errors import PullError, TransientSourceError
from lookback_gui.core.failures import is_login_refused, is_transient
from lookback_gui.core.project import SourceConfig
from lookback_gui.core.sources.lakehouse import Reach, expose, is_lake
from lookback_gui.core.sources.pushdown import role_excess, verify_role
from lookback_gui.core.sources.queries import (
    WINDOW_PARAMETERS,
    CheckedQuery,
    check_pushdown_query,
    check_query,
    check_reach,
    clean_duckdb_message,
    render_pushdown,
    timestamp_literal,
)
from lookback_gui.core.storage.passwords import keyring_get

__all__ = [
    "WINDOW_PARAMETERS",
    "CheckedQuery",
    "SourceConnections",
    "check_pushdown_query",
    "check_query",
    "check_reach",
    "clean_duckdb_message",
    "connect_source",
    "describe_schema",
    "keyring_available",
    "keyring_password",
    "keyring_user",
    "load_extension",
    "lookup_password",
    "release_source",
    "render_pushdown",
    "source_warnings",
    "timestamp_literal",
]

_EXTENSIONS = {"sqlite": "sqlite_scanner", "postgres": "postgres_scanner", "mysql": "mysql_scanner"}


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
    where = "the keyring holds none for it" if keyring_available() else "no keyring service is available here"
    return (
        f"source {source.name}: the server wants a password and none is set ({where}); "
        "set password_env to the name of an environment variable that holds it"
    )


def _file_list(source: SourceConfig) -> list[str]:
    pattern = source.resolved_path or ""
    if glob.has_magic(pattern):
        matches = sorted(glob.glob(pattern, recursive=True))
        files = [m for m in matches if os.path.isfile(m)]
        if not files:
            raise TransientSourceError(f"source {source.name}: no file matches {source.path} ({pattern})")
        return files
    if not os.path.exists(pattern):
        raise TransientSourceError(f"source {source.name}: file not found: {source.path} ({pattern})")
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
        raise TransientSourceError(
            f"source {source.name}: {source.path} cannot be read: {exc.strerror} ({path})"
        ) from None
    if source.type == "duckdb":
        ok = head[8:12] == b"DUCK"
        kind = "a DuckDB database"
    else:
        ok = head.startswith(b"SQLite format 3\x00") or not head
        kind = "an SQLite database"
    if not ok:
        raise PullError(f"source {source.name}: {source.path} is not {kind} ({path})")


_NEWER_FILE = re.compile(
    r"database file with version number (\d+), but we can only read "
    r"versions between (\d+) and (\d+)",
    re.IGNORECASE,
)


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
                    self._closer = threading.Thread(
                        target=self._close_given_back, name="duckdb-closer", daemon=True
                    )
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


def release_source(
    con: duckdb.DuckDBPyConnection, source: SourceConfig, connections: SourceConnections | None = None
) -> None:
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
    source: SourceConfig,
    timezone: str = "UTC",
    environ: Mapping[str, str] | None = None,
    staging_dir: str | None = None,
    connections: SourceConnections | None = None,
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
        if source.type in ("postgres", "mysql"):
            password = lookup_password(source, environ)
        con.execute(f"SET TimeZone = {quote_literal(timezone)}")
        reach = _attach(con, source, environ, as_of, password)
        _lock_down(con, reach, staging_dir)
        return con
    except PullError:
        con.close()
        raise
    except duckdb.Error as exc:
        con.close()
        raise _source_failure(source, exc, password) from None


def _attach(
    con: duckdb.DuckDBPyConnection,
    source: SourceConfig,
    environ: Mapping[str, str] | None,
    as_of: datetime | None,
    password: str | None,
) -> Reach:
    """Let ``con`` see ``source`` (a view of its files, or the database attached read-only);
    the files and folders its queries may read."""
    alias = quote_identifier(source.name)
    if is_lake(source):
        return expose(con, source, as_of=as_of, environ=environ)
    if source.type in ("parquet", "csv"):
        files = _file_list(source)
        reader = "read_parquet" if source.type == "parquet" else "read_csv"
        listed = ", ".join(quote_literal(f) for f in files)
        options = ", union_by_name = true" if len(files) > 1 else ""
        con.execute(f"CREATE VIEW {alias} AS SELECT * FROM {reader}([{listed}]{options})")
        return Reach(paths=tuple(files))
    if source.type in ("duckdb", "sqlite"):
        path = _file_list(source)[0]
        _check_database_file(source, path)
        if source.type == "sqlite":
            load_extension(con, "sqlite")
            con.execute(f"ATTACH {quote_literal(path)} AS {alias} (TYPE sqlite, READ_ONLY)")
        else:
            con.execute(f"ATTACH {quote_literal(path)} AS {alias} (READ_ONLY)")
        con.execute(f"USE {alias}")
        return Reach()
    load_extension(con, source.type)
    options = f"TYPE {source.type}, READ_ONLY"
    if password is not None:
        # the password reaches DuckDB only as a secret: DuckDB repeats the connection
        # string in its errors, never a secret, so no message can hold the password
        try:
            con.execute(
                f"CREATE SECRET lookback_source (TYPE {source.type}, PASSWORD {quote_literal(password)})"
            )
        except duckdb.Error:  # its message could quote the statement: not repeated
            raise PullError(
                f"source {source.name}: the password could not be handed "
                "to DuckDB (does it hold a control character?)"
            ) from None
        options += ", SECRET lookback_source"
    con.execute(f"ATTACH {quote_literal(source.dsn or '')} AS {alias} ({options})")
    con.execute(f"USE {alias}")
    if source.pushdown:  # SQL the server runs is bounded by the role: verified first
        verify_role(con, source)
    return Reach()


def _lock_down(con: duckdb.DuckDBPyConnection, reach: Reach, staging_dir: str | None) -> None:
    """Switch file access off but for ``reach`` and the pull's staging folder, and lock the
    configuration so that the metric's SQL cannot switch it on again."""
    settings = []
    if reach.paths:
        settings.append(f"SET allowed_paths = [{', '.join(quote_literal(f) for f in reach.paths)}]")
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


def _source_failure(source: SourceConfig, exc: duckdb.Error, password: str | None) -> PullError:
    """The error a failure of DuckDB on ``source`` stands for: transient or not, one line."""
    message = clean_duckdb_message(str(exc))
    newer = _NEWER_FILE.search(str(exc))
    if newer and source.type == "duckdb":  # permanent: no retry makes this DuckDB read it
        return PullError(
            f"source {source.name}: {source.path} was written by a newer DuckDB (storage "
            f"version {newer.group(1)}; this DuckDB {duckdb.__version__} reads "
            f"{newer.group(2)} to {newer.group(3)}); export it from that DuckDB "
            f"(EXPORT DATABASE) or keep the source at a format this one reads"
        )
    if source.type in ("postgres", "mysql") and password is None and is_login_refused(exc):
        return PullError(_no_password_message(source))
    if is_transient(exc):
        return TransientSourceError(f"source {source.name}: {message}")
    return PullError(f"source {source.name}: {message}")


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
        return [
            f"source {source.name}: its user is a PostgreSQL superuser, who can read the "
            "server's files and every database with the server's own SQL (pushdown); "
            "connect as a user that may only read the tables the metrics need"
        ]
    return []


def describe_schema(source: SourceConfig, environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
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
