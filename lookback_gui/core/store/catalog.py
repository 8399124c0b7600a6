"""The team store: a DuckLake whose catalog is a PostgreSQL database and whose data files lie in a
folder every member reaches.

DuckLake gives every process its own consistent snapshot to read, on any machine; what it does
not give is an order among writers (two pulls that both see a bucket as new would both add it)
nor sequences for run ids. Both come from the catalog database itself, through a session of our
own (:class:`Catalog`):

- run ids and commit numbers are PostgreSQL sequences, so no two processes share one;
- a write transaction holds a PostgreSQL advisory lock from its first read to its commit, so
  writers take turns as they do on a local store (a writer waits, names the holder after a
  moment, and gives up after the same wait as on a local store); a process that dies lets go
  with its session;
- the scheduling lease is a row in ``lookback_scheduler_lease`` that its holder renews every few
  seconds; another scheduler takes it over when the holder lets go, dies, or stops renewing it
  for :data:`LEASE_S` seconds (:class:`CatalogLease`);
- the first creation of the catalog's tables and sequences (DuckLake's own and ours) holds
  another advisory lock, so that members who open a new store at the same moment take turns
  instead of colliding in PostgreSQL's ``CREATE ... IF NOT EXISTS``.

What goes wrong underneath is said in one line that names the store (:func:`lake_failure`): a
catalog session the server dropped and a commit that raced another one are
:class:`~lookback_gui.core.errors.TransientStoreError` (a pull tries again), a role without the
rights the store needs is told which rights (:func:`missing_rights`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import duckdb

from lookback_gui.core.duck import load_named_extension, quote_literal
from lookback_gui.core.errors import StoreBusyError, StoreError, TransientStoreError
from lookback_gui.core.failures import CATALOG_LOST_MARKERS, catalog_lost, is_conflict, is_transient
from lookback_gui.core.storage.objectstore import create_secret
from lookback_gui.core.storage.passwords import keyring_get
from lookback_gui.core.storage.urls import is_url
from lookback_gui.core.store.lock import POLL_S, WAIT_S, Waiting, wait_until

if TYPE_CHECKING:
    import psycopg

    from lookback_gui.core.storage.store_config import StoreConfig

LAKE = "lake"  # the name the team store is attached under in each DuckDB connection
DATA_SECRET = "lookback_store_data"  # the DuckDB secret of a data_path in object storage
LEASE_S = 20.0  # a scheduling lease not renewed for this long is free to take over
_WRITE_LOCK = 0x100C_BAC0  # the advisory lock of the store's writers (one per catalog database)
_CREATE_LOCK = 0x100C_BAC1  # held while a process creates the catalog's tables the first time
_SEQUENCES = ("lookback_run_ids", "lookback_commit_seqs")
# what DuckDB and PostgreSQL say when the catalog's session went away under a statement
RIGHTS = (
    "CREATE on the schema public of the catalog database to create the store the first "
    "time (or a store created already by a role that has it), and SELECT, INSERT, "
    "UPDATE and DELETE on its tables and USAGE and UPDATE on its sequences to use it"
)


def missing_rights(config: StoreConfig, role: str | None, reason: str) -> StoreError:
    """The error of a catalog role that lacks a right the store needs: which rights it needs."""
    who = f"the catalog role {role}" if role else "the catalog role"
    first = reason.strip().splitlines()[0] if reason.strip() else "permission denied"
    return StoreError(
        f"{config.describe()}: {who} lacks a right the store needs ({first}); it needs {RIGHTS}"
    )


def _dsn_user(config: StoreConfig) -> str | None:
    import psycopg

    try:
        user = psycopg.conninfo.conninfo_to_dict(config.catalog or "").get("user")
    except psycopg.Error:
        return None
    return str(user) if user else None


def lake_failure(config: StoreConfig, exc: BaseException) -> StoreError | None:
    """The one-line error that a failure of DuckDB on the team store stands for, or None for a
    failure that is none of the store's (a mistake in a query: a bug, told as such)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, duckdb.Error) and "permission denied for" in text.lower():
        reason = text[text.lower().index("permission denied for") :]
        return missing_rights(config, _dsn_user(config), reason.split(":")[0].split('"')[0])
    if isinstance(exc, duckdb.Error) and catalog_lost(exc):
        lowered = text.lower()
        said = next((m for m in CATALOG_LOST_MARKERS if m in lowered), "the session failed")
        return TransientStoreError(f"{config.describe()}: the catalog database went away ({said})")
    if isinstance(exc, duckdb.InternalException):  # DuckDB gives the database up after it
        return TransientStoreError(
            f"{config.describe()}: DuckDB failed on the store and opens "
            f"it again ({text.split(' Stack Trace')[0]})"
        )
    if is_conflict(exc):
        return TransientStoreError(
            f"{config.describe()}: a write conflicted with another process's commit; nothing of it was kept"
        )
    return None


