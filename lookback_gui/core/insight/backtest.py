"""The development model replayed on the stored history: how well its nowcasts would have done.

The model is fitted again as the store stood at several past moments (only the cells known by
then), its nowcasts of the buckets provisional then are compared with the values those buckets
settled at. Where the history holds at least ``MIN_BACKTEST_VALUES`` of them and the interval
held the settled value less often than 80 %, the intervals are widened until it would have. They
are never narrowed: a backtest on a short or smooth stretch of history that happened to be held
easily says little about the next revision.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lookback_gui.core.insight.development import INTERVAL, Z_INTERVAL, Model, fit, interval, z_scores

MIN_BACKTEST_VALUES = 30
MAX_WIDEN = 20.0  # the most the backtest widens an interval
BACKTEST_CUTS = 12


def backtest(model: Model, youngest: int = 0) -> dict[str, Any]:
    """The model refitted as the store stood at up to ``BACKTEST_CUTS`` past moments (each
    with only the cells known then); its nowcasts of the buckets provisional then against the
    values they settled at. Returns the backtest, with ``widen`` (the factor the intervals need
    to have held the settled value 80 % of the time, at least 1) and ``reason`` when it has
    no values."""
    dev, settle = model.dev, model.settle_age
    reason = _too_early(model)
    if reason is not None:
        return _without_values(settle, reason)
    settled = dev.reached >= settle
    records, cuts = _replayed(model, settled, youngest)
    if not records:
        return _without_values(settle, "the history is too short to replay the nowcast on it")
    owner, age, current, expected, se, df = (np.concatenate(parts) for parts in zip(*records, strict=True))
    if len(owner) == 0:
        return _without_values(settle, "no nowcast of the past could be estimated: the history is too short")
    final = dev.final[owner]
    widen = _widen(z_scores(final, expected, se, df))
    held = _held(final, expected, se, 1.0, df)
    held_c = _held(final, expected, se, widen, df)
    usable = final != 0
    by_age = _errors_by_age(youngest, settle, usable, age, current, expected, final, held)
    return {
        "interval": INTERVAL,
        "settle_age_buckets": settle,
        "values": int(usable.sum()),
        "intervals": len(held),
        "coverage": round(float(held.mean()), 4),
        "calibrated_coverage": round(float(held_c.mean()), 4),
        "by_age": by_age,
        "widen": round(widen, 4),
        "cuts": cuts,
        "reason": None if by_age else "no settled value to compare with",
    }


def _too_early(model: Model) -> str | None:
    """Why the history cannot be replayed yet (no values, none revised, none settled), or
    None when it may be."""
    dev, settle = model.dev, model.settle_age
    if len(dev) == 0 or settle == 0:
        return (
            "no value has been revised yet: every bucket is as it will stay"
            if len(dev)
            else "no history yet: pull the metric first"
        )
    settled = dev.reached >= settle
    if not settled.any():
        oldest = int(dev.reached.max())
        return (
            f"no bucket has settled yet: values settle at age {settle} and the "
            f"oldest bucket is {oldest} old; about {settle - oldest} more pull(s)"
        )
    return None


def _without_values(settle: int, reason: str) -> dict[str, Any]:
    """The backtest that has no values to compare, and why."""
    return {
        "interval": INTERVAL,
        "settle_age_buckets": settle,
        "values": 0,
        "intervals": 0,
        "coverage": None,
        "calibrated_coverage": None,
        "by_age": [],
        "widen": 1.0,
        "cuts": 0,
        "reason": reason,
    }


def _widen(z: np.ndarray) -> float:
    """The factor the intervals need to have held the settled values 80 % of the time (``z``:
    how far each lies from its nowcast, see :func:`development.z_scores`): at least 1, at most
    ``MAX_WIDEN``, and 1 with fewer than ``MIN_BACKTEST_VALUES`` values."""
    widen = 1.0
    if len(z) >= MIN_BACKTEST_VALUES:
        # a zero-width interval that missed is infinitely far off: counted as a miss that no
        # widening fixes (clipped, so the quantile does not subtract infinities)
        needed = min(float(np.quantile(np.minimum(np.abs(z), 1e12), INTERVAL)) / Z_INTERVAL, MAX_WIDEN)
        if math.isfinite(needed) and needed > 1:
            widen = needed
    return widen


def _held(
    final: np.ndarray, expected: np.ndarray, se: np.ndarray, widen: float, df: np.ndarray
) -> np.ndarray:
    """Whether the interval (widened by ``widen``) held each settled value ``final``, to a
    relative tolerance of 1e-9."""
    low, high = interval(expected, se, widen, df)
    tolerance = 1e-9 * np.abs(final)
    return (low - tolerance <= final) & (final <= high + tolerance)


def _errors_by_age(
    youngest: int,
    settle: int,
    usable: np.ndarray,
    age: np.ndarray,
    current: np.ndarray,
    expected: np.ndarray,
    final: np.ndarray,
    held: np.ndarray,
) -> list[dict[str, Any]]:
    """Per age from ``youngest`` to the settle age: the mean error (in % of the settled value)
    of the nowcast and of the value as known then, over the ``usable`` values (settled value
    not 0), and how often the interval held."""
    with np.errstate(all="ignore"):
        nowcast_error = np.abs(expected - final) / np.abs(final) * 100
        raw_error = np.abs(current - final) / np.abs(final) * 100
    by_age = []
    for a in range(youngest, settle):
        mask = usable & (age == a)
        if not mask.any():
            continue
        by_age.append(
            {
                "age_buckets": a,
                "values": int(mask.sum()),
                "nowcast_error_pct": round(float(nowcast_error[mask].mean()), 4),
                "raw_error_pct": round(float(raw_error[mask].mean()), 4),
                "intervals": int((age == a).sum()),
                "coverage": round(float(held[age == a].mean()), 4),
            }
        )
    return by_age


def _replayed(model: Model, settled: np.ndarray, youngest: int) -> tuple[list[tuple[np.ndarray, ...]], int]:
    """The model refitted at each past cut with the cells known then, and its nowcasts of the
    settled buckets that were provisional then: (bucket, age then, value then, expected,
    standard error, degrees of freedom) per cut, and how many cuts could be estimated."""
    dev, settle = model.dev, model.settle_age
    horizon = int((dev.index + dev.reached).max())
    last_cut = horizon - settle
    grid = np.arange(model.ages)[None, :]
    records: list[tuple[np.ndarray, ...]] = []
    cuts = 0
    for cut in range(last_cut, last_cut - BACKTEST_CUTS, -1):
        age_then = cut - dev.index
        then = np.where(grid <= age_then[:, None], model.known, np.nan)
        take = np.flatnonzero(
            settled & (age_then >= youngest) & (age_then < settle) & (age_then >= dev.first_age)
        )
        if len(take) == 0:
            continue
        cut_model = fit(dev, model.settle_share, known=then)
        if not cut_model.estimable():
            continue
        cuts += 1
        current = model.known[take, age_then[take]]
        ok = ~np.isnan(current)
        take, current = take[ok], current[ok]
        est = cut_model.nowcast(take, age_then[take], current)
        keep = np.isfinite(est["expected"])
        records.append(
            (
                take[keep],
                age_then[take][keep],
                current[keep],
                est["expected"][keep],
                est["se"][keep],
                est["df"][keep],
            )
        )
    return records, cuts
