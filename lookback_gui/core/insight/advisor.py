"""The lookback advisor: how late a metric's data arrives, measured from its stored versions.

Every revision is a change that arrived between two observations of a bucket, in knowledge time
(see the store): the pull known last before it that covered the bucket saw it at age ``k_prev``
(in buckets from the bucket to the one holding the known time, the current bucket being age 0)
and the revising version is known at age ``k``. A backfill or replay of the past is an
observation at its own known time, like any other pull. The change is spread evenly over the ages
``k_prev + 1 … k`` (exact for pulls one bucket apart; an estimate for audits that see a bucket
after long gaps). From that follow the settling curve (which share of the final value was present
at each age), the share of revisions and of revised magnitude by age, the age after which buckets
are settled, and the smallest lookback that would have caught a chosen share of the revised
magnitude. Audit pulls (a deep window every ``audit_every``) are what let the advisor see
revisions beyond the regular lookback: those are reported as *missed revisions*.

The arrivals also drive the backtests: every candidate pull policy is replayed against them (see
:mod:`policies`), the recommendation names the tail its lookback leaves and the audit that
catches it, and the nowcast is replayed in time (see :mod:`nowcast`).

A year of use leaves millions of versions, so the advisor reads none of them: each commit keeps the
changes late data made, summed per bucket, known time and the known time of the pull before (the
store's ``arrival_sums``); DuckDB sums those by measure, age, the age of the pull before and the
bucket's phase against the audit cadences (:func:`settling.load_arrival_sums`), and everything that
counts or weighs revisions comes from those few hundred rows. Only the statistics that follow
single values (each policy's errors by age, the nowcast backtest) read values one by one: those of
the latest buckets, at most about ``settling.MAX_WATCHED_VALUES`` of them (never fewer buckets than
two settlings), so on a small store all of them.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from lookback_gui.core.insight import policies
from lookback_gui.core.insight.development import Model
from lookback_gui.core.insight.nowcast import backtest_nowcast, latest_model
from lookback_gui.core.insight.policies import Arrivals
from lookback_gui.core.insight.recommendation import (
    needed_buckets,
    recommend,
    sentence,
    tail_and_audit,
    weighted_quantile,
)
from lookback_gui.core.insight.settling import (
    Development,
    bucket_index,
    load_arrival_sums,
    load_revisions,
)
from lookback_gui.core.insight.settling import (
    interval_density as _interval_density,
)
from lookback_gui.core.insight.settling import (
    interval_shares as _shares,
)
from lookback_gui.core.insight.settling import (
    spread_intervals as _spread,
)
from lookback_gui.core.project import MetricConfig
from lookback_gui.core.store import Store
from lookback_gui.core.timing.windows import _FIXED, Grain, Window, compute_window

MIN_REVISIONS = 30
MIN_RUNS = 3
DEFAULT_SHARE = 0.99


def audit_window(config: MetricConfig, as_of: datetime) -> Window:
    """The deep window of an audit pull: ``audit_factor`` times the lookback."""
    return compute_window(
        as_of, config.grain, config.buckets * config.audit_factor, config.complete_buckets_only
    )


@dataclass(frozen=True)
class Advice:
    """The advisor's answer for one metric; ``to_json`` is what ``advise --json`` prints."""

    metric: str
    grain: str
    lookback_buckets: int
    revisions_observed: int
    runs_observed: int
    enough_history: bool
    message: str
    settling_curve: list[dict[str, Any]] = field(default_factory=list)
    revisions_by_age: list[dict[str, Any]] = field(default_factory=list)
    lag_percentiles: dict[str, float | None] = field(default_factory=dict)
    settled_after_buckets: dict[str, int | None] = field(default_factory=dict)
    missed_revisions: list[dict[str, Any]] = field(default_factory=list)
    recommendation: dict[str, Any] | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    nowcast_backtest: dict[str, Any] | None = None
    settle_age_buckets: int | None = None
    settle_share: float = DEFAULT_SHARE

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "grain": self.grain,
            "lookback_buckets": self.lookback_buckets,
            "revisions_observed": self.revisions_observed,
            "runs_observed": self.runs_observed,
            "enough_history": self.enough_history,
            "message": self.message,
            "settling_curve": self.settling_curve,
            "revisions_by_age": self.revisions_by_age,
            "lag_percentiles": self.lag_percentiles,
            "settled_after_buckets": self.settled_after_buckets,
            "missed_revisions": self.missed_revisions,
            "recommendation": self.recommendation,
            "candidates": self.candidates,
            "nowcast_backtest": self.nowcast_backtest,
            "settle_age_buckets": self.settle_age_buckets,
            "settle_share": self.settle_share,
        }