def keyring_user(config: StoreConfig) -> str:
    """The keyring user name under which the catalog's password is kept."""
    return f"ducklake:{config.catalog}"


def store_password(config: StoreConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The catalog's password: from ``password_env``, else the OS keyring, else None."""
    env = os.environ if environ is None else environ
    if config.password_env:
        if config.password_env not in env:
            raise StoreError(
                f"{config.describe()}: the environment variable "
                f"{config.password_env} (password_env) is not set"
            )
        return env[config.password_env]
    return keyring_get(keyring_user(config))


def _who() -> str:
    return f"lookback PID {os.getpid()} on {socket.gethostname()}"


def _connect_catalog(config: StoreConfig, password: str | None, purpose: str) -> psycopg.Connection[Any]:
    import psycopg

    try:
        return psycopg.connect(
            config.catalog or "",
            password=password,
            autocommit=True,
            connect_timeout=10,
            application_name=f"{_who()} ({purpose})"[:63],
        )
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if password:
            reason = reason.replace(password, "***")
        if "password" in reason.lower() and password is None:
            reason += (
                "; set password_env in [store] to the name of an environment variable "
                "that holds it, or keep it in the keyring"
            )
        # a server that is down or restarting may be back soon; a refusal stays a refusal
        lowered = reason.lower()
        kind = (
            TransientStoreError
            if is_transient(exc) and "does not exist" not in lowered and "permission denied" not in lowered
            else StoreError
        )
        raise kind(f"{config.describe()}: cannot reach the catalog database: {reason}") from None


def _holders(cur: psycopg.Cursor[Any], key: int) -> str:
    """Who holds advisory lock ``key``, as the sessions name themselves."""
    with contextlib.suppress(Exception):
        row = cur.execute(
            "SELECT a.application_name, a.client_addr::text FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            "AND l.granted AND l.objid = %s AND l.pid <> pg_backend_pid() LIMIT 1",
            [key & 0xFFFFFFFF],
        ).fetchone()
        if row:
            return str(row[0] or f"a session from {row[1]}").split(" (")[0]
    return "another process"


class Catalog:
    """This process's session with the team store's catalog database.

    Thread-safe: one session, used under its own lock.
    """

    def __init__(
        self,
        config: StoreConfig,
        *,
        wait_s: float = WAIT_S,
        waiting: Waiting | None = None,
        environ: Mapping[str, str] | None = None,
    ):
        self.config = config
        self.wait_s = wait_s
        self.waiting = waiting
        self.password = store_password(config, environ)
        self._lock = threading.RLock()  # one statement at a time on the session
        self._writer = threading.RLock()  # one writer at a time in this process
        self._con = _connect_catalog(config, self.password, "store")
        self._writing = 0

    def _query(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """One statement on the session; its first row. A session the server dropped is made
        again once, unless it held the write lock (which went with it): then the write fails
        and is rolled back."""
        import psycopg

        with self._lock:
            for attempt in (1, 2):
                try:
                    cur = self._con.execute(sql, params)
                    return cur.fetchone() if cur.description else None
                except psycopg.errors.InsufficientPrivilege as exc:
                    raise missing_rights(self.config, self.role, str(exc)) from None
                except psycopg.OperationalError as exc:
                    reason = " ".join(str(exc).split()) or type(exc).__name__
                    if attempt == 2 or self._writing:
                        raise TransientStoreError(
                            f"{self.config.describe()}: the catalog database went away: {reason}"
                        ) from None
                    with contextlib.suppress(Exception):
                        self._con.close()
                    self._con = _connect_catalog(self.config, self.password, "store")
        return None  # not reached

    @property
    def role(self) -> str | None:
        """The role the catalog session logged in as."""
        with self._lock, contextlib.suppress(Exception):
            return str(self._con.info.user)
        return _dsn_user(self.config)

    def prepare(self) -> None:
        """Create what the store needs in the catalog database besides DuckLake's tables (inside
        :meth:`creating`)."""
        for name in _SEQUENCES:
            row = self._query("SELECT to_regclass(%s) IS NULL", [name])
            if row and row[0]:
                self._query(f"CREATE SEQUENCE IF NOT EXISTS {name}")

    def created(self) -> bool:
        """Whether the catalog holds the store's tables and sequences already."""
        row = self._query(
            "SELECT to_regclass('ducklake_metadata') IS NOT NULL AND "
            "to_regclass('ducklake_snapshot') IS NOT NULL AND "
            + " AND ".join(f"to_regclass('{n}') IS NOT NULL" for n in _SEQUENCES)
        )
        return bool(row and row[0])

    @contextlib.contextmanager
    def creating(self) -> Iterator[None]:
        """Hold the creation lock for the block when the catalog is not created yet, so that
        processes opening a new store together create its tables one after the other (the
        later ones then find them made)."""
        if self.created():
            yield
            return
        self._take(_CREATE_LOCK, "created")
        try:
            yield
        finally:
            with self._lock, contextlib.suppress(Exception):
                self._con.execute("SELECT pg_advisory_unlock(%s)", [_CREATE_LOCK])

    def next_id(self, sequence: str) -> int:
        row = self._query("SELECT nextval(%s)", [sequence])
        assert row is not None
        return int(row[0])

    def move_past(self, sequence: str, used: int) -> None:
        """Make ``sequence`` hand out only numbers above ``used`` (after a copy)."""
        self._query(
            f"SELECT setval(%s, greatest(%s, (SELECT last_value FROM {sequence})), true)",
            [sequence, max(used, 1)],
        )

    def still_writing(self) -> None:
        """Raise StoreError unless the session that holds the write lock is still there."""
        self._query("SELECT 1")

    def session_of(self, pid: int) -> bool:
        """Whether a Lookback process with this PID (on any machine) has a catalog session."""
        row = self._query(
            "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE %s LIMIT 1",
            [f"lookback PID {int(pid)} on %"],
        )
        return row is not None

    def snapshot(self) -> int | None:
        """The newest DuckLake snapshot: it changes whenever any process commits."""
        import psycopg

        try:
            row = self._query("SELECT max(snapshot_id) FROM ducklake_snapshot")
        except psycopg.Error:  # no DuckLake tables yet
            with self._lock, contextlib.suppress(Exception):
                self._con.rollback()
            return None
        return None if row is None or row[0] is None else int(row[0])

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the store's write lock for the block (nested blocks share one hold).

        The lock is the catalog session's advisory lock; the session itself stays free for
        other threads' short questions (ids, snapshots) meanwhile.
        """
        with self._writer:
            if self._writing == 0:
                self._take(_WRITE_LOCK, "written")
            self._writing += 1
            try:
                yield
            finally:
                self._writing -= 1
                if self._writing == 0:
                    with self._lock, contextlib.suppress(Exception):
                        self._con.execute("SELECT pg_advisory_unlock(%s)", [_WRITE_LOCK])

    def _take(self, key: int, doing: str) -> None:
        """Take advisory lock ``key`` (the store is being ``doing`` by its holder meanwhile)."""

        def take() -> bool:
            row = self._query("SELECT pg_try_advisory_lock(%s)", [key])
            return bool(row and row[0])

        wait_until(
            take,
            wait_s=self.wait_s,
            poll_s=max(POLL_S, 0.05),
            waiting=self.waiting,
            busy=lambda: StoreBusyError(
                f"{self.config.describe()} is being {doing} by {self._holder(key)} and was not "
                f"free after {self.wait_s:.0f} s; try again when it has finished",
                None,
            ),
            saying=lambda: f"waiting for {self.config.describe()}: being {doing} by {self._holder(key)}",
        )

    def _holder(self, key: int) -> str:
        with self._lock:
            return _holders(self._con.cursor(), key)

    def close(self) -> None:
        with self._lock, contextlib.suppress(Exception):
            self._con.close()


def attach(
    con: duckdb.DuckDBPyConnection, config: StoreConfig, password: str | None, *, read_only: bool = False
) -> None:
    """Attach the team store to ``con`` as ``lake`` and make it the default database.

    The password reaches DuckDB only as a secret, which DuckDB never repeats in a message; so
    do the credentials of a ``data_path`` in object storage (a temporary secret of this
    connection, scoped to the data path: never in the catalog, a message or the project file).
    """
    try:
        for name in ("postgres_scanner", "ducklake"):
            load_named_extension(con, name)
    except (duckdb.Error, ImportError) as exc:
        raise StoreError(
            f"{config.describe()}: DuckDB's ducklake extension cannot be loaded "
            f"({str(exc).splitlines()[0]}); install the pip package "
            "duckdb-extension-ducklake"
        ) from None
    data_path = config.data_path or ""
    if is_url(data_path):  # its credentials reach DuckDB as a secret scoped to the data files
        data_path = data_path.rstrip("/") + "/"
        create_secret(con, DATA_SECRET, data_path, config.storage, config.describe(), error=StoreError)
    options = [f"DATA_PATH {quote_literal(data_path)}"]
    if read_only:
        options.append("READ_ONLY")
    if password is not None:
        try:
            con.execute(
                f"CREATE OR REPLACE SECRET lookback_store (TYPE postgres, PASSWORD {quote_literal(password)})"
            )
        except duckdb.Error:
            raise StoreError(
                f"{config.describe()}: the password could not be handed to "
                "DuckDB (does it hold a control character?)"
            ) from None
        options.append("META_SECRET 'lookback_store'")
    try:
        con.execute(
            f"ATTACH {quote_literal('ducklake:postgres:' + (config.catalog or ''))} "
            f"AS {LAKE} ({', '.join(options)})"
        )
        con.execute(f"USE {LAKE}")
    except duckdb.Error as exc:
        message = " ".join(str(exc).split())
        if password:
            message = message.replace(password, "***")
        said = lake_failure(config, exc)
        if said is not None:
            raise said from None
        raise StoreError(f"{config.describe()} cannot be opened: {message}") from None


class CatalogLease:
    """The right to run a project's scheduler on a team store: a row in the catalog database.

    The holder renews the row four times per lease from a thread of its own. A row not renewed
    for :data:`LEASE_S` seconds (or ``LOOKBACK_LEASE_S``: its holder died, hangs, or lost the
    network) is free to take over; so is one whose holder gave it back.
    """

    def __init__(
        self,
        config: StoreConfig,
        *,
        name: str = "scheduler",
        lost: Callable[[str], None] | None = None,
        environ: Mapping[str, str] | None = None,
    ):
        self.config = config
        self.name = name
        self.lost = lost
        self.holder = f"{_who()} #{id(self):x}"
        self._password = store_password(config, environ)
        self._con: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        try:
            self.lease_s = float(os.environ.get("LOOKBACK_LEASE_S", LEASE_S))
        except ValueError:
            raise StoreError("LOOKBACK_LEASE_S must be a number of seconds") from None

    def _session(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._con is None or self._con.closed:
            con = _connect_catalog(self.config, self._password, "scheduler lease")
            try:
                missing = con.execute("SELECT to_regclass('lookback_scheduler_lease') IS NULL").fetchone()
                if missing and missing[0]:  # schedulers starting together take turns
                    con.execute("SELECT pg_advisory_lock(%s)", [_CREATE_LOCK])
                    try:
                        con.execute(
                            "CREATE TABLE IF NOT EXISTS lookback_scheduler_lease (name "
                            "text PRIMARY KEY, holder text NOT NULL, renewed_at "
                            "timestamptz NOT NULL)"
                        )
                    finally:
                        con.execute("SELECT pg_advisory_unlock(%s)", [_CREATE_LOCK])
            except psycopg.errors.InsufficientPrivilege as exc:
                con.close()
                raise missing_rights(self.config, str(con.info.user), str(exc)) from None
            except BaseException:
                con.close()
                raise
            self._con = con
        return self._con

    def take(self) -> None:
        """Take the lease, or raise StoreBusyError naming the process that has it."""
        con = self._session()
        row = con.execute(
            "INSERT INTO lookback_scheduler_lease AS l VALUES (%s, %s, clock_timestamp()) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "renewed_at = excluded.renewed_at WHERE l.holder = excluded.holder "
            "OR l.renewed_at < clock_timestamp() - make_interval(secs => %s) "
            "RETURNING holder",
            [self.name, self.holder, self.lease_s],
        ).fetchone()
        if row is None:
            other = con.execute(
                "SELECT holder, clock_timestamp() - renewed_at FROM lookback_scheduler_lease WHERE name = %s",
                [self.name],
            ).fetchone()
            who = str(other[0]).rsplit(" #", 1)[0] if other else "another process"
            raise StoreBusyError(
                f"the scheduler of {self.config.describe()} already runs in another process ({who})", None
            )
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name="lease-renew", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            try:
                row = (
                    self._session()
                    .execute(
                        "UPDATE lookback_scheduler_lease SET renewed_at = clock_timestamp() "
                        "WHERE name = %s AND holder = %s RETURNING 1",
                        [self.name, self.holder],
                    )
                    .fetchone()
                )
            except Exception:  # the catalog is unreachable: try again at the next turn
                with contextlib.suppress(Exception):
                    if self._con is not None:
                        self._con.close()
                continue
            if row is None:  # another process took it over while this one was away
                if self.lost is not None:
                    self.lost(
                        f"the scheduling lease of {self.config.describe()} was taken over by another process"
                    )
                return

    def held(self) -> bool:
        """Whether this process holds the lease now (asks the catalog)."""
        row = (
            self._session()
            .execute(
                "SELECT 1 FROM lookback_scheduler_lease WHERE name = %s AND holder = %s",
                [self.name, self.holder],
            )
            .fetchone()
        )
        return row is not None

    def give_back(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=10)
            self._renewer = None
        if self._con is not None:
            with contextlib.suppress(Exception):
                self._con.execute(
                    "DELETE FROM lookback_scheduler_lease WHERE name = %s AND holder = %s",
                    [self.name, self.holder],
                )
                self._con.close()
            self._con = None
