"""The advisor's recommendation: the lookback that catches a share of the revised magnitude.

The revisions' own quantile is the start; where the development says the oldest bucket that
lookback holds lacks that share of its final value, it is raised to the lookback that holds it.
The recommendation names what it costs and saves per pull, the tail it leaves (the changes that
arrive when their bucket is older than it holds) with the cheapest audit that catches it (see
:mod:`policies`), and the sentence that says all of it.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np

from lookback_gui.core.insight import policies
from lookback_gui.core.insight.development import Model
from lookback_gui.core.insight.policies import Arrivals
from lookback_gui.core.project import MetricConfig
from lookback_gui.core.timing.windows import format_lookback


def needed_buckets(age: int, complete_buckets_only: bool) -> int:
    """The lookback (in buckets) whose window still holds a bucket of this age."""
    return max(1, age if complete_buckets_only else age + 1)


def weighted_quantile(ages: np.ndarray, weights: np.ndarray, share: float) -> int | None:
    """The smallest of ``ages`` by which ``share`` of the total of ``weights`` is reached (None:
    no weight)."""
    total = weights.sum()
    if total <= 0 or len(ages) == 0:
        return None
    order = np.argsort(ages, kind="stable")
    cumulative = np.cumsum(weights[order]) / total
    index = int(np.searchsorted(cumulative, share - 1e-12))
    return int(ages[order][min(index, len(order) - 1)])


def recommend(
    config: MetricConfig,
    model: Model,
    seconds_per_bucket: list[float],
    audits: bool,
    recommended: int,
    share: float,
) -> dict[str, Any]:
    """The recommendation from the revisions' quantile (``recommended`` buckets): raised where
    the development says it falls short of ``share``, with what it costs and saves per pull
    (``seconds_per_bucket``: each pull's duration over the buckets of its window; ``audits``:
    whether any pull was an audit)."""
    per_bucket = round(statistics.median(seconds_per_bucket), 6) if seconds_per_bucket else None
    caught = _caught(config, model, recommended)
    raised_from = None
    if caught is not None and abs(1 - caught) > 1 - share + 1e-9:
        # the development says the revisions' own quantile falls short: raise it to the
        # smallest lookback whose oldest bucket holds the share of its final value
        enough = _enough(config, model, share)
        if enough is not None and enough > recommended:
            raised_from, recommended = recommended, enough
            caught = _caught(config, model, recommended)
    rec: dict[str, Any] = {
        "lookback_buckets": recommended,
        "lookback": format_lookback(recommended, config.grain),
        "target_share": share,
        "current_lookback_buckets": config.buckets,
        "seconds_per_bucket": per_bucket,
        "expected_pull_s": None if per_bucket is None else round(per_bucket * recommended, 4),
        "current_pull_s": None if per_bucket is None else round(per_bucket * config.buckets, 4),
        "saves_s_per_pull": None,
        "development_share": caught,
        "verified": caught is not None and abs(1 - caught) <= 1 - share + 1e-9,
        "raised_from_buckets": raised_from,
    }
    if per_bucket is not None and recommended < config.buckets:
        rec["saves_s_per_pull"] = round(per_bucket * (config.buckets - recommended), 4)
    if not audits:
        rec["note"] = (
            "no audit pulls yet: revisions later than the current lookback cannot "
            "be seen; set audit_every to measure them"
        )
    return rec


def _enough(config: MetricConfig, model: Model, share: float) -> int | None:
    """The smallest lookback (buckets) whose oldest bucket holds ``share`` of its final value
    by the development, for every measure (None: the development never says so)."""
    present = model.share_present()
    if not present:
        return None
    oldest = 0
    for curve in present.values():
        good = np.flatnonzero(np.abs(1 - curve) <= 1 - share + 1e-9)
        if not len(good):
            return None
        # from that age on it stays settled
        bad = np.flatnonzero(~(np.abs(1 - curve) <= 1 - share + 1e-9))
        oldest = max(oldest, int(bad.max()) + 1 if len(bad) else 0)
    return needed_buckets(oldest, config.complete_buckets_only)


def _caught(config: MetricConfig, model: Model, lookback: int) -> float | None:
    """The share of the final value present (by the development, the least over the measures)
    at the oldest age a lookback of ``lookback`` buckets still holds."""
    present = model.share_present()
    if not present:
        return None
    oldest = lookback if config.complete_buckets_only else lookback - 1
    values = [float(s[min(oldest, len(s) - 1)]) for s in present.values()]
    finite = [v for v in values if math.isfinite(v)]
    return round(min(finite), 6) if finite else None


def tail_and_audit(
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
            "up_to_age_buckets": weighted_quantile(ages[beyond], weights[beyond], 0.99),
            "magnitude_share": round(float(weights[beyond].sum()) / total, 6),
            "revisions_share": round(float(counts[beyond].sum()) / max(revisions, 1), 6),
            "action": action,
        },
    }


def sentence(
    config: MetricConfig, share: float, rec: dict[str, Any] | None, missed: list[dict[str, Any]], model: Model
) -> str:
    """What the advisor says of the recommendation ``rec`` (None: nothing to measure), the
    revisions the current lookback ``missed`` and when values settle by the ``model``."""
    grain = config.grain.value
    if rec is None:
        return "no revisions to measure yet"
    n = rec["lookback_buckets"]
    if rec.get("raised_from_buckets") is not None:
        text = (
            f"a lookback of {n} {grain} bucket(s) ({rec['lookback']}) holds "
            f"{share * 100:g}% of the final value by the development (raised from "
            f"{rec['raised_from_buckets']}, which caught {share * 100:g}% of the revised "
            "magnitude the pulls saw but, by the development, not of the final value)"
        )
    else:
        text = (
            f"a lookback of {n} {grain} bucket(s) ({rec['lookback']}) would have caught "
            f"{share * 100:g}% of the revised magnitude"
        )
    text += f"; the current one is {config.buckets}"
    if rec.get("development_share") is not None and not rec.get("verified"):
        text += (
            f". Measured against the development (the values as the pulls saw them), "
            f"only {rec['development_share'] * 100:.1f}% of the final value is present at "
            f"the oldest age it holds"
        )
    if n < config.buckets and rec.get("saves_s_per_pull"):
        text += f"; the shorter window saves about {rec['saves_s_per_pull']:.3g} s per pull"
    elif n > config.buckets:
        text += f"; {len(missed)} revision(s) were missed by the current lookback"
    text += (
        f". Values settle after {model.settle_age} {grain}(s) "
        f"({config.settle_share * 100:g} % of their final value present, by the "
        "development)"
    )
    if rec.get("note"):
        text += f". Caution: {rec['note']}"
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