@dataclass(frozen=True)
class Pulls:
    """What the advisor needs of a metric's successful runs, read in one query.

    Attributes:
        count: how many there are; audits: whether any of them was an audit.
        seconds_per_bucket: each run's duration over the buckets of its window.
        usage: their span, pull rate and rows per bucket (see :mod:`policies`).
    """

    count: int
    audits: bool
    seconds_per_bucket: list[float]
    usage: policies.Usage


def _pulls(store: Store, config: MetricConfig) -> Pulls:
    def buckets(grain: Grain) -> str:
        if grain is Grain.MONTH:
            return "date_diff('month', window_start, window_end)"
        micros = int(_FIXED[grain].total_seconds()) * 1_000_000
        return f"(epoch_us(window_end) - epoch_us(window_start)) // {micros}"

    per_grain = " ".join(f"WHEN '{g.value}' THEN {buckets(g)}" for g in Grain)
    where = "metric = $metric AND status = 'succeeded'"
    params = {"metric": config.name}
    with store.reading() as cur:
        row = cur.execute(
            f"SELECT count(*), count(*) FILTER (WHERE trigger = 'audit'), "
            f"count(known_at), min(known_at), max(known_at) FROM runs WHERE {where}",
            params,
        ).fetchone()
        assert row is not None
        seconds = [
            r[0]
            for r in cur.execute(
                f"""
            SELECT duration_s / n FROM (
                SELECT duration_s, CASE grain {per_grain} END AS n FROM runs
                WHERE {where} AND duration_s IS NOT NULL AND window_start IS NOT NULL
                  AND window_end IS NOT NULL
            ) WHERE n > 0
            """,
                params,
            ).fetchall()
        ]
        rates = [
            r[0]
            for r in cur.execute(
                f"""
            SELECT rows / n FROM (
                SELECT rows, {buckets(config.grain)} AS n FROM runs
                WHERE {where} AND rows IS NOT NULL AND window_start IS NOT NULL
                  AND window_end IS NOT NULL
            ) WHERE n > 0
            """,
                params,
            ).fetchall()
        ]
    count, audits, known, first, last = row
    regular = count - audits
    span = 1.0
    if known > 1:
        span = max(1.0, (last - first) / policies._bucket_length(config.grain))
    usage = policies.Usage(
        span=span,
        regular_per_bucket=max(regular / span, 1 / span) if regular else 0.0,
        rows_per_bucket=statistics.median(rates) if rates else None,
    )
    return Pulls(count, audits > 0, seconds, usage)


def _modulus(config: MetricConfig) -> int:
    """A multiple of every audit cadence the candidates try, so that a bucket's number modulo
    it places the bucket against all of their audits."""
    cadences = set(policies.AUDIT_CADENCES[config.grain])
    if config.audit_every is not None and config.grain is not Grain.MONTH:
        cadences.add(max(1, round(config.audit_every / _FIXED[config.grain])))
    modulus = 1
    for every in cadences:
        modulus = math.lcm(modulus, every)
    return modulus


def advise(store: Store, config: MetricConfig, share: float = DEFAULT_SHARE) -> Advice:
    """Measure how late ``config``'s data arrives and recommend the lookback it needs.

    The revisions are summed in DuckDB by age, interval and bucket phase
    (:func:`load_arrival_sums`): the shares, percentiles, curve, tail and what each candidate
    policy catches come from those sums. The statistics that follow single values (the errors
    by age of each policy, the nowcast backtest) read the values of the latest buckets, at most
    about ``settling.MAX_WATCHED_VALUES`` of them (all of them on a smaller store)."""
    pulls = _pulls(store, config)
    modulus = _modulus(config)
    sums = load_arrival_sums(store, config, modulus)
    count = int(sums["revisions"].sum()) if len(sums.get("revisions", ())) else 0
    base: dict[str, Any] = {
        "metric": config.name,
        "grain": config.grain.value,
        "lookback_buckets": config.buckets,
        "revisions_observed": count,
        "runs_observed": pulls.count,
    }
    if count < MIN_REVISIONS or pulls.count < MIN_RUNS:
        return _too_little_history(base, count, pulls.count)

    spread = _spread_sums(sums)
    complete_only = config.complete_buckets_only
    needed = np.maximum(spread.ages + (0 if complete_only else 1), 1)
    total = spread.magnitude.sum()
    by_age = _by_age(spread.ages, spread.counts, spread.magnitude, count, total)
    percentiles, settled = _percentiles(spread)

    model, revisions = latest_model(store, config)
    curve = _settling_curve(model)
    missed = _missed(config, load_revisions(store, config, audits_only=True)) if pulls.audits else []

    quantile = weighted_quantile(needed, spread.magnitude, share)
    recommendation = None
    candidates: list[dict[str, Any]] = []
    if quantile is not None:
        recommendation, candidates = _recommendation(
            config, model, revisions, pulls, spread, needed, count, int(quantile), share
        )
    nowcast_backtest = backtest_nowcast(model, config)
    message = sentence(config, share, recommendation, missed, model)
    return Advice(
        **base,
        enough_history=True,
        message=message,
        settling_curve=curve,
        revisions_by_age=by_age,
        lag_percentiles=percentiles,
        settled_after_buckets=settled,
        missed_revisions=missed,
        recommendation=recommendation,
        candidates=candidates,
        nowcast_backtest=nowcast_backtest,
        settle_age_buckets=model.settle_age,
        settle_share=config.settle_share,
    )


