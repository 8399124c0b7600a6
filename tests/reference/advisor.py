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
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from lookback_gui.core.project import MetricConfig
from lookback_gui.core.store import Store
from lookback_gui.core.timing.windows import Grain, Window, compute_window, format_lookback
from tests.reference import policies
from tests.reference.nowcast import backtest_nowcast
from tests.reference.policies import Arrivals
from tests.reference.settling import (
    bucket_index,
    development,
    knowledge_horizon,
    load_revisions,
    load_values,
)

MIN_REVISIONS = 30
MIN_RUNS = 3
DEFAULT_SHARE = 0.99


def audit_window(config: MetricConfig, as_of: datetime) -> Window:
    """The deep window of an audit pull: ``audit_factor`` times the lookback."""
    return compute_window(
        as_of, config.grain, config.buckets * config.audit_factor, config.complete_buckets_only
    )


def needed_buckets(age: int, complete_buckets_only: bool) -> int:
    """The lookback (in buckets) whose window still holds a bucket of this age."""
    return max(1, age if complete_buckets_only else age + 1)


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
        }


def _weighted_quantile(ages: np.ndarray, weights: np.ndarray, share: float) -> int | None:
    total = weights.sum()
    if total <= 0 or len(ages) == 0:
        return None
    order = np.argsort(ages, kind="stable")
    cumulative = np.cumsum(weights[order]) / total
    index = int(np.searchsorted(cumulative, share - 1e-12))
    return int(ages[order][min(index, len(order) - 1)])


def advise(
    store: Store, config: MetricConfig, share: float = DEFAULT_SHARE, settle_age: int | None = None
) -> Advice:
    """Measure how late ``config``'s data arrives and recommend the lookback it needs."""
    runs = [r for r in store.runs(metric=config.name, status="succeeded")]
    data = load_revisions(store, config)
    count = len(data["age"]) if data else 0
    base: dict[str, Any] = {
        "metric": config.name,
        "grain": config.grain.value,
        "lookback_buckets": config.buckets,
        "revisions_observed": count,
        "runs_observed": len(runs),
    }
    if count < MIN_REVISIONS or len(runs) < MIN_RUNS:
        need = [f"need {MIN_REVISIONS}"] if count < MIN_REVISIONS else []
        if len(runs) < MIN_RUNS:
            need.append(f"{len(runs)} successful pull(s) of {MIN_RUNS}")
        return Advice(
            **base,
            enough_history=False,
            message=f"not enough history yet: {count} revisions observed, " + ", ".join(need),
        )

    ages = data["age"].astype(np.int64)
    prev_ages = np.minimum(data["prev_age"].astype(np.int64), ages - 1)
    deltas = data["value"].astype(float) - data["prev_value"].astype(float)
    spans = np.maximum(ages - prev_ages, 1)
    spread_ages = np.repeat(ages, spans) - _offsets(spans)
    share_of_revision = _interval_shares(spread_ages, spans, np.abs(deltas))
    spread_weights = np.repeat(np.abs(deltas), spans) * share_of_revision
    spread_signed = np.repeat(deltas, spans) * share_of_revision
    spread_measures = np.repeat(data["measure"], spans)
    spread_counts = share_of_revision

    complete_only = config.complete_buckets_only
    needed = np.maximum(spread_ages + (0 if complete_only else 1), 1)
    total = spread_weights.sum()
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
    percentiles: dict[str, float | None] = {
        f"p{int(q * 100)}": _weighted_quantile(spread_ages, spread_weights, q) for q in (0.5, 0.9, 0.95, 0.99)
    }
    settled = {
        "p95": _weighted_quantile(spread_ages, spread_weights, 0.95),
        "p99": _weighted_quantile(spread_ages, spread_weights, 0.99),
    }

    curve = _settling_curve(store, config, spread_ages, spread_signed, spread_measures, data)
    missed = _missed(config, data, ages, deltas)

    quantile = _weighted_quantile(needed, spread_weights, share)
    recommendation = None
    candidates: list[dict[str, Any]] = []
    nowcast_backtest = None
    if quantile is not None:
        per_bucket = _seconds_per_bucket(runs)
        recommended = int(quantile)
        rec: dict[str, Any] = {
            "lookback_buckets": recommended,
            "lookback": format_lookback(recommended, config.grain),
            "target_share": share,
            "current_lookback_buckets": config.buckets,
            "seconds_per_bucket": per_bucket,
            "expected_pull_s": None if per_bucket is None else round(per_bucket * recommended, 4),
            "current_pull_s": None if per_bucket is None else round(per_bucket * config.buckets, 4),
            "saves_s_per_pull": None,
        }
        if per_bucket is not None and recommended < config.buckets:
            rec["saves_s_per_pull"] = round(per_bucket * (config.buckets - recommended), 4)
        if not any(r.trigger == "audit" for r in runs):
            rec["note"] = (
                "no audit pulls yet: revisions later than the current lookback cannot "
                "be seen; set audit_every to measure them"
            )
        dev = development(config, data, load_values(store, config), knowledge_horizon(store, config.name))
        arrivals = Arrivals(
            age=np.maximum(spread_ages, 0),
            magnitude=spread_weights,
            signed=spread_signed,
            count=spread_counts,
            index=np.repeat(bucket_index(np.asarray(data["bucket"]), config.grain), spans),
            owner=np.repeat(dev.revision_owner, spans),
            revisions=count,
        )
        # which values count as settled for the policies' errors: the development model's
        # settle age when given (its oracle is chainladder), else the oldest change
        settled_dev = dev if settle_age is None else dataclasses.replace(dev, settle_age=settle_age)
        candidates = policies.candidates(
            arrivals, settled_dev, policies.usage_of(runs, config), config, recommended
        )
        rec.update(
            _tail(
                config,
                recommended,
                needed,
                spread_ages,
                spread_weights,
                spread_counts,
                count,
                candidates,
                arrivals,
            )
        )
        recommendation = rec
        nowcast_backtest = backtest_nowcast(dev, config)
    sentence = _sentence(config, share, recommendation, missed, settled)
    return Advice(
        **base,
        enough_history=True,
        message=sentence,
        settling_curve=curve,
        revisions_by_age=by_age,
        lag_percentiles=percentiles,
        settled_after_buckets=settled,
        missed_revisions=missed,
        recommendation=recommendation,
        candidates=candidates,
        nowcast_backtest=nowcast_backtest,
    )


