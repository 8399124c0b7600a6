"""The reads of stored values: current values and time travel (as known after run N, as known
at T), revisions, the series of a metric and the latest values (the numpy columns a chart
loads are read in :mod:`chart_reads`).

``current`` keeps the latest version of each (metric, series, measure, bucket), so a read of
the present is a read of one table; a read of the past aggregates ``versions`` over the runs
that were known by then.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lookback_gui.core.store.database import Database
from lookback_gui.core.store.records import (
    DEFAULT_TOLERANCE,
    HistoryRow,
    Number,
    RevisionRow,
    stored_number,
)
from lookback_gui.core.store.runs import RunLog
from lookback_gui.core.store.schema import VERSION_ORDER


class Reads:
    """Reads of ``current`` and ``versions``.

    The series of a metric are kept in memory until its next commit (:meth:`forget_metric`) or
    until the store file is opened again.
    """

    def __init__(self, db: Database, runs: RunLog):
        self._db = db
        self._runs = runs
        self._lock = threading.Lock()
        self._series: dict[tuple[str, int | None], list[tuple[dict[str, Any], str, float]]] = {}
        self._commits: dict[str, int] = {}  # commits per metric since the file was opened
        db.on_reopen(self.forget)

    def forget(self) -> None:
        """Drop what is kept in memory: another process may have written since."""
        with self._lock:
            self._series.clear()
            self._commits.clear()

    def forget_metric(self, metric: str) -> None:
        """``metric`` has committed a run: its series may have changed."""
        with self._lock:
            self._commits[metric] = self._commits.get(metric, 0) + 1
            for key in [k for k in self._series if k[0] == metric]:
                del self._series[key]

    def _known_runs(
        self, metric: str, as_of_run: int | None, as_known_at: datetime | None
    ) -> tuple[str, dict[str, Any]]:
        """The succeeded runs of ``metric`` whose versions a view of the past sees: those
        committed by the time run ``as_of_run`` ended, or those known at ``as_known_at`` or
        before; as SQL for a CTE, with its parameters."""
        if as_of_run is not None:
            self._runs.run(as_of_run)  # an unknown run is a usage error
            return (
                "SELECT id, known_at, window_start, settled_end FROM runs"
                " WHERE metric = $metric AND status = 'succeeded' AND commit_seq <= ("
                "SELECT coalesce((SELECT commit_seq FROM runs WHERE id = $bound), "
                "(SELECT max(commit_seq) FROM runs WHERE id <= $bound), 0))",
                {"metric": metric, "bound": as_of_run},
            )
        return (
            "SELECT id, known_at, window_start, settled_end FROM runs"
            " WHERE metric = $metric AND status = 'succeeded' AND known_at <= $bound",
            {"metric": metric, "bound": as_known_at},
        )

    def values_known(
        self,
        metric: str,
        as_of_run: int | None,
        as_known_at: datetime | None,
        where: str = "",
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """SQL giving the values of ``metric`` as known after run ``as_of_run`` or at
        ``as_known_at``, in the columns of ``current`` that the reads use."""
        runs, params = self._known_runs(metric, as_of_run, as_known_at)
        sql = f"""
            WITH r AS ({runs}),
            v AS (
                SELECT dims, measure, bucket,
                       arg_max({{'v': value, 'x': exact, 'r': removed, 'run': run_id,
                                 'k': known_at}}, {VERSION_ORDER}) AS last,
                       arg_min({{'v': value, 'x': exact}}, {VERSION_ORDER}) AS first,
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

    def history_query(
        self,
        metric: str,
        as_of_run: int | None = None,
        as_known_at: datetime | None = None,
        buckets: tuple[datetime, datetime] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """SQL (with its parameters) for the rows of :meth:`history`, in their order: bucket,
        dims, measure, value, exact, first_value, first_exact, versions, partial, run_id,
        known_at (``exact``: the canonical text of an integer or DECIMAL value); only the
        buckets in [start, end) of ``buckets`` when given."""
        span = "" if buckets is None else " AND bucket >= $span_start AND bucket < $span_end"
        params: dict[str, Any]
        if as_of_run is None and as_known_at is None:
            sql, params = (
                "SELECT bucket, dims, measure, CASE WHEN removed THEN NULL ELSE value"
                " END AS value, CASE WHEN removed THEN NULL ELSE exact END AS exact,"
                " first_value, first_exact, versions, run_id, partial, known_at"
                f" FROM current WHERE metric = $metric{span}",
                {"metric": metric},
            )
        else:
            sql, params = self.values_known(metric, as_of_run, as_known_at, span)
        if buckets is not None:
            params = {**params, "span_start": buckets[0], "span_end": buckets[1]}
        return (
            f"SELECT bucket, dims, measure, value, exact, first_value, first_exact, versions,"
            f" partial, run_id, known_at FROM ({sql}) ORDER BY bucket, dims, measure",
            params,
        )

    def history(
        self, metric: str, as_of_run: int | None = None, as_known_at: datetime | None = None
    ) -> list[HistoryRow]:
        """Current values of ``metric``; or the values as known right after run ``as_of_run``
        committed; or as known at ``as_known_at`` (for each value, its version with the latest
        known time at or before it)."""
        rows = self._db.read(*self.history_query(metric, as_of_run, as_known_at))
        return [
            HistoryRow(
                bucket=b,
                dims=json.loads(d),
                measure=m,
                value=stored_number(v, x),
                first_value=stored_number(f, fx),
                versions=int(n),
                revised=int(n) > 1,
                partial=bool(p),
                last_run=int(r),
                known_at=k,
            )
            for b, d, m, v, x, f, fx, n, p, r, k in rows
        ]

    def revisions_query(
        self,
        metric: str,
        newest: int | None = None,
        run: int | None = None,
        known: tuple[datetime, datetime, datetime, datetime] | None = None,
    ) -> tuple[str, list[Any]]:
        """SQL (with its parameters) for the rows of :meth:`revisions`, in their order: run_id,
        bucket, dims, measure, old_value, old_exact, new_value, new_exact, known_at,
        prev_known_at, kind (``revision``, ``removal`` or ``redefinition``). With ``known`` =
        (start, end, first bucket, last bucket): only the
        revisions known in [start, end), whose buckets lie between the two given."""
        where = "metric = ?"
        params: list[Any] = [metric]
        if run is not None:  # only the values that run touched need their history
            where += (
                " AND (dims, measure, bucket) IN (SELECT (dims, measure, bucket) "
                "FROM versions WHERE metric = ? AND run_id = ?)"
            )
            params += [metric, run]
        keep = "" if run is None else f" AND run_id = {int(run)}"
        if known is not None:  # the values known then, with the versions before them
            where += (
                " AND known_at < ? AND bucket >= ? AND bucket <= ? AND (dims, measure,"
                " bucket) IN (SELECT (dims, measure, bucket) FROM versions WHERE"
                " metric = ? AND known_at >= ? AND known_at < ?)"
            )
            params += [known[1], known[2], known[3], metric, known[0], known[1]]
            keep += " AND known_at >= ?"
            params.append(known[0])
        tail = (
            "" if newest is None else f" ORDER BY known_at DESC, run_id DESC, bucket DESC LIMIT {int(newest)}"
        )
        return (
            f"""
            SELECT run_id, bucket, dims, measure, old_value, old_exact, new_value, new_exact,
                   known_at, prev_known_at,
                   CASE WHEN coalesce(redefined, false) THEN 'redefinition'
                        WHEN removed THEN 'removal' ELSE 'revision' END AS kind
            FROM (
                SELECT run_id, bucket, dims, measure, known_at, redefined,
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
            """,
            params,
        )

    def revisions(self, metric: str, newest: int | None = None, run: int | None = None) -> list[RevisionRow]:
        """Every revision and removal of ``metric`` in known-time order: only the ``newest``
        ones, or only those run ``run`` made, when given.

        A revision is a version whose value differs from the one before it in known-time
        order (exactly for integer and DECIMAL measures, within the float tolerance for the
        others): a version slotted in before a later one can make that one equal to its new
        predecessor, and it is then no revision any more.
        """
        rows = self._db.read(*self.revisions_query(metric, newest, run))
        return [
            RevisionRow(
                run=r,
                bucket=b,
                dims=json.loads(d),
                measure=m,
                old_value=stored_number(o, ox),
                new_value=stored_number(n, nx),
                known_at=k,
                prev_known_at=pk,
                kind=kind,
            )
            for r, b, d, m, o, ox, n, nx, k, pk, kind in rows
        ]

    def series(
        self,
        metric: str,
        top: int | None = None,
        as_of_run: int | None = None,
        as_known_at: datetime | None = None,
    ) -> list[tuple[dict[str, Any], str, float]]:
        """Each (dims, measure) of ``metric`` with its size (sum of |value|), largest first;
        only the ``top`` largest of each measure when given (a metric may have a hundred
        thousand series, and a chart offers a few). The sizes are those of the current values,
        or of the values as known after run ``as_of_run`` or at ``as_known_at``."""
        keep = (
            ""
            if top is None
            else (f"QUALIFY row_number() OVER (PARTITION BY measure ORDER BY size DESC, dims) <= {int(top)}")
        )
        if as_of_run is not None or as_known_at is not None:
            values, params = self.values_known(metric, as_of_run, as_known_at)
            rows = self._db.read(
                f"SELECT dims, measure, coalesce(sum(abs(value)), 0) AS size FROM ({values}) "
                f"GROUP BY dims, measure {keep} ORDER BY size DESC, dims, measure",
                params,
            )
            return [(json.loads(d), m, float(size)) for d, m, size in rows]
        key = (metric, top)
        with self._lock:  # kept until the metric's next commit or until another
            known = self._series.get(key)  # process had the store
            generation = self._commits.get(metric, 0)
        if known is None:
            rows = self._db.read(
                "SELECT dims, measure, coalesce(sum(abs(value)), 0) AS size FROM current WHERE "
                f"metric = ? GROUP BY dims, measure {keep} ORDER BY size DESC, dims, measure",
                [metric],
            )
            known = [(json.loads(d), m, float(size)) for d, m, size in rows]
            with self._lock:
                if self._commits.get(metric, 0) == generation:
                    self._series[key] = known
        return [(dict(d), m, size) for d, m, size in known]

    def latest_values(
        self, metric: str, measure: str, series: Mapping[str, Any], since: datetime | None = None
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
            where.append(
                f"(CASE json_type(dims, {p}) WHEN 'BOOLEAN' THEN CASE WHEN"
                f" CAST(json_extract(dims, {p}) AS BOOLEAN) THEN 'True' ELSE 'False'"
                f" END ELSE coalesce(json_extract_string(dims, {p}), 'None') END)"
                f" = $v{index}"
            )
        match = " AND ".join(where)
        with self._db.reading() as cur:
            cur.execute("BEGIN TRANSACTION")  # one snapshot for both reads
            found = None
            for bound in [since, None] if since is not None else [None]:
                row = cur.execute(
                    f"SELECT max(bucket) FILTER (WHERE NOT partial), max(bucket) FROM current"
                    f" WHERE {match}" + ("" if bound is None else " AND bucket >= $since"),
                    {**params, **({} if bound is None else {"since": bound})},
                ).fetchone()
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
                + (" AND NOT partial" if complete else "")
                + " ORDER BY dims",
                {**params, "latest": latest},
            ).fetchall()
            cur.execute("COMMIT")
        return latest, [(json.loads(d), stored_number(v, x)) for d, v, x in rows]  # type: ignore[misc]