def _too_little_history(base: dict[str, Any], count: int, runs: int) -> Advice:
    """The advice while the store holds fewer than ``MIN_REVISIONS`` revisions or ``MIN_RUNS``
    successful pulls (``count``, ``runs``): what is still needed."""
    need = [f"need {MIN_REVISIONS}"] if count < MIN_REVISIONS else []
    if runs < MIN_RUNS:
        need.append(f"{runs} successful pull(s) of {MIN_RUNS}")
    return Advice(
        **base,
        enough_history=False,
        message=f"not enough history yet: {count} revisions observed, " + ", ".join(need),
    )


@dataclass(frozen=True)
class Spread:
    """The revisions' sums (see :func:`load_arrival_sums`) spread over the ages each may have
    arrived at, by the arrival density of all of them: one entry per sum and age.

    Attributes:
        spans: how many ages each sum is spread over.
        ages: the age of each entry.
        density: the arrival density the sums were shared out by.
        magnitude, signed, counts: the entry's part of its sum's |change|, change and count.
        phase: the entry's bucket phase against the audit cadences.
    """

    spans: np.ndarray
    ages: np.ndarray
    density: np.ndarray
    magnitude: np.ndarray
    signed: np.ndarray
    counts: np.ndarray
    phase: np.ndarray


def _spread_sums(sums: dict[str, np.ndarray]) -> Spread:
    """The revisions' ``sums`` spread over the ages each may have arrived at."""
    ages = sums["age"].astype(np.int64)
    spans, spread_ages = _spread(ages, sums["prev_age"].astype(np.int64))
    magnitude = sums["magnitude"].astype(float)
    density = _interval_density(spread_ages, spans, magnitude)
    share_of_revision = _shares(density, spread_ages, spans)
    spread_weights = np.repeat(magnitude, spans) * share_of_revision
    spread_signed = np.repeat(sums["signed"].astype(float), spans) * share_of_revision
    spread_counts = np.repeat(sums["revisions"].astype(float), spans) * share_of_revision
    phase = np.repeat(sums["phase"].astype(np.int64), spans)
    return Spread(spans, spread_ages, density, spread_weights, spread_signed, spread_counts, phase)


def _percentiles(spread: Spread) -> tuple[dict[str, float | None], dict[str, int | None]]:
    """The ages by which 50, 90, 95 and 99 % of the revised magnitude arrived, and the ages
    after which buckets are settled (95 and 99 % of it)."""
    percentiles: dict[str, float | None] = {
        f"p{int(q * 100)}": weighted_quantile(spread.ages, spread.magnitude, q)
        for q in (0.5, 0.9, 0.95, 0.99)
    }
    settled = {
        "p95": weighted_quantile(spread.ages, spread.magnitude, 0.95),
        "p99": weighted_quantile(spread.ages, spread.magnitude, 0.99),
    }
    return percentiles, settled