def _tail(
    config: MetricConfig,
    recommended: int,
    needed: np.ndarray,
    ages: np.ndarray,
    weights: np.ndarray,
    counts: np.ndarray,
    revisions: int,
    candidates: list[dict[str, Any]],
    arrivals: Arrivals,
) -> dict[str, Any]:
    """What the recommended lookback leaves (changes that arrive when their bucket is older
    than it holds), and the cheapest audit that catches all of it (see
    :func:`policies.cheapest_audit`); the keys the recommendation gains."""
    beyond = needed > recommended
    total = float(weights.sum()) or 1.0
    reach = policies.tail_reach(arrivals, recommended, config.complete_buckets_only)
    audit = policies.cheapest_audit(candidates, recommended, config.grain)
    if reach is None or audit is None:
        plain = next(
            (c for c in candidates if c["lookback_buckets"] == recommended and c["audit_every"] is None), None
        )
        return {
            "policy": format_lookback(recommended, config.grain),
            "audit_every": None,
            "audit_factor": None,
            "tail": None,
            "magnitude_share": plain["magnitude_share"] if plain else None,
        }
    current_every = None
    if config.audit_every is not None and config.grain in policies._FIXED:
        current_every = round(config.audit_every / policies._FIXED[config.grain])
    if current_every is None:
        action = "add"
    elif (
        current_every == audit["audit_every_buckets"]
        and config.buckets == recommended
        and config.audit_factor == audit["audit_factor"]
    ):
        action = "keep"
    else:
        action = "set"
    return {
        "policy": audit["policy"],
        "audit_every": audit["audit_every"],
        "audit_factor": audit["audit_factor"],
        "magnitude_share": audit["magnitude_share"],
        "tail": {
            "after_buckets": recommended,
            "up_to_age_buckets": _weighted_quantile(ages[beyond], weights[beyond], 0.99),
            "magnitude_share": round(float(weights[beyond].sum()) / total, 6),
            "revisions_share": round(float(counts[beyond].sum()) / max(revisions, 1), 6),
            "action": action,
        },
    }


def _interval_shares(
    spread_ages: np.ndarray, spans: np.ndarray, weights: np.ndarray, iterations: int = 500
) -> np.ndarray:
    """How each revision's change divides over the ages it may have arrived at.

    A revision seen at age ``k`` whose bucket was last seen unchanged at age ``k_prev`` arrived
    at one of the ages ``k_prev + 1 … k``. Where pulls are one bucket apart that is exact; where
    an audit saw the bucket after a long gap it is an interval. The arrival-age distribution is
    estimated from all intervals at once (Turnbull's self-consistent estimator, by EM), and each
    interval's change is divided over its ages in proportion to it.
    """
    owner = np.repeat(np.arange(len(spans)), spans)
    size = int(spread_ages.max()) + 1 if len(spread_ages) else 1
    ages = np.maximum(spread_ages, 0)
    density = np.full(size, 1.0 / size)
    total = float(weights.sum()) or 1.0
    shares = np.repeat(1.0 / spans, spans)
    for _ in range(iterations):
        mass = density[ages]
        norm = np.bincount(owner, weights=mass, minlength=len(spans))
        shares = mass / np.where(norm[owner] > 0, norm[owner], 1.0)
        updated = np.bincount(ages, weights=shares * weights[owner], minlength=size) / total
        if np.abs(updated - density).max() < 1e-9:
            density = updated
            break
        density = updated
    return shares


