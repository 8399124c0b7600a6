"""The checks of a pull's result: the ones every result gets (not empty, buckets present, on
the grain and in the window, one row per bucket and dimensions), the metric's own checks of a
measure's range and of the row count, and of the largest revision once the result is diffed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from lookback_gui.core.errors import QualityError
from lookback_gui.core.project import CheckConfig, MetricConfig
from lookback_gui.core.pull.shape import ResultShape
from lookback_gui.core.sources import quote_identifier, quote_literal
from lookback_gui.core.store import DiffSummary
from lookback_gui.core.timing.windows import Window


def moment_text(moment: datetime) -> str:
    """A moment as messages and logs of a pull write it: ``2026-10-30 12:00:00``."""
    return moment.isoformat(sep=" ")


def _bucket(shape: ResultShape) -> str:
    return f"CAST({quote_identifier(shape.bucket)} AS TIMESTAMP)"


_IN_WINDOW = "{b} >= $ws AND {b} < $we"


@dataclass(frozen=True)
class Counts:
    """What the checks of a result count in it."""

    rows: int
    null_buckets: int
    outside: int  # rows whose bucket is outside the window
    null_measures: int
    duplicates: int  # (bucket, dimensions) combinations in more than one row
    bad_buckets: int  # buckets that are not the start of a bucket of the grain
    first_off_grain: Any
    first_duplicate: Any


def count_result(
    con: duckdb.DuckDBPyConnection, relation: str, shape: ResultShape, metric: MetricConfig, window: Window
) -> Counts:
    b = _bucket(shape)
    in_window = _IN_WINDOW.format(b=b)
    key_columns = ", ".join([b, *(quote_identifier(d) for d in shape.dimensions)])
    measure_nulls = " + ".join(
        f"count(*) FILTER (WHERE {quote_identifier(m)} IS NULL)" for m in shape.measures
    )
    # off the grain: no bucket start in the metric's zone (the connection's); weeks start on Monday
    off_grain = f"{b} IS NOT NULL AND {b} <> date_trunc({quote_literal(metric.grain.value)}, {b})"
    row = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {b} IS NULL),"
        f" count(*) FILTER (WHERE {b} IS NOT NULL AND NOT ({in_window})),"
        f" {measure_nulls},"
        f" (SELECT count(*) FROM (SELECT {key_columns} FROM {relation} GROUP BY ALL"
        f"  HAVING count(*) > 1)),"
        f" count(*) FILTER (WHERE {off_grain}), min({b}) FILTER (WHERE {off_grain})"
        f" FROM {relation}",
        {"ws": window.start, "we": window.end},
    ).fetchone()
    assert row is not None
    *counted, first_off_grain = row
    rows, null_buckets, outside, null_measures, duplicates, bad_buckets = (int(x or 0) for x in counted)
    dup_row: tuple[Any, ...] | None = None
    if duplicates:
        dup_row = con.execute(
            f"SELECT {duplicates}, min(__lookback_key) FROM (SELECT {key_columns}, "
            f"CAST({b} AS VARCHAR) AS __lookback_key FROM {relation} GROUP BY ALL "
            f"HAVING count(*) > 1)"
        ).fetchone()
    return Counts(
        rows,
        null_buckets,
        outside,
        null_measures,
        duplicates,
        bad_buckets,
        first_off_grain,
        dup_row[1] if dup_row else "",
    )


class Checks:
    """The checks of one result as they are made: every outcome, and the failures of the
    checks of severity ``error`` apart from the warnings of the others."""

    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.failures: list[str] = []

    def record(self, name: str, severity: str, ok: bool, message: str) -> None:
        self.checks.append({"name": name, "severity": severity, "ok": ok, "message": message})
        if not ok:
            (self.failures if severity == "error" else self.warnings).append(message)


def check_result(checks: Checks, metric: MetricConfig, window: Window, counts: Counts) -> None:
    """The checks every result gets: not empty, buckets present, on the grain and in the
    window, one row per (bucket, dimensions), measures present."""
    record = checks.record
    span = f"[{moment_text(window.start)}, {moment_text(window.end)})"
    record(
        "empty",
        "warn" if metric.allow_empty else "error",
        counts.rows > 0,
        f"the query returned no rows for the window {span}"
        + (
            ""
            if metric.allow_empty
            else "; an empty answer is refused (far more often an outage than a real zero): "
            "set allow_empty = true if it can really be empty"
        ),
    )
    record(
        "null_bucket",
        "error",
        counts.null_buckets == 0,
        f"{counts.null_buckets} row(s) have no bucket (NULL)",
    )
    bad = counts.bad_buckets
    record(
        "bucket_start",
        "error",
        bad == 0,
        f"{bad} row(s) have a bucket that is not the start of a {metric.grain.value} "
        f"(first: {moment_text(counts.first_off_grain) if bad else ''}); truncate "
        f"it, e.g. date_trunc('{metric.grain.value}', ordered_at) AS bucket",
    )
    duplicates = counts.duplicates
    record(
        "duplicate_keys",
        "error",
        duplicates == 0,
        f"{duplicates} (bucket, dimensions) combination(s) appear in more than one row "
        f"(first at {counts.first_duplicate if duplicates else ''}); "
        "the query must aggregate (GROUP BY)",
    )
    record(
        "out_of_window",
        "warn",
        counts.outside == 0,
        f"{counts.outside} row(s) outside the window {span} were not stored",
    )
    record(
        "null_measure",
        "warn",
        counts.null_measures == 0,
        f"{counts.null_measures} measure value(s) are NULL",
    )


def check_measure(
    checks: Checks,
    con: duckdb.DuckDBPyConnection,
    relation: str,
    check: CheckConfig,
    shape: ResultShape,
    window: Window,
) -> None:
    """A metric's check of a measure's range, over the rows in the window."""
    if check.measure not in shape.measures:
        checks.record(
            check.name,
            check.severity,
            False,
            f"check {check.name}: measure '{check.measure}' is not in the result",
        )
        return
    col = quote_identifier(check.measure)
    conds = []
    if check.min is not None:
        conds.append(f"{col} < {check.min!r}")
    if check.max is not None:
        conds.append(f"{col} > {check.max!r}")
    found = con.execute(
        f"SELECT count(*), min({col}), max({col}) FROM {relation} "
        f"WHERE ({_IN_WINDOW.format(b=_bucket(shape))}) AND ({' OR '.join(conds)})",
        {"ws": window.start, "we": window.end},
    ).fetchone()
    bad = int(found[0]) if found else 0
    bounds = " and ".join(
        x
        for x in (
            f"at least {check.min:g}" if check.min is not None else "",
            f"at most {check.max:g}" if check.max is not None else "",
        )
        if x
    )
    checks.record(
        check.name,
        check.severity,
        bad == 0,
        f"check {check.name}: {bad} value(s) of {check.measure} are not {bounds}"
        + (f" (from {found[1]:g} to {found[2]:g})" if bad and found else ""),
    )


def check_row_change(checks: Checks, check: CheckConfig, rows: int, previous_rows: int | None) -> None:
    """A metric's check of how far the row count moved since the last successful run."""
    assert check.row_change_pct is not None
    if not previous_rows:
        checks.record(
            check.name,
            check.severity,
            True,
            f"check {check.name}: no earlier run to compare the row count with",
        )
        return
    change = abs(rows - previous_rows) / previous_rows * 100
    checks.record(
        check.name,
        check.severity,
        change <= check.row_change_pct,
        f"check {check.name}: the row count changed by {change:.1f}% "
        f"({previous_rows} → {rows}; at most {check.row_change_pct:g}%)",
    )