def _recommendation(
    config: MetricConfig,
    model: Model,
    revisions: dict[str, np.ndarray],
    pulls: Pulls,
    spread: Spread,
    needed: np.ndarray,
    count: int,
    quantile: int,
    share: float,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The recommendation from the revisions' ``quantile`` (see :func:`recommend`), with the
    tail it leaves and the audit that catches it, and every candidate policy replayed against
    the arrivals (``needed``: the lookback each arrival needs; ``count``: the revisions)."""
    rec = recommend(config, model, pulls.seconds_per_bucket, pulls.audits, quantile, share)
    recommended = rec["lookback_buckets"]
    dev = model.dev
    arrivals = Arrivals(
        age=np.maximum(spread.ages, 0),
        magnitude=spread.magnitude,
        signed=spread.signed,
        count=spread.counts,
        index=spread.phase,
        owner=np.full(len(spread.ages), -1, dtype=np.int64),
        revisions=count,
    )
    candidates = policies.candidates(
        arrivals,
        _owned(config, revisions, dev, spread.density),
        dev,
        pulls.usage,
        config,
        recommended,
        model.settle_age,
    )
    rec.update(
        tail_and_audit(
            config,
            recommended,
            needed,
            spread.ages,
            spread.magnitude,
            spread.counts,
            count,
            candidates,
            arrivals,
        )
    )
    return rec, candidates


def _by_age(
    spread_ages: np.ndarray, spread_counts: np.ndarray, spread_weights: np.ndarray, count: int, total: float
) -> list[dict[str, Any]]:
    """The share of the revisions, and of their magnitude, that arrived at each age."""
    by_age = []
    for age in range(int(spread_ages.min()), int(spread_ages.max()) + 1):
        mask = spread_ages == age
        if not mask.any():
            continue
        by_age.append(
            {
                "age_buckets": age,
                "revisions_share": round(float(spread_counts[mask].sum() / count), 6),
                "magnitude_share": round(float(spread_weights[mask].sum() / total), 6) if total else 0.0,
            }
        )
    return by_age


def _owned(
    config: MetricConfig, revisions: dict[str, np.ndarray], dev: Development, density: np.ndarray
) -> Arrivals:
    """The arrivals of the revisions of the values in ``dev``, one part per age each may have
    arrived at (shared out by ``density``), for the errors a policy leaves in them."""
    if not revisions or len(revisions.get("age", ())) == 0:
        empty = np.zeros(0)
        empty_i = np.zeros(0, dtype=np.int64)
        return Arrivals(empty_i, empty, empty, empty, empty_i, empty_i, 0)
    ages = revisions["age"].astype(np.int64)
    spans, spread_ages = _spread(ages, revisions["prev_age"].astype(np.int64))
    shares = _shares(density, spread_ages, spans)
    deltas = revisions["value"].astype(float) - revisions["prev_value"].astype(float)
    owner = np.repeat(dev.revision_owner, spans)
    mine = owner >= 0
    index = np.repeat(bucket_index(np.asarray(revisions["bucket"]), config.grain), spans)
    signed = np.repeat(deltas, spans) * shares
    return Arrivals(
        age=np.maximum(spread_ages, 0)[mine],
        magnitude=np.abs(signed)[mine],
        signed=signed[mine],
        count=shares[mine],
        index=index[mine],
        owner=owner[mine],
        revisions=len(ages),
    )


def _settling_curve(model: Model) -> list[dict[str, Any]]:
    """Share of the final value present at each age, per measure, from the development (the
    chain-ladder factors of every value watched from its start, see :mod:`development`)."""
    present = model.share_present()
    if not present:
        return []
    curve = []
    for age in range(model.ages):
        curve.append(
            {
                "age_buckets": age,
                "share_present": {
                    measure: (round(float(share[age]) * 100, 3) if math.isfinite(share[age]) else None)
                    for measure, share in sorted(present.items())
                },
            }
        )
    return curve


def _missed(config: MetricConfig, data: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Revisions an audit found in buckets the regular lookback no longer held (``data``: the
    revisions of audit pulls, see :func:`load_revisions`)."""
    missed = []
    ages: list[int] = data["age"].astype(np.int64).tolist() if data and len(data.get("age", ())) else []
    for i, age in enumerate(ages):
        if needed_buckets(int(age), config.complete_buckets_only) <= config.buckets:
            continue
        old, new = float(data["prev_value"][i]), float(data["value"][i])
        missed.append(
            {
                "run": int(data["run_id"][i]),
                "bucket": str(data["bucket"][i].astype("datetime64[s]")).replace(" ", "T"),
                "dims": json.loads(str(data["dims"][i])),
                "measure": str(data["measure"][i]),
                "old_value": old,
                "new_value": new,
                "change": new - old,
                "change_pct": round((new - old) / abs(old) * 100, 3) if old else None,
                "age_buckets": int(age),
            }
        )
    return missed
