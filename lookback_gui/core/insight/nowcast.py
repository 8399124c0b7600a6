"""Nowcast: the value a provisional bucket is expected to settle at, with an 80 % interval.

Every provisional bucket (younger than the metric's settle age, see :mod:`development`) gets the
value it is expected to settle at — its current value developed by the chain-ladder factors of
the development model from its age on — and Mack's standard error of it (process and parameter
variance), from which an 80 % lognormal interval follows; this holds on a short history too,
where the oldest factors come from the curve. Where the history is long enough to replay the
nowcast on it (:func:`backtest.backtest`), the intervals are scaled so that they would have
held the settled value 80 % of the time there (widened only, never narrowed). A
settled bucket's interval is its value. When not one factor can be estimated yet, the rows say
so (``basis: "none"``) and the message says how many more pulls it takes.

The development comes from the values of the latest buckets, at most about
``settling.MAX_WATCHED_VALUES`` of them (:func:`settling.latest_development`; on a smaller
store all of them), and only the current values of the provisional buckets are read: a year of
history costs no more than a few weeks of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from lookback_gui.core.insight import development as development_model
from lookback_gui.core.insight.backtest import backtest
from lookback_gui.core.insight.development import INTERVAL, Model
from lookback_gui.core.insight.settling import (
    Development,
    bucket_index,
    knowledge_horizon,
    latest_development,
)
from lookback_gui.core.project import MetricConfig
from lookback_gui.core.timing.windows import add_buckets, bucket_start


def latest_model(store: Any, config: MetricConfig) -> tuple[Model, dict[str, np.ndarray]]:
    """The development model of the metric's latest values (what the nowcast, the advisor,
    the chart and alerts all read their settle age from), and the revisions it was built
    from."""
    dev, revisions = latest_development(store, config)
    return development_model.fit(dev, config.settle_share), revisions


def metric_model(store: Any, config: MetricConfig) -> Model:
    """The development model of the metric's latest values (see :func:`latest_model`)."""
    return latest_model(store, config)[0]


def settle_age(store: Any, config: MetricConfig) -> int:
    """The age (in buckets) from which the metric's values are settled."""
    return metric_model(store, config).settle_age


def chart_settle_age(store: Any, config: MetricConfig) -> int | None:
    """The settle age the chart's provisional region follows: the development's (0 when it has
    seen no value change: then only the bucket in progress is provisional), or None while it
    cannot estimate a single factor (the region is then the lookback, and says so)."""
    model = metric_model(store, config)
    return model.settle_age if model.estimable() else None


def backtest_nowcast(model: Model, config: MetricConfig) -> dict[str, Any]:
    """The nowcast replayed on the stored history (see :func:`backtest.backtest`)."""
    return backtest(model, 1 if config.complete_buckets_only else 0)


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
    standard_error: float | None = None

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
            "standard_error": self.standard_error,
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
    settle_share: float = development_model.DEFAULT_SETTLE_SHARE
    widen: float = 1.0
    pulls_needed: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "as_known_at": self.as_known_at.isoformat() if self.as_known_at else None,
            "settle_age_buckets": self.settle_age,
            "interval": INTERVAL,
            "settle_share": self.settle_share,
            "widen": self.widen,
            "pulls_needed": self.pulls_needed,
            "message": self.message,
            "buckets": [r.to_json() for r in self.rows],
        }


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(round(value, 6))


