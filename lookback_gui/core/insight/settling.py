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
from typing import Any

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


def bucket_index_sql(grain: Grain, column: str) -> str:
    """SQL for :func:`bucket_index` of a TIMESTAMP column."""
    if grain is Grain.MONTH:
        return f"((year({column}) - 1970) * 12 + month({column}) - 1)"
    if grain is Grain.WEEK:
        return f"(epoch_us({column}) // 86400000000 // 7)"
    unit = {Grain.MINUTE: 60_000_000, Grain.HOUR: 3_600_000_000, Grain.DAY: 86_400_000_000}[grain]
    return f"(epoch_us({column}) // {unit})"


def _changes_sql(config: MetricConfig, columns: str, where: str = "") -> str:
    """Every change late data made to a value of the metric (a version after the first whose
    value changed, a removal as 0; a redefinition is none), as the store keeps them at each
    commit (its ``arrivals``): ``measure``, ``bucket``, ``run_id``, ``known_at``, ``value``,
    ``prev_value``, ``age`` and ``prev_age`` (the age at which the last successful pull before
    it that held the bucket saw it; one less than its own when none did); ``columns`` are
    further columns of ``v``."""
    age = age_sql(config.grain, "v.known_at", "v.bucket")
    prev_age = age_sql(config.grain, "v.prev_known_at", "v.bucket")
    return f"""
        SELECT v.measure, v.bucket, v.run_id, v.known_at, {columns}, v.value, v.prev_value,
               {age} AS age, coalesce({prev_age}, {age} - 1) AS prev_age
        FROM arrivals v
        WHERE v.metric = $metric {where}
    """


def load_revisions(
    store: Store, config: MetricConfig, since: datetime | None = None, audits_only: bool = False
) -> dict[str, np.ndarray]:
    """Every version after the first of each value whose value changed, with the ages of its
    observations: ``age`` (its own) and ``prev_age`` (the last successful pull before it that
    held the bucket). ``since``: only the buckets from then on; ``audits_only``: only the
    versions of audit pulls."""
    where = "" if since is None else "AND v.bucket >= $since"
    if audits_only:
        where += " AND v.run_id IN (SELECT id FROM runs WHERE metric = $metric AND trigger = 'audit')"
    params: dict[str, object] = {"metric": config.name}
    if since is not None:
        params["since"] = since
    with store.reading() as cur:
        return cur.execute(
            f"""
            SELECT revs.dims, revs.measure, revs.bucket, revs.run_id, r.trigger,
                   revs.prev_value, revs.value, revs.age, revs.prev_age
            FROM ({_changes_sql(config, "v.dims", where)}) revs
            JOIN runs r ON r.id = revs.run_id
            ORDER BY revs.known_at, revs.run_id, revs.bucket, revs.dims, revs.measure
            """,
            params,
        ).fetchnumpy()


def load_arrival_sums(
    store: Store, config: MetricConfig, modulus: int, first_age_above: int | None = None
) -> dict[str, np.ndarray]:
    """The revisions of :func:`load_revisions` summed by what the advisor tells them apart by:
    ``measure``, ``age``, ``prev_age`` and ``phase`` (the bucket's :func:`bucket_index` modulo
    ``modulus``); with ``revisions`` (how many), ``magnitude`` (the sum of |change|) and
    ``signed`` (the sum of the changes). A handful of rows however long the history, from the
    sums the store keeps per bucket at each commit. ``first_age_above``: only the revisions of
    values whose first version is older than that (not watched from their start)."""
    age = age_sql(config.grain, "g.known_at", "g.bucket")
    prev_age = age_sql(config.grain, "g.prev_known_at", "g.bucket")
    params: dict[str, object] = {"metric": config.name, "modulus": modulus}
    source = "arrival_sums"
    if first_age_above is not None:
        first_age = age_sql(config.grain, "first_known_at", "bucket")
        source = f"""(
            SELECT metric, measure, bucket, known_at, prev_known_at, count(*) AS revisions,
                   sum(abs(value - prev_value)) AS magnitude, sum(value - prev_value) AS signed
            FROM arrivals
            WHERE metric = $metric AND (dims, measure, bucket) IN (
                SELECT (dims, measure, bucket) FROM current
                WHERE metric = $metric AND {first_age} > $above)
            GROUP BY ALL
        )"""
        params["above"] = first_age_above
    with store.reading() as cur:
        return cur.execute(
            f"""
            SELECT g.measure, {age} AS age, coalesce({prev_age}, {age} - 1) AS prev_age,
                   {bucket_index_sql(config.grain, "g.bucket")} % $modulus AS phase,
                   sum(g.revisions)::BIGINT AS revisions, sum(g.magnitude) AS magnitude,
                   sum(g.signed) AS signed
            FROM {source} g
            WHERE g.metric = $metric
            GROUP BY ALL
            ORDER BY ALL
            """,
            params,
        ).fetchnumpy()


