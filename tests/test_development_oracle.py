"""The development model against the reference: public loss triangles (the ``chainladder``
package's samples) replayed through the real path — a DuckDB source with an arrival column, a
metric whose SQL uses ``$as_of``, ``lookback replay``, ``lookback nowcast --json`` — and the
same triangle through ``chainladder``.

Accident period ``i`` is the day bucket ``START + i``; the amount that arrives at lag ``j``
arrives at noon of day ``i + j``; one pull a day at 23:00 sees the triangle's diagonal of that
day. Ages with fewer than ``MIN_PAIRS`` pairs weigh the factor their pairs measured against
the exponential curve's by credibility, so the reference is ``Development`` (measured factors,
Mack's sigma) and ``TailCurve(curve="exponential", attachment_age=…, fit_period=the well-known
ages)`` (the curve), weighed as ``development.credibility`` says, with no factor beyond the
oldest age (the same tail choice), through ``DevelopmentConstant`` and ``Chainladder``; Mack's
standard errors come from ``MackChainladder``."""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from lookback_gui.core.insight.development import MIN_PAIRS
from tests.helpers import run_cli

cl = pytest.importorskip("chainladder")
pd = pytest.importorskip("pandas")

START = datetime(2025, 1, 1)


def cumulative(name: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(cl.load_sample(name).values[0, 0], dtype=float)


def make_project(folder: Path, tri: np.ndarray) -> Path:
    """A DuckDB source holding every cell of the upper triangle as it arrived, and a project
    whose daily metric replays it."""
    n = tri.shape[0]
    increments = np.diff(tri, axis=1, prepend=0.0)
    rows = [
        (START + timedelta(days=i), START + timedelta(days=i + j, hours=12), float(increments[i, j]))
        for i in range(n)
        for j in range(n - i)
        if not np.isnan(increments[i, j])
    ]
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(folder / "claims.duckdb"))
    con.execute("CREATE TABLE claims (bucket TIMESTAMP, arrived TIMESTAMP, amount DOUBLE)")
    con.executemany("INSERT INTO claims VALUES (?, ?, ?)", rows)
    con.close()
    path = folder / "lookback.toml"
    path.write_text(f'''[store]
path = "lookback.duckdb"

[sources.claims]
type = "duckdb"
path = "claims.duckdb"

[metrics.paid]
source = "claims"
grain = "day"
lookback = "{n}d"
schedule = "0 23 * * *"
retries = 0
sql = """
SELECT bucket, sum(amount) AS paid FROM claims
WHERE bucket >= $window_start AND bucket < $window_end AND arrived <= $as_of
GROUP BY ALL
"""
''')
    return path


def replay_until(path: Path, first_day: int, last_day: int) -> None:
    code, _out, err = run_cli(
        "--project",
        str(path),
        "replay",
        "paid",
        "--from",
        (START + timedelta(days=first_day)).isoformat(),
        "--to",
        (START + timedelta(days=last_day, hours=23, minutes=30)).isoformat(),
    )
    assert code == 0, err


def nowcast_json(path: Path) -> dict:
    code, out, err = run_cli("--project", str(path), "nowcast", "paid", "--json")
    assert code == 0, err
    return json.loads(out)


def cut_triangle(tri: np.ndarray, cut: int):
    """The chainladder triangle of what was known ``cut`` diagonals before the last."""
    n = tri.shape[0]
    m = n - cut
    records = [(2000 + i, 2000 + i + j, tri[i, j]) for i in range(m) for j in range(m - i)]
    frame = pd.DataFrame(records, columns=["origin", "valuation", "values"])
    return cl.Triangle(frame, origin="origin", development="valuation", columns="values", cumulative=True)


def blend(
    tri: np.ndarray, measured: np.ndarray, fitted: np.ndarray, well: np.ndarray, sigma2: np.ndarray
) -> np.ndarray:
    """The credibility blend written out: the measured factor weighs ``v_curve / (v_curve +
    sigma² / S)``, ``v_curve`` the curve's squared misses on the well-known factors over
    ``n - 2`` (no blend, the measured factor, for two points or fewer)."""
    usable = well & (measured > 1.00001)
    n = int(usable.sum())
    if n <= 2:
        return measured
    v_curve = float(np.sum((measured[usable] - fitted[usable]) ** 2)) / (n - 2)
    m = tri.shape[0]
    volume = np.array([np.nansum(tri[: m - 1 - k, k]) for k in range(m - 1)])
    weight = v_curve / (v_curve + sigma2 / volume)
    return weight * measured + (1 - weight) * fitted


