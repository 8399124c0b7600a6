"""Nowcast: the value a provisional bucket is expected to settle at, from its measured settling.

A chain-ladder on the revision triangle (see :mod:`settling`): for every age ``a`` the link
ratio ``f_a`` is the sum of the values as known at age ``a + 1`` over their sum at age ``a``, over
the values watched from their start that have reached age ``a + 1``. A bucket known at age ``a``
is expected to settle at its value × ``f_a`` × … × ``f_(S-1)``, ``S`` being the oldest age at
which the metric's values changed (a ratio with too few pairs counts as 1, except the first one a
nowcast needs). The ratios are a series' own where it has at least
``MIN_SERIES_PAIRS`` pairs at that age, else those of all series of the measure pooled.

The interval comes from the nowcast's own past errors: the relative error ``(settled - expected)
/ |expected|`` of every settled value at the same age, its 10th and 90th percentile for the 80 %
interval (a series' own errors where it has ``MIN_SERIES_ERRORS`` of them, else the measure's).

The backtest replays this in time: the nowcast of a bucket at age ``a`` uses only what was known
then (ratios from values that had reached ``a + 1`` by that moment, errors of values settled by
then), and is compared with the value the bucket settled at. It reports, per age, the mean error
of the nowcast and of the raw provisional value, and how often the interval held the settled
value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from lookback_gui.core.project import MetricConfig
from lookback_gui.core.timing.windows import bucket_start
from tests.reference.settling import (
    Development,
    development,
    knowledge_horizon,
    load_revisions,
    load_values,
)

INTERVAL = 0.8
MIN_POOLED_PAIRS = 5
MIN_SERIES_PAIRS = 20
MIN_POOLED_ERRORS = 10
MIN_SERIES_ERRORS = 30
QUANTILE_STEPS = 64  # an expanding window's percentiles are recomputed at most this often


def _prefix_sums(
    group: np.ndarray, time: np.ndarray, weights: list[np.ndarray], q_group: np.ndarray, q_time: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """For each query (group, time): how many entries of its group have time <= its time, and
    the sums of ``weights`` over them."""
    if len(group) == 0:
        return np.zeros(len(q_group)), [np.zeros(len(q_group)) for _ in weights]
    q_time = np.clip(q_time, time.min() - 1, time.max() + 1)  # keeps the keys in range
    span = int(max(time.max(), q_time.max() if len(q_time) else 0)) + 2
    base = int(min(time.min(), q_time.min() if len(q_time) else 0))
    keys = group * span + (time - base)
    order = np.argsort(keys, kind="stable")
    keys, sorted_group = keys[order], group[order]
    position = np.searchsorted(keys, q_group * span + (q_time - base), side="right") - 1
    start = np.searchsorted(keys, q_group * span, side="left")  # first entry of the group
    inside = (position >= 0) & (position >= start)
    safe = np.clip(position, 0, len(keys) - 1)
    inside &= sorted_group[safe] == q_group
    counts = np.where(inside, position - start + 1, 0).astype(float)
    sums = []
    for w in weights:
        total = np.concatenate([[0.0], np.cumsum(w[order])])
        sums.append(np.where(inside, total[safe + 1] - total[np.clip(start, 0, len(keys))], 0.0))
    return counts, sums


def _link_ratios(
    known: np.ndarray,
    dev: Development,
    series: np.ndarray,
    pooled: np.ndarray,
    age: int,
    q_series: np.ndarray,
    q_pooled: np.ndarray,
    q_time: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """f_age for each query, as known at its time, and whether it is the series' own."""
    pair = ~np.isnan(known[:, age]) & ~np.isnan(known[:, age + 1])
    available = dev.index[pair] + age + 1
    num, den = known[pair, age + 1], known[pair, age]
    n_s, (num_s, den_s) = _prefix_sums(series[pair], available, [num, den], q_series, q_time)
    n_p, (num_p, den_p) = _prefix_sums(pooled[pair], available, [num, den], q_pooled, q_time)
    own = n_s >= MIN_SERIES_PAIRS
    with np.errstate(all="ignore"):
        ratio = np.where(
            own, np.where(den_s != 0, num_s / den_s, 1.0), np.where(den_p != 0, num_p / den_p, 1.0)
        )
    ratio = np.where(own | (n_p >= MIN_POOLED_PAIRS), ratio, np.nan)
    return ratio, own