def load_value_sums(store: Store, config: MetricConfig) -> dict[str, np.ndarray]:
    """Per measure and age of the first version: how many values, and the sums of their first
    and of their current values (0 for none), from the current values."""
    first_age = age_sql(config.grain, "first_known_at", "bucket")
    with store.reading() as cur:
        return cur.execute(
            f"""
            SELECT measure, {first_age} AS first_age, count(*) AS values,
                   sum(coalesce(first_value, 0)) AS first_value,
                   sum(CASE WHEN removed THEN 0 ELSE coalesce(value, 0) END) AS final_value
            FROM current WHERE metric = $metric
            GROUP BY ALL ORDER BY ALL
            """,
            {"metric": config.name},
        ).fetchnumpy()


def load_values(store: Store, config: MetricConfig, since: datetime | None = None) -> dict[str, np.ndarray]:
    """Per value: its first version's value and age, its final value, and ``seen_age``: the age
    at which a successful pull first held its bucket (before its first version when the value
    had nothing yet then) (``since``: only the buckets from then on)."""
    first_age = age_sql(config.grain, "first_known_at", "bucket")
    where = "" if since is None else "AND bucket >= $since"
    params: dict[str, object] = {"metric": config.name}
    if since is not None:
        params["since"] = since
    seen_age = age_sql(config.grain, "s.seen", "x.bucket")
    with store.reading() as cur:
        return cur.execute(
            f"""
            WITH x AS (  -- the current values keep their first version's value and time
                SELECT measure, coalesce(first_value, 0) AS first_value,
                       {first_age} AS first_age,
                       CASE WHEN removed THEN 0 ELSE coalesce(value, 0) END AS final_value,
                       dims, bucket
                FROM current
                WHERE metric = $metric {where}
            ), s AS (  -- when a successful pull first held each bucket in its window
                SELECT b.bucket, min(r.known_at) AS seen
                FROM (SELECT DISTINCT bucket FROM x) b JOIN runs r
                  ON r.metric = $metric AND r.status = 'succeeded' AND r.known_at IS NOT NULL
                 AND b.bucket >= r.window_start AND b.bucket < r.window_end
                GROUP BY b.bucket
            )
            SELECT x.measure, x.first_value, x.first_age, x.final_value, x.dims, x.bucket,
                   coalesce(least({seen_age}, x.first_age), x.first_age) AS seen_age
            FROM x LEFT JOIN s ON s.bucket = x.bucket
            ORDER BY x.dims, x.measure, x.bucket
            """,
            params,
        ).fetchnumpy()


# the statistics that follow single values read at most about this many of the latest values
MAX_WATCHED_VALUES = 5_000


def settling_age(store: Store, config: MetricConfig) -> int:
    """The oldest age at which any value of the metric changed (0 for none)."""
    age = age_sql(config.grain, "known_at", "bucket")
    with store.reading() as cur:
        row = cur.execute(
            f"SELECT max({age}) FROM arrival_sums WHERE metric = $metric", {"metric": config.name}
        ).fetchone()
    return max(int(row[0]), 0) if row and row[0] is not None else 0


def watch_since(store: Store, config: MetricConfig, settle: int) -> datetime | None:
    """The first bucket of the values that the statistics following single values are measured
    on: all of them (None) while the metric has at most ``MAX_WATCHED_VALUES``; else the
    latest buckets that hold about that many, and never fewer than enough for two settlings
    (``settle``: the metric's :func:`settling_age`)."""
    grain = config.grain.value
    with store.reading() as cur:
        row = cur.execute(
            f"""
            WITH per AS (
                SELECT bucket, count(*) AS n FROM current WHERE metric = $metric GROUP BY ALL
            ), upto AS (
                SELECT bucket, sum(n) OVER (ORDER BY bucket DESC) AS total FROM per
            )
            SELECT (SELECT sum(n) FROM per),
                   (SELECT min(bucket) FROM upto WHERE total <= $cap),
                   (SELECT max(bucket) FROM per) - INTERVAL ({2 * (settle + 1)}) {grain}
            """,
            {"metric": config.name, "cap": MAX_WATCHED_VALUES},
        ).fetchone()
    if row is None or row[0] is None or row[0] <= MAX_WATCHED_VALUES:
        return None
    _total, by_count, by_settling = row
    if by_count is None:
        return by_settling
    return min(by_count, by_settling) if by_settling is not None else by_count


