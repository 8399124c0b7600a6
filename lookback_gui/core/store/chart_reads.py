"""The reads a chart makes: one series as numpy columns, current or as known in the past
(after run N, at T), and the run that stored one bucket."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lookback_gui.core.store.database import Database
from lookback_gui.core.store.reads import Reads

if TYPE_CHECKING:  # numpy is loaded by the chart reads, not by every command that reads
    import numpy as np


class ChartReads:
    """Reads of one series of ``current`` (or of ``versions``, through :meth:`Reads.values_known`)
    as numpy columns."""

    def __init__(self, db: Database, reads: Reads):
        self._db = db
        self._reads = reads

    def chart_data(
        self,
        metric: str,
        measure: str,
        dims: Mapping[str, Any],
        as_of_run: int | None = None,
        as_known_at: datetime | None = None,
    ) -> dict[str, np.ndarray]:
        """One series as numpy arrays for a chart, buckets ascending: current, or as known
        after run ``as_of_run`` or at ``as_known_at``.

        Keys: bucket (datetime64), value, first_value (float, NaN for none), versions,
        last_run (int), removed, partial (bool).
        """
        key = _series_key(metric, measure, dims)
        with self._db.reading() as cur:
            if as_of_run is None and as_known_at is None:
                return _sorted_by_bucket(
                    cur.execute(
                        "SELECT bucket, coalesce(value, 'NaN'::DOUBLE) AS value,"
                        " coalesce(first_value, 'NaN'::DOUBLE) AS first_value, versions,"
                        " run_id AS last_run, removed, partial FROM current"
                        " WHERE metric = ? AND measure = ? AND dims = ?",
                        key,
                    ).fetchnumpy()
                )
            sql, params = self._reads.values_known(
                metric,
                as_of_run,
                as_known_at,
                "AND measure = $measure AND dims = $dims",
                {"measure": key[1], "dims": key[2]},
            )
            return _sorted_by_bucket(
                cur.execute(
                    f"SELECT bucket, coalesce(value, 'NaN'::DOUBLE) AS value,"
                    f" coalesce(first_value, 'NaN'::DOUBLE) AS first_value, versions,"
                    f" run_id AS last_run, removed, partial FROM ({sql})",
                    params,
                ).fetchnumpy()
            )

    def chart_series(
        self,
        metric: str,
        measure: str,
        dims: Mapping[str, Any],
        as_of_run: int | None = None,
        as_known_at: datetime | None = None,
    ) -> dict[str, np.ndarray]:
        """One series as chart_data has it, in the form quickest to load for a long series.

        ``bucket`` and ``value`` cover every bucket; ``marked`` holds the positions of the
        buckets with more than one version or still partial, and first_value, versions,
        last_run, removed and partial are given for those only (in the same order). Every
        other bucket has one version: its first value is its value, it is neither removed nor
        partial, and the run that stored it is ``bucket_run``. Of a long series few buckets are
        marked, and reading and holding four more columns for all of them would cost more than
        the values themselves.
        """
        import numpy as np

        if as_of_run is not None or as_known_at is not None:  # the versions are aggregated
            full = self.chart_data(metric, measure, dims, as_of_run, as_known_at)  # anyway
            at = np.flatnonzero((full["versions"] > 1) | full["partial"])
            return {
                "bucket": full["bucket"],
                "value": full["value"],
                "marked": at,
                **{k: full[k][at] for k in _MARKED_COLUMNS},
            }
        key = _series_key(metric, measure, dims)
        with self._db.reading() as cur:
            cur.execute("BEGIN TRANSACTION")  # one snapshot for both reads
            bulk = _sorted_by_bucket(
                cur.execute(
                    "SELECT bucket, coalesce(value, 'NaN'::DOUBLE) AS value FROM current"
                    " WHERE metric = ? AND measure = ? AND dims = ?",
                    key,
                ).fetchnumpy()
            )
            marked = _sorted_by_bucket(
                cur.execute(
                    "SELECT bucket, coalesce(first_value, 'NaN'::DOUBLE) AS first_value, versions,"
                    " run_id AS last_run, removed, partial FROM current"
                    " WHERE metric = ? AND measure = ? AND dims = ? AND (versions > 1 OR partial)",
                    key,
                ).fetchnumpy()
            )
            cur.execute("COMMIT")
        return {
            **bulk,
            "marked": np.searchsorted(bulk["bucket"], marked["bucket"]),
            **{k: marked[k] for k in _MARKED_COLUMNS},
        }

    def bucket_run(self, metric: str, measure: str, dims: Mapping[str, Any], bucket: datetime) -> int | None:
        """The run that stored the current value of one bucket."""
        rows = self._db.read(
            "SELECT run_id FROM current WHERE metric = ? AND measure = ? AND dims = ? AND bucket = ?",
            [*_series_key(metric, measure, dims), bucket],
        )
        return int(rows[0][0]) if rows else None


_MARKED_COLUMNS = ("first_value", "versions", "last_run", "removed", "partial")


def _series_key(metric: str, measure: str, dims: Mapping[str, Any]) -> list[str]:
    """metric, measure and dims as the store's columns hold them (dims as compact JSON)."""
    return [
        metric,
        measure,
        json.dumps(dict(sorted(dims.items())), separators=(",", ":"), ensure_ascii=False),
    ]


def _sorted_by_bucket(data: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Columns from fetchnumpy, sorted by their bucket column.

    Sorted here rather than by DuckDB: the latest values come nearly in bucket order (as the
    pulls stored them), which a stable sort handles in a fraction of the time of ORDER BY, and
    an already sorted result costs one comparison pass.
    """
    import numpy as np

    arrays = {k: np.asarray(v) for k, v in data.items()}
    buckets = arrays["bucket"].astype("datetime64[us]", copy=False).view(np.int64)
    if len(buckets) > 1 and not bool(np.all(buckets[1:] >= buckets[:-1])):
        order = np.argsort(buckets, kind="stable")
        arrays = {k: v[order] for k, v in arrays.items()}
    return arrays