def reference(tri: np.ndarray, cut: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ultimates with the same tail choice, plain chain-ladder ultimates, Mack's standard
    errors) of the triangle cut ``cut`` diagonals early."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = cut_triangle(tri, cut)
        m = t.shape[2]
        dev = cl.Development().fit_transform(t)
        ldf = np.asarray(dev.ldf_.values[0, 0, 0], dtype=float)
        well = np.array([m - 1 - k for k in range(m - 1)]) >= MIN_PAIRS
        if (~well).any() and (well & (ldf > 1.00001)).any():
            tail = cl.TailCurve(
                curve="exponential",
                fit_period=list(well & (ldf > 1.00001)),
                attachment_age=int(t.ddims[int(np.argmax(~well))]),
            ).fit(dev)
            # the curve at every age (TailCurve's ldf_ keeps the measured ones where it fits)
            fitted = 1 + np.exp(
                float(np.asarray(tail.intercept_).ravel()[0])
                + float(np.asarray(tail.slope_).ravel()[0]) * np.arange(1, m)
            )
            ldf = np.where(
                well, ldf, blend(tri[:m, :m], ldf, fitted, well, np.asarray(dev.sigma_.values[0, 0, 0]) ** 2)
            )
        patterns = {int(a): float(f) for a, f in zip(t.ddims[:-1], ldf, strict=True)}
        same = cl.DevelopmentConstant(patterns=patterns, style="ldf").fit_transform(t)
        ultimate = np.asarray(cl.Chainladder().fit(same).ultimate_.values[0, 0, :, 0])
        plain = np.asarray(cl.Chainladder().fit(t).ultimate_.values[0, 0, :, 0])
        mack = cl.MackChainladder().fit(dev)
        se = np.asarray(mack.mack_std_err_.values[0, 0, :, -1], dtype=float)
    return ultimate, plain, se


def bucket_number(row: dict) -> int:
    return (datetime.fromisoformat(row["bucket"]) - START).days


def check_against_chainladder(tmp_path: Path, name: str) -> None:
    tri = cumulative(name)
    n = tri.shape[0]
    path = make_project(tmp_path / name, tri)
    replay_until(path, 0, n - 1)
    result = nowcast_json(path)
    ultimate, _plain, se = reference(tri)
    rows = result["buckets"]
    settle = result["settle_age_buckets"]
    # every provisional bucket has an answer and an interval
    assert len(rows) == min(settle, n) and settle > 0, result["message"]
    assert all(r["basis"] != "none" for r in rows), result["message"]
    for row in rows:
        i = bucket_number(row)
        assert row["age_buckets"] == n - 1 - i
        assert row["low"] < row["expected"] < row["high"], row
        assert row["expected"] == pytest.approx(ultimate[i], rel=0.01), (name, i)
        if np.isfinite(se[i]) and se[i] > 0:
            assert row["standard_error"] == pytest.approx(se[i], rel=0.15), (name, i)


def test_ukmotor_replayed_nowcasts_as_chainladder_and_mack(tmp_path):
    """The fast oracle: the smallest sample triangle (7 × 7); the others are slow."""
    check_against_chainladder(tmp_path, "ukmotor")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["raa", "genins", "abc", "mw2014"])
def test_sample_triangles_replayed_nowcast_as_chainladder_and_mack(tmp_path, name):
    check_against_chainladder(tmp_path, name)


def backtest(
    tmp_path: Path, name: str, cuts: tuple[int, ...] = (5, 4, 3)
) -> list[tuple[float, float, float, bool]]:
    """The nowcasts of the triangle cut 5, 4 and 3 diagonals early (one store, replayed on),
    each bucket's expected value and chainladder's against the value it had at the oldest age
    of the cut (truth: the later diagonals), and whether our interval held it."""
    tri = cumulative(name)
    n = tri.shape[0]
    path = make_project(tmp_path / name, tri)
    out = []
    day = 0
    for cut in cuts:
        last = n - 1 - cut
        replay_until(path, day, last)
        day = last + 1
        result = nowcast_json(path)
        _same, plain, _se = reference(tri, cut)
        for row in result["buckets"]:
            i = bucket_number(row)
            if i + last > n - 1 or row["age_buckets"] >= last:
                continue  # no truth at the cut's oldest age yet
            truth = tri[i, last]
            out.append((row["expected"], plain[i], truth, row["low"] <= truth <= row["high"]))
    return out


def mape(pairs: list[tuple[float, float]]) -> float:
    return float(np.mean([abs(e - t) / abs(t) for e, t in pairs]) * 100)


@pytest.mark.slow
def test_backtests_on_the_sample_triangles_are_as_good_as_chainladder(tmp_path):
    records = []
    for name in ("raa", "genins", "ukmotor", "abc", "mw2014"):
        found = backtest(tmp_path, name, (3,) if name == "ukmotor" else (5, 4, 3))
        ours = mape([(e, t) for e, _p, t, _h in found])
        theirs = mape([(p, t) for _e, p, t, _h in found])
        assert ours <= theirs * 1.001 + 1e-9, (name, ours, theirs)
        records += found
    coverage = float(np.mean([held for *_x, held in records]))
    assert 0.70 <= coverage <= 0.90, (coverage, len(records))


def test_a_bucket_whose_first_row_arrives_late_counts_from_age_0(tmp_path):
    """Before, a bucket that had nothing at age 0 was left out of the development, and the
    ratios came from the others only."""
    tri = np.array(
        [
            [10.0, 20.0, 30.0, 30.0],
            [0.0, 10.0, 20.0, np.nan],
            [10.0, 20.0, np.nan, np.nan],
            [5.0, np.nan, np.nan, np.nan],
        ]
    )
    path = make_project(tmp_path / "late", tri)
    replay_until(path, 0, 3)
    from lookback_gui.core.insight.nowcast import metric_model
    from lookback_gui.core.project import load_project
    from lookback_gui.core.store import Store

    project = load_project(path)
    with Store(project.store_path) as store:
        model = metric_model(store, project.metrics["paid"])
    assert len(model.dev) == 4  # bucket 1 is in, counted from 0
    # f_0 from buckets 0, 1, 2: (20 + 10 + 20) / (10 + 0 + 10)
    assert model.by_measure.measured[0, 0] == pytest.approx(2.5)
    assert model.by_measure.measured[0, 1] == pytest.approx(50 / 30)
