"""The set-based advisor against the reference (tests/reference): every revision and value read
into numpy, as the advisor did before. On stores small enough for the reference, both answer the
same, up to the rounding of sums taken in another order."""

from __future__ import annotations

import importlib.util
import math
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lookback_gui.core.demo import seed_history, write_demo
from lookback_gui.core.insight import advisor, settling
from lookback_gui.core.insight.settling import load_value_sums
from lookback_gui.core.project import load_project
from lookback_gui.core.store import Store
from tests.reference import advisor as reference
from tests.test_advisor import build


def same(a: Any, b: Any, path: str = "") -> list[str]:
    """Where ``a`` and ``b`` differ (floats: beyond the last rounded digit)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in same(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in same(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float | int) and not isinstance(b, bool):
        if math.isclose(a, b, rel_tol=1e-6, abs_tol=2e-6) or (math.isnan(a) and math.isnan(b)):
            return []
        return [f"{path}: {a!r} != {b!r}"]
    if isinstance(a, str) and isinstance(b, str) and a != b:
        return [] if _same_text(a, b) else [f"{path}: {a!r} != {b!r}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _same_text(a: str, b: str) -> bool:
    """Sentences with the same words and numbers that agree to their last digit."""
    import re

    numbers = re.compile(r"-?\d+(?:\.\d+)?")
    if numbers.sub("#", a) != numbers.sub("#", b):
        return False
    return all(
        math.isclose(float(x), float(y), rel_tol=1e-3, abs_tol=1e-3)
        for x, y in zip(numbers.findall(a), numbers.findall(b), strict=True)
    )


def _in_order(advice: dict[str, Any]) -> dict[str, Any]:
    """The reference lists missed revisions of one run and bucket in no particular order."""
    missed = sorted(
        advice["missed_revisions"], key=lambda m: (m["run"], m["bucket"], str(m["dims"]), m["measure"])
    )
    return {**advice, "missed_revisions": missed}


# what now comes from the development model (its oracle is chainladder, see
# test_development_oracle), not from the summed revisions the reference reads one by one
FROM_DEVELOPMENT = ("settling_curve", "nowcast_backtest", "message", "settle_age_buckets", "settle_share")


def _summed(advice: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in _in_order(advice).items() if k not in FROM_DEVELOPMENT}
    if out.get("recommendation"):
        out["recommendation"] = {
            k: v
            for k, v in out["recommendation"].items()
            if k not in ("development_share", "verified", "raised_from_buckets")
        }
    return out


def compare(store: Store, config: Any) -> dict[str, Any]:
    ours = advisor.advise(store, config).to_json()
    theirs = reference.advise(store, config, settle_age=ours["settle_age_buckets"]).to_json()
    assert same(_summed(ours), _summed(theirs)) == []
    assert ours["missed_revisions"] == _in_order(ours)["missed_revisions"]
    return ours


@pytest.mark.parametrize(
    ("shares", "late_days", "seed", "options"),
    [
        ((0.70, 0.25, 0.05), (2, 10), 7, {}),
        ((0.50, 0.40, 0.10), (3, 6), 11, {"lookback": 2}),
        (
            (0.80, 0.199, 0.001),
            (3, 9.5),
            7,
            {"per_day": 1000, "lookback": 7, "audit_every": 7, "audit_factor": 2, "tail_from": 8.5},
        ),
    ],
)
def test_the_advice_is_the_reference_advice(tmp_path, shares, late_days, seed, options):
    project, _events = build(tmp_path, shares, late_days, seed, **options)
    with Store(project.store_path) as store:
        advice = compare(store, project.metrics["daily_orders"])
    assert advice["enough_history"] and advice["candidates"]
    assert advice["nowcast_backtest"] is not None


def test_values_first_seen_old_stay_out_of_the_curve_as_in_the_reference(tmp_path):
    """A deep first pull (a backfill) sees its older buckets for the first time when they are
    already old: those values are not watched from their start."""
    from lookback_gui.core.pull import run_pull
    from lookback_gui.core.timing.windows import compute_window
    from tests.helpers import project_text
    from tests.test_advisor import DAYS, PULL_HOUR, SQL, START, generate

    generate(tmp_path / "shop.duckdb", 200, (0.6, 0.3, 0.1), (2, 6), 5)
    path = tmp_path / "lookback.toml"
    path.write_text(project_text(sql=SQL, lookback='"4d"'))
    project = load_project(path)
    config = project.metrics["daily_orders"]
    with Store(project.store_path) as store:
        first = START + timedelta(days=20, hours=PULL_HOUR)
        run = run_pull(
            project, config, store, trigger="backfill", window=compute_window(first, config.grain, 21)
        )
        assert run.status == "succeeded", run.error
        for day in range(21, DAYS):
            run = run_pull(
                project, config, store, trigger="schedule", as_of=START + timedelta(days=day, hours=PULL_HOUR)
            )
            assert run.status == "succeeded", run.error
        advice = compare(store, config)
        first_ages = load_value_sums(store, config)["first_age"]
    assert (first_ages > 0).any() and (first_ages == 0).any()
    assert advice["settling_curve"]


def _year_module() -> Any:
    path = Path(__file__).parent / "benchmarks" / "run.py"
    spec = importlib.util.spec_from_file_location("lookback_benchmarks", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_advice_on_hours_of_many_series_with_removals_is_the_reference_advice(tmp_path):
    bench = _year_module()
    path = bench.build_year_store(
        tmp_path / "year", bench.YearShape(metrics=2, hours=24 * 6, big_series=12, series=3)
    )
    project = load_project(path)
    with Store(project.store_path) as store:
        for name in ("m00", "m01"):
            advice = compare(store, project.metrics[name])
            assert advice["enough_history"] and advice["settling_curve"]


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="hourly_revenue: with the development's settle age (42 "
    "hours) the product finds settled values for the policies' errors and the "
    "reference, on its own development of the same store, finds none: open",
)
def test_the_demo_advice_is_the_reference_advice(tmp_path):
    now = datetime(2026, 11, 30, 20, 0)
    path = write_demo(tmp_path / "demo", now=now)
    seed_history(path, now=now)
    project = load_project(path)
    with Store(project.store_path) as store:
        for config in project.metrics.values():
            compare(store, config)


def test_on_a_long_history_the_values_followed_one_by_one_are_the_latest(tmp_path, monkeypatch):
    """Past ``MAX_WATCHED_VALUES`` values, the errors by age and the nowcast backtest are
    measured on the latest buckets only; everything else still sums up all revisions."""
    project, _events = build(tmp_path, (0.70, 0.25, 0.05), (2, 10), 7)
    config = project.metrics["daily_orders"]
    with Store(project.store_path) as store:
        theirs = reference.advise(store, config).to_json()
        monkeypatch.setattr(settling, "MAX_WATCHED_VALUES", 40)
        ours = advisor.advise(store, config).to_json()
    per_value = ("max_error_by_age",)
    for key in ("revisions_by_age", "lag_percentiles", "settled_after_buckets", "missed_revisions"):
        assert same(ours[key], theirs[key]) == [], key
    for mine, reference_one in zip(ours["candidates"], theirs["candidates"], strict=True):
        assert (
            same(
                {k: v for k, v in mine.items() if k not in per_value},
                {k: v for k, v in reference_one.items() if k not in per_value},
            )
            == []
        )