def _expanding_quantiles(
    group: np.ndarray,
    time: np.ndarray,
    errors: np.ndarray,
    q_group: np.ndarray,
    q_time: np.ndarray,
    minimum: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The (low, high) percentiles of the interval over the errors of each query's group known
    by its time (NaN with fewer than ``minimum``)."""
    low = np.full(len(q_group), np.nan)
    high = np.full(len(q_group), np.nan)
    edges = ((1 - INTERVAL) / 2 * 100, (1 + INTERVAL) / 2 * 100)
    for g in np.unique(q_group):
        mine = group == g
        if mine.sum() < minimum:
            continue
        order = np.argsort(time[mine], kind="stable")
        times, values = time[mine][order], errors[mine][order]
        queries = np.flatnonzero(q_group == g)
        counts = np.searchsorted(times, q_time[queries], side="right")
        steps = np.unique(np.linspace(minimum, len(values), QUANTILE_STEPS).astype(np.int64))
        use = np.searchsorted(steps, counts, side="right") - 1  # the largest step <= count
        for k, step in enumerate(steps):
            at = queries[use == k]
            if len(at):
                lo, hi = np.percentile(values[:step], edges)
                low[at], high[at] = lo, hi
    return low, high


@dataclass(frozen=True)
class Estimates:
    """Nowcasts of (value, age) pairs: ``expected``, ``low``, ``high`` (NaN: no estimate) and
    whether a series' own ratios were used (``own``)."""

    expected: np.ndarray
    low: np.ndarray
    high: np.ndarray
    own: np.ndarray


def _groups(dev: Development) -> tuple[np.ndarray, np.ndarray]:
    series = dev.series_keys()
    _u, pooled = np.unique(dev.measure.astype(str), return_inverse=True)
    return series, np.asarray(pooled, dtype=np.int64)


def _estimate(
    dev: Development,
    known: np.ndarray,
    owner: np.ndarray,
    age: np.ndarray,
    current: np.ndarray,
    time: np.ndarray,
    errors: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
) -> Estimates:
    """The nowcast of values ``owner`` (their current value, at ``age``) as known at ``time``;
    ``errors`` are (age, value, error) of past nowcasts for the interval."""
    settle = dev.settle_age
    series, pooled = _groups(dev)
    factor = np.ones(len(owner))
    own = np.zeros(len(owner), dtype=bool)
    for j in range(0, settle):
        needs = age <= j
        if not needs.any():
            continue
        ratio, mine = _link_ratios(
            known, dev, series, pooled, j, series[owner[needs]], pooled[owner[needs]], time[needs]
        )
        # an age that no value had reached by then is development not seen yet: no factor;
        # the first factor of each nowcast must be measured, though
        ratio = np.where(np.isnan(ratio) & (age[needs] < j), 1.0, ratio)
        factor[needs] *= ratio
        own[needs] |= mine
    expected = current * factor
    low = np.full(len(owner), np.nan)
    high = np.full(len(owner), np.nan)
    if errors is not None:
        e_age, e_owner, e_value = errors
        e_time = dev.index[e_owner] + settle
        for a in np.unique(age):
            q = np.flatnonzero(age == a)
            e = e_age == a
            lo_s, hi_s = _expanding_quantiles(
                series[e_owner[e]], e_time[e], e_value[e], series[owner[q]], time[q], MIN_SERIES_ERRORS
            )
            lo_p, hi_p = _expanding_quantiles(
                pooled[e_owner[e]], e_time[e], e_value[e], pooled[owner[q]], time[q], MIN_POOLED_ERRORS
            )
            lo, hi = np.where(np.isnan(lo_s), lo_p, lo_s), np.where(np.isnan(hi_s), hi_p, hi_s)
            scale = np.abs(expected[q])
            low[q], high[q] = expected[q] + lo * scale, expected[q] + hi * scale
        low = np.where(age >= settle, expected, low)
        high = np.where(age >= settle, expected, high)
    return Estimates(expected, low, high, own)


def _backtest_pairs(dev: Development) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(value, age, value as known then) for every settled value at every age before it
    settled."""
    settle = dev.settle_age
    known = dev.known(settle + 1)
    settled = np.flatnonzero(dev.reached >= settle)
    grid_owner, grid_age = np.meshgrid(settled, np.arange(settle), indexing="ij")
    owner, age = grid_owner.ravel(), grid_age.ravel()
    current = known[owner, age]
    keep = ~np.isnan(current)
    return owner[keep], age[keep], current[keep]


def _past_errors(dev: Development, known: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, Estimates]:
    """The point nowcasts of every settled value at every age, as made at the time, and their
    relative errors against the settled value."""
    owner, age, current = _backtest_pairs(dev)
    point = _estimate(dev, known, owner, age, current, dev.index[owner] + age, None)
    with np.errstate(all="ignore"):
        error = (dev.final[owner] - point.expected) / np.abs(point.expected)
    ok = np.isfinite(error)
    return age[ok], owner[ok], error[ok], point


def backtest_nowcast(dev: Development, config: MetricConfig) -> dict[str, Any] | None:
    """The nowcast replayed on the stored history: per age, its mean error and the raw
    provisional value's against the settled value, and how often the interval held it."""
    settle = dev.settle_age
    if len(dev) == 0 or settle == 0:
        return None
    known = dev.known(settle + 1)
    owner, age, current = _backtest_pairs(dev)
    e_age, e_owner, e_value, _point = _past_errors(dev, known)
    est = _estimate(dev, known, owner, age, current, dev.index[owner] + age, (e_age, e_owner, e_value))
    final = dev.final[owner]
    usable = (final != 0) & ~np.isnan(est.expected)
    with np.errstate(all="ignore"):
        nowcast_error = np.abs(est.expected - final) / np.abs(final) * 100
        raw_error = np.abs(current - final) / np.abs(final) * 100
    has_interval = usable & ~np.isnan(est.low)
    held = (
        has_interval & (est.low - 1e-9 * np.abs(final) <= final) & (final <= est.high + 1e-9 * np.abs(final))
    )
    by_age = []
    for a in range(1 if config.complete_buckets_only else 0, settle):
        mask = usable & (age == a)
        if not mask.any():
            continue
        intervals = has_interval & (age == a)
        by_age.append(
            {
                "age_buckets": a,
                "values": int(mask.sum()),
                "nowcast_error_pct": round(float(nowcast_error[mask].mean()), 4),
                "raw_error_pct": round(float(raw_error[mask].mean()), 4),
                "intervals": int(intervals.sum()),
                "coverage": round(float(held[intervals].mean()), 4) if intervals.any() else None,
            }
        )
    return {
        "interval": INTERVAL,
        "settle_age_buckets": settle,
        "values": int(usable.sum()),
        "intervals": int(has_interval.sum()),
        "coverage": round(float(held[has_interval].mean()), 4) if has_interval.any() else None,
        "by_age": by_age,
    }


@dataclass(frozen=True)
class NowcastRow:
    bucket: datetime
    dims: dict[str, Any]
    measure: str
    age: int
    value: float | None
    expected: float | None
    low: float | None
    high: float | None
    basis: str

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket.isoformat(),
            "dims": self.dims,
            "measure": self.measure,
            "age_buckets": self.age,
            "value": self.value,
            "expected": self.expected,
            "low": self.low,
            "high": self.high,
            "basis": self.basis,
        }


