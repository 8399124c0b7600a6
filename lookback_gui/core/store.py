"""The store: one DuckDB file with every run, its log, and every version of every value.

The store is bitemporal. Every version has its bucket (the period the value is about) and its
known time (when the data it reflects was known: the pull's as-of when its SQL replays the
source with ``$as_of``, else the moment its query ran). A value's versions are ordered by known
time, then by run id, and the current value is the one known last. ``current`` keeps that latest
version of each (metric, series, measure, bucket) so that a pull as of now compares its result
with it in one set-based join; a pull known at an earlier time (a backfill or replay of the past)
compares with the values as known at its own known time and slots its versions in there.
``versions`` answers "as known at T" and "as known after run N".

A bucket is *partial* until a successful pull saw it with a known time at or after the bucket's
end; every run records the end of the span it settled (``settled_end``), and the same spans are
the scheduler's coverage.

Integer and DECIMAL measures are kept exactly (``exact``, their canonical decimal text) beside
the DOUBLE ``value`` that charts read; they are compared by the exact text.

All writes go through one lock (one writer) and each is one transaction, so a write conflict can
never silently drop a run. A run row is committed as ``running`` before its query starts; when the
store is opened again after the process died, such a run is marked ``interrupted``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import psutil

from lookback_gui.core.errors import StoreBusyError, StoreError, UsageError
from lookback_gui.core.storelock import WAIT_S, StoreLock, Waiting

SCHEMA_VERSION = 2
RUN_STATUSES = ("running", "succeeded", "failed", "cancelled", "interrupted")
DEFAULT_TOLERANCE = 1e-9


_SCHEMA_V1 = """
CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE SEQUENCE run_ids START 1;
CREATE TABLE runs (
    id BIGINT PRIMARY KEY,
    metric VARCHAR NOT NULL,
    trigger VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    timezone VARCHAR,
    grain VARCHAR,
    as_of TIMESTAMP,
    window_start TIMESTAMP,
    window_end TIMESTAMP,
    partial_start TIMESTAMP,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    attempts INTEGER DEFAULT 0,
    rows BIGINT,
    new BIGINT,
    revised BIGINT,
    removed BIGINT,
    unchanged BIGINT,
    error VARCHAR,
    sql VARCHAR,
    params VARCHAR,
    measures VARCHAR,
    schema_change VARCHAR,
    warnings VARCHAR,
    checks VARCHAR,
    duration_s DOUBLE,
    pid INTEGER,
    pid_started DOUBLE
);
CREATE TABLE run_log (
    run_id BIGINT NOT NULL,
    seq INTEGER NOT NULL,
    logged_at TIMESTAMP NOT NULL,
    level VARCHAR NOT NULL,
    message VARCHAR NOT NULL
);
CREATE TABLE versions (
    metric VARCHAR NOT NULL,
    dims VARCHAR NOT NULL,
    measure VARCHAR NOT NULL,
    bucket TIMESTAMP NOT NULL,
    run_id BIGINT NOT NULL,
    value DOUBLE,
    removed BOOLEAN NOT NULL,
    partial BOOLEAN NOT NULL
);
CREATE TABLE probes (
    metric VARCHAR NOT NULL,
    bucket TIMESTAMP NOT NULL,
    run_id BIGINT NOT NULL,
    fingerprint VARCHAR NOT NULL
);
CREATE TABLE alerts (
    metric VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    state VARCHAR NOT NULL,
    since TIMESTAMP NOT NULL,
    message VARCHAR NOT NULL
);
CREATE TABLE current (
    metric VARCHAR NOT NULL,
    dims VARCHAR NOT NULL,
    measure VARCHAR NOT NULL,
    bucket TIMESTAMP NOT NULL,
    value DOUBLE,
    removed BOOLEAN NOT NULL,
    partial BOOLEAN NOT NULL,
    run_id BIGINT NOT NULL,
    first_value DOUBLE,
    first_run BIGINT NOT NULL,
    versions INTEGER NOT NULL
);
"""


def uses_as_of(sql: str | None) -> bool:
    """Whether a metric's SQL replays its source with ``$as_of``."""
    if not sql:
        return False
    try:
        statements = duckdb.extract_statements(sql)
        return any("as_of" in st.named_parameters for st in statements)
    except duckdb.Error:  # a pushdown query in the server's dialect
        bare = re.sub(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", " ", sql, flags=re.DOTALL)
        return re.search(r"\$as_of\b", bare) is not None


def _migrate_1_to_2(cur: duckdb.DuckDBPyConnection) -> None:
    """Knowledge time and exact values.

    A succeeded run's versions are known at its as-of when its SQL uses ``$as_of`` and at the
    moment it started otherwise; its settled span ends at the start of the bucket that holds
    that known time (or at its window's end). ``current`` is rebuilt in known-time order.
    """
    cur.execute("""
        ALTER TABLE runs ADD COLUMN known_at TIMESTAMP;
        ALTER TABLE runs ADD COLUMN settled_end TIMESTAMP;
        ALTER TABLE runs ADD COLUMN commit_seq BIGINT;
    """)
    texts = [r[0] for r in cur.execute("SELECT DISTINCT sql FROM runs").fetchall()]
    replaying = [t for t in texts if uses_as_of(t)]
    cur.execute(
        """
        UPDATE runs SET known_at = CASE WHEN list_contains($replaying, sql) THEN as_of
                                        ELSE started_at END
        WHERE status = 'succeeded' OR (status <> 'running' AND list_contains($replaying, sql))
        """, {"replaying": replaying})
    # the runs committed in the order of their ids; a run settled the buckets of its window
    # that ended by its known time (date_trunc on the metric's wall-clock time is the bucket)
    cur.execute("""
        UPDATE runs SET commit_seq = id,
            settled_end = least(window_end, greatest(window_start, date_trunc(grain, known_at)))
        WHERE status = 'succeeded'
    """)
    row = cur.execute("SELECT coalesce(max(id), 0) + 1 FROM runs").fetchone()
    cur.execute(f"CREATE SEQUENCE commit_seqs START {int(row[0]) if row else 1}")
    cur.execute(_VERSIONS_TABLE.replace("TABLE versions", "TABLE versions_2"))
    cur.execute("""
        INSERT INTO versions_2
        SELECT v.metric, v.dims, v.measure, v.bucket, v.run_id, v.value, v.removed, v.partial,
               r.known_at, NULL
        FROM versions v JOIN runs r ON r.id = v.run_id
    """)
    cur.execute("DROP TABLE versions")
    cur.execute("ALTER TABLE versions_2 RENAME TO versions")
    cur.execute("DROP TABLE current")
    cur.execute(_CURRENT_TABLE)
    _rebuild_current(cur)


_VERSIONS_TABLE = """
CREATE TABLE versions (
    metric VARCHAR NOT NULL,
    dims VARCHAR NOT NULL,
    measure VARCHAR NOT NULL,
    bucket TIMESTAMP NOT NULL,
    run_id BIGINT NOT NULL,
    value DOUBLE,
    removed BOOLEAN NOT NULL,
    partial BOOLEAN NOT NULL,
    known_at TIMESTAMP NOT NULL,
    exact VARCHAR
)
"""

_CURRENT_TABLE = """
CREATE TABLE current (
    metric VARCHAR NOT NULL,
    dims VARCHAR NOT NULL,
    measure VARCHAR NOT NULL,
    bucket TIMESTAMP NOT NULL,
    value DOUBLE,
    removed BOOLEAN NOT NULL,
    partial BOOLEAN NOT NULL,
    run_id BIGINT NOT NULL,
    first_value DOUBLE,
    first_run BIGINT NOT NULL,
    versions INTEGER NOT NULL,
    known_at TIMESTAMP NOT NULL,
    exact VARCHAR,
    first_exact VARCHAR,
    first_known_at TIMESTAMP NOT NULL
)
"""


def _rebuild_current(cur: duckdb.DuckDBPyConnection) -> None:
    """``current`` from ``versions`` and the runs' settled spans, in known-time order."""
    cur.execute(f"""
        INSERT INTO current
        WITH v AS (
            SELECT metric, dims, measure, bucket,
                   arg_max({{'v': value, 'x': exact, 'r': removed, 'run': run_id, 'k': known_at}},
                           {_ORDER}) AS last,
                   arg_min({{'v': value, 'x': exact, 'run': run_id, 'k': known_at}},
                           {_ORDER}) AS first,
                   count(*) AS n
            FROM versions GROUP BY ALL
        )
        SELECT metric, dims, measure, bucket, CASE WHEN last.r THEN NULL ELSE last.v END,
               last.r, NOT EXISTS (SELECT 1 FROM runs s WHERE s.metric = v.metric
                                   AND s.status = 'succeeded' AND s.window_start <= v.bucket
                                   AND v.bucket < s.settled_end),
               last.run, first.v, first.run, n, last.k,
               CASE WHEN last.r THEN NULL ELSE last.x END, first.x, first.k
        FROM v
    """)


# the order of a value's versions: known time, then run id
_ORDER = "{'k': known_at, 'r': run_id}"

# Each entry upgrades the schema from its index + 1 to the next version, in the same
# transaction as the version number it sets.
_MIGRATIONS: list[Callable[[duckdb.DuckDBPyConnection], None]] = [_migrate_1_to_2]


@dataclass(frozen=True)
class RunRecord:
    """One run as the store holds it; the first keys are exactly those of ``runs --json``."""

    id: int
    metric: str
    trigger: str
    status: str
    as_of: datetime | None
    window_start: datetime | None
    window_end: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    rows: int | None
    new: int | None
    revised: int | None
    removed: int | None
    unchanged: int | None
    error: str | None
    timezone: str | None = None
    grain: str | None = None
    partial_start: datetime | None = None
    sql: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    measures: tuple[str, ...] = ()
    schema_change: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    checks: tuple[Mapping[str, Any], ...] = ()
    duration_s: float | None = None
    known_at: datetime | None = None
    settled_end: datetime | None = None

    JSON_KEYS = (
        "id", "metric", "trigger", "status", "as_of", "window_start", "window_end", "known_at",
        "started_at", "finished_at", "attempts", "rows", "new", "revised", "removed",
        "unchanged", "error",
    )

    def to_json(self) -> dict[str, Any]:
        return {key: _json_value(getattr(self, key)) for key in self.JSON_KEYS}


@dataclass(frozen=True)
class CatchUpFacts:
    """What catch-up planning needs of one metric's runs: the earliest window start and the
    latest moment seen of its successful pulls, and the bucket ranges they covered (merged,
    oldest first)."""

    first: datetime | None
    last_seen: datetime | None
    coverage: list[tuple[datetime, datetime]]


@dataclass(frozen=True)
class LogLine:
    run_id: int
    seq: int
    at: datetime
    level: str
    message: str


Number = float | int | Decimal


@dataclass(frozen=True)
class HistoryRow:
    """One value as known at some moment; integer and DECIMAL measures come exact (int,
    Decimal), others as float."""

    bucket: datetime
    dims: Mapping[str, Any]
    measure: str
    value: Number | None
    first_value: Number | None
    versions: int
    revised: bool
    partial: bool
    last_run: int = 0
    known_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": _json_value(self.bucket),
            "dims": dict(self.dims),
            "measure": self.measure,
            "value": _json_number(self.value),
            "first_value": _json_number(self.first_value),
            "versions": self.versions,
            "revised": self.revised,
            "partial": self.partial,
        }


