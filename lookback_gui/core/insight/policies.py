"""Pull policies tried on a metric's stored history: what each would have caught, and its cost.

A policy is a regular lookback of ``L`` buckets, optionally with an audit: a deep pull over
``audit_factor`` × ``L`` buckets every ``audit_every``. The advisor knows when each revision's
change arrived (an age, or a share of it at each age it may have arrived at, see the advisor), so
for every policy it can say which changes its pulls would have seen, and when:

- a regular pull holds a bucket while its age needs no more than ``L`` buckets of lookback, so it
  catches a change as soon as it arrives at such an age;
- an audit holds buckets up to ``L × audit_factor``; audits run every ``audit_every`` buckets
  at fixed times of the calendar, so a change that arrives later than the lookback is caught by
  the first audit after it, if its bucket is still inside the audit's window then;
- any other change is never caught: the dashboard keeps the value without it.

From that follow the share of revised magnitude and of revisions each policy catches, the largest
error a dashboard would have shown at each age (the value the policy had seen against the settled
value, over the values watched from their start that have settled), and the pulls and rows read
over the span of the stored history, at the rates the metric's own pulls showed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lookback_gui.core.insight.settling import Development
from lookback_gui.core.project import MetricConfig
from lookback_gui.core.timing.windows import _FIXED, Grain, format_lookback

# the audit cadence suggested for the tail when the metric has none, in buckets of its grain
DEFAULT_AUDIT_EVERY = {Grain.MINUTE: 60, Grain.HOUR: 24, Grain.DAY: 7, Grain.WEEK: 4, Grain.MONTH: 3}
# cadences the candidates also try
AUDIT_CADENCES = {
    Grain.MINUTE: (15, 60, 1440),
    Grain.HOUR: (6, 24, 168),
    Grain.DAY: (1, 7, 14, 28),
    Grain.WEEK: (1, 4, 13),
    Grain.MONTH: (1, 3, 12),
}
MAX_CANDIDATE_LOOKBACK = 400
# a tail smaller than this share of the revised magnitude is the estimator's rounding, not data
TAIL_EPSILON = 1e-6
MAX_ERROR_AGES = 400


@dataclass(frozen=True)
class Arrivals:
    """Every revision's change divided over the ages it may have arrived at.

    Attributes:
        age: the arrival age of each part.
        magnitude: |change| × the part's share.
        signed: the change × the part's share.
        count: the part's share of its revision (each revision sums to 1).
        index: the bucket of the part's revision, as a number of buckets (for the audits' phase).
        owner: the value watched from its start that the part belongs to, or -1.
        revisions: how many revisions the parts come from.
    """

    age: np.ndarray
    magnitude: np.ndarray
    signed: np.ndarray
    count: np.ndarray
    index: np.ndarray
    owner: np.ndarray
    revisions: int


@dataclass(frozen=True)
class Policy:
    """A regular lookback, and an audit (every ``audit_every`` buckets over ``audit_factor``
    times the lookback) or none."""

    lookback: int
    audit_every: int | None = None
    audit_factor: int | None = None

    @property
    def audited(self) -> bool:
        return self.audit_every is not None and self.audit_factor is not None


@dataclass(frozen=True)
class Usage:
    """What the metric's pulls cost, measured from its runs.

    Attributes:
        span: the stored history, in buckets (from the first to the last known time).
        regular_per_bucket: regular (non-audit) pulls per bucket of time.
        rows_per_bucket: rows a pull read per bucket of its window (None: not measured).
    """

    span: float
    regular_per_bucket: float
    rows_per_bucket: float | None


def needed_lookback(ages: np.ndarray, complete_only: bool) -> np.ndarray:
    """The lookback (in buckets) whose window still holds buckets of these ages."""
    return np.maximum(ages + (0 if complete_only else 1), 1)


def format_every(buckets: int, grain: Grain) -> str:
    """``audit_every`` for a number of buckets, as the project file writes it."""
    if grain is Grain.MONTH:
        return f"{buckets * 31}d"  # audits are timed by durations; a month is at most 31 days
    unit = {Grain.MINUTE: "m", Grain.HOUR: "h", Grain.DAY: "d", Grain.WEEK: "w"}[grain]
    return f"{buckets}{unit}"


def describe(policy: Policy, grain: Grain) -> str:
    text = str(format_lookback(policy.lookback, grain))
    if policy.audited:
        assert policy.audit_every is not None
        text += f" + audit every {format_every(policy.audit_every, grain)} × {policy.audit_factor}"
    return text


def _bucket_length(grain: Grain) -> Any:
    from datetime import timedelta

    return _FIXED.get(grain, timedelta(days=30.44))


def catch_ages(policy: Policy, arrivals: Arrivals, complete_only: bool) -> np.ndarray:
    """The age at which the policy's pulls see each part (inf: never)."""
    need = needed_lookback(arrivals.age, complete_only)
    caught = np.where(need <= policy.lookback, arrivals.age.astype(float), np.inf)
    if policy.audited:
        assert policy.audit_every is not None and policy.audit_factor is not None
        every = policy.audit_every
        wait = (-(arrivals.index + arrivals.age)) % every  # audits at fixed calendar times
        audit_age = arrivals.age + wait
        held = needed_lookback(audit_age, complete_only) <= policy.lookback * policy.audit_factor
        caught = np.where((need > policy.lookback) & held, audit_age.astype(float), caught)
    return caught


