"""The store: one DuckDB file with every run, its log, and every version of every value.

Versions are only ever appended. ``current`` keeps the latest version of each
(metric, series, measure, bucket) so that a pull compares its result against it in one set-based
join; ``versions`` answers "as known after run N".

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import psutil

from lookback_gui.core.errors import StoreBusyError, StoreError, UsageError

SCHEMA_VERSION = 1
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

# Each entry upgrades the schema from its index + 1 to the next version.
_MIGRATIONS: list[str] = []


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

    JSON_KEYS = (
        "id", "metric", "trigger", "status", "as_of", "window_start", "window_end",
        "started_at", "finished_at", "attempts", "rows", "new", "revised", "removed",
        "unchanged", "error",
    )

    def to_json(self) -> dict[str, Any]:
        return {key: _json_value(getattr(self, key)) for key in self.JSON_KEYS}


@dataclass(frozen=True)
class LogLine:
    run_id: int
    seq: int
    at: datetime
    level: str
    message: str


@dataclass(frozen=True)
class HistoryRow:
    bucket: datetime
    dims: Mapping[str, Any]
    measure: str
    value: float | None
    first_value: float | None
    versions: int
    revised: bool
    partial: bool
    last_run: int = 0

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
    run: int
    bucket: datetime
    dims: Mapping[str, Any]
    measure: str
    old_value: float | None
    new_value: float | None
    as_of: datetime | None = None  # when the revising pull was as of (not in the JSON)

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
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


def _json_number(value: float | None) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


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


class Store:
    """The local store of one project.

    Attributes:
        path: the DuckDB file.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._write_lock = threading.RLock()
        self._cursor_lock = threading.Lock()
        self._last_success: dict[str, RunRecord | None] = {}
        self._cache_lock = threading.Lock()
        self._series: dict[str, list[tuple[dict[str, Any], str, float]]] = {}
        self._commits: dict[str, int] = {}  # successful runs per metric since opening
        self._con = self._open()
        self._pid = os.getpid()
        self._pid_started = _process_started(self._pid)
        self._migrate()
        self.interrupted_at_open = self._mark_interrupted()

    # -- opening --------------------------------------------------------------------------

    def _open(self) -> duckdb.DuckDBPyConnection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"store {self.path}: cannot create its folder: {exc.strerror}") from None
        try:
            return duckdb.connect(str(self.path))
        except duckdb.Error as exc:
            message = str(exc)
            if "lock" in message.lower():
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
            if "not a valid duckdb" in message.lower() or "unable to open" in message.lower():
                raise StoreError(f"store {self.path} is not a Lookback store (not a DuckDB "
                                 f"database file): {message}") from None
            raise StoreError(f"store {self.path} cannot be opened: {message}") from None

    def _migrate(self) -> None:
        with self._write() as cur:
            tables = {r[0] for r in cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
                " AND table_catalog = current_database()").fetchall()}
            if not tables:
                cur.execute(_SCHEMA_V1)
                cur.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
                return
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
                cur.execute(_MIGRATIONS[version - 1])
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
        with self._write_lock:
            self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction, the only way anything is written."""
        with self._write_lock:
            cur = self.cursor()
            try:
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
            finally:
                cur.close()

    def _read(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
              ) -> list[tuple[Any, ...]]:
        cur = self.cursor()
        try:
            return cur.execute(sql, params).fetchall()
        finally:
            cur.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread; close it when done."""
        with self._cursor_lock:
            return self._con.cursor()

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
                  params: Mapping[str, Any], log: str | None = None) -> int:
        """Commit a new run as ``running`` (with its first log line) and return its id."""
        with self._write() as cur:
            row = cur.execute(
                "INSERT INTO runs (id, metric, trigger, status, timezone, grain, as_of, "
                "window_start, window_end, partial_start, started_at, attempts, sql, params, "
                "pid, pid_started) VALUES (nextval('run_ids'), ?, ?, 'running', ?, ?, ?, ?, ?, "
                "?, ?, 0, ?, ?, ?, ?) RETURNING id",
                [metric, trigger, timezone, grain, as_of, window_start, window_end,
                 partial_start, started_at, sql, json.dumps(_jsonable(params)), self._pid,
                 self._pid_started],
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
        partial_start: datetime | None,
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
    ) -> RunRecord:
        """Diff ``staged`` against the current values of the window and commit it as one run.

        ``staged`` is a query giving the columns dims, measure, bucket, value, value_null (one
        row per value; it reads the pull's Parquet file), or None for a result with no values.
        ``decide`` sees the diff before anything is written and returns the check results and
        any extra warnings; if a check of severity ``error`` failed, it raises QualityError and
        nothing is committed.

        ``unchanged_before`` is the part of the run's window that a change probe found unchanged
        (its current values count as unchanged); ``probes`` are the fingerprints to keep;
        ``log_warnings`` go into the run's log with the closing line, in the same transaction;
        ``staged_count`` is how many values ``staged`` holds, when the caller knows it.
        """
        source = (f"({staged})" if staged else
                  "(SELECT NULL::VARCHAR AS dims, NULL::VARCHAR AS measure, NULL::TIMESTAMP "
                  "AS bucket, NULL::DOUBLE AS value, NULL::BOOLEAN AS value_null WHERE false)")
        with self._write() as cur:
            cur.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE diff AS
                SELECT * FROM (
                WITH s AS (
                    SELECT dims, measure, bucket,
                           CASE WHEN value_null THEN NULL ELSE value END AS value
                    FROM {source}
                ), c AS (
                    -- rowid finds the row again for the UPDATE below: within this one write
                    -- transaction nothing else can move it
                    SELECT rowid AS current_row, dims, measure, bucket, value, removed, partial
                    FROM current WHERE metric = $metric AND bucket >= $ws AND bucket < $we
                )
                SELECT coalesce(s.dims, c.dims) AS dims,
                       coalesce(s.measure, c.measure) AS measure,
                       coalesce(s.bucket, c.bucket) AS bucket,
                       s.value AS new_value, c.value AS old_value,
                       coalesce(c.partial, false) AS old_partial,
                       c.current_row,
                       CASE
                         WHEN c.bucket IS NULL THEN 'new'
                         WHEN s.bucket IS NULL THEN
                           CASE WHEN c.removed OR NOT list_contains($measures, c.measure)
                                THEN NULL ELSE 'removed' END
                         WHEN c.removed THEN 'revised'
                         WHEN (s.value IS NULL AND c.value IS NULL)
                           OR (s.value IS NOT NULL AND c.value IS NOT NULL AND (
                               s.value = c.value
                               OR abs(s.value - c.value)
                                  <= $tol * greatest(abs(s.value), abs(c.value))))
                           THEN 'unchanged'
                         ELSE 'revised'
                       END AS kind
                FROM s FULL OUTER JOIN c
                  ON s.dims = c.dims AND s.measure = c.measure AND s.bucket = c.bucket
                ) WHERE kind IN ('new', 'revised', 'removed')
                """,
                {"metric": metric, "ws": window_start, "we": window_end,
                 "measures": list(measures), "tol": tolerance},
            )
            # only what changes is kept: every staged value is new, revised or unchanged
            row = cur.execute(
                f"""
                SELECT count(*) FILTER (WHERE kind = 'new'),
                       count(*) FILTER (WHERE kind = 'revised'),
                       count(*) FILTER (WHERE kind = 'removed'),
                       {staged_count if staged_count is not None
                        else f"(SELECT count(*) FROM {source})"},
                       max(abs(new_value - old_value) / abs(old_value)) FILTER (
                           WHERE kind = 'revised' AND old_value IS NOT NULL
                           AND new_value IS NOT NULL AND old_value <> 0 AND NOT old_partial
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
            params = {"metric": metric, "run": run_id, "ps": partial_start}
            cur.execute(
                """
                INSERT INTO versions
                SELECT $metric, dims, measure, bucket, $run,
                       CASE WHEN kind = 'removed' THEN NULL ELSE new_value END,
                       kind = 'removed',
                       kind <> 'removed' AND $ps IS NOT NULL AND bucket >= $ps
                FROM diff WHERE kind IN ('new', 'revised', 'removed')
                """,
                params,
            )
            if counts["revised"] or counts["removed"]:
                cur.execute(
                """
                UPDATE current SET
                    value = CASE WHEN d.kind = 'removed' THEN NULL ELSE d.new_value END,
                    removed = d.kind = 'removed',
                    partial = d.kind <> 'removed' AND $ps IS NOT NULL AND d.bucket >= $ps,
                    run_id = $run,
                    versions = current.versions + 1
                FROM diff d
                WHERE d.kind IN ('revised', 'removed') AND current.rowid = d.current_row
                """,
                {"run": run_id, "ps": partial_start},
            )
            if counts["new"]:
                cur.execute(
                    """
                    INSERT INTO current
                    SELECT $metric, dims, measure, bucket, new_value, false,
                           $ps IS NOT NULL AND bucket >= $ps, $run, new_value, $run, 1
                    FROM diff WHERE kind = 'new'
                    """,
                    params,
                )
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
                " schema_change = ?, warnings = ?, checks = ?, duration_s = ? WHERE id = ?"
                f" RETURNING {self._RUN_COLUMNS}",
                [finished_at(), attempts, rows, counts["new"], counts["revised"],
                 counts["removed"], counts["unchanged"], json.dumps(list(measures)),
                 json.dumps(dict(schema_change)), json.dumps(all_warnings), json.dumps(checks),
                 duration_s(), run_id],
            ).fetchone()
            assert row is not None
        record = self._run_from_row(row)
        with self._write_lock:
            self._last_success[metric] = record
        with self._cache_lock:
            self._commits[metric] = self._commits.get(metric, 0) + 1
            self._series.pop(metric, None)
        return record

    _RUN_COLUMNS = (
        "id, metric, trigger, status, as_of, window_start, window_end, started_at, finished_at,"
        " attempts, rows, new, revised, removed, unchanged, error, timezone, grain,"
        " partial_start, sql, params, measures, schema_change, warnings, checks, duration_s"
    )

    @staticmethod
    def _run_from_row(row: Sequence[Any]) -> RunRecord:
        (run_id, metric, trigger, status, as_of, ws, we, started, finished, attempts, rows, new,
         revised, removed, unchanged, error, tz, grain, partial, sql, params, measures,
         schema_change, warnings, checks, duration) = row
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
            duration_s=duration,
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

    def last_successful_run(self, metric: str) -> RunRecord | None:
        """The metric's newest successful run (kept in memory: this store is the only writer)."""
        if metric in self._last_success:
            return self._last_success[metric]
        runs = self.runs(metric=metric, status="succeeded", limit=1)
        found = runs[0] if runs else None
        self._last_success[metric] = found
        return found

    # -- values ---------------------------------------------------------------------------

    def history(self, metric: str, as_of_run: int | None = None) -> list[HistoryRow]:
        """Current values of ``metric``, or the values as known right after run ``as_of_run``."""
        if as_of_run is None:
            rows = self._read(
                "SELECT bucket, dims, measure, CASE WHEN removed THEN NULL ELSE value END,"
                " first_value, versions, partial, run_id FROM current WHERE metric = ?"
                " ORDER BY bucket, dims, measure", [metric])
        else:
            self.run(as_of_run)
            rows = self._read(
                """
                WITH v AS (
                    SELECT bucket, dims, measure,
                           arg_max({'v': value, 'r': removed, 'p': partial, 'run': run_id},
                                   run_id) AS last,
                           arg_min({'v': value}, run_id) AS first,
                           count(*) AS n
                    FROM versions WHERE metric = ? AND run_id <= ?
                    GROUP BY bucket, dims, measure
                )
                SELECT bucket, dims, measure, CASE WHEN last.r THEN NULL ELSE last.v END,
                       first.v, n, last.p, last.run
                FROM v ORDER BY bucket, dims, measure
                """, [metric, as_of_run])
        return [
            HistoryRow(bucket=b, dims=json.loads(d), measure=m, value=v, first_value=f,
                       versions=int(n), revised=int(n) > 1, partial=bool(p), last_run=int(r))
            for b, d, m, v, f, n, p, r in rows
        ]

    def revisions(self, metric: str, newest: int | None = None,
                  run: int | None = None) -> list[RevisionRow]:
        """Every revision and removal of ``metric``, oldest first: only the ``newest`` ones, or
        only those run ``run`` made, when given."""
        where = "metric = ?"
        params: list[Any] = [metric]
        if run is not None:  # only the values that run touched need their history
            where += (" AND (dims, measure, bucket) IN (SELECT (dims, measure, bucket) "
                      "FROM versions WHERE metric = ? AND run_id = ?)")
            params += [metric, run]
        keep = "n > 1" if run is None else f"n > 1 AND run_id = {int(run)}"
        tail = "" if newest is None else f" ORDER BY run_id DESC, bucket DESC LIMIT {int(newest)}"
        rows = self._read(
            f"""
            SELECT v.run_id, v.bucket, v.dims, v.measure, v.old_value, v.new_value, runs.as_of
            FROM (
                SELECT run_id, bucket, dims, measure,
                       lag(CASE WHEN removed THEN NULL ELSE value END) OVER w AS old_value,
                       CASE WHEN removed THEN NULL ELSE value END AS new_value,
                       row_number() OVER w AS n
                FROM versions WHERE {where}
                WINDOW w AS (PARTITION BY dims, measure, bucket ORDER BY run_id)
                QUALIFY {keep}
                {tail}
            ) v LEFT JOIN runs ON runs.id = v.run_id
            ORDER BY v.run_id, v.bucket, v.dims, v.measure
            """, params)
        return [RevisionRow(run=r, bucket=b, dims=json.loads(d), measure=m, old_value=o,
                            new_value=n, as_of=a) for r, b, d, m, o, n, a in rows]

    def probe_fingerprints(self, metric: str, start: datetime, end: datetime
                           ) -> dict[datetime, str]:
        """The latest change-probe fingerprint of each bucket in [start, end)."""
        rows = self._read(
            "SELECT bucket, arg_max(fingerprint, run_id) FROM probes WHERE metric = ? "
            "AND bucket >= ? AND bucket < ? GROUP BY bucket", [metric, start, end])
        return {b: fp for b, fp in rows}

    def series(self, metric: str) -> list[tuple[dict[str, Any], str, float]]:
        """Each (dims, measure) of ``metric`` with its size (sum of |value|), largest first."""
        with self._cache_lock:  # kept until the metric's next commit: this process is the
            known = self._series.get(metric)  # store's only writer
            generation = self._commits.get(metric, 0)
        if known is None:
            rows = self._read(
                "SELECT dims, measure, coalesce(sum(abs(value)), 0) AS size FROM current WHERE "
                "metric = ? GROUP BY dims, measure ORDER BY size DESC, dims, measure", [metric])
            known = [(json.loads(d), m, float(size)) for d, m, size in rows]
            with self._cache_lock:
                if self._commits.get(metric, 0) == generation:
                    self._series[metric] = known
        return [(dict(d), m, size) for d, m, size in known]

    def chart_data(self, metric: str, measure: str, dims: Mapping[str, Any],
                   as_of_run: int | None = None) -> dict[str, np.ndarray]:
        """One series as numpy arrays for a chart, buckets ascending.

        Keys: bucket (datetime64), value, first_value (float, NaN for none), versions,
        last_run (int), removed, partial (bool).
        """
        key = _series_key(metric, measure, dims)
        cur = self.cursor()
        try:
            if as_of_run is None:
                return _sorted_by_bucket(cur.execute(
                    "SELECT bucket, coalesce(value, 'NaN'::DOUBLE) AS value,"
                    " coalesce(first_value, 'NaN'::DOUBLE) AS first_value, versions,"
                    " run_id AS last_run, removed, partial FROM current"
                    " WHERE metric = ? AND measure = ? AND dims = ?", key).fetchnumpy())
            return _sorted_by_bucket(cur.execute(
                """
                WITH v AS (
                    SELECT bucket,
                           arg_max({'v': value, 'r': removed, 'p': partial, 'run': run_id},
                                   run_id) AS last,
                           arg_min({'v': value}, run_id) AS first, count(*) AS n
                    FROM versions WHERE metric = ? AND measure = ? AND dims = ?
                      AND run_id <= ?
                    GROUP BY bucket
                )
                SELECT bucket, coalesce(last.v, 'NaN'::DOUBLE) AS value,
                       coalesce(first.v, 'NaN'::DOUBLE) AS first_value,
                       CAST(n AS INTEGER) AS versions, last.run AS last_run,
                       last.r AS removed, last.p AS partial
                FROM v ORDER BY bucket
                """, [*key, as_of_run]).fetchnumpy())
        finally:
            cur.close()

    def chart_series(self, metric: str, measure: str, dims: Mapping[str, Any],
                     as_of_run: int | None = None) -> dict[str, np.ndarray]:
        """One series as chart_data has it, in the form quickest to load for a long series.

        ``bucket`` and ``value`` cover every bucket; ``marked`` holds the positions of the
        buckets with more than one version or still partial, and first_value, versions,
        last_run, removed and partial are given for those only (in the same order). Every
        other bucket has one version: its first value is its value, it is neither removed nor
        partial, and the run that stored it is ``bucket_run``. Of a long series few buckets are
        marked, and reading and holding four more columns for all of them would cost more than
        the values themselves.
        """
        if as_of_run is not None:  # the versions are aggregated anyway: thin out the result
            full = self.chart_data(metric, measure, dims, as_of_run)
            at = np.flatnonzero((full["versions"] > 1) | full["partial"])
            return {"bucket": full["bucket"], "value": full["value"], "marked": at,
                    **{k: full[k][at] for k in _MARKED_COLUMNS}}
        key = _series_key(metric, measure, dims)
        cur = self.cursor()
        try:
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
        finally:
            cur.close()
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