@dataclass(frozen=True)
class Nowcast:
    """The nowcast of a metric's provisional buckets (``to_json``: what ``nowcast --json``
    prints)."""

    metric: str
    as_known_at: datetime | None
    settle_age: int
    rows: list[NowcastRow]
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "as_known_at": self.as_known_at.isoformat() if self.as_known_at else None,
            "settle_age_buckets": self.settle_age,
            "interval": INTERVAL,
            "message": self.message,
            "buckets": [r.to_json() for r in self.rows],
        }


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(round(value, 6))


def nowcast(store: Any, config: MetricConfig) -> Nowcast:
    """For each provisional bucket (younger than the age at which the metric's values stop
    changing): its current value and the value it is expected to settle at, with an interval.
    The bucket in progress is left out when it was last seen at another point of it than
    earlier buckets were at that age."""
    horizon = knowledge_horizon(store, config.name)
    dev = development(config, load_revisions(store, config), load_values(store, config), horizon)
    settle = dev.settle_age
    if horizon is None or len(dev) == 0:
        return Nowcast(config.name, horizon, 0, [], "no history yet: pull the metric first")
    if settle == 0:
        return Nowcast(
            config.name, horizon, 0, [], "no value has been revised yet: every bucket is as it will stay"
        )
    known = dev.known(settle + 1)
    e_age, e_owner, e_value, _p = _past_errors(dev, known)
    from tests.reference.settling import bucket_index

    rows = [r for r in store.history(config.name) if r.value is not None]
    if not rows:
        return Nowcast(config.name, horizon, settle, [], "no values stored")
    buckets = np.array([np.datetime64(r.bucket, "us") for r in rows])
    horizon_index = int(bucket_index(np.array([np.datetime64(horizon, "us")]), config.grain)[0])
    ages = horizon_index - bucket_index(buckets, config.grain)
    youngest = 1 if config.complete_buckets_only else 0
    note = ""
    if youngest == 0 and not _in_step(store, config, horizon):
        youngest = 1  # the bucket in progress was seen at another point of it than usual
        note = (
            "; the latest pull saw its buckets at another point of them than earlier pulls "
            "did, so the bucket in progress is left out and the others may be off"
        )
    wanted = np.flatnonzero((ages < settle) & (ages >= youngest))
    series_of: dict[tuple[str, str], int] = {}
    for i, (d, m) in enumerate(zip(dev.dims, dev.measure, strict=True)):
        series_of.setdefault((str(d), str(m)), i)
    chosen: list[int] = []
    owners: list[int] = []
    for i in (int(w) for w in wanted):
        row = rows[i]
        key = (
            json.dumps(dict(sorted(dict(row.dims).items())), separators=(",", ":"), ensure_ascii=False),
            row.measure,
        )
        found = series_of.get(key)
        if found is not None:
            chosen.append(i)
            owners.append(found)
    if not chosen:
        return Nowcast(config.name, horizon, settle, [], "no provisional bucket")
    owner = np.asarray(owners, dtype=np.int64)
    age = ages[chosen].astype(np.int64)
    current = np.array([float(rows[i].value) for i in chosen])
    time = np.full(len(owner), np.iinfo(np.int64).max // 4)
    est = _estimate(dev, known, owner, age, current, time, (e_age, e_owner, e_value))
    out = []
    for k, i in enumerate(chosen):
        row = rows[i]
        basis = "none" if np.isnan(est.expected[k]) else "series" if est.own[k] else "pooled"
        out.append(
            NowcastRow(
                row.bucket,
                dict(row.dims),
                row.measure,
                int(age[k]),
                float(current[k]),
                _number(est.expected[k]),
                _number(est.low[k]),
                _number(est.high[k]),
                basis,
            )
        )
    return Nowcast(
        config.name,
        horizon,
        settle,
        out,
        f"{len(out)} provisional value(s); values settle after {settle} {config.grain.value}(s){note}",
    )


IN_STEP = 0.1  # how far (a share of a bucket) the last look at the bucket in progress may lie


def _in_step(store: Any, config: MetricConfig, horizon: datetime) -> bool:
    """Whether the bucket in progress was last seen at about the point of it at which earlier
    buckets were last seen while in progress: the measured settling of age 0 holds only then
    (a day seen at 06:00 has far less of its value than one seen at 20:00)."""
    grain = config.grain.value
    with store.reading() as cur:
        row = cur.execute(
            f"""
            WITH last AS (
                SELECT date_trunc('{grain}', known_at) AS b, max(known_at) AS k FROM runs
                WHERE metric = $metric AND status = 'succeeded' GROUP BY 1
            )
            SELECT median((epoch(k) - epoch(b))
                          / (epoch(b + INTERVAL 1 {grain}) - epoch(b))) FILTER (WHERE b < $now),
                   max((epoch(k) - epoch(b)) / (epoch(b + INTERVAL 1 {grain}) - epoch(b)))
                       FILTER (WHERE b = $now)
            FROM last
            """,
            {"metric": config.name, "now": bucket_start(horizon, config.grain)},
        ).fetchone()
    if row is None or row[0] is None or row[1] is None:
        return True
    return abs(float(row[0]) - float(row[1])) <= IN_STEP


def triangle(dev: Development, measure: str, ages: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The revision triangle of one measure, all series summed: (buckets, share) where
    ``share[b, a]`` is the share (0…1) of bucket b's current value known at age a (NaN where
    the bucket had not reached that age)."""
    ages = dev.settle_age + 1 if ages is None else ages
    mine = dev.measure.astype(str) == measure
    if not mine.any():
        return np.zeros(0, dtype="datetime64[us]"), np.zeros((0, ages))
    known = dev.known(ages)[mine]
    buckets, inverse = np.unique(dev.bucket[mine], return_inverse=True)
    sums = np.zeros((len(buckets), ages))
    missing = np.zeros((len(buckets), ages), dtype=bool)
    np.add.at(sums, inverse, np.nan_to_num(known))
    np.logical_or.at(missing, inverse, np.isnan(known))
    finals = np.bincount(inverse, weights=dev.final[mine], minlength=len(buckets))
    with np.errstate(all="ignore"):
        share = np.where(missing | (finals[:, None] == 0), np.nan, sums / finals[:, None])
    return buckets, share


@dataclass(frozen=True)
class Triangle:
    """The revision triangle of one measure (all series summed) for the Advisor tab.

    Attributes:
        buckets: the buckets watched from their start, oldest first.
        share: (buckets × ages) the share (0…1) of each bucket's current value known at each
            age; NaN where the bucket had not reached that age.
        settle_age: the oldest age at which the metric's values changed.
    """

    measure: str
    measures: tuple[str, ...]
    buckets: list[datetime]
    share: np.ndarray
    settle_age: int


def revision_triangle(store: Any, config: MetricConfig, measure: str | None = None) -> Triangle:
    """The triangle of ``measure`` (the first measure by name when not given)."""
    dev = development(
        config,
        load_revisions(store, config),
        load_values(store, config),
        knowledge_horizon(store, config.name),
    )
    measures = tuple(sorted({str(m) for m in dev.measure}))
    chosen = measure if measure in measures else (measures[0] if measures else "")
    buckets, share = triangle(dev, chosen, dev.settle_age + 2)
    return Triangle(
        chosen, measures, [b.astype("datetime64[us]").item() for b in buckets], share, dev.settle_age
    )
