"""How each value of a metric developed: the stored versions read as a revision triangle.

A value (series, measure, bucket) is *watched from its start* when its first version is known at
age 0 (age 1 with complete buckets only): the pulls saw it from its first bucket, so its versions
tell how much of its final value was known at each age. The advisor's backtests, the nowcast and
the triangle in the Advisor tab all read the values this way. Ages count buckets from the bucket
to the one holding the known time, the current bucket being age 0 (see the store).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from lookback_gui.core.project import MetricConfig
from lookback_gui.core.store import Store
from lookback_gui.core.timing.windows import Grain

# numpy's calendar units that count buckets of each grain (weeks counted from a Thursday, but
# differences between Monday-aligned buckets are exact)
_UNIT = {Grain.MINUTE: "m", Grain.HOUR: "h", Grain.DAY: "D", Grain.WEEK: "W", Grain.MONTH: "M"}


def bucket_index(buckets: np.ndarray, grain: Grain) -> np.ndarray:
    """Buckets as whole numbers of the grain, so that differences are ages."""
    return np.asarray(buckets).astype(f"datetime64[{_UNIT[grain]}]").astype(np.int64)


def age_sql(grain: Grain, later: str, earlier: str) -> str:
    part = grain.value
    return f"date_diff('{part}', {earlier}, date_trunc('{part}', {later}))"


def load_revisions(store: Store, config: MetricConfig) -> dict[str, np.ndarray]:
    """Every version after the first of each value whose value changed, with the ages of its
    observations: ``age`` (its own) and ``prev_age`` (the last successful pull before it that
    held the bucket)."""
    age = age_sql(config.grain, "v.known_at", "v.bucket")
    prev_age = age_sql(config.grain, "p.prev_known_at", "p.bucket")
    with store.reading() as cur:
        return cur.execute(
            f"""
            WITH v AS (
                SELECT v.dims, v.measure, v.bucket, v.run_id, v.known_at, r.trigger,
                       CASE WHEN v.removed THEN 0 ELSE coalesce(v.value, 0) END AS value,
                       lag(CASE WHEN v.removed THEN 0 ELSE coalesce(v.value, 0) END)
                           OVER w AS prev_value,
                       row_number() OVER w AS n,
                       {age} AS age
                FROM versions v JOIN runs r ON r.id = v.run_id
                WHERE v.metric = $metric
                WINDOW w AS (PARTITION BY v.dims, v.measure, v.bucket
                             ORDER BY v.known_at, v.run_id)
            ), revs AS (SELECT * FROM v WHERE n > 1 AND value <> prev_value),
            p AS (
                SELECT revs.dims, revs.measure, revs.bucket, revs.run_id,
                       max(r2.known_at) AS prev_known_at
                FROM revs JOIN runs r2
                  ON r2.metric = $metric AND r2.status = 'succeeded'
                 AND (r2.known_at < revs.known_at
                      OR (r2.known_at = revs.known_at AND r2.id < revs.run_id))
                 AND r2.window_start <= revs.bucket AND revs.bucket < r2.window_end
                GROUP BY ALL
            )
            SELECT revs.dims, revs.measure, revs.bucket, revs.run_id, revs.trigger,
                   revs.prev_value, revs.value, revs.age,
                   coalesce({prev_age}, revs.age - 1) AS prev_age
            FROM revs LEFT JOIN p USING (dims, measure, bucket, run_id)
            ORDER BY revs.known_at, revs.run_id, revs.bucket
            """,
            {"metric": config.name},
        ).fetchnumpy()


def load_values(store: Store, config: MetricConfig) -> dict[str, np.ndarray]:
    """Per value: its first version's value and age, and its final value."""
    age = age_sql(config.grain, "v.known_at", "v.bucket")
    order = "{'k': v.known_at, 'r': v.run_id}"
    with store.reading() as cur:
        return cur.execute(
            f"""
            SELECT v.measure,
                   arg_min(CASE WHEN v.removed THEN 0 ELSE coalesce(v.value, 0) END, {order})
                       AS first_value,
                   arg_min({age}, {order}) AS first_age,
                   arg_max(CASE WHEN v.removed THEN 0 ELSE coalesce(v.value, 0) END, {order})
                       AS final_value,
                   v.dims, v.bucket
            FROM versions v JOIN runs r ON r.id = v.run_id
            WHERE v.metric = $metric
            GROUP BY v.dims, v.measure, v.bucket
            ORDER BY v.dims, v.measure, v.bucket
            """,
            {"metric": config.name},
        ).fetchnumpy()


