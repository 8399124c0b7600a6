"""The run log: every run of every metric, its lines of log, and what the scheduler asks of
them (coverage, extents, failed windows not covered since).

A run row is committed as ``running`` before its query starts; when the store is opened again
after the process died, such a run is marked ``interrupted``. Run ids come from one place,
:meth:`RunLog.next_run_id`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from lookback_gui.core.errors import UsageError
from lookback_gui.core.store.database import Database, process_started
from lookback_gui.core.store.records import CatchUpFacts, LogLine, RunRecord

RUN_STATUSES = ("running", "succeeded", "failed", "cancelled", "interrupted")


def jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in params.items()}


def append_log(cur: duckdb.DuckDBPyConnection, run_id: int, at: datetime, level: str, message: str) -> None:
    cur.execute(
        "INSERT INTO run_log SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, ? FROM run_log WHERE run_id = ?",
        [run_id, at, level, message, run_id],
    )


RUN_COLUMNS = (
    "id, metric, trigger, status, as_of, window_start, window_end, started_at, finished_at,"
    " attempts, rows, new, revised, removed, unchanged, error, timezone, grain,"
    " partial_start, sql, params, measures, schema_change, warnings, checks, duration_s,"
    " known_at, settled_end, definition"
)


def run_from_row(row: Sequence[Any]) -> RunRecord:
    (
        run_id,
        metric,
        trigger,
        status,
        as_of,
        ws,
        we,
        started,
        finished,
        attempts,
        rows,
        new,
        revised,
        removed,
        unchanged,
        error,
        tz,
        grain,
        partial,
        sql,
        params,
        measures,
        schema_change,
        warnings,
        checks,
        duration,
        known_at,
        settled_end,
        definition,
    ) = row
    return RunRecord(
        id=run_id,
        metric=metric,
        trigger=trigger,
        status=status,
        as_of=as_of,
        window_start=ws,
        window_end=we,
        started_at=started,
        finished_at=finished,
        attempts=attempts or 0,
        rows=rows,
        new=new,
        revised=revised,
        removed=removed,
        unchanged=unchanged,
        error=error,
        timezone=tz,
        grain=grain,
        partial_start=partial,
        sql=sql,
        params=json.loads(params) if params else {},
        measures=tuple(json.loads(measures)) if measures else (),
        schema_change=json.loads(schema_change) if schema_change else {},
        warnings=tuple(json.loads(warnings)) if warnings else (),
        checks=tuple(json.loads(checks)) if checks else (),
        duration_s=duration,
        known_at=known_at,
        settled_end=settled_end,
        definition=definition,
    )


@dataclass(frozen=True)
class NewRun:
    """A run about to start, as :meth:`RunLog.begin_run` records it.

    Attributes:
        known_at: the known time of its versions when it is known before the query runs
            (SQL that replays its source as of ``as_of``).
        log: its first line of log.
        definition: the version of the metric's definition it runs under.
    """

    metric: str
    trigger: str
    timezone: str
    grain: str
    as_of: datetime
    window_start: datetime
    window_end: datetime
    partial_start: datetime | None
    started_at: datetime
    sql: str
    params: Mapping[str, Any]
    log: str | None = None
    known_at: datetime | None = None
    definition: str | None = None


class RunLog:
    """The ``runs`` and ``run_log`` tables.

    Attributes:
        interrupted_at_open: runs found ``running`` whose process had died, now marked.
    """

    def __init__(self, db: Database):
        self._db = db
        self._pid = os.getpid()
        self._pid_started = process_started(self._pid)
        self._last_success: dict[str, RunRecord | None] = {}
        self._lock = threading.Lock()
        self.interrupted_at_open: list[int] = []
        db.on_reopen(self.forget)

    def forget(self) -> None:
        """Drop what is kept in memory: another process may have written since."""
        with self._lock:
            self._last_success.clear()

    def remember_success(self, record: RunRecord) -> None:
        """``record`` is its metric's newest successful run (it was just committed)."""
        with self._lock:
            self._last_success[record.metric] = record

    def next_run_id(self, cur: duckdb.DuckDBPyConnection) -> int:
        """A new run id, inside the write transaction ``cur`` that records the run."""
        return self._db.next_id(cur, "run_ids")

    def mark_interrupted(self) -> list[int]:
        rows = self._db.read("SELECT id, pid, pid_started FROM runs WHERE status = 'running'")
        dead = []
        for run_id, pid, started in rows:
            if pid == self._pid and started == self._pid_started:
                continue
            if self._db.process_alive(pid, started):
                continue
            dead.append(run_id)
        marked: list[int] = []
        if dead:
            with self._db.write() as cur:
                for run_id in dead:
                    # its process may have ended it just before it ended itself
                    row = cur.execute(
                        "SELECT pid FROM runs WHERE id = ? AND status = 'running'", [run_id]
                    ).fetchone()
                    if row is None:
                        continue
                    cur.execute(
                        "UPDATE runs SET status = 'interrupted', error = ? WHERE id = ?",
                        [f"the process running this pull (PID {row[0]}) ended before it finished", run_id],
                    )
                    append_log(
                        cur,
                        run_id,
                        datetime.now(),
                        "error",
                        "found interrupted: the process running this pull ended",
                    )
                    marked.append(run_id)
        return marked

    def begin_run(self, start: NewRun) -> int:
        """Commit a new run as ``running`` (with its first log line) and return its id."""
        with self._db.write() as cur:
            run_id = self.next_run_id(cur)
            cur.execute(
                "INSERT INTO runs (id, metric, trigger, status, timezone, grain, as_of, "
                "window_start, window_end, partial_start, started_at, attempts, sql, params, "
                "pid, pid_started, known_at, definition) VALUES (?, ?, ?, 'running', ?, ?,"
                " ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    start.metric,
                    start.trigger,
                    start.timezone,
                    start.grain,
                    start.as_of,
                    start.window_start,
                    start.window_end,
                    start.partial_start,
                    start.started_at,
                    start.sql,
                    json.dumps(jsonable(start.params)),
                    self._pid,
                    self._pid_started,
                    start.known_at,
                    start.definition,
                ],
            )
            if start.log:
                cur.execute(
                    "INSERT INTO run_log VALUES (?, 1, ?, 'info', ?)", [run_id, datetime.now(), start.log]
                )
        return run_id

    def begun(self, start: NewRun) -> int | None:
        """The id of the run that ``start`` recorded already, if any: its commit may have
        landed while the answer to it was lost (the team store's catalog went away just then).
        The same metric, started at the same moment by this process, and still running."""
        rows = self._db.read(
            "SELECT id FROM runs WHERE metric = ? AND started_at = ? AND status = 'running' "
            "AND pid = ? AND pid_started IS NOT DISTINCT FROM ?",
            [start.metric, start.started_at, self._pid, self._pid_started],
        )
        return int(rows[0][0]) if rows else None

    def log(self, run_id: int, level: str, message: str, at: datetime | None = None) -> None:
        """Append one line to a run's log (committed at once)."""
        with self._db.write() as cur:
            append_log(cur, run_id, at or datetime.now(), level, message)

    def set_attempts(self, run_id: int, attempts: int) -> None:
        with self._db.write() as cur:
            cur.execute("UPDATE runs SET attempts = ? WHERE id = ?", [attempts, run_id])

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        finished_at: datetime,
        attempts: int,
        error: str | None,
        rows: int | None = None,
        warnings: Sequence[str] = (),
        checks: Sequence[Mapping[str, Any]] = (),
        duration_s: float | None = None,
    ) -> None:
        """End a run that committed no versions (failed or cancelled)."""
        assert status in RUN_STATUSES
        with self._db.write() as cur:
            cur.execute(
                "UPDATE runs SET status = ?, finished_at = ?, attempts = ?, error = ?, rows = ?,"
                " warnings = ?, checks = ?, duration_s = ? WHERE id = ?",
                [
                    status,
                    finished_at,
                    attempts,
                    error,
                    rows,
                    json.dumps(list(warnings)),
                    json.dumps(list(checks)),
                    duration_s,
                    run_id,
                ],
            )

    def run(self, run_id: int) -> RunRecord:
        rows = self._db.read(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", [run_id])
        if not rows:
            raise UsageError(f"no run {run_id} in {self._db.label}")
        return run_from_row(rows[0])

    def runs(
        self,
        metric: str | None = None,
        limit: int | None = None,
        status: str | None = None,
        trigger: str | None = None,
        before: int | None = None,
    ) -> list[RunRecord]:
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
        sql = f"SELECT {RUN_COLUMNS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [run_from_row(r) for r in self._db.read(sql, params)]

    def latest_runs(self) -> dict[str, RunRecord]:
        """Each metric's newest run."""
        rows = self._db.read(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE id IN (SELECT max(id) FROM runs GROUP BY metric)"
        )
        return {r.metric: r for r in map(run_from_row, rows)}

    def run_log(self, run_id: int) -> list[LogLine]:
        return [
            LogLine(*r)
            for r in self._db.read(
                "SELECT run_id, seq, logged_at, level, message FROM run_log WHERE run_id = ? ORDER BY seq",
                [run_id],
            )
        ]

    def coverage(self, metric: str) -> list[tuple[datetime, datetime]]:
        """The bucket ranges that successful pulls of ``metric`` saw complete (each run's
        [window_start, settled_end)), merged, oldest first."""
        return [
            (a, b)
            for a, b in self._db.read(
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
            """,
                [metric],
            )
        ]

    def pull_extent(self, metric: str) -> tuple[datetime | None, datetime | None]:
        """(the first bucket any pull found data for, the latest moment seen) of ``metric``'s
        successful pulls. A pull saw its window up to its known time: a backfill or replay of
        the past saw no more than its window's end, whenever it ran. An empty pull of the time
        before the data starts is no anchor for the gap fill: the first bucket is that of the
        data."""
        rows = self._db.read(
            "SELECT (SELECT min(bucket) FROM current WHERE metric = $m),"
            " max(least(known_at, window_end)) FROM runs"
            " WHERE metric = $m AND status = 'succeeded'",
            {"m": metric},
        )
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def uncovered_failures(self, metric: str | None = None) -> list[RunRecord]:
        """Failed runs of ``metric`` (or of every metric) whose window no later successful
        run's window of the same metric holds, oldest first; of several with one window, the
        oldest."""
        return [
            run_from_row(r)
            for r in self._db.read(
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
            SELECT {RUN_COLUMNS} FROM runs WHERE id IN (SELECT id FROM open) ORDER BY id
            """,
                {"metric": metric} if metric is not None else None,
            )
        ]

    def catch_up_facts(self) -> dict[str, CatchUpFacts]:
        """For every metric with a successful pull: its :meth:`pull_extent` and
        :meth:`coverage`, read in two queries for the whole project (planning the catch-up of
        many metrics must not cost a query per metric)."""
        extents = self._db.read(
            "SELECT r.metric, c.first, r.seen FROM (SELECT metric,"
            " max(least(known_at, window_end)) AS seen FROM runs WHERE status = 'succeeded'"
            " GROUP BY metric) r LEFT JOIN (SELECT metric, min(bucket) AS first FROM current"
            " GROUP BY metric) c ON c.metric = r.metric"
        )
        facts = {m: CatchUpFacts(first, seen, []) for m, first, seen in extents}
        for metric, a, b in self._db.read(
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
            """
        ):
            facts[metric].coverage.append((a, b))
        return facts

    def last_successful_run(self, metric: str) -> RunRecord | None:
        """The metric's newest successful run (kept in memory while this process has the store
        open: nobody else can write it then)."""
        with self._lock:
            if metric in self._last_success:
                return self._last_success[metric]
        runs = self.runs(metric=metric, status="succeeded", limit=1)
        found = runs[0] if runs else None
        with self._lock:
            self._last_success.setdefault(metric, found)
        return found

    def metric_names(self) -> list[str]:
        """Every metric that has a run in the store."""
        return [r[0] for r in self._db.read("SELECT DISTINCT metric FROM runs ORDER BY 1")]

    def definition_changes(self, metric: str) -> list[tuple[int, datetime, str, str]]:
        """(run, known time, old definition, new definition) of every successful run of
        ``metric`` that was the first under a new definition, in commit order."""
        rows = self._db.read(
            """
            SELECT id, known_at, prev, definition FROM (
                SELECT id, known_at, definition,
                       lag(definition) OVER (ORDER BY commit_seq, id) AS prev
                FROM runs WHERE metric = ? AND status = 'succeeded'
            ) WHERE prev IS NOT NULL AND definition IS NOT NULL AND prev <> definition
            ORDER BY known_at, id
            """,
            [metric],
        )
        return [(r, k, a, b) for r, k, a, b in rows]

    def schema_changes(self, metric: str) -> list[tuple[int, datetime, Mapping[str, Any]]]:
        """(run, as_of, change) of every run of ``metric`` that changed its measures."""
        rows = self._db.read(
            "SELECT id, as_of, schema_change FROM runs WHERE metric = ? AND status = 'succeeded'"
            " AND schema_change IS NOT NULL AND schema_change <> '{}' ORDER BY id",
            [metric],
        )
        return [(r, a, json.loads(c)) for r, a, c in rows]