def nowcast(store: Any, config: MetricConfig) -> Nowcast:
    """For each provisional bucket (younger than the metric's settle age): its current value
    and the value it is expected to settle at, with an 80 % interval. The bucket in progress
    is left out when it was last seen at another point of it than earlier buckets were at that
    age."""
    horizon = knowledge_horizon(store, config.name)
    model = metric_model(store, config)
    dev = model.dev
    share = config.settle_share
    if horizon is None or len(dev) == 0:
        return Nowcast(config.name, horizon, 0, [], "no history yet: pull the metric first", share)
    settle = model.settle_age
    if settle == 0 and model.estimable():
        return Nowcast(
            config.name,
            horizon,
            0,
            [],
            "no value has been revised yet: every bucket is as it will stay",
            share,
        )
    estimable = model.estimable()
    if not estimable:  # not one factor yet: every bucket the development has not seen settle
        settle = max(model.ages, int(dev.reached.max()) + 1)
    rows = _provisional_values(store, config, horizon, settle)
    if not rows:
        return _no_provisional_values(store, config, horizon, settle)
    ages = _ages_of(rows, horizon, config)
    youngest, note = _youngest(store, config, horizon)
    wanted = np.flatnonzero((ages < settle) & (ages >= youngest))
    chosen, owners, pooled_only = _owners(rows, wanted, dev)
    if not chosen:
        return Nowcast(config.name, horizon, settle, [], "no provisional bucket", share)
    owner = np.asarray(owners, dtype=np.int64)
    age = ages[chosen].astype(np.int64)
    current = np.array([float(rows[i][3]) for i in chosen])
    if not estimable:
        return _not_estimable(model, config, horizon, settle, rows, chosen, age, current, note)
    check = backtest_nowcast(model, config)
    widen = float(check["widen"])
    est = model.nowcast(owner, age, current, widen, np.asarray(pooled_only))
    out = _estimated_rows(rows, chosen, age, current, est)
    return Nowcast(
        config.name, horizon, settle, out, _message(config, out, settle, widen) + note, share, widen, None
    )


def _no_provisional_values(store: Any, config: MetricConfig, horizon: datetime, settle: int) -> Nowcast:
    """The nowcast when no bucket younger than ``settle`` has a value: it says whether any
    value is stored at all."""
    with store.reading() as cur:
        stored = cur.execute(
            "SELECT count(*) FROM current WHERE metric = ? AND value IS NOT NULL AND NOT removed",
            [config.name],
        ).fetchone()
    return Nowcast(
        config.name,
        horizon,
        settle,
        [],
        "no provisional bucket" if stored and stored[0] else "no values stored",
        config.settle_share,
    )


def _ages_of(rows: list[Any], horizon: datetime, config: MetricConfig) -> np.ndarray:
    """The age of each row's bucket at the knowledge ``horizon``."""
    buckets = np.array([np.datetime64(r[0], "us") for r in rows])
    horizon_index = int(bucket_index(np.array([np.datetime64(horizon, "us")]), config.grain)[0])
    return horizon_index - bucket_index(buckets, config.grain)


def _youngest(store: Any, config: MetricConfig, horizon: datetime) -> tuple[int, str]:
    """The youngest age the nowcast estimates (1 with complete buckets only, or when the
    bucket in progress was seen out of step, see :func:`_in_step`), and the note that says
    so in the latter case ("" otherwise)."""
    youngest = 1 if config.complete_buckets_only else 0
    note = ""
    if youngest == 0 and not _in_step(store, config, horizon):
        youngest = 1  # the bucket in progress was seen at another point of it than usual
        note = (
            "; the latest pull saw its buckets at another point of them than earlier pulls "
            "did, so the bucket in progress is left out and the others may be off"
        )
    return youngest, note


def _not_estimable(
    model: Model,
    config: MetricConfig,
    horizon: datetime,
    settle: int,
    rows: list[Any],
    chosen: list[int],
    age: np.ndarray,
    current: np.ndarray,
    note: str,
) -> Nowcast:
    """The nowcast while the development cannot estimate one factor: the provisional values
    without an estimate, and how many more pulls it takes."""
    needed = development_model.pulls_needed(model)
    out = [
        NowcastRow(
            rows[i][0], rows[i][1], rows[i][2], int(age[k]), float(current[k]), None, None, None, "none"
        )
        for k, i in enumerate(chosen)
    ]
    return Nowcast(
        config.name,
        horizon,
        settle,
        out,
        f"{len(out)} provisional value(s), none estimable yet: the development "
        f"needs {development_model.MIN_PAIRS} buckets seen at two ages in a row; "
        f"about {needed} more pull(s){note}",
        config.settle_share,
        1.0,
        needed,
    )


def _estimated_rows(
    rows: list[Any], chosen: list[int], age: np.ndarray, current: np.ndarray, est: dict[str, np.ndarray]
) -> list[NowcastRow]:
    """The rows of the ``chosen`` provisional values with the development's estimates
    ``est`` (see :meth:`Model.nowcast`), each with the factors it rests on as its basis."""
    out = []
    for k, i in enumerate(chosen):
        bucket, dims, measure, _value = rows[i]
        basis = "none" if np.isnan(est["expected"][k]) else "series" if est["own"][k] else "pooled"
        out.append(
            NowcastRow(
                bucket,
                dims,
                measure,
                int(age[k]),
                float(current[k]),
                _number(est["expected"][k]),
                _number(est["low"][k]),
                _number(est["high"][k]),
                basis,
                _number(est["se"][k]),
            )
        )
    return out