def _offsets(spans: np.ndarray) -> np.ndarray:
    """For spans [2, 3]: [0, 1, 0, 1, 2] — each revision's ages counted back from its own."""
    starts = np.repeat(np.cumsum(spans) - spans, spans)
    return np.arange(int(spans.sum())) - starts


def _settling_curve(
    store: Store,
    config: MetricConfig,
    ages: np.ndarray,
    signed: np.ndarray,
    measures: np.ndarray,
    data: dict[str, np.ndarray],
) -> list[dict[str, Any]]:
    """Share of the final value present at each age, per measure, over buckets seen from new."""
    firsts = load_values(store, config)
    if not firsts or len(firsts["measure"]) == 0:
        return []
    young = firsts["first_age"].astype(np.int64) <= (1 if config.complete_buckets_only else 0)
    if not young.any():
        young = firsts["first_age"].astype(np.int64) <= int(np.min(firsts["first_age"]))
    # only values whose buckets are young enough to have been watched from their start
    keys = {
        (d, m, b)
        for d, m, b, ok in zip(firsts["dims"], firsts["measure"], firsts["bucket"], young, strict=True)
        if ok
    }
    watched = np.array(
        [(d, m, b) in keys for d, m, b in zip(data["dims"], data["measure"], data["bucket"], strict=True)]
    )
    spans = np.maximum(
        data["age"].astype(np.int64)
        - np.minimum(data["prev_age"].astype(np.int64), data["age"].astype(np.int64) - 1),
        1,
    )
    watched_spread = np.repeat(watched, spans)
    max_age = int(ages.max()) if len(ages) else 0
    curve = []
    for age in range(0, max_age + 1):
        point: dict[str, Any] = {"age_buckets": age, "share_present": {}}
        for measure in sorted(set(firsts["measure"][young])):
            mask = young & (firsts["measure"] == measure)
            final = float(firsts["final_value"][mask].sum())
            start = float(firsts["first_value"][mask].sum())
            arrived = float(signed[(measures == measure) & watched_spread & (ages <= age)].sum())
            point["share_present"][str(measure)] = (
                round((start + arrived) / final * 100, 3) if final else None
            )
        curve.append(point)
    return curve


def _missed(
    config: MetricConfig, data: dict[str, np.ndarray], ages: np.ndarray, deltas: np.ndarray
) -> list[dict[str, Any]]:
    """Revisions an audit found in buckets the regular lookback no longer held."""
    missed = []
    for i in np.flatnonzero(data["trigger"] == "audit"):
        if needed_buckets(int(ages[i]), config.complete_buckets_only) <= config.buckets:
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
                "age_buckets": int(ages[i]),
            }
        )
    return missed


def _seconds_per_bucket(runs: list[Any]) -> float | None:
    from lookback_gui.core.timing.windows import buckets_between

    rates = []
    for run in runs:
        if run.duration_s is None or not run.window_start or not run.window_end or not run.grain:
            continue
        count = buckets_between(run.window_start, run.window_end, Grain(run.grain))
        if count > 0:
            rates.append(run.duration_s / count)
    return round(statistics.median(rates), 6) if rates else None


def _sentence(
    config: MetricConfig,
    share: float,
    rec: dict[str, Any] | None,
    missed: list[dict[str, Any]],
    settled: dict[str, int | None],
) -> str:
    grain = config.grain.value
    if rec is None:
        return "no revisions to measure yet"
    n = rec["lookback_buckets"]
    text = (
        f"a lookback of {n} {grain} bucket(s) ({rec['lookback']}) would have caught "
        f"{share * 100:g}% of the revised magnitude; the current one is {config.buckets}"
    )
    if n < config.buckets and rec.get("saves_s_per_pull"):
        text += f"; the shorter window saves about {rec['saves_s_per_pull']:.3g} s per pull"
    elif n > config.buckets:
        text += f"; {len(missed)} revision(s) were missed by the current lookback"
    if settled.get("p99") is not None:
        text += f". Buckets settle after about {settled['p99']} {grain}(s) (p99 of magnitude)"
    tail = rec.get("tail")
    if tail:
        verb = {"add": "add", "set": "set", "keep": "keep"}[tail["action"]]
        text += (
            f". {format_share(tail['magnitude_share'])} % of revised magnitude arrives after "
            f"{tail['after_buckets']} {grain}(s) (up to {tail['up_to_age_buckets']}), which "
            f"no lookback of {rec['lookback']} catches: {verb} "
            f'audit_every = "{rec["audit_every"]}", audit_factor = {rec["audit_factor"]}'
        )
    return text


def format_share(share: float) -> str:
    """A share (0…1) as a percentage with two significant digits: 0.33, 0.041, 12."""
    pct = share * 100
    if pct >= 10:
        return f"{pct:.0f}"
    return f"{pct:.2g}"