def knowledge_horizon(store: Store, metric: str) -> datetime | None:
    """The latest known time of the metric's successful pulls: what the store knows up to."""
    with store.reading() as cur:
        row = cur.execute(
            "SELECT max(known_at) FROM runs WHERE metric = ? AND status = 'succeeded'", [metric]
        ).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class Development:
    """The values watched from their start and the changes each went through.

    Attributes:
        dims, measure, bucket: one entry per value.
        index: the bucket as a whole number of the grain (``bucket_index``).
        first_age: the age of its first version (0, or 1 with complete buckets only).
        first, final: its first and its current value (0 for none).
        reached: the age its bucket has reached in the store's knowledge (the latest known
            time of a successful pull).
        change_owner, change_age, change_delta: every change (a revision, in knowledge order):
            the value it belongs to, the age it was seen at, and by how much it moved.
        settle_age: the oldest age at which any value of the metric changed (0 for none).
        revision_owner: for each row of the revisions it was built from, the value it
            belongs to (-1 for a value not watched from its start).
    """

    dims: np.ndarray
    measure: np.ndarray
    bucket: np.ndarray
    index: np.ndarray
    first_age: np.ndarray
    first: np.ndarray
    final: np.ndarray
    reached: np.ndarray
    change_owner: np.ndarray
    change_age: np.ndarray
    change_delta: np.ndarray
    settle_age: int
    revision_owner: np.ndarray

    def __len__(self) -> int:
        return len(self.first)

    def known(self, ages: int) -> np.ndarray:
        """The value as known at each age 0 … ages - 1: a (values × ages) matrix, NaN before a
        value's first version and after the age its bucket has reached."""
        count = len(self)
        steps = np.zeros((count, ages + 1))
        at = np.minimum(self.change_age, ages)
        np.add.at(steps, (self.change_owner, at), self.change_delta)
        matrix = self.first[:, None] + np.cumsum(steps[:, :ages], axis=1)
        grid = np.arange(ages)[None, :]
        seen = (grid >= self.first_age[:, None]) & (grid <= self.reached[:, None])
        return np.where(seen, matrix, np.nan)

    def series_keys(self) -> np.ndarray:
        """One integer per (dims, measure), in order of first appearance."""
        keys = np.char.add(np.char.add(self.measure.astype(str), "\x00"), self.dims.astype(str))
        _unique, inverse = np.unique(keys, return_inverse=True)
        return np.asarray(inverse, dtype=np.int64)


def development(
    config: MetricConfig,
    revisions: dict[str, np.ndarray],
    values: dict[str, np.ndarray],
    horizon: datetime | None,
) -> Development:
    """The values of ``values`` watched from their start, with their changes from
    ``revisions`` (the answers of :func:`load_revisions` and :func:`load_values`)."""
    youngest = 1 if config.complete_buckets_only else 0
    empty_i = np.zeros(0, dtype=np.int64)
    if not values or len(values.get("measure", ())) == 0 or horizon is None:
        return Development(
            *(np.zeros(0, dtype=object),) * 3,
            empty_i,
            empty_i,
            np.zeros(0),
            np.zeros(0),
            empty_i,
            empty_i,
            empty_i,
            np.zeros(0),
            0,
            empty_i,
        )
    young = values["first_age"].astype(np.int64) <= youngest
    dims = np.asarray(values["dims"], dtype=object)[young]
    measure = np.asarray(values["measure"], dtype=object)[young]
    bucket = np.asarray(values["bucket"]).astype("datetime64[us]")[young]
    index = bucket_index(bucket, config.grain)
    horizon_index = int(bucket_index(np.array([np.datetime64(horizon, "us")]), config.grain)[0])
    lookup = {
        (d, m, int(b)): i
        for i, (d, m, b) in enumerate(zip(dims, measure, bucket.astype(np.int64), strict=True))
    }
    owners, ages, deltas, of_revision = [], [], [], []
    if revisions and len(revisions.get("age", ())):
        rev_bucket = np.asarray(revisions["bucket"]).astype("datetime64[us]").astype(np.int64)
        rev_delta = revisions["value"].astype(float) - revisions["prev_value"].astype(float)
        for d, m, b, age, delta in zip(
            revisions["dims"],
            revisions["measure"],
            rev_bucket,
            revisions["age"].astype(np.int64),
            rev_delta,
            strict=True,
        ):
            owner = lookup.get((d, m, int(b)))
            of_revision.append(-1 if owner is None else owner)
            if owner is not None:
                owners.append(owner)
                ages.append(int(age))
                deltas.append(float(delta))
    change_age = np.asarray(ages, dtype=np.int64)
    settle = int(revisions["age"].max()) if revisions and len(revisions.get("age", ())) else 0
    return Development(
        dims=dims,
        measure=measure,
        bucket=bucket,
        index=index,
        first_age=values["first_age"].astype(np.int64)[young],
        first=values["first_value"].astype(float)[young],
        final=values["final_value"].astype(float)[young],
        reached=horizon_index - index,
        change_owner=np.asarray(owners, dtype=np.int64),
        change_age=change_age,
        change_delta=np.asarray(deltas, dtype=float),
        settle_age=max(settle, 0),
        revision_owner=np.asarray(of_revision, dtype=np.int64),
    )