@dataclass(frozen=True)
class RevisionRow:
    """A version whose value differs from the one before it in known-time order.

    Attributes:
        known_at: the revising version's known time.
        prev_known_at: the known time of the version before it.
    """

    run: int
    bucket: datetime
    dims: Mapping[str, Any]
    measure: str
    old_value: Number | None
    new_value: Number | None
    known_at: datetime | None = None
    prev_known_at: datetime | None = None

    @property
    def delta(self) -> Number | None:
        """new - old, exact where both are; None for a removal or a reappearance."""
        old, new = self.old_value, self.new_value
        if old is None or new is None:
            return None
        if isinstance(old, Decimal) or isinstance(new, Decimal):
            if isinstance(old, float) or isinstance(new, float):
                return float(new) - float(old)  # the measure's type changed
            return Decimal(new) - Decimal(old)
        return new - old

    @property
    def change_pct(self) -> float | None:
        """The change in percent of the old value; None where there is none to compare."""
        delta = self.delta
        if delta is None or self.old_value is None or not self.old_value:
            return None
        return float(delta) / abs(float(self.old_value)) * 100

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "known_at": _json_value(self.known_at),
            "bucket": _json_value(self.bucket),
            "dims": dict(self.dims),
            "measure": self.measure,
            "old_value": _json_number(self.old_value),
            "new_value": _json_number(self.new_value),
        }


@dataclass(frozen=True)
class AlertState:
    """One rule's state, with exactly the keys of ``alerts --json``."""

    metric: str
    rule: str
    kind: str
    state: str
    since: datetime
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "rule": self.rule, "kind": self.kind, "state": self.state,
                "since": self.since.isoformat(), "message": self.message}


@dataclass(frozen=True)
class DiffSummary:
    """What a pull's result would change, computed before anything is written.

    Attributes:
        counts: new / revised / removed / unchanged.
        max_revision_pct: the largest |new - old| / |old| in percent among revised values
            (a bucket that was still partial is expected to grow and does not count).
    """

    counts: Mapping[str, int]
    max_revision_pct: float | None


def _json_number(value: Number | None) -> Number | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _number(value: float | None, exact: str | None) -> Number | None:
    """A stored value: exact (int or Decimal) when its measure is, else the float."""
    if exact is None:
        return value
    return Decimal(exact) if "." in exact else int(exact)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _process_started(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


_LOCK_PID = re.compile(r"PID (\d+)")


def _writable(path: Path) -> bool:
    """Whether the store at ``path`` can be written (the file, or its folder for a new one)."""
    if path.exists():
        return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK)


