"""The vintage matrix of one measure: every bucket's value as it was known on each date.

One row per bucket, one column per date on which a successful pull of the metric was known (its
known time's date, in the metric's zone); each cell is the value as known at the end of that
date: for every value, its version with the latest known time on or before that date. The
matrix is built in one query: each value's last version of each date holds until the date of
its next one, joined to the dates. Where several series match, their values are summed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, localcontext
from typing import Any

from lookback_gui.core.errors import UsageError
from lookback_gui.core.project import MetricConfig
from lookback_gui.core.store import Store


@dataclass(frozen=True)
class Vintages:
    """Attributes:
    dates: the known dates (the columns), oldest first.
    rows: (bucket, one cell per date: the value, or None where it was not known then).
    series: how many series were summed.
    """

    measure: str
    dates: list[date]
    rows: list[tuple[datetime, list[float | int | Decimal | None]]]
    series: int


def measures_of(store: Store, metric: str) -> list[str]:
    with store.reading() as cur:
        return [
            r[0]
            for r in cur.execute(
                "SELECT DISTINCT measure FROM current WHERE metric = ? ORDER BY 1", [metric]
            ).fetchall()
        ]


def dimensions_of(store: Store, metric: str) -> list[str]:
    """The dimensions of the metric's stored values."""
    with store.reading() as cur:
        return [
            r[0]
            for r in cur.execute(
                "SELECT DISTINCT unnest(json_keys(dims)) FROM current WHERE metric = ? ORDER BY 1", [metric]
            ).fetchall()
        ]


def vintages(
    store: Store, config: MetricConfig, measure: str | None = None, series: Mapping[str, str] | None = None
) -> Vintages:
    """The vintage matrix of ``measure`` (the metric's only measure when not given) over the
    series whose dimensions match ``series``."""
    measure = _chosen_measure(store, config, measure, series)
    where, params = _series_filter(config, measure, series)
    with store.reading() as cur:
        count_row = cur.execute(
            f"SELECT count(DISTINCT dims) FROM versions WHERE metric = $metric"
            f" AND measure = $measure {where}",
            params,
        ).fetchone()
        rows = cur.execute(_cells_sql(where), params).fetchall()
        dates = [
            r[0]
            for r in cur.execute(
                "SELECT DISTINCT CAST(known_at AS DATE) FROM runs WHERE metric = ? AND status = "
                "'succeeded' AND known_at IS NOT NULL ORDER BY 1",
                [config.name],
            ).fetchall()
        ]
    column = {d: i for i, d in enumerate(dates)}
    matrix: dict[datetime, list[float | int | Decimal | None]] = {}
    for bucket, d, total, n, exact, n_exact in rows:
        cells = matrix.setdefault(bucket, [None] * len(dates))
        if n == 0:
            continue
        if n_exact == n and exact:
            cells[column[d]] = exact_sum(exact)
        else:
            cells[column[d]] = float(total)
    return Vintages(measure, dates, sorted(matrix.items()), int(count_row[0]) if count_row else 0)


def _chosen_measure(
    store: Store, config: MetricConfig, measure: str | None, series: Mapping[str, str] | None
) -> str:
    """The measure the matrix is of (the metric's only one when ``measure`` is None), once the
    metric is known to have values, ``series`` to name its dimensions and the measure to be
    stored; a UsageError saying what is wrong otherwise."""
    known = measures_of(store, config.name)
    if not known:
        raise UsageError(
            f"metric {config.name} has no values in the store yet; pull it first "
            f"(lookback pull {config.name})"
        )
    dimensions = dimensions_of(store, config.name)
    for key in series or {}:
        if key not in dimensions:
            raise UsageError(
                f"--series {key}=...: metric {config.name} has no dimension "
                f"{key!r} (its dimensions: {', '.join(dimensions) or 'none'})"
            )
    if measure is None:
        if len(known) > 1:
            raise UsageError(
                f"metric {config.name} has several measures ({', '.join(known)}); choose one with --measure"
            )
        measure = known[0] if known else ""
    if measure not in known:
        raise UsageError(
            f"metric {config.name} has no measure {measure!r} in the store"
            + (f" (it has {', '.join(known)})" if known else "")
        )
    return measure


def _series_filter(
    config: MetricConfig, measure: str, series: Mapping[str, str] | None
) -> tuple[str, dict[str, str]]:
    """The SQL condition on ``dims`` that keeps the series matching ``series``, and the
    parameters of the queries (the metric and measure among them)."""
    where, params = "", {"metric": config.name, "measure": measure}
    for i, (key, value) in enumerate((series or {}).items()):
        where += f" AND json_extract_string(dims, $k{i}) = $v{i}"
        params[f"k{i}"] = "$." + '"' + key.replace('"', '\\"') + '"'
        params[f"v{i}"] = str(value)
    return where, params


def _cells_sql(where: str) -> str:
    """The query of the matrix's cells: per bucket and known date, the sum and count of the
    values as known at the end of that date, and their exact texts (``where``: the series
    filter)."""
    return f"""
            WITH daily AS (
                SELECT dims, bucket, CAST(known_at AS DATE) AS d,
                       arg_max({{'v': CASE WHEN removed THEN NULL ELSE value END,
                                 'x': CASE WHEN removed THEN NULL ELSE exact END}},
                               {{'k': known_at, 'r': run_id}}) AS last
                FROM versions WHERE metric = $metric AND measure = $measure {where}
                GROUP BY ALL
            ), spans AS (
                SELECT dims, bucket, d, last.v AS value, last.x AS exact,
                       lead(d) OVER (PARTITION BY dims, bucket ORDER BY d) AS until
                FROM daily
            ), dates AS (
                SELECT DISTINCT CAST(known_at AS DATE) AS d FROM runs
                WHERE metric = $metric AND status = 'succeeded' AND known_at IS NOT NULL
            )
            SELECT s.bucket, dates.d, sum(s.value), count(s.value),
                   list(s.exact) FILTER (WHERE s.exact IS NOT NULL), count(s.exact)
            FROM spans s JOIN dates ON dates.d >= s.d AND (s.until IS NULL OR dates.d < s.until)
            GROUP BY ALL
            """


def exact_sum(texts: list[str]) -> int | Decimal:
    """The exact sum of stored exact values (their canonical texts), however many digits they
    have (a DECIMAL(38,3) or a HUGEINT is wider than any fixed SQL type of the sum)."""
    if all("." not in t for t in texts):
        return sum(int(t) for t in texts)
    with localcontext() as context:
        context.prec = 200  # wider than the sum of any 38-digit values: no rounding
        total = sum((Decimal(t) for t in texts), Decimal(0))
    if total == total.to_integral_value():
        return int(total)
    return Decimal(format(total, "f").rstrip("0").rstrip("."))


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    return str(value)