def latest_development(
    store: Store, config: MetricConfig, settle: int | None = None
) -> tuple[Development, dict[str, np.ndarray]]:
    """The :func:`development` of the values of the latest buckets (see :func:`watch_since`;
    on a smaller store, of all of them), and the revisions it was built from. ``settle``: the
    metric's :func:`settling_age`, when known."""
    if settle is None:
        settle = settling_age(store, config)
    since = watch_since(store, config, settle)
    revisions = load_revisions(store, config, since=since)
    dev = development(
        config,
        revisions,
        load_values(store, config, since=since),
        knowledge_horizon(store, config.name),
        settle_age=settle,
    )
    return dev, revisions


def knowledge_horizon(store: Store, metric: str) -> datetime | None:
    """The latest known time of the metric's successful pulls: what the store knows up to."""
    with store.reading() as cur:
        row = cur.execute(
            "SELECT max(known_at) FROM runs WHERE metric = ? AND status = 'succeeded'", [metric]
        ).fetchone()
    return row[0] if row else None


def interval_density(
    spread_ages: np.ndarray, spans: np.ndarray, weights: np.ndarray, iterations: int = 500
) -> np.ndarray:
    """How likely a change arrives at each age, estimated from all revision intervals at once.

    A revision seen at age ``k`` whose bucket was last seen unchanged at age ``k_prev`` arrived
    at one of the ages ``k_prev + 1 … k``. Where pulls are one bucket apart that is exact; where
    an audit saw the bucket after a long gap it is an interval. The arrival-age distribution is
    estimated from all intervals at once (Turnbull's self-consistent estimator, by EM); each
    interval's change is then divided over its ages in proportion to it (:func:`interval_shares`).
    Intervals may come summed (``weights``: the |change| of all revisions of an interval).
    Returns the density the last shares were taken from.
    """
    owner = np.repeat(np.arange(len(spans)), spans)
    size = int(spread_ages.max()) + 1 if len(spread_ages) else 1
    ages = np.maximum(spread_ages, 0)
    density = np.full(size, 1.0 / size)
    used = density
    total = float(weights.sum()) or 1.0
    for _ in range(iterations):
        used = density
        shares = interval_shares(density, spread_ages, spans, owner)
        updated = np.bincount(ages, weights=shares * weights[owner], minlength=size) / total
        if np.abs(updated - density).max() < 1e-9:
            break
        density = updated
    return used


def interval_shares(
    density: np.ndarray, spread_ages: np.ndarray, spans: np.ndarray, owner: np.ndarray | None = None
) -> np.ndarray:
    """Each interval's share of its change at each of its ages, by ``density``."""
    if owner is None:
        owner = np.repeat(np.arange(len(spans)), spans)
    mass = density[np.minimum(np.maximum(spread_ages, 0), len(density) - 1)]
    norm = np.bincount(owner, weights=mass, minlength=len(spans))
    return mass / np.where(norm[owner] > 0, norm[owner], 1.0)