class Store:
    """The local store of one project, shared with the project's other processes.

    The store file is open only while this process holds it (see :mod:`storelock`): it is
    opened on first use, and closed and let go between two uses when another process waits for
    it, so several processes take turns. What this process keeps in memory about the store is
    forgotten whenever it opens the file again.

    Attributes:
        path: the DuckDB file.
        read_only: opened for reading only (asked for, or the file cannot be written).
        interrupted_at_open: runs found ``running`` whose process had died, now marked.
    """

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False,
                 waiting: Waiting | None = None, wait_s: float = WAIT_S):
        self.path = Path(path)
        self._write_lock = threading.RLock()
        self._last_success: dict[str, RunRecord | None] = {}
        self._cache_lock = threading.Lock()
        self._series: dict[tuple[str, int | None], list[tuple[dict[str, Any], str, float]]] = {}
        self._commits: dict[str, int] = {}  # successful runs per metric since opening
        self._pid = os.getpid()
        self._pid_started = _process_started(self._pid)
        self.read_only = read_only or not _writable(self.path)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._state = threading.Condition()
        self._users = 0
        self._inside = threading.local()
        self._let_go = False  # another process waits: close at the next idle moment
        self._closed = False
        if not self.read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"store {self.path}: cannot create its folder: "
                                 f"{exc.strerror}") from None
        self._lock: StoreLock | None = None
        try:
            self._lock = StoreLock(self.path, wait_s=wait_s, waiting=waiting)
        except StoreError:
            if not self.read_only:
                raise
        try:
            self._migrate()
            self.interrupted_at_open = [] if self.read_only else self._mark_interrupted()
        except BaseException:
            self.close()
            raise
        self._watcher = threading.Thread(target=self._watch, name="store-watch", daemon=True)
        self._watcher.start()

    # -- opening and taking turns -----------------------------------------------------------

    def _damaged(self, message: str) -> StoreError:
        return StoreError(
            f"store {self.path} is damaged ({message.splitlines()[0].strip()}); restore it from "
            "a backup, or move it aside to start an empty store (its runs and versions stay in "
            "the moved file)")

    def _open(self) -> duckdb.DuckDBPyConnection:
        try:
            return duckdb.connect(str(self.path), read_only=self.read_only)
        except duckdb.Error as exc:
            message = str(exc)
            lowered = message.lower()
            if "corrupt" in lowered or "checksum" in lowered:
                raise self._damaged(message) from None
            if "could not set lock" in lowered or "conflicting lock" in lowered:
                match = _LOCK_PID.search(message)
                pid = int(match.group(1)) if match else None
                holder = f"PID {pid}" if pid else "another process"
                if pid:
                    with contextlib.suppress(psutil.Error, OSError):
                        holder += f", {psutil.Process(pid).name()}"
                raise StoreBusyError(
                    f"store {self.path} is in use by another process ({holder}); "
                    "close it there or wait until it finishes", pid
                ) from None
            if "not a valid duckdb" in lowered or "unable to open" in lowered:
                raise StoreError(f"store {self.path} is not a DuckDB database file (damaged, or "
                                 "another kind of file); restore it from a backup, or move it "
                                 "aside to start an empty store") from None
            raise StoreError(f"store {self.path} cannot be opened: {message}") from None

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The open store for one use by the calling thread (uses may nest)."""
        depth = getattr(self._inside, "depth", 0)
        with self._state:
            if self._closed:
                raise StoreError(f"store {self.path} is closed")
            while self._let_go and depth == 0:  # let the waiting process have its turn
                self._state.wait(0.05)
                if self._users == 0:
                    self._hand_over()
            if self._con is None:
                if self._lock is not None:
                    self._lock.acquire(exclusive=not self.read_only)
                try:
                    self._con = self._open()
                except BaseException:
                    if self._lock is not None:
                        self._lock.release()
                    raise
                self._forget()
            self._users += 1
            con = self._con
        self._inside.depth = depth + 1
        try:
            yield con
        finally:
            self._inside.depth = depth
            with self._state:
                self._users -= 1
                if self._users == 0 and self._let_go:
                    self._hand_over()
                self._state.notify_all()

    def _hand_over(self) -> None:
        """Close the store and let go of it (with ``_state`` held, no use running)."""
        if self._con is not None:
            with contextlib.suppress(duckdb.Error):
                self._con.close()
            self._con = None
        if self._lock is not None:
            self._lock.release()
        self._let_go = False
        self._state.notify_all()

    def _watch(self) -> None:
        """Notice another process waiting for the store, and make way for it."""
        while True:
            time.sleep(0.1)
            with self._state:
                if self._closed:
                    return
                if self._con is None or self._lock is None or self._let_go:
                    continue
            if not self._lock.others_waiting():
                continue
            with self._state:
                if self._con is None or self._closed:
                    continue
                if self._users == 0:
                    self._hand_over()
                else:
                    self._let_go = True

    def _forget(self) -> None:
        """Drop what is kept in memory: another process may have written since."""
        with self._cache_lock:
            self._last_success.clear()
            self._series.clear()
            self._commits.clear()

    def _migrate(self) -> None:
        try:
            self._migrate_or_check()
        except duckdb.Error as exc:
            lowered = str(exc).lower()
            if "corrupt" in lowered or "checksum" in lowered:
                raise self._damaged(str(exc)) from None
            raise

    def _migrate_or_check(self) -> None:
        if self.read_only:
            tables = {r[0] for r in self._read(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
                " AND table_catalog = current_database()")}
            if "meta" not in tables:
                raise StoreError(f"store {self.path} is not a Lookback store")
            found = self._read("SELECT value FROM meta WHERE key = 'schema_version'")
            if not found or int(found[0][0]) != SCHEMA_VERSION:
                raise StoreError(f"store {self.path} has schema {found[0][0] if found else '?'}, "
                                 f"this version reads {SCHEMA_VERSION}; open it once where it "
                                 "can be written, so that it is upgraded")
            return
        with self._write() as cur:
            tables = {r[0] for r in cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
                " AND table_catalog = current_database()").fetchall()}
            if not tables:  # a new store is made as version 1, then migrated like any other
                cur.execute(_SCHEMA_V1)
                cur.execute("INSERT INTO meta VALUES ('schema_version', '1')")
                tables = {"meta"}
            if "meta" not in tables:
                raise StoreError(f"store {self.path} is a DuckDB file but not a Lookback store")
            row = cur.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"store {self.path} was written by a newer Lookback GUI (schema {version}; "
                    f"this version knows up to {SCHEMA_VERSION})"
                )
            while version < SCHEMA_VERSION:
                _MIGRATIONS[version - 1](cur)
                version += 1
                cur.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version)])

    def _mark_interrupted(self) -> list[int]:
        rows = self._read("SELECT id, pid, pid_started FROM runs WHERE status = 'running'")
        dead = []
        for run_id, pid, started in rows:
            if pid == self._pid and started == self._pid_started:
                continue
            alive = _process_started(pid) if pid else None
            if alive is not None and started is not None and abs(alive - started) < 1e-3:
                continue
            dead.append(run_id)
        if dead:
            with self._write() as cur:
                for run_id in dead:
                    pid = next(r[1] for r in rows if r[0] == run_id)
                    cur.execute(
                        "UPDATE runs SET status = 'interrupted', error = ? WHERE id = ?",
                        [f"the process running this pull (PID {pid}) ended before it finished",
                         run_id],
                    )
                    self._append_log(cur, run_id, datetime.now(), "error",
                                     "found interrupted: the process running this pull ended")
        return dead

    def close(self) -> None:
        with self._write_lock, self._state:
            if self._closed:
                return
            self._closed = True
            if self._con is not None:
                with contextlib.suppress(duckdb.Error):
                    self._con.close()
                self._con = None
            if self._lock is not None:
                self._lock.close()
            self._state.notify_all()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction, the only way anything is written."""
        if self.read_only:
            raise StoreError(f"store {self.path} is open for reading only")
        with self._write_lock, self.reading() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            try:
                cur.execute("COMMIT")
            except duckdb.Error as exc:
                raise StoreError(f"store {self.path}: a write failed: {exc}") from None

    def _read(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
              ) -> list[tuple[Any, ...]]:
        with self.reading() as cur:
            try:
                return cur.execute(sql, params).fetchall()
            except duckdb.Error as exc:
                lowered = str(exc).lower()
                if "corrupt" in lowered or "checksum" in lowered:
                    raise self._damaged(str(exc)) from None
                raise

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of the open store for the calling thread, for the length of the block."""
        with self._connection() as con:
            cur = con.cursor()
            try:
                yield cur
            finally:
                cur.close()

    @staticmethod
    def _append_log(cur: duckdb.DuckDBPyConnection, run_id: int, at: datetime, level: str,
                    message: str) -> None:
        cur.execute(
            "INSERT INTO run_log SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, ? "
            "FROM run_log WHERE run_id = ?",
            [run_id, at, level, message, run_id],
        )

    # -- runs -----------------------------------------------------------------------------

    def begin_run(self, *, metric: str, trigger: str, timezone: str, grain: str,
                  as_of: datetime, window_start: datetime, window_end: datetime,
                  partial_start: datetime | None, started_at: datetime, sql: str,
                  params: Mapping[str, Any], log: str | None = None,
                  known_at: datetime | None = None) -> int:
        """Commit a new run as ``running`` (with its first log line) and return its id.

        ``known_at`` is the known time of its versions when it is known before the query runs
        (SQL that replays its source as of ``as_of``)."""
        with self._write() as cur:
            row = cur.execute(
                "INSERT INTO runs (id, metric, trigger, status, timezone, grain, as_of, "
                "window_start, window_end, partial_start, started_at, attempts, sql, params, "
                "pid, pid_started, known_at) VALUES (nextval('run_ids'), ?, ?, 'running', ?, ?,"
                " ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?) RETURNING id",
                [metric, trigger, timezone, grain, as_of, window_start, window_end,
                 partial_start, started_at, sql, json.dumps(_jsonable(params)), self._pid,
                 self._pid_started, known_at],
            ).fetchone()
            assert row is not None
            run_id = int(row[0])
            if log:
                cur.execute("INSERT INTO run_log VALUES (?, 1, ?, 'info', ?)",
                            [run_id, datetime.now(), log])
        return run_id

    def log(self, run_id: int, level: str, message: str, at: datetime | None = None) -> None:
        """Append one line to a run's log (committed at once)."""
        with self._write() as cur:
            self._append_log(cur, run_id, at or datetime.now(), level, message)

    def set_attempts(self, run_id: int, attempts: int) -> None:
        with self._write() as cur:
            cur.execute("UPDATE runs SET attempts = ? WHERE id = ?", [attempts, run_id])

    def finish_run(self, run_id: int, *, status: str, finished_at: datetime, attempts: int,
                   error: str | None, rows: int | None = None,
                   warnings: Sequence[str] = (), checks: Sequence[Mapping[str, Any]] = (),
                   duration_s: float | None = None) -> None:
        """End a run that committed no versions (failed or cancelled)."""
        assert status in RUN_STATUSES
        with self._write() as cur:
            cur.execute(
                "UPDATE runs SET status = ?, finished_at = ?, attempts = ?, error = ?, rows = ?,"
                " warnings = ?, checks = ?, duration_s = ? WHERE id = ?",
                [status, finished_at, attempts, error, rows, json.dumps(list(warnings)),
                 json.dumps(list(checks)), duration_s, run_id],
            )

    def commit_run(
        self,
        run_id: int,
        *,
        metric: str,
        staged: str | None,
        measures: Sequence[str],
        window_start: datetime,
        window_end: datetime,
        known_at: datetime,
        settled_end: datetime,
        decide: Callable[[DiffSummary], tuple[list[dict[str, Any]], list[str]]],
        finished_at: Callable[[], datetime],
        attempts: int,
        rows: int,
        warnings: Sequence[str],
        schema_change: Mapping[str, Any],
        duration_s: Callable[[], float],
        tolerance: float = DEFAULT_TOLERANCE,
        unchanged_before: tuple[datetime, datetime] | None = None,
        probes: Sequence[tuple[datetime, str]] = (),
        log_warnings: Sequence[str] = (),
        staged_count: int | None = None,
        exact: bool = True,
    ) -> RunRecord:
        """Diff ``staged`` against the values of the window as known at ``known_at`` and commit
        it as one run whose versions are known at ``known_at``.

        ``staged`` is a query giving the columns dims, measure, bucket, value, value_null, exact
        (one row per value; it reads the pull's Parquet file), or None for a result with no
        values. ``settled_end`` ends the part of the window the run saw complete: the buckets in
        [window_start, settled_end) are no longer partial. ``decide`` sees the diff before
        anything is written and returns the check results and any extra warnings; if a check
        of severity ``error`` failed, it raises QualityError and nothing is committed.

        ``unchanged_before`` is the part of the run's window that a change probe found unchanged
        (its current values count as unchanged); ``probes`` are the fingerprints to keep;
        ``log_warnings`` go into the run's log with the closing line, in the same transaction;
        ``staged_count`` is how many values ``staged`` holds, when the caller knows it;
        ``exact`` is false when none of its measures is an integer or DECIMAL (the exact
        columns are then left out of the diff).
        """
        source = (f"({staged})" if staged else
                  "(SELECT NULL::VARCHAR AS dims, NULL::VARCHAR AS measure, NULL::TIMESTAMP "
                  "AS bucket, NULL::DOUBLE AS value, NULL::BOOLEAN AS value_null, "
                  "NULL::VARCHAR AS exact WHERE false)")
        window = {"metric": metric, "ws": window_start, "we": window_end}
        at = {"k": known_at, "run": run_id}
        with self._write() as cur:
            # the values as known at this run's known time: the current ones, unless a version
            # in the window is known later (this run replays or back-fills the past)
            row = cur.execute(
                "SELECT count(*) FROM current WHERE metric = $metric AND bucket >= $ws"
                " AND bucket < $we AND (known_at > $k OR (known_at = $k AND run_id > $run))",
                {**window, **at}).fetchone()
            latest = not (row and row[0])
            exact_column = "exact" if exact else "NULL::VARCHAR AS exact"
            known = (
                f"SELECT rowid AS current_row, dims, measure, bucket, value, {exact_column},"
                " removed, partial FROM current WHERE metric = $metric AND bucket >= $ws"
                " AND bucket < $we"
            ) if latest else f"""
                SELECT NULL::BIGINT AS current_row, dims, measure, bucket, last.v AS value,
                       last.x AS exact, last.r AS removed, last.p AS partial
                FROM (
                    SELECT dims, measure, bucket,
                           arg_max({{'v': value, 'x': exact, 'r': removed, 'p': partial}},
                                   {_ORDER}) AS last
                    FROM versions
                    WHERE metric = $metric AND bucket >= $ws AND bucket < $we
                      AND (known_at < $k OR (known_at = $k AND run_id < $run))
                    GROUP BY ALL
                )
            """
            cur.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE diff AS
                SELECT * FROM (
                WITH s AS (
                    SELECT dims, measure, bucket,
                           CASE WHEN value_null THEN NULL ELSE value END AS value,
                           {"CASE WHEN value_null THEN NULL ELSE exact END" if exact
                            else "NULL::VARCHAR"} AS exact
                    FROM {source}
                ), c AS (
                    -- rowid finds the row again for the UPDATE below: within this one write
                    -- transaction nothing else can move it
                    {known}
                )
                SELECT coalesce(s.dims, c.dims) AS dims,
                       coalesce(s.measure, c.measure) AS measure,
                       coalesce(s.bucket, c.bucket) AS bucket,
                       s.value AS new_value, c.value AS old_value, s.exact AS new_exact,
                       coalesce(c.partial, false) AS old_partial,
                       c.current_row,
                       CASE
                         WHEN c.bucket IS NULL THEN 'new'
                         WHEN s.bucket IS NULL THEN
                           CASE WHEN c.removed OR NOT list_contains($measures, c.measure)
                                THEN NULL ELSE 'removed' END
                         WHEN c.removed THEN 'revised'
                         WHEN s.exact IS NOT NULL AND c.exact IS NOT NULL THEN
                           CASE WHEN s.exact = c.exact THEN 'unchanged' ELSE 'revised' END
                         WHEN (s.value IS NULL AND c.value IS NULL)
                           OR (s.value IS NOT NULL AND c.value IS NOT NULL AND (
                               s.value = c.value
                               OR isfinite(s.value - c.value) AND abs(s.value - c.value)
                                  <= $tol * greatest(abs(s.value), abs(c.value))))
                           THEN 'unchanged'
                         ELSE 'revised'
                       END AS kind
                FROM s FULL OUTER JOIN c
                  ON s.dims = c.dims AND s.measure = c.measure AND s.bucket = c.bucket
                ) WHERE kind IN ('new', 'revised', 'removed')
                """,
                {**window, **({} if latest else at), "measures": list(measures),
                 "tol": tolerance},
            )
            # only what changes is kept: every staged value is new, revised or unchanged. A
            # removal is a revision to no value: it counts as a change of 100 %.
            row = cur.execute(
                f"""
                SELECT count(*) FILTER (WHERE kind = 'new'),
                       count(*) FILTER (WHERE kind = 'revised'),
                       count(*) FILTER (WHERE kind = 'removed'),
                       {staged_count if staged_count is not None
                        else f"(SELECT count(*) FROM {source})"},
                       max(CASE WHEN kind = 'removed' THEN 1.0
                                ELSE abs(new_value - old_value) / abs(old_value) END) FILTER (
                           WHERE kind IN ('revised', 'removed') AND old_value IS NOT NULL
                           AND (new_value IS NOT NULL OR kind = 'removed')
                           AND old_value <> 0 AND NOT old_partial
                       ) * 100
                FROM diff
                """).fetchone()
            assert row is not None
            new, revised, removed, staged_rows, max_revision = row
            counts = {"new": int(new), "revised": int(revised), "removed": int(removed),
                      "unchanged": int(staged_rows) - int(new) - int(revised)}
            if unchanged_before is not None and unchanged_before[0] < unchanged_before[1]:
                row = cur.execute(
                    "SELECT count(*) FROM current WHERE metric = ? AND NOT removed "
                    "AND bucket >= ? AND bucket < ?", [metric, *unchanged_before]).fetchone()
                counts["unchanged"] += int(row[0]) if row else 0
            summary = DiffSummary(counts=counts, max_revision_pct=max_revision)
            checks, more_warnings = decide(summary)
            all_warnings = [*warnings, *more_warnings]
            # the one bucket of the window this run may have seen partial is partial still
            # unless another run saw it complete
            row = cur.execute(
                "SELECT $se < $we AND NOT EXISTS (SELECT 1 FROM runs WHERE metric = $metric"
                " AND status = 'succeeded' AND window_start <= $se AND $se < settled_end)",
                {"metric": metric, "we": window_end, "se": settled_end}).fetchone()
            params = {"metric": metric, "run": run_id, "k": known_at, "se": settled_end,
                      "still": bool(row and row[0])}
            partial = "(bucket >= $se AND $still)"
            cur.execute(
                """
                INSERT INTO versions
                SELECT $metric, dims, measure, bucket, $run,
                       CASE WHEN kind = 'removed' THEN NULL ELSE new_value END,
                       kind = 'removed', kind <> 'removed' AND bucket >= $se, $k,
                       CASE WHEN kind = 'removed' THEN NULL ELSE new_exact END
                FROM diff
                """,
                {k: params[k] for k in ("metric", "run", "k", "se")},
            )
            changed = counts["revised"] + counts["removed"] + (0 if latest else counts["new"])
            if changed and latest:  # every current value of the window is known before this
                cur.execute(
                    """
                    UPDATE current SET
                        value = CASE WHEN d.kind = 'removed' THEN NULL ELSE d.new_value END,
                        exact = CASE WHEN d.kind = 'removed' THEN NULL ELSE d.new_exact END,
                        removed = d.kind = 'removed',
                        partial = d.bucket >= $se AND $still,
                        run_id = $run, known_at = $k, versions = current.versions + 1
                    FROM diff d
                    WHERE current.rowid = d.current_row
                    """, {k: v for k, v in params.items() if k != "metric"})
            elif changed:
                # a version known after every other one becomes the current value; one known
                # earlier only adds to the count (and may be the first one known)
                later = "(current.known_at < $k OR (current.known_at = $k AND current.run_id < $run))"
                earlier = ("(current.first_known_at > $k OR "
                           "(current.first_known_at = $k AND current.first_run > $run))")
                cur.execute(
                    f"""
                    UPDATE current SET
                        value = CASE WHEN {later} THEN
                            CASE WHEN d.kind = 'removed' THEN NULL ELSE d.new_value END
                            ELSE current.value END,
                        exact = CASE WHEN {later} THEN
                            CASE WHEN d.kind = 'removed' THEN NULL ELSE d.new_exact END
                            ELSE current.exact END,
                        removed = CASE WHEN {later} THEN d.kind = 'removed'
                                       ELSE current.removed END,
                        partial = CASE WHEN {later} THEN d.bucket >= $se AND $still
                                       ELSE current.partial END,
                        run_id = CASE WHEN {later} THEN $run ELSE current.run_id END,
                        known_at = CASE WHEN {later} THEN $k ELSE current.known_at END,
                        first_value = CASE WHEN {earlier} THEN d.new_value
                                           ELSE current.first_value END,
                        first_exact = CASE WHEN {earlier} THEN d.new_exact
                                           ELSE current.first_exact END,
                        first_run = CASE WHEN {earlier} THEN $run ELSE current.first_run END,
                        first_known_at = CASE WHEN {earlier} THEN $k
                                              ELSE current.first_known_at END,
                        versions = current.versions + 1
                    FROM diff d
                    WHERE current.metric = $metric AND current.dims = d.dims
                      AND current.measure = d.measure AND current.bucket = d.bucket
                    """,
                    params,
                )
            if counts["new"]:
                cur.execute(
                    f"""
                    INSERT INTO current
                    SELECT $metric, dims, measure, bucket, new_value, false, {partial}, $run,
                           new_value, $run, 1, $k, new_exact, new_exact, $k
                    FROM diff d WHERE kind = 'new'
                    """ + ("" if latest else
                           " AND NOT EXISTS (SELECT 1 FROM current c WHERE c.metric = $metric"
                           " AND c.dims = d.dims AND c.measure = d.measure"
                           " AND c.bucket = d.bucket)"),
                    params,
                )
            # what this run saw complete is settled, whether or not its value changed
            cur.execute(
                "UPDATE current SET partial = false WHERE metric = ? AND partial"
                " AND bucket >= ? AND bucket < ?", [metric, window_start, settled_end])
            lines = [("warning", line) for line in log_warnings]
            lines.append(("info", f"succeeded: {rows} rows; {counts['new']} new, "
                                  f"{counts['revised']} revised, {counts['removed']} removed, "
                                  f"{counts['unchanged']} unchanged"))
            for level, message in lines:
                self._append_log(cur, run_id, datetime.now(), level, message)
            if probes:
                cur.executemany("INSERT INTO probes VALUES (?, ?, ?, ?)",
                                [[metric, bucket, run_id, fp] for bucket, fp in probes])
            row = cur.execute(
                "UPDATE runs SET status = 'succeeded', finished_at = ?, attempts = ?, rows = ?,"
                " new = ?, revised = ?, removed = ?, unchanged = ?, error = NULL, measures = ?,"
                " schema_change = ?, warnings = ?, checks = ?, duration_s = ?, known_at = ?,"
                " settled_end = ?, commit_seq = nextval('commit_seqs') WHERE id = ?"
                f" RETURNING {self._RUN_COLUMNS}",
                [finished_at(), attempts, rows, counts["new"], counts["revised"],
                 counts["removed"], counts["unchanged"], json.dumps(list(measures)),
                 json.dumps(dict(schema_change)), json.dumps(all_warnings), json.dumps(checks),
                 duration_s(), known_at, settled_end, run_id],
            ).fetchone()
            assert row is not None
        record = self._run_from_row(row)
        with self._write_lock:
            self._last_success[metric] = record
        with self._cache_lock:
            self._commits[metric] = self._commits.get(metric, 0) + 1
            for key in [k for k in self._series if k[0] == metric]:
                del self._series[key]
        return record

    _RUN_COLUMNS = (
        "id, metric, trigger, status, as_of, window_start, window_end, started_at, finished_at,"
        " attempts, rows, new, revised, removed, unchanged, error, timezone, grain,"
        " partial_start, sql, params, measures, schema_change, warnings, checks, duration_s,"
        " known_at, settled_end"
    )

    @staticmethod
    def _run_from_row(row: Sequence[Any]) -> RunRecord:
        (run_id, metric, trigger, status, as_of, ws, we, started, finished, attempts, rows, new,
         revised, removed, unchanged, error, tz, grain, partial, sql, params, measures,
         schema_change, warnings, checks, duration, known_at, settled_end) = row
        return RunRecord(
            id=run_id, metric=metric, trigger=trigger, status=status, as_of=as_of,
            window_start=ws, window_end=we, started_at=started, finished_at=finished,
            attempts=attempts or 0, rows=rows, new=new, revised=revised, removed=removed,
            unchanged=unchanged, error=error, timezone=tz, grain=grain, partial_start=partial,
            sql=sql, params=json.loads(params) if params else {},
            measures=tuple(json.loads(measures)) if measures else (),
            schema_change=json.loads(schema_change) if schema_change else {},
            warnings=tuple(json.loads(warnings)) if warnings else (),
            checks=tuple(json.loads(checks)) if checks else (),
            duration_s=duration, known_at=known_at, settled_end=settled_end,
        )

    def run(self, run_id: int) -> RunRecord:
        rows = self._read(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id = ?", [run_id])
        if not rows:
            raise UsageError(f"no run {run_id} in store {self.path}")
        return self._run_from_row(rows[0])

    def runs(self, metric: str | None = None, limit: int | None = None,
             status: str | None = None, trigger: str | None = None,
             before: int | None = None) -> list[RunRecord]:
        """Runs newest first, optionally for one metric, status or trigger, or older than the
        run ``before`` (for paging)."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("metric", metric), ("status", status), ("trigger", trigger)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if before is not None:
            where.append("id < ?")
            params.append(before)
        sql = f"SELECT {self._RUN_COLUMNS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._run_from_row(r) for r in self._read(sql, params)]

    def latest_runs(self) -> dict[str, RunRecord]:
        """Each metric's newest run."""
        rows = self._read(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id IN "
                          "(SELECT max(id) FROM runs GROUP BY metric)")
        return {r.metric: r for r in map(self._run_from_row, rows)}

    def run_log(self, run_id: int) -> list[LogLine]:
        return [LogLine(*r) for r in self._read(
            "SELECT run_id, seq, logged_at, level, message FROM run_log WHERE run_id = ? ORDER BY seq",
            [run_id])]

    def coverage(self, metric: str) -> list[tuple[datetime, datetime]]:
        """The bucket ranges that successful pulls of ``metric`` saw complete (each run's
        [window_start, settled_end)), merged, oldest first."""
        return [(a, b) for a, b in self._read(
            """
            WITH s AS (
                SELECT window_start AS a, settled_end AS b FROM runs
                WHERE metric = ? AND status = 'succeeded' AND settled_end > window_start
            ), o AS (
                SELECT a, b, max(b) OVER (ORDER BY a, b ROWS BETWEEN UNBOUNDED PRECEDING
                                          AND 1 PRECEDING) AS reach
                FROM s
            ), g AS (
                SELECT a, b, sum(CASE WHEN reach IS NULL OR a > reach THEN 1 ELSE 0 END)
                             OVER (ORDER BY a, b) AS island
                FROM o
            )
            SELECT min(a), max(b) FROM g GROUP BY island ORDER BY 1
            """, [metric])]

    def pull_extent(self, metric: str) -> tuple[datetime | None, datetime | None]:
        """(the earliest window start, the latest moment seen) of ``metric``'s successful
        pulls. A pull saw its window up to its known time: a backfill or replay of the past
        saw no more than its window's end, whenever it ran."""
        rows = self._read("SELECT min(window_start), max(least(known_at, window_end)) FROM runs"
                          " WHERE metric = ? AND status = 'succeeded'", [metric])
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def uncovered_failures(self, metric: str | None = None) -> list[RunRecord]:
        """Failed runs of ``metric`` (or of every metric) whose window no later successful
        run's window of the same metric holds, oldest first; of several with one window, the
        oldest."""
        return [self._run_from_row(r) for r in self._read(
            f"""
            WITH r AS (SELECT id, metric, status, window_start, window_end FROM runs
                       WHERE {"metric = $metric AND" if metric is not None else ""}
                             status IN ('failed', 'succeeded')
                         AND window_start IS NOT NULL AND window_end IS NOT NULL),
            f AS (SELECT * FROM r WHERE status = 'failed'),
            s AS (SELECT * FROM r WHERE status = 'succeeded' AND id > (SELECT min(id) FROM f)),
            open AS (
                SELECT f.id FROM f ANTI JOIN s ON s.metric = f.metric AND s.id > f.id
                    AND s.window_start <= f.window_start AND s.window_end >= f.window_end
                QUALIFY row_number() OVER (PARTITION BY f.metric, f.window_start, f.window_end
                                           ORDER BY f.id) = 1
            )
            SELECT {self._RUN_COLUMNS} FROM runs WHERE id IN (SELECT id FROM open) ORDER BY id
            """, {"metric": metric} if metric is not None else None)]

    def catch_up_facts(self) -> dict[str, CatchUpFacts]:
        """For every metric with a successful pull: its :meth:`pull_extent` and
        :meth:`coverage`, read in two queries for the whole project (planning the catch-up of
        many metrics must not cost a query per metric)."""
        extents = self._read("SELECT metric, min(window_start), max(least(known_at, window_end))"
                             " FROM runs WHERE status = 'succeeded' GROUP BY metric")
        facts = {m: CatchUpFacts(first, seen, []) for m, first, seen in extents}
        for metric, a, b in self._read(
            """
            WITH s AS (  -- runs that start together cover as far as the furthest of them
                SELECT metric, window_start AS a, max(settled_end) AS b FROM runs
                WHERE status = 'succeeded' AND settled_end > window_start GROUP BY ALL
            ), o AS (
                SELECT metric, a, b, max(b) OVER (PARTITION BY metric ORDER BY a, b
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
                FROM s
            ), g AS (
                SELECT metric, a, b, sum(CASE WHEN reach IS NULL OR a > reach THEN 1 ELSE 0 END)
                             OVER (PARTITION BY metric ORDER BY a, b) AS island
                FROM o
            )
            SELECT metric, min(a), max(b) FROM g GROUP BY metric, island ORDER BY 1, 2
            """):
            facts[metric].coverage.append((a, b))
        return facts

    def last_successful_run(self, metric: str) -> RunRecord | None:
        """The metric's newest successful run (kept in memory while this process has the store
        open: nobody else can write it then)."""
        if metric in self._last_success:
            return self._last_success[metric]
        runs = self.runs(metric=metric, status="succeeded", limit=1)
        found = runs[0] if runs else None
        self._last_success[metric] = found
        return found

    # -- values ---------------------------------------------------------------------------

    def _known_runs(self, metric: str, as_of_run: int | None,
                    as_known_at: datetime | None) -> tuple[str, dict[str, Any]]:
        """The succeeded runs of ``metric`` whose versions a view of the past sees: those
        committed by the time run ``as_of_run`` ended, or those known at ``as_known_at`` or
        before; as SQL for a CTE, with its parameters."""
        if as_of_run is not None:
            self.run(as_of_run)  # an unknown run is a usage error
            return ("SELECT id, known_at, window_start, settled_end FROM runs"
                    " WHERE metric = $metric AND status = 'succeeded' AND commit_seq <= ("
                    "SELECT coalesce((SELECT commit_seq FROM runs WHERE id = $bound), "
                    "(SELECT max(commit_seq) FROM runs WHERE id <= $bound), 0))",
                    {"metric": metric, "bound": as_of_run})
        return ("SELECT id, known_at, window_start, settled_end FROM runs"
                " WHERE metric = $metric AND status = 'succeeded' AND known_at <= $bound",
                {"metric": metric, "bound": as_known_at})

    def _values_known(self, metric: str, as_of_run: int | None, as_known_at: datetime | None,
                      where: str = "", extra: Mapping[str, Any] | None = None
                      ) -> tuple[str, dict[str, Any]]:
        """SQL giving the values of ``metric`` as known after run ``as_of_run`` or at
        ``as_known_at``, in the columns of ``current`` that the reads use."""
        runs, params = self._known_runs(metric, as_of_run, as_known_at)
        sql = f"""
            WITH r AS ({runs}),
            v AS (
                SELECT dims, measure, bucket,
                       arg_max({{'v': value, 'x': exact, 'r': removed, 'run': run_id,
                                 'k': known_at}}, {_ORDER}) AS last,
                       arg_min({{'v': value, 'x': exact}}, {_ORDER}) AS first,
                       count(*) AS n
                FROM versions
                WHERE metric = $metric AND run_id IN (SELECT id FROM r) {where}
                GROUP BY ALL
            )
            SELECT bucket, dims, measure, CASE WHEN last.r THEN NULL ELSE last.v END AS value,
                   CASE WHEN last.r THEN NULL ELSE last.x END AS exact,
                   first.v AS first_value, first.x AS first_exact,
                   CAST(n AS INTEGER) AS versions, last.run AS run_id, last.r AS removed,
                   NOT EXISTS (SELECT 1 FROM r WHERE r.window_start <= v.bucket
                               AND v.bucket < r.settled_end) AS partial,
                   last.k AS known_at
            FROM v
        """
        return sql, {**params, **(extra or {})}

    def history_query(self, metric: str, as_of_run: int | None = None,
                      as_known_at: datetime | None = None,
                      buckets: tuple[datetime, datetime] | None = None
                      ) -> tuple[str, dict[str, Any]]:
        """SQL (with its parameters) for the rows of :meth:`history`, in their order: bucket,
        dims, measure, value, exact, first_value, first_exact, versions, partial, run_id,
        known_at (``exact``: the canonical text of an integer or DECIMAL value); only the
        buckets in [start, end) of ``buckets`` when given."""
        span = "" if buckets is None else " AND bucket >= $span_start AND bucket < $span_end"
        params: dict[str, Any]
        if as_of_run is None and as_known_at is None:
            sql, params = ("SELECT bucket, dims, measure, CASE WHEN removed THEN NULL ELSE value"
                           " END AS value, CASE WHEN removed THEN NULL ELSE exact END AS exact,"
                           " first_value, first_exact, versions, run_id, partial, known_at"
                           f" FROM current WHERE metric = $metric{span}", {"metric": metric})
        else:
            sql, params = self._values_known(metric, as_of_run, as_known_at, span)
        if buckets is not None:
            params = {**params, "span_start": buckets[0], "span_end": buckets[1]}
        return (f"SELECT bucket, dims, measure, value, exact, first_value, first_exact, versions,"
                f" partial, run_id, known_at FROM ({sql}) ORDER BY bucket, dims, measure", params)

    def history(self, metric: str, as_of_run: int | None = None,
                as_known_at: datetime | None = None) -> list[HistoryRow]:
        """Current values of ``metric``; or the values as known right after run ``as_of_run``
        committed; or as known at ``as_known_at`` (for each value, its version with the latest
        known time at or before it)."""
        rows = self._read(*self.history_query(metric, as_of_run, as_known_at))
        return [
            HistoryRow(bucket=b, dims=json.loads(d), measure=m, value=_number(v, x),
                       first_value=_number(f, fx), versions=int(n), revised=int(n) > 1,
                       partial=bool(p), last_run=int(r), known_at=k)
            for b, d, m, v, x, f, fx, n, p, r, k in rows
        ]

    def revisions_query(self, metric: str, newest: int | None = None,
                        run: int | None = None,
                        known: tuple[datetime, datetime, datetime, datetime] | None = None
                        ) -> tuple[str, list[Any]]:
        """SQL (with its parameters) for the rows of :meth:`revisions`, in their order: run_id,
        bucket, dims, measure, old_value, old_exact, new_value, new_exact, known_at,
        prev_known_at. With ``known`` = (start, end, first bucket, last bucket): only the
        revisions known in [start, end), whose buckets lie between the two given."""
        where = "metric = ?"
        params: list[Any] = [metric]
        if run is not None:  # only the values that run touched need their history
            where += (" AND (dims, measure, bucket) IN (SELECT (dims, measure, bucket) "
                      "FROM versions WHERE metric = ? AND run_id = ?)")
            params += [metric, run]
        keep = "" if run is None else f" AND run_id = {int(run)}"
        if known is not None:  # the values known then, with the versions before them
            where += (" AND known_at < ? AND bucket >= ? AND bucket <= ? AND (dims, measure,"
                      " bucket) IN (SELECT (dims, measure, bucket) FROM versions WHERE"
                      " metric = ? AND known_at >= ? AND known_at < ?)")
            params += [known[1], known[2], known[3], metric, known[0], known[1]]
            keep += " AND known_at >= ?"
            params.append(known[0])
        tail = ("" if newest is None else
                f" ORDER BY known_at DESC, run_id DESC, bucket DESC LIMIT {int(newest)}")
        return (
            f"""
            SELECT run_id, bucket, dims, measure, old_value, old_exact, new_value, new_exact,
                   known_at, prev_known_at
            FROM (
                SELECT run_id, bucket, dims, measure, known_at,
                       lag(CASE WHEN removed THEN NULL ELSE value END) OVER w AS old_value,
                       lag(CASE WHEN removed THEN NULL ELSE exact END) OVER w AS old_exact,
                       lag(removed) OVER w AS old_removed,
                       lag(known_at) OVER w AS prev_known_at,
                       CASE WHEN removed THEN NULL ELSE value END AS new_value,
                       CASE WHEN removed THEN NULL ELSE exact END AS new_exact,
                       removed, row_number() OVER w AS n
                FROM versions WHERE {where}
                WINDOW w AS (PARTITION BY dims, measure, bucket ORDER BY known_at, run_id)
                QUALIFY n > 1 {keep} AND (
                    removed <> old_removed
                    OR (new_exact IS NOT NULL AND old_exact IS NOT NULL
                        AND new_exact <> old_exact)
                    OR ((new_exact IS NULL OR old_exact IS NULL)
                        AND NOT (new_value = old_value
                                 OR isfinite(new_value - old_value)
                                    AND abs(new_value - old_value)
                                    <= {DEFAULT_TOLERANCE!r}
                                       * greatest(abs(new_value), abs(old_value))))
                    OR (new_value IS NULL) <> (old_value IS NULL))
                {tail}
            )
            ORDER BY known_at, run_id, bucket, dims, measure
            """, params)

    def revisions(self, metric: str, newest: int | None = None,
                  run: int | None = None) -> list[RevisionRow]:
        """Every revision and removal of ``metric`` in known-time order: only the ``newest``
        ones, or only those run ``run`` made, when given.

        A revision is a version whose value differs from the one before it in known-time
        order (exactly for integer and DECIMAL measures, within the float tolerance for the
        others): a version slotted in before a later one can make that one equal to its new
        predecessor, and it is then no revision any more.
        """
        rows = self._read(*self.revisions_query(metric, newest, run))
        return [RevisionRow(run=r, bucket=b, dims=json.loads(d), measure=m,
                            old_value=_number(o, ox), new_value=_number(n, nx), known_at=k,
                            prev_known_at=pk)
                for r, b, d, m, o, ox, n, nx, k, pk in rows]

    def probe_fingerprints(self, metric: str, start: datetime, end: datetime
                           ) -> dict[datetime, str]:
        """The latest change-probe fingerprint of each bucket in [start, end)."""
        rows = self._read(
            "SELECT bucket, arg_max(fingerprint, run_id) FROM probes WHERE metric = ? "
            "AND bucket >= ? AND bucket < ? GROUP BY bucket", [metric, start, end])
        return {b: fp for b, fp in rows}

    def series(self, metric: str, top: int | None = None
               ) -> list[tuple[dict[str, Any], str, float]]:
        """Each (dims, measure) of ``metric`` with its size (sum of |value|), largest first;
        only the ``top`` largest of each measure when given (a metric may have a hundred
        thousand series, and a chart offers a few)."""
        key = (metric, top)
        with self._cache_lock:  # kept until the metric's next commit or until another
            known = self._series.get(key)  # process had the store
            generation = self._commits.get(metric, 0)
        if known is None:
            keep = "" if top is None else (
                f"QUALIFY row_number() OVER (PARTITION BY measure ORDER BY size DESC, dims)"
                f" <= {int(top)}")
            rows = self._read(
                "SELECT dims, measure, coalesce(sum(abs(value)), 0) AS size FROM current WHERE "
                f"metric = ? GROUP BY dims, measure {keep} ORDER BY size DESC, dims, measure",
                [metric])
            known = [(json.loads(d), m, float(size)) for d, m, size in rows]
            with self._cache_lock:
                if self._commits.get(metric, 0) == generation:
                    self._series[key] = known
        return [(dict(d), m, size) for d, m, size in known]

    def chart_data(self, metric: str, measure: str, dims: Mapping[str, Any],
                   as_of_run: int | None = None,
                   as_known_at: datetime | None = None) -> dict[str, np.ndarray]:
        """One series as numpy arrays for a chart, buckets ascending: current, or as known
        after run ``as_of_run`` or at ``as_known_at``.

        Keys: bucket (datetime64), value, first_value (float, NaN for none), versions,
        last_run (int), removed, partial (bool).
        """
        key = _series_key(metric, measure, dims)
        with self.reading() as cur:
            if as_of_run is None and as_known_at is None:
                return _sorted_by_bucket(cur.execute(
                    "SELECT bucket, coalesce(value, 'NaN'::DOUBLE) AS value,"
                    " coalesce(first_value, 'NaN'::DOUBLE) AS first_value, versions,"
                    " run_id AS last_run, removed, partial FROM current"
                    " WHERE metric = ? AND measure = ? AND dims = ?", key).fetchnumpy())
            sql, params = self._values_known(
                metric, as_of_run, as_known_at, "AND measure = $measure AND dims = $dims",
                {"measure": key[1], "dims": key[2]})
            return _sorted_by_bucket(cur.execute(
                f"SELECT bucket, coalesce(value, 'NaN'::DOUBLE) AS value,"
                f" coalesce(first_value, 'NaN'::DOUBLE) AS first_value, versions,"
                f" run_id AS last_run, removed, partial FROM ({sql})", params).fetchnumpy())

    def chart_series(self, metric: str, measure: str, dims: Mapping[str, Any],
                     as_of_run: int | None = None,
                     as_known_at: datetime | None = None) -> dict[str, np.ndarray]:
        """One series as chart_data has it, in the form quickest to load for a long series.

        ``bucket`` and ``value`` cover every bucket; ``marked`` holds the positions of the
        buckets with more than one version or still partial, and first_value, versions,
        last_run, removed and partial are given for those only (in the same order). Every
        other bucket has one version: its first value is its value, it is neither removed nor
        partial, and the run that stored it is ``bucket_run``. Of a long series few buckets are
        marked, and reading and holding four more columns for all of them would cost more than
        the values themselves.
        """
        if as_of_run is not None or as_known_at is not None:  # the versions are aggregated
            full = self.chart_data(metric, measure, dims, as_of_run, as_known_at)  # anyway
            at = np.flatnonzero((full["versions"] > 1) | full["partial"])
            return {"bucket": full["bucket"], "value": full["value"], "marked": at,
                    **{k: full[k][at] for k in _MARKED_COLUMNS}}
        key = _series_key(metric, measure, dims)
        with self.reading() as cur:
            cur.execute("BEGIN TRANSACTION")  # one snapshot for both reads
            bulk = _sorted_by_bucket(cur.execute(
                "SELECT bucket, coalesce(value, 'NaN'::DOUBLE) AS value FROM current"
                " WHERE metric = ? AND measure = ? AND dims = ?", key).fetchnumpy())
            marked = _sorted_by_bucket(cur.execute(
                "SELECT bucket, coalesce(first_value, 'NaN'::DOUBLE) AS first_value, versions,"
                " run_id AS last_run, removed, partial FROM current"
                " WHERE metric = ? AND measure = ? AND dims = ? AND (versions > 1 OR partial)",
                key).fetchnumpy())
            cur.execute("COMMIT")
        return {**bulk, "marked": np.searchsorted(bulk["bucket"], marked["bucket"]),
                **{k: marked[k] for k in _MARKED_COLUMNS}}

    def bucket_run(self, metric: str, measure: str, dims: Mapping[str, Any],
                   bucket: datetime) -> int | None:
        """The run that stored the current value of one bucket."""
        rows = self._read("SELECT run_id FROM current WHERE metric = ? AND measure = ? AND dims = ?"
                          " AND bucket = ?", [*_series_key(metric, measure, dims), bucket])
        return int(rows[0][0]) if rows else None

    def schema_changes(self, metric: str) -> list[tuple[int, datetime, Mapping[str, Any]]]:
        """(run, as_of, change) of every run of ``metric`` that changed its measures."""
        rows = self._read(
            "SELECT id, as_of, schema_change FROM runs WHERE metric = ? AND status = 'succeeded'"
            " AND schema_change IS NOT NULL AND schema_change <> '{}' ORDER BY id", [metric])
        return [(r, a, json.loads(c)) for r, a, c in rows]

    def latest_values(self, metric: str, measure: str, series: Mapping[str, Any],
                      since: datetime | None = None
                      ) -> tuple[datetime | None, list[tuple[dict[str, Any], Number]]]:
        """The latest bucket of ``measure`` that has a complete value (or, when none is
        complete yet, the latest bucket with a value), and its values there by series: those
        complete, else all of them. Only series whose dims match ``series`` (compared as
        text, as ``str()`` writes them) count.

        ``since`` is where to look first: when a complete value lies at or after it, no older
        bucket is read (the run that just committed gives its window's start).
        """
        where = ["metric = $metric", "measure = $measure", "NOT removed", "value IS NOT NULL"]
        params: dict[str, Any] = {"metric": metric, "measure": measure}
        for index, (key, wanted) in enumerate(sorted(series.items())):
            pointer = "/" + key.replace("~", "~0").replace("/", "~1")
            params[f"k{index}"], params[f"v{index}"] = pointer, str(wanted)
            p = f"$k{index}"
            where.append(f"(CASE json_type(dims, {p}) WHEN 'BOOLEAN' THEN CASE WHEN"
                         f" CAST(json_extract(dims, {p}) AS BOOLEAN) THEN 'True' ELSE 'False'"
                         f" END ELSE coalesce(json_extract_string(dims, {p}), 'None') END)"
                         f" = $v{index}")
        match = " AND ".join(where)
        with self.reading() as cur:
            cur.execute("BEGIN TRANSACTION")  # one snapshot for both reads
            found = None
            for bound in ([since, None] if since is not None else [None]):
                row = cur.execute(
                    f"SELECT max(bucket) FILTER (WHERE NOT partial), max(bucket) FROM current"
                    f" WHERE {match}" + ("" if bound is None else " AND bucket >= $since"),
                    {**params, **({} if bound is None else {"since": bound})}).fetchone()
                if row is not None and row[0] is not None:
                    found = (row[0], True)
                    break
                if bound is None and row is not None and row[1] is not None:
                    found = (row[1], False)
            if found is None:
                cur.execute("COMMIT")
                return None, []
            latest, complete = found
            rows = cur.execute(
                f"SELECT dims, value, exact FROM current WHERE {match} AND bucket = $latest"
                + (" AND NOT partial" if complete else "") + " ORDER BY dims",
                {**params, "latest": latest}).fetchall()
            cur.execute("COMMIT")
        return latest, [(json.loads(d), _number(v, x)) for d, v, x in rows]  # type: ignore[misc]

    # -- alerts ---------------------------------------------------------------------------

    def alert_state(self, metric: str, rule: str) -> AlertState | None:
        rows = self._read("SELECT metric, rule, kind, state, since, message FROM alerts "
                          "WHERE metric = ? AND rule = ?", [metric, rule])
        return AlertState(*rows[0]) if rows else None

    def set_alert_state(self, state: AlertState) -> None:
        with self._write() as cur:
            cur.execute("DELETE FROM alerts WHERE metric = ? AND rule = ?",
                        [state.metric, state.rule])
            cur.execute("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?)",
                        [state.metric, state.rule, state.kind, state.state, state.since,
                         state.message])

    def alert_states(self) -> list[AlertState]:
        """Every rule that has fired at least once, firing first, newest change first."""
        return [AlertState(*r) for r in self._read(
            "SELECT metric, rule, kind, state, since, message FROM alerts "
            "ORDER BY state = 'firing' DESC, since DESC, metric, rule")]


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in params.items()}


_MARKED_COLUMNS = ("first_value", "versions", "last_run", "removed", "partial")


def _series_key(metric: str, measure: str, dims: Mapping[str, Any]) -> list[str]:
    """metric, measure and dims as the store's columns hold them (dims as compact JSON)."""
    return [metric, measure, json.dumps(dict(sorted(dims.items())), separators=(",", ":"),
                                        ensure_ascii=False)]


def _sorted_by_bucket(data: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Columns from fetchnumpy, sorted by their bucket column.

    Sorted here rather than by DuckDB: the latest values come nearly in bucket order (as the
    pulls stored them), which a stable sort handles in a fraction of the time of ORDER BY, and
    an already sorted result costs one comparison pass.
    """
    arrays = {k: np.asarray(v) for k, v in data.items()}
    buckets = arrays["bucket"].astype("datetime64[us]", copy=False).view(np.int64)
    if len(buckets) > 1 and not bool(np.all(buckets[1:] >= buckets[:-1])):
        order = np.argsort(buckets, kind="stable")
        arrays = {k: v[order] for k, v in arrays.items()}
    return arrays
