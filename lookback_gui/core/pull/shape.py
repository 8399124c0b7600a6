"""How a metric's result is read: which column is the bucket, which are dimensions and which
are measures (the exact ones among them), from the result's columns and the metric's
``measures`` and ``dimensions``."""

from __future__ import annotations

from dataclasses import dataclass

from lookback_gui.core.errors import QueryError
from lookback_gui.core.project import MetricConfig

_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "REAL",
    "DECIMAL",
)


_EXACT = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "DECIMAL",
)


_TIME = (
    "DATE",
    "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE",
    "TIMESTAMP_S",
    "TIMESTAMP_MS",
    "TIMESTAMP_NS",
    "TIMESTAMPTZ",
    "DATETIME",
)


@dataclass(frozen=True)
class ResultShape:
    """How a query's result columns are read."""

    bucket: str
    bucket_type: str
    dimensions: tuple[str, ...]
    measures: tuple[str, ...]
    exact: frozenset[str] = frozenset()  # the integer and DECIMAL measures


def infer_shape(columns: list[tuple[str, str]], metric: MetricConfig) -> ResultShape:
    """Find bucket, dimensions and measures among ``columns`` (name, DuckDB type)."""
    names = [c for c, _ in columns]
    types = dict(columns)
    bucket = next((c for c in names if c.lower() == "bucket"), None)
    if bucket is None:
        raise QueryError(
            f"metric {metric.name}: the result has no 'bucket' column (it has: "
            f"{', '.join(names) or 'no columns'}); name the time bucket column 'bucket'"
        )
    bucket_type = types[bucket]
    if not bucket_type.upper().startswith(_TIME):
        raise QueryError(
            f"metric {metric.name}: the 'bucket' column is {bucket_type}; it must be a DATE or "
            "TIMESTAMP (for example date_trunc('day', ordered_at))"
        )
    others = [c for c in names if c != bucket]
    for key, listed in (("measures", metric.measures), ("dimensions", metric.dimensions)):
        for name in listed or ():
            if name not in others:
                raise QueryError(
                    f"metric {metric.name}: {key} names '{name}', which is not a result column "
                    f"(columns: {', '.join(others)})"
                )

    def numeric(column: str) -> bool:
        return types[column].upper().startswith(_NUMERIC)

    if metric.measures is not None:
        measures = list(metric.measures)
    elif metric.dimensions is not None:
        measures = [c for c in others if c not in metric.dimensions]
    else:
        measures = [c for c in others if numeric(c)]
    for column in measures:
        if not numeric(column):
            raise QueryError(f"metric {metric.name}: measure '{column}' is {types[column]}, not a number")
    dimensions = (
        list(metric.dimensions) if metric.dimensions is not None else [c for c in others if c not in measures]
    )
    unused = [c for c in others if c not in measures and c not in dimensions]
    if unused:
        raise QueryError(
            f"metric {metric.name}: column(s) {', '.join(unused)} are neither a measure nor a "
            "dimension; list them in 'measures' or 'dimensions', or drop them from the query"
        )
    if not measures:
        raise QueryError(
            f"metric {metric.name}: the result has no numeric column to use as a measure "
            f"(columns: {', '.join(names)})"
        )
    exact = frozenset(m for m in measures if types[m].upper().startswith(_EXACT))
    return ResultShape(
        bucket=bucket,
        bucket_type=bucket_type,
        dimensions=tuple(dimensions),
        measures=tuple(measures),
        exact=exact,
    )