def _errors(
    caught: np.ndarray, arrivals: Arrivals, development: Development, ages: int, settled: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The largest and the 95th-percentile error (in % of the settled value) a dashboard
    following the policy would have shown at each age, over the settled values
    (``arrivals``: the parts of the values of ``development``, ``caught``: when the policy
    sees each)."""
    mine = arrivals.owner >= 0
    owner, signed, at = arrivals.owner[mine], arrivals.signed[mine], caught[mine]
    count = len(development)
    total = np.bincount(owner, weights=signed, minlength=count)
    steps = np.zeros((count, ages + 1))
    seen = np.isfinite(at)
    np.add.at(steps, (owner[seen], np.minimum(at[seen], ages).astype(np.int64)), signed[seen])
    missing = total[:, None] - np.cumsum(steps[:, :ages], axis=1)
    final = development.final
    use = settled & (final != 0)
    if not use.any():
        return np.full(ages, np.nan), np.full(ages, np.nan)
    relative = np.abs(missing[use]) / np.abs(final[use])[:, None] * 100
    grid = np.arange(ages)[None, :]
    relative = np.where(grid >= development.first_age[use][:, None], relative, np.nan)
    with np.errstate(all="ignore"):
        largest = np.nanmax(np.where(np.isnan(relative), -np.inf, relative), axis=0)
        largest = np.where(np.isfinite(largest), largest, np.nan)
        p95 = np.array(
            [np.percentile(c[~np.isnan(c)], 95) if (~np.isnan(c)).any() else np.nan for c in relative.T]
        )
    return largest, p95


def try_policy(
    policy: Policy,
    arrivals: Arrivals,
    owned: Arrivals,
    development: Development,
    usage: Usage,
    config: MetricConfig,
    ages: int,
    settle_age: int,
) -> dict[str, Any]:
    """One candidate: what the policy would have caught (of all ``arrivals``), its errors by
    age (over ``owned``, the arrivals of the values of ``development`` that have settled: older
    than ``settle_age``, the development model's), and its cost."""
    complete_only = config.complete_buckets_only
    caught = catch_ages(policy, arrivals, complete_only)
    regular = needed_lookback(arrivals.age, complete_only) <= policy.lookback
    total = float(arrivals.magnitude.sum()) or 1.0
    found = np.isfinite(caught)
    settled = development.reached >= settle_age
    largest, p95 = _errors(catch_ages(policy, owned, complete_only), owned, development, ages, settled)
    buckets_per_bucket = usage.regular_per_bucket * policy.lookback
    pulls = usage.regular_per_bucket * usage.span
    if policy.audited:
        assert policy.audit_every is not None and policy.audit_factor is not None
        buckets_per_bucket += policy.lookback * policy.audit_factor / policy.audit_every
        pulls += usage.span / policy.audit_every
    buckets_read = buckets_per_bucket * usage.span
    youngest = 1 if complete_only else 0
    return {
        "policy": describe(policy, config.grain),
        "lookback_buckets": policy.lookback,
        "lookback": format_lookback(policy.lookback, config.grain),
        "audit_every": (
            format_every(policy.audit_every, config.grain) if policy.audit_every is not None else None
        ),
        "audit_every_buckets": policy.audit_every,
        "audit_factor": policy.audit_factor,
        "magnitude_share": round(float(arrivals.magnitude[found].sum()) / total, 6),
        "revisions_share": round(float(arrivals.count[found].sum()) / max(arrivals.revisions, 1), 6),
        "lookback_magnitude_share": round(float(arrivals.magnitude[regular].sum()) / total, 6),
        "max_error_by_age": [
            {
                "age_buckets": age,
                "max_error_pct": None if math.isnan(largest[age]) else round(float(largest[age]), 4),
                "p95_error_pct": None if math.isnan(p95[age]) else round(float(p95[age]), 4),
            }
            for age in range(youngest, ages)
        ],
        "pulls": round(pulls),
        "buckets_read": round(buckets_read),
        "rows_read": (None if usage.rows_per_bucket is None else round(buckets_read * usage.rows_per_bucket)),
    }


def tail_reach(arrivals: Arrivals, lookback: int, complete_only: bool) -> int | None:
    """The lookback the changes beyond ``lookback`` need (None: there are none): the 99.9th
    percentile by magnitude, since the far ends of the long intervals that only an audit saw
    carry almost nothing."""
    need = needed_lookback(arrivals.age, complete_only)
    beyond = need > lookback
    weights = arrivals.magnitude[beyond]
    total = float(arrivals.magnitude.sum())
    if not beyond.any() or weights.sum() <= TAIL_EPSILON * total:
        return None
    order = np.argsort(need[beyond], kind="stable")
    cumulative = np.cumsum(weights[order]) / weights.sum()
    index = int(np.searchsorted(cumulative, 0.999 - 1e-12))
    return int(need[beyond][order][min(index, len(order) - 1)])


def audit_limit(lookback: int, grain: Grain) -> int:
    """The slowest audit cadence the advice suggests: once per lookback, or the grain's
    default (a week of days, a day of hours, …) when that is longer, so that a late change is
    put right within about the time its bucket spent in the lookback."""
    return max(lookback, DEFAULT_AUDIT_EVERY[grain])


def cheapest_audit(tried: list[dict[str, Any]], lookback: int, grain: Grain) -> dict[str, Any] | None:
    """Of the candidates with ``lookback`` and an audit no slower than :func:`audit_limit`
    that catch every change, the one that reads the fewest buckets."""
    limit = audit_limit(lookback, grain)
    fitting = [
        c
        for c in tried
        if c["lookback_buckets"] == lookback
        and c["audit_every_buckets"] is not None
        and c["audit_every_buckets"] <= limit
        and c["magnitude_share"] >= 1 - 1e-6
    ]
    return min(fitting, key=lambda c: (c["buckets_read"], c["audit_every_buckets"]), default=None)


def _audit(lookback: int, longest: int, every: int) -> Policy:
    factor = max(2, math.ceil((longest + every - 1) / lookback))
    return Policy(lookback, every, factor)


def candidates(
    arrivals: Arrivals,
    owned: Arrivals,
    development: Development,
    usage: Usage,
    config: MetricConfig,
    recommended: int,
    settle_age: int,
) -> list[dict[str, Any]]:
    """Every lookback of 1 … N buckets (N: the longest any change needed, or the current one),
    and the current and the recommended lookback each with the audits that catch the whole
    tail, at several cadences; the current policy is marked ``current``. ``arrivals`` are all
    the changes (parts may be summed), ``owned`` those of the values of ``development``."""
    complete_only = config.complete_buckets_only
    longest = int(needed_lookback(arrivals.age, complete_only).max()) if len(arrivals.age) else 1
    top = min(max(longest, config.buckets, recommended), MAX_CANDIDATE_LOOKBACK)
    ages = min(int(arrivals.age.max()) + 2 if len(arrivals.age) else 2, MAX_ERROR_AGES)
    policies = [Policy(n) for n in range(1, top + 1)]
    cadences = set(AUDIT_CADENCES[config.grain])
    if config.audit_every is not None and config.grain is not Grain.MONTH:
        cadences.add(max(1, round(config.audit_every / _FIXED[config.grain])))
    for lookback in sorted({recommended, config.buckets}):
        reach = tail_reach(arrivals, lookback, complete_only)
        if reach is not None:
            policies += [_audit(lookback, reach, every) for every in sorted(cadences)]
    current = Policy(config.buckets)
    if config.audit_every is not None and config.grain is not Grain.MONTH:
        current = Policy(
            config.buckets, max(1, round(config.audit_every / _FIXED[config.grain])), config.audit_factor
        )
        if current not in policies:
            policies.append(current)
    out = []
    for policy in dict.fromkeys(policies):
        entry = try_policy(policy, arrivals, owned, development, usage, config, ages, settle_age)
        entry["current"] = policy == current
        out.append(entry)
    return out