def revision_check(
    metric: MetricConfig, checks: list[dict[str, Any]], warnings: list[str], summary: DiffSummary
) -> None:
    failures: list[str] = []
    for check in metric.checks:
        if check.revision_pct is None:
            continue
        largest = summary.max_revision_pct or 0.0
        ok = largest <= check.revision_pct
        message = (
            f"check {check.name}: the largest revision in this run is {largest:.1f}% "
            f"(at most {check.revision_pct:g}%)"
        )
        checks.append({"name": check.name, "severity": check.severity, "ok": ok, "message": message})
        if not ok:
            (failures if check.severity == "error" else warnings).append(message)
    if failures:
        raise QualityError(f"metric {metric.name}: quality check failed: " + "; ".join(failures))


def schema_change_of(known: list[str], measures: tuple[str, ...]) -> dict[str, list[str]]:
    if not known:
        return {}
    dropped = [m for m in known if m not in measures]
    added = [m for m in measures if m not in known]
    out = {}
    if dropped:
        out["dropped"] = dropped
    if added:
        out["added"] = added
    return out


def describe_schema_change(change: Mapping[str, list[str]]) -> str:
    parts = []
    if change.get("dropped"):
        parts.append(
            "measure(s) no longer in the result: "
            + ", ".join(change["dropped"])
            + " (their values are kept, not removed)"
        )
    if change.get("added"):
        parts.append("new measure(s): " + ", ".join(change["added"]))
    return "schema change: " + "; ".join(parts)
