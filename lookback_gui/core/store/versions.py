"""The versions of every value, and the one way they are written: a run's diff and commit.

The store is bitemporal. Every version has its bucket (the period the value is about) and its
known time (when the data it reflects was known). A value's versions are ordered by known time,
then by run id, and the current value is the one known last. ``current`` keeps that latest
version of each (metric, series, measure, bucket) so that a pull as of now compares its result
with it in one set-based join; a pull known at an earlier time (a backfill or replay of the past)
compares with the values as known at its own known time and slots its versions in there.

A bucket is *partial* until a successful pull saw it with a known time at or after the bucket's
end; every run records the end of the span it settled (``settled_end``), and the same spans are
the scheduler's coverage.

Each commit also keeps what the advisor, the development and the nowcast read instead of every
version: ``arrivals``, every change late data made to a value (its value before and after, its
known time and that of the last successful pull before it that held its bucket), and
``arrival_sums``, the same summed per bucket and pair of known times. A run known after every
version of its window adds its own; a replay or back-fill of the past finds those of its window
again, since it may sit between two versions or two pulls.

A commit has two phases in one write transaction (:meth:`Versions.begin_commit`): the pull asks
for the diff of its result (:meth:`Commit.diff`, a :class:`DiffSummary`), runs its own checks on
it, and then commits one :class:`CommitRequest` (:meth:`Commit.commit`). A check that fails, or a
cancel, raises inside the block and nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from lookback_gui.core.store.database import Database
from lookback_gui.core.store.records import DEFAULT_TOLERANCE, RunRecord
from lookback_gui.core.store.runs import RUN_COLUMNS, append_log, run_from_row
from lookback_gui.core.store.schema import VERSION_ORDER, fill_arrivals, sum_arrivals


@dataclass(frozen=True)
class DiffSummary:
    """What a pull's result would change, computed before anything is written.

    Attributes:
        counts: new / revised / removed / unchanged.
        max_revision_pct: the largest |new - old| / |old| in percent among revised values
            (a bucket that was still partial is expected to grow and does not count, nor
            does a redefinition).
        redefined: how many of the revised and removed values are redefinitions: changed
            because the metric's definition changed, at the first pull under the new one
            that held their bucket.
    """

    counts: Mapping[str, int]
    max_revision_pct: float | None
    redefined: int = 0


@dataclass(frozen=True)
class StagedValues:
    """A pull's result as the diff reads it: the values of one window, known at one time.

    Attributes:
        sql: a query giving the columns dims, measure, bucket, value, value_null, exact (one
            row per value; it reads the pull's Parquet file), or None for no values.
        window_start, window_end: the span the result is the truth for.
        unchanged_before: the part of the window that a change probe found unchanged (its
            current values count as unchanged).
        count: how many values ``sql`` gives, when the pull knows it.
        exact: false when no measure is an integer or DECIMAL (the exact columns are then
            left out of the diff).
        definition: the version of the metric's definition the values come from.
    """

    metric: str
    sql: str | None
    measures: Sequence[str]
    window_start: datetime
    window_end: datetime
    known_at: datetime
    tolerance: float = DEFAULT_TOLERANCE
    unchanged_before: tuple[datetime, datetime] | None = None
    count: int | None = None
    exact: bool = True
    definition: str | None = None


@dataclass(frozen=True)
class CommitRequest:
    """How a run ends that commits its diff.

    Attributes:
        settled_end: the end of the part of the window the run saw complete: the buckets in
            [window_start, settled_end) are no longer partial.
        warnings: every warning of the run (its checks' included).
        log_warnings: warnings that go into the run's log with its closing line.
        probes: the change-probe fingerprints (bucket, fingerprint) to keep.
    """

    settled_end: datetime
    finished_at: datetime
    duration_s: float
    attempts: int
    rows: int
    warnings: Sequence[str] = ()
    checks: Sequence[Mapping[str, Any]] = ()
    schema_change: Mapping[str, Any] = field(default_factory=dict)
    log_warnings: Sequence[str] = ()
    probes: Sequence[tuple[datetime, str]] = ()


def _known_values(values: StagedValues, latest: bool) -> str:
    """The SQL of the values of ``values``' window as known before this run: the current
    rows when nothing later is stored (``latest``), else each value's last version before it."""
    exact_column = "exact" if values.exact else "NULL::VARCHAR AS exact"
    return (
        (
            f"SELECT rowid AS current_row, dims, measure, bucket, value, {exact_column},"
            " removed, partial, run_id FROM current WHERE metric = $metric AND bucket >= $ws"
            " AND bucket < $we"
        )
        if latest
        else f"""
        SELECT NULL::BIGINT AS current_row, dims, measure, bucket, last.v AS value,
               last.x AS exact, last.r AS removed, last.p AS partial, last.run AS run_id
        FROM (
            SELECT dims, measure, bucket,
                   arg_max({{'v': value, 'x': exact, 'r': removed, 'p': partial,
                             'run': run_id}}, {VERSION_ORDER}) AS last
            FROM versions
            WHERE metric = $metric AND bucket >= $ws AND bucket < $we
              AND (known_at < $k OR (known_at = $k AND run_id < $run))
            GROUP BY ALL
        )
    """
    )


class Commit:
    """One run's diff and commit, inside one write transaction.

    Attributes:
        run_id: the run.
        record: the run as committed, once :meth:`commit` ran.
    """

    def __init__(
        self,
        cur: duckdb.DuckDBPyConnection,
        run_id: int,
        commit_seq: Callable[[duckdb.DuckDBPyConnection], int],
    ):
        self._cur = cur
        self._commit_seq = commit_seq
        self.run_id = run_id
        self.record: RunRecord | None = None
        self._values: StagedValues | None = None
        self._counts: dict[str, int] = {}
        self._latest = True

    def diff(self, values: StagedValues) -> DiffSummary:
        """Compare ``values`` with the values of their window as known at their known time.

        The diff is kept in the transaction for :meth:`commit`; nothing is written yet.
        """
        source = (
            f"({values.sql})"
            if values.sql
            else "(SELECT NULL::VARCHAR AS dims, NULL::VARCHAR AS measure, NULL::TIMESTAMP "
            "AS bucket, NULL::DOUBLE AS value, NULL::BOOLEAN AS value_null, "
            "NULL::VARCHAR AS exact WHERE false)"
        )
        window = {"metric": values.metric, "ws": values.window_start, "we": values.window_end}
        at = {"k": values.known_at, "run": self.run_id}
        # the values as known at this run's known time: the current ones, unless a version
        # in the window is known later (this run replays or back-fills the past)
        row = self._cur.execute(
            "SELECT count(*) FROM current WHERE metric = $metric AND bucket >= $ws"
            " AND bucket < $we AND (known_at > $k OR (known_at = $k AND run_id > $run))",
            {**window, **at},
        ).fetchone()
        latest = not (row and row[0])
        known = _known_values(values, latest)
        self._cur.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE diff AS
            SELECT * FROM (
            WITH s AS (
                SELECT dims, measure, bucket,
                       CASE WHEN value_null THEN NULL ELSE value END AS value,
                       {
                "CASE WHEN value_null THEN NULL ELSE exact END" if values.exact else "NULL::VARCHAR"
            } AS exact
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
                   c.current_row, c.run_id AS old_run, false AS redefined,
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
            {**window, **({} if latest else at), "measures": list(values.measures), "tol": values.tolerance},
        )
        if values.definition is not None:
            self._mark_redefined(values, at)
        summary, counts = self._summarize(values, source)
        self._values, self._counts, self._latest = values, counts, latest
        return summary

    def _mark_redefined(self, values: StagedValues, at: dict[str, Any]) -> None:
        """Mark in the diff the changes a redefinition made: a value whose version before came
        from another definition, changed by the first pull under this definition that held its
        bucket."""
        self._cur.execute(
            """
            UPDATE diff SET redefined = true
            WHERE kind IN ('revised', 'removed')
              AND (SELECT definition FROM runs WHERE id = diff.old_run) <> $def
              AND NOT EXISTS (
                  SELECT 1 FROM runs s WHERE s.metric = $metric AND s.status = 'succeeded'
                    AND s.definition = $def AND s.window_start <= diff.bucket
                    AND diff.bucket < s.window_end
                    AND (s.known_at < $k OR (s.known_at = $k AND s.id < $run)))
            """,
            {"metric": values.metric, "def": values.definition, **at},
        )

    def _summarize(self, values: StagedValues, source: str) -> tuple[DiffSummary, dict[str, int]]:
        """The diff's counts (new, revised, removed, unchanged) and its largest revision."""
        # only what changes is kept: every staged value is new, revised or unchanged. A
        # removal is a revision to no value: it counts as a change of 100 %.
        row = self._cur.execute(
            f"""
            SELECT count(*) FILTER (WHERE kind = 'new'),
                   count(*) FILTER (WHERE kind = 'revised'),
                   count(*) FILTER (WHERE kind = 'removed'),
                   {values.count if values.count is not None else f"(SELECT count(*) FROM {source})"},
                   max(CASE WHEN kind = 'removed' THEN 1.0
                            ELSE abs(new_value - old_value) / abs(old_value) END) FILTER (
                       WHERE kind IN ('revised', 'removed') AND old_value IS NOT NULL
                       AND (new_value IS NOT NULL OR kind = 'removed')
                       AND old_value <> 0 AND NOT old_partial AND NOT redefined
                   ) * 100,
                   count(*) FILTER (WHERE redefined)
            FROM diff
            """
        ).fetchone()
        assert row is not None
        new, revised, removed, staged_rows, max_revision, redefined = row
        counts = {
            "new": int(new),
            "revised": int(revised),
            "removed": int(removed),
            "unchanged": int(staged_rows) - int(new) - int(revised),
        }
        unchanged_before = values.unchanged_before
        if unchanged_before is not None and unchanged_before[0] < unchanged_before[1]:
            row = self._cur.execute(
                "SELECT count(*) FROM current WHERE metric = ? AND NOT removed "
                "AND bucket >= ? AND bucket < ?",
                [values.metric, *unchanged_before],
            ).fetchone()
            counts["unchanged"] += int(row[0]) if row else 0

        summary = DiffSummary(counts=counts, max_revision_pct=max_revision, redefined=int(redefined))
        return summary, counts

    def commit(self, request: CommitRequest) -> RunRecord:
        """Write the diff as the run's versions, and end the run ``succeeded``."""
        values = self._values
        assert values is not None, "diff() comes first"
        self._write_versions(values, request.settled_end)
        self._log(values.metric, request)
        self.record = self._close_run(values, request)
        self._write_arrivals(values)
        return self.record

    def _write_versions(self, values: StagedValues, settled_end: datetime) -> None:
        """Add the diff's versions and bring ``current`` up to them."""
        counts, latest = self._counts, self._latest
        metric, run_id, known_at = values.metric, self.run_id, values.known_at
        window_start, window_end = values.window_start, values.window_end
        # the one bucket of the window this run may have seen partial is partial still
        # unless another run saw it complete
        row = self._cur.execute(
            "SELECT $se < $we AND NOT EXISTS (SELECT 1 FROM runs WHERE metric = $metric"
            " AND status = 'succeeded' AND window_start <= $se AND $se < settled_end)",
            {"metric": metric, "we": window_end, "se": settled_end},
        ).fetchone()
        params = {
            "metric": metric,
            "run": run_id,
            "k": known_at,
            "se": settled_end,
            "still": bool(row and row[0]),
        }
        self._cur.execute(
            """
            INSERT INTO versions
            SELECT $metric, dims, measure, bucket, $run,
                   CASE WHEN kind = 'removed' THEN NULL ELSE new_value END,
                   kind = 'removed', kind <> 'removed' AND bucket >= $se, $k,
                   CASE WHEN kind = 'removed' THEN NULL ELSE new_exact END, redefined
            FROM diff
            """,
            {k: params[k] for k in ("metric", "run", "k", "se")},
        )
        changed = counts["revised"] + counts["removed"] + (0 if latest else counts["new"])
        if changed and latest:  # every current value of the window is known before this
            self._replace_current(params)
        elif changed:
            self._order_current(params)
        if counts["new"]:
            self._insert_current(params, latest)
        # what this run saw complete is settled, whether or not its value changed
        self._cur.execute(
            "UPDATE current SET partial = false WHERE metric = ? AND partial AND bucket >= ? AND bucket < ?",
            [metric, window_start, settled_end],
        )

    def _replace_current(self, params: dict[str, Any]) -> None:
        """Bring the current values the diff changed to this run's versions (every current
        value of the window is known before them)."""
        self._cur.execute(
            """
            UPDATE current SET
                value = CASE WHEN d.kind = 'removed' THEN NULL ELSE d.new_value END,
                exact = CASE WHEN d.kind = 'removed' THEN NULL ELSE d.new_exact END,
                removed = d.kind = 'removed',
                partial = d.bucket >= $se AND $still,
                run_id = $run, known_at = $k, versions = current.versions + 1
            FROM diff d
            WHERE current.rowid = d.current_row
            """,
            {k: v for k, v in params.items() if k != "metric"},
        )

    def _order_current(self, params: dict[str, Any]) -> None:
        """Add the diff's versions to the current values in the order they are known."""
        # a version known after every other one becomes the current value; one known
        # earlier only adds to the count (and may be the first one known)
        later = "(current.known_at < $k OR (current.known_at = $k AND current.run_id < $run))"
        earlier = (
            "(current.first_known_at > $k OR (current.first_known_at = $k AND current.first_run > $run))"
        )
        self._cur.execute(
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

    def _insert_current(self, params: dict[str, Any], latest: bool) -> None:
        """Add a current value for each value the diff found new."""
        partial = "(bucket >= $se AND $still)"
        self._cur.execute(
            f"""
            INSERT INTO current
            SELECT $metric, dims, measure, bucket, new_value, false, {partial}, $run,
                   new_value, $run, 1, $k, new_exact, new_exact, $k
            FROM diff d WHERE kind = 'new'
            """
            + (
                ""
                if latest
                else " AND NOT EXISTS (SELECT 1 FROM current c WHERE c.metric = $metric"
                " AND c.dims = d.dims AND c.measure = d.measure"
                " AND c.bucket = d.bucket)"
            ),
            params,
        )

    def _write_arrivals(self, values: StagedValues) -> None:
        """Bring ``arrivals`` (the changes late data made) up to this run, once it is recorded
        as succeeded: a run known after every version of its window adds its own changes; one
        known earlier (a replay or back-fill of the past) sits between versions and pulls
        known before and after it, so the changes of its window are found again."""
        metric, known_at = values.metric, values.known_at
        if not self._latest:
            window = [metric, values.window_start, values.window_end]
            for table in ("arrivals", "arrival_sums"):
                self._cur.execute(
                    f"DELETE FROM {table} WHERE metric = ? AND bucket >= ? AND bucket < ?", window
                )
            fill_arrivals(self._cur, metric, (values.window_start, values.window_end))
            return
        if not (self._counts["revised"] or self._counts["removed"]):
            return
        self._cur.execute(
            """
            INSERT INTO arrivals
            WITH d AS (
                SELECT dims, measure, bucket,
                       CASE WHEN kind = 'removed' THEN 0 ELSE coalesce(new_value, 0) END
                           AS value,
                       coalesce(old_value, 0) AS prev_value
                FROM diff WHERE kind IN ('revised', 'removed') AND NOT redefined
            ), seen AS (  -- the last successful pull before this run that held each bucket
                SELECT b.bucket, max(r.known_at) AS known_at
                FROM (SELECT DISTINCT bucket FROM d) b JOIN runs r
                  ON r.metric = $metric AND r.status = 'succeeded' AND r.known_at IS NOT NULL
                 AND r.window_start <= b.bucket AND b.bucket < r.window_end
                 AND (r.known_at < $k OR (r.known_at = $k AND r.id < $run))
                GROUP BY b.bucket
            )
            SELECT $metric, d.dims, d.measure, d.bucket, $run, $k, d.value, d.prev_value,
                   seen.known_at
            FROM d LEFT JOIN seen ON seen.bucket = d.bucket
            WHERE d.value <> d.prev_value
            """,
            {"metric": metric, "k": known_at, "run": self.run_id},
        )
        sum_arrivals(self._cur, "metric = ? AND run_id = ?", [metric, self.run_id])

    def _log(self, metric: str, request: CommitRequest) -> None:
        """The run's closing lines of log, and its change-probe fingerprints."""
        counts, run_id = self._counts, self.run_id
        lines = [("warning", line) for line in request.log_warnings]
        lines.append(
            (
                "info",
                f"succeeded: {request.rows} rows; {counts['new']} new, "
                f"{counts['revised']} revised, {counts['removed']} removed, "
                f"{counts['unchanged']} unchanged",
            )
        )
        for level, message in lines:
            append_log(self._cur, run_id, datetime.now(), level, message)
        if request.probes:
            self._cur.executemany(
                "INSERT INTO probes VALUES (?, ?, ?, ?)",
                [[metric, bucket, run_id, fp] for bucket, fp in request.probes],
            )

    def _close_run(self, values: StagedValues, request: CommitRequest) -> RunRecord:
        """End the run ``succeeded``, with its counts, in its place in the order of commits."""
        counts = self._counts
        self._cur.execute(  # no RETURNING: a team store (DuckLake) has none for updates
            "UPDATE runs SET status = 'succeeded', finished_at = ?, attempts = ?, rows = ?,"
            " new = ?, revised = ?, removed = ?, unchanged = ?, error = NULL, measures = ?,"
            " schema_change = ?, warnings = ?, checks = ?, duration_s = ?, known_at = ?,"
            " settled_end = ?, commit_seq = ? WHERE id = ?",
            [
                request.finished_at,
                request.attempts,
                request.rows,
                counts["new"],
                counts["revised"],
                counts["removed"],
                counts["unchanged"],
                json.dumps(list(values.measures)),
                json.dumps(dict(request.schema_change)),
                json.dumps(list(request.warnings)),
                json.dumps(list(request.checks)),
                request.duration_s,
                values.known_at,
                request.settled_end,
                self._commit_seq(self._cur),
                self.run_id,
            ],
        )
        row = self._cur.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", [self.run_id]).fetchone()
        assert row is not None
        return run_from_row(row)


class Versions:
    """The ``versions``, ``current``, ``arrivals``, ``arrival_sums`` and ``probes`` tables,
    written only by a commit."""

    def __init__(self, db: Database, on_commit: Callable[[RunRecord], None]):
        self._db = db
        self._on_commit = on_commit

    @contextmanager
    def begin_commit(self, run_id: int) -> Iterator[Commit]:
        """A write transaction for run ``run_id``'s diff and commit; leaving the block by an
        exception writes nothing, and so does leaving it without :meth:`Commit.commit`."""
        with self._db.write() as cur:
            commit = Commit(cur, run_id, self.next_commit_seq)
            yield commit
        if commit.record is not None:
            self._on_commit(commit.record)

    def next_commit_seq(self, cur: duckdb.DuckDBPyConnection) -> int:
        """The place of a commit in the order of all commits (inside its write transaction)."""
        return self._db.next_id(cur, "commit_seqs")

    def probe_fingerprints(self, metric: str, start: datetime, end: datetime) -> dict[datetime, str]:
        """The latest change-probe fingerprint of each bucket in [start, end)."""
        rows = self._db.read(
            "SELECT bucket, arg_max(fingerprint, run_id) FROM probes WHERE metric = ? "
            "AND bucket >= ? AND bucket < ? GROUP BY bucket",
            [metric, start, end],
        )
        return {b: fp for b, fp in rows}