def spread_intervals(ages: np.ndarray, prev_ages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the spans, and each revision's ages it may have arrived at, newest first)."""
    spans = np.maximum(ages - np.minimum(prev_ages, ages - 1), 1)
    return spans, np.repeat(ages, spans) - _offsets(spans)


def _offsets(spans: np.ndarray) -> np.ndarray:
    """For spans [2, 3]: [0, 1, 0, 1, 2] — each revision's ages counted back from its own."""
    starts = np.repeat(np.cumsum(spans) - spans, spans)
    return np.arange(int(spans.sum())) - starts


@dataclass(frozen=True)
class Development:
    """The values watched from their start and the changes each went through.

    Attributes:
        dims, measure, bucket: one entry per value.
        index: the bucket as a whole number of the grain (``bucket_index``).
        first_age: the age at which it was first seen (0, or 1 with complete buckets only):
            its first version's, or an earlier pull's that held its bucket before anything
            had arrived for it (its value then was 0).
        first, final: its value when first seen and its current value (0 for none).
        reached: the age its bucket has reached in the store's knowledge (the latest known
            time of a successful pull).
        change_owner, change_age, change_delta: every change (a revision, or the first
            version of a value first seen empty): the value it belongs to, the age it arrived
            at, and by how much it moved. A revision seen at age ``a`` whose bucket no pull had
            held since age ``p`` (a short lookback, then an audit) arrived somewhere in
            ``p + 1 … a``: it is shared out over those ages by the arrival density of all
            revisions (:func:`interval_density`).
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
    settle_age: int | None = None,
) -> Development:
    """The values of ``values`` watched from their start, with their changes from
    ``revisions`` (the answers of :func:`load_revisions` and :func:`load_values`);
    ``settle_age``: the metric's, when ``revisions`` hold only some of its revisions."""
    youngest = 1 if config.complete_buckets_only else 0
    if not values or len(values.get("measure", ())) == 0 or horizon is None:
        return _no_development()
    first_age = values["first_age"].astype(np.int64)
    # a bucket held by a pull before its first row arrived had nothing then: it counts from
    # that pull, from 0
    seen_age = (
        np.minimum(values["seen_age"].astype(np.int64), first_age) if "seen_age" in values else first_age
    )
    young = seen_age <= youngest
    late = (seen_age < first_age)[young]
    dims = np.asarray(values["dims"], dtype=object)[young]
    measure = np.asarray(values["measure"], dtype=object)[young]
    bucket = np.asarray(values["bucket"]).astype("datetime64[us]")[young]
    index = bucket_index(bucket, config.grain)
    horizon_index = int(bucket_index(np.array([np.datetime64(horizon, "us")]), config.grain)[0])
    lookup = {
        (d, m, int(b)): i
        for i, (d, m, b) in enumerate(zip(dims, measure, bucket.astype(np.int64), strict=True))
    }
    owners, ages, deltas, of_revision = _revision_changes(revisions, lookup, youngest)
    first = values["first_value"].astype(float)[young]
    arrived = np.flatnonzero(late)
    owners.extend(arrived.tolist())
    ages.extend(first_age[young][arrived].tolist())
    deltas.extend(first[arrived].tolist())
    change_age = np.asarray(ages, dtype=np.int64)
    settle = int(revisions["age"].max()) if revisions and len(revisions.get("age", ())) else 0
    if settle_age is not None:
        settle = settle_age
    if len(arrived):
        settle = max(settle, int(first_age[young][arrived].max()))
    return Development(
        dims=dims,
        measure=measure,
        bucket=bucket,
        index=index,
        first_age=seen_age[young],
        first=np.where(late, 0.0, first),
        final=values["final_value"].astype(float)[young],
        reached=horizon_index - index,
        change_owner=np.asarray(owners, dtype=np.int64),
        change_age=change_age,
        change_delta=np.asarray(deltas, dtype=float),
        settle_age=max(settle, 0),
        revision_owner=np.asarray(of_revision, dtype=np.int64),
    )


def _no_development() -> Development:
    """The development of a metric without values."""
    empty_i = np.zeros(0, dtype=np.int64)
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


def _revision_changes(
    revisions: dict[str, np.ndarray], lookup: dict[tuple[Any, Any, int], int], youngest: int
) -> tuple[list[int], list[int], list[float], list[int]]:
    """The changes the ``revisions`` made to the values watched from their start (``lookup``:
    each value's position by dims, measure and bucket): (the value, the age and the part of the
    change) of every age each may have arrived at, and per revision the value it belongs to
    (-1 for none)."""
    owners: list[int] = []
    ages: list[int] = []
    deltas: list[float] = []
    of_revision: list[int] = []
    if revisions and len(revisions.get("age", ())):
        rev_bucket = np.asarray(revisions["bucket"]).astype("datetime64[us]").astype(np.int64)
        rev_delta = revisions["value"].astype(float) - revisions["prev_value"].astype(float)
        rev_age = revisions["age"].astype(np.int64)
        rev_prev = revisions["prev_age"].astype(np.int64) if "prev_age" in revisions else rev_age - 1
        # a revision seen at ``age`` arrived after the last pull that held its bucket (at
        # ``prev``) and by ``age``: shared out over the ages in between by the arrival density
        # of all revisions (as the advisor does), not all put at the age a late audit saw it
        spans, spread_ages = spread_intervals(rev_age, np.maximum(rev_prev, youngest - 1))
        density = interval_density(spread_ages, spans, np.abs(rev_delta))
        share = interval_shares(density, spread_ages, spans)
        start = np.cumsum(spans) - spans
        for r, (d, m, b) in enumerate(zip(revisions["dims"], revisions["measure"], rev_bucket, strict=True)):
            owner = lookup.get((d, m, int(b)))
            of_revision.append(-1 if owner is None else owner)
            if owner is not None:
                part = slice(int(start[r]), int(start[r] + spans[r]))
                owners.extend([owner] * int(spans[r]))
                ages.extend(np.maximum(spread_ages[part], 0).tolist())
                deltas.extend((rev_delta[r] * share[part]).tolist())
    return owners, ages, deltas, of_revision