def _message(config: MetricConfig, out: list[NowcastRow], settle: int, widen: float) -> str:
    """What the nowcast says of its rows: how many, when values settle, how many lack an
    estimate and how far the backtest widened the intervals."""
    refused = sum(r.basis == "none" for r in out)
    text = (
        f"{len(out)} provisional value(s); values settle after {settle} "
        f"{config.grain.value}(s) ({config.settle_share * 100:g} % of their final value present)"
    )
    if refused:
        text += f"; {refused} without an estimate"
    if widen > 1:
        text += (
            f"; intervals widened × {widen:.2f}: on the stored history they held the settled value too rarely"
        )
    return text


def _owners(rows: list[Any], wanted: np.ndarray, dev: Any) -> tuple[list[int], list[int], list[bool]]:
    """Of the provisional ``rows`` at the ``wanted`` positions, those the development can
    estimate: their positions, the development's series (or, for a series it has not watched,
    the first of its measure) each is estimated by, and whether by its measure only."""
    series_of: dict[tuple[str, str], int] = {}
    measure_of: dict[str, int] = {}
    for i, (d, m) in enumerate(zip(dev.dims, dev.measure, strict=True)):
        series_of.setdefault((str(d), str(m)), i)
        measure_of.setdefault(str(m), i)
    chosen: list[int] = []
    owners: list[int] = []
    pooled_only: list[bool] = []
    for i in (int(w) for w in wanted):
        _bucket, dims, measure, _value = rows[i]
        key = (json.dumps(dict(sorted(dims.items())), separators=(",", ":"), ensure_ascii=False), measure)
        found = series_of.get(key)
        if found is None:
            found = measure_of.get(measure)  # a series the development has not watched
        if found is not None:
            chosen.append(i)
            owners.append(found)
            pooled_only.append(key not in series_of)
    return chosen, owners, pooled_only


def _provisional_values(
    store: Any, config: MetricConfig, horizon: datetime, settle: int
) -> list[tuple[datetime, dict[str, Any], str, float]]:
    """(bucket, dims, measure, value) of the current values of the buckets younger than
    ``settle`` (and one more), as history orders them; removed values left out."""
    start = add_buckets(bucket_start(horizon, config.grain), config.grain, -settle)
    query, params = store.history_query(config.name, buckets=(start, datetime.max))
    with store.reading() as cur:
        rows = cur.execute(
            f"SELECT bucket, dims, measure, value FROM ({query})"
            " WHERE value IS NOT NULL ORDER BY bucket, dims, measure",
            params,
        ).fetchall()
    return [(b, json.loads(d), m, float(v)) for b, d, m, v in rows]


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


def triangle(dev: Development, measure: str, ages: int) -> tuple[np.ndarray, np.ndarray]:
    """The revision triangle of one measure, all series summed: (buckets, share) where
    ``share[b, a]`` is the share (0…1) of bucket b's current value known at age a (NaN where
    the bucket had not reached that age)."""
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
        settle_age: the age from which the metric's values are settled (the development's).
        settled: per bucket, whether it is settled (older than ``settle_age``): the share of
            a younger bucket's final value known at an age is not known yet, since its final
            value is not.
    """

    measure: str
    measures: tuple[str, ...]
    buckets: list[datetime]
    share: np.ndarray
    settle_age: int
    settled: np.ndarray


def revision_triangle(store: Any, config: MetricConfig, measure: str | None = None) -> Triangle:
    """The triangle of ``measure`` (the first measure by name when not given)."""
    model = metric_model(store, config)
    dev = model.dev
    measures = tuple(sorted({str(m) for m in dev.measure}))
    chosen = measure if measure in measures else (measures[0] if measures else "")
    buckets, share = triangle(dev, chosen, max(model.ages, model.settle_age) + 1)
    reached = np.zeros(len(buckets), dtype=np.int64)
    if len(buckets):
        mine = dev.measure.astype(str) == chosen
        position = np.searchsorted(buckets, dev.bucket[mine])
        np.maximum.at(reached, position, dev.reached[mine])
    return Triangle(
        chosen,
        measures,
        [b.astype("datetime64[us]").item() for b in buckets],
        share,
        model.settle_age,
        reached >= model.settle_age,
    )
