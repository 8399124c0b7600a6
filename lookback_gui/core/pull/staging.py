"""A metric's query run for one window and its result staged as Parquet in the pull's own
folder: its shape inferred, its values checked, exact numbers kept exact."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import psutil

from lookback_gui.core.errors import (
    QualityError,
)
from lookback_gui.core.project import MetricConfig, SourceConfig
from lookback_gui.core.pull.checks import Checks, check_measure, check_result, check_row_change, count_result
from lookback_gui.core.pull.shape import ResultShape, infer_shape
from lookback_gui.core.sources import (
    CheckedQuery,
    check_pushdown_query,
    check_query,
    quote_identifier,
    quote_literal,
    render_pushdown,
    timestamp_literal,
)
from lookback_gui.core.sources.pushdown import read_only, remote_select
from lookback_gui.core.timing.windows import (
    Window,
)

_RESULT = "__lookback_result"


STAGING_PREFIX = "lookback-pull-"


_swept: set[str] = set()


_swept_lock = threading.Lock()


def _process_started(pid: int) -> int | None:
    try:
        return int(psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return None


def staging_folder() -> tempfile.TemporaryDirectory[str]:
    """A private folder for one pull, named after its process (PID and start time), so that a
    later process can tell a killed pull's leftovers from a running one's.

    The first pull of a process in a temp folder removes the leftovers of dead processes there.
    """
    base = tempfile.gettempdir()
    with _swept_lock:
        sweep = base not in _swept
        _swept.add(base)
    if sweep:
        remove_stale_staging(base)
    pid = os.getpid()
    return tempfile.TemporaryDirectory(
        prefix=f"{STAGING_PREFIX}{pid}-{_process_started(pid) or 0}-", dir=base
    )


def remove_stale_staging(base: str | None = None) -> list[str]:
    """Remove the staging folders in ``base`` (default: the temp folder) whose process is gone;
    return their paths. A folder without a process in its name (from an older version) goes
    when it is a day old."""
    import shutil

    removed = []
    folder = base or tempfile.gettempdir()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(STAGING_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        parts = entry.name[len(STAGING_PREFIX) :].split("-")
        if len(parts) >= 3 and parts[0].isdigit() and parts[1].isdigit():
            started = _process_started(int(parts[0]))
            if started is not None and abs(started - int(parts[1])) <= 1:
                continue  # its process still runs
        else:
            try:
                if time.time() - entry.stat(follow_symlinks=False).st_mtime < 86400:
                    continue
            except OSError:
                continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    return removed


@dataclass(frozen=True)
class StagedResult:
    """A query result, checked and unpivoted to one row per value, ready for the store.

    Attributes:
        values_sql: a query for the store that reads the values (dims, measure, bucket, value,
            value_null) from the pull's Parquet file, or None when there is nothing to store.
    """

    shape: ResultShape
    rows: int
    values_sql: str | None
    warnings: tuple[str, ...]
    checks: tuple[dict[str, Any], ...]
    diff_start: datetime | None = None
    probes: tuple[tuple[datetime, str], ...] = ()
    values: int | None = None


def query_parameters(query: CheckedQuery, window: Window) -> dict[str, datetime]:
    values = {"window_start": window.start, "window_end": window.end, "as_of": window.as_of}
    return {name: values[name] for name in sorted(query.parameters)}


def execute_metric_query(
    con: duckdb.DuckDBPyConnection,
    query: CheckedQuery,
    window: Window,
    metric: MetricConfig,
    source: SourceConfig | None = None,
    limit: int | None = None,
    into: str | None = None,
) -> dict[str, str] | None:
    """Run the metric's SQL into a temporary table of the pull's own connection, or straight into the
    Parquet file ``into`` (one pass; the checks and the store then read that file), then returning its
    128-bit integer columns and their types (:func:`raw_relation`).

    For a pushdown source the whole SQL runs on the server (postgres_query / mysql_query), in a
    read-only transaction, so only the aggregates travel.
    """
    params = query_parameters(query, window)
    tail = "" if limit is None else f" LIMIT {int(limit)}"
    transaction: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if source is not None and source.pushdown:
        select = remote_select(source, render_pushdown(query, params)) + tail
        params = {}
        transaction = read_only(con, source)
    else:
        select = f"SELECT * FROM (\n{query.text}\n){tail}"
    with transaction:
        if into is not None:
            select, metadata, wide = _parquet_ready(con, select, params)
            con.execute(f"COPY ({select}) TO {quote_literal(into)} (FORMAT parquet{metadata})", params)
            return wide
        con.execute(f"CREATE TEMP TABLE {_RESULT} AS {select}", params)
    return None


_WIDE_INTEGERS = ("HUGEINT", "UHUGEINT")


_WIDE_KEY = "lookback_wide_integers"


def _parquet_ready(
    con: duckdb.DuckDBPyConnection, select: str, params: Mapping[str, Any]
) -> tuple[str, str, dict[str, str]]:
    """``select`` made fit for Parquet, the COPY option that says how to read it back, and the casts.

    Parquet has no 128-bit integer: DuckDB writes HUGEINT and UHUGEINT (what ``sum`` of a
    BIGINT gives) as DOUBLE, which would lose their exactness (DESIGN, *Exact*). Such columns
    travel as their decimal text, and the file's key-value metadata names them and their type
    for :func:`raw_relation`. A pushdown result never holds one (neither server has the type).
    """
    if "postgres_query(" in select or "mysql_query(" in select:
        return select, "", {}
    types = con.execute(f"DESCRIBE {select}", params).fetchall()
    wide = {str(name): str(kind) for name, kind, *_ in types if str(kind) in _WIDE_INTEGERS}
    if not wide:
        return select, "", wide
    casts = ", ".join(f"CAST({quote_identifier(n)} AS VARCHAR) AS {quote_identifier(n)}" for n in wide)
    note = quote_literal(json.dumps(wide))
    return (f"SELECT * REPLACE ({casts}) FROM ({select})", f", KV_METADATA {{{_WIDE_KEY}: {note}}}", wide)


def raw_relation(con: duckdb.DuckDBPyConnection, raw: str, wide: Mapping[str, str] | None = None) -> str:
    """SQL for the staged result file ``raw`` with every column in its query's own type (the
    128-bit integers that :func:`_parquet_ready` wrote as text cast back; ``wide``, or else
    the file's metadata, names them)."""
    relation = f"read_parquet({quote_literal(raw)})"
    if wide is None:
        row = con.execute(
            f"SELECT decode(value) FROM parquet_kv_metadata({quote_literal(raw)}) WHERE decode(key) = ?",
            [_WIDE_KEY],
        ).fetchone()
        wide = json.loads(row[0]) if row is not None else {}
    if not wide:
        return relation
    casts = ", ".join(
        f"CAST({quote_identifier(n)} AS {kind}) AS {quote_identifier(n)}"
        for n, kind in wide.items()
        if kind in _WIDE_INTEGERS
    )
    return f"(SELECT * REPLACE ({casts}) FROM {relation})"


def metric_query(config: MetricConfig, source: SourceConfig) -> CheckedQuery:
    """The metric's SQL, checked for the way it will run."""
    return check_pushdown_query(config.sql, source) if source.pushdown else check_query(config.sql, source)


def stage_result(
    con: duckdb.DuckDBPyConnection,
    metric: MetricConfig,
    window: Window,
    previous_rows: int | None,
    raw: str | None = None,
    wide: Mapping[str, str] | None = None,
) -> StagedResult:
    """Check the query's result: the Parquet file ``raw`` (``wide``: as raw_relation) if given, else _RESULT.

    For a file, the result also says how the store reads its values (one row per value).
    Raises QualityError on a check of severity ``error``.
    """
    relation = raw_relation(con, raw, wide) if raw else _RESULT
    columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
    shape = infer_shape(columns, metric)
    counts = count_result(con, relation, shape, metric, window)
    checks = Checks()
    check_result(checks, metric, window, counts)
    for check in metric.checks:
        if check.measure is not None:
            check_measure(checks, con, relation, check, shape, window)
        elif check.row_change_pct is not None:
            check_row_change(checks, check, counts.rows, previous_rows)
    if checks.failures:
        raise QualityError(f"metric {metric.name}: quality check failed: " + "; ".join(checks.failures))
    staged = StagedResult(
        shape=shape,
        rows=counts.rows,
        values_sql=None,
        warnings=tuple(checks.warnings),
        checks=tuple(checks.checks),
    )
    if raw is None:
        return staged
    return dataclasses.replace(
        staged,
        values_sql=_values_sql(relation, shape, metric, window),
        values=(counts.rows - counts.null_buckets - counts.outside) * len(shape.measures),
    )


def _values_sql(relation: str, shape: ResultShape, metric: MetricConfig, window: Window) -> str:
    """A query for the store that reads the result's values in the window, one row per value
    (dims, measure, bucket, value, value_null, exact)."""
    dims_json = (
        (
            "json_object("
            + ", ".join(f"{quote_literal(d)}, {quote_identifier(d)}" for d in sorted(shape.dimensions))
            + ")"
        )
        if shape.dimensions
        else "'{}'"
    )
    # read in the store's own connection, whose time zone is not the metric's: a bucket with a
    # time zone is turned into the metric's wall-clock time explicitly
    column = quote_identifier(shape.bucket)
    local = (
        f"timezone({quote_literal(metric.timezone)}, {column})"
        if shape.bucket_type.upper().startswith(("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"))
        else f"CAST({column} AS TIMESTAMP)"
    )
    bounds = f"{local} >= {timestamp_literal(window.start)} AND {local} < {timestamp_literal(window.end)}"
    parts = [
        f"SELECT CAST({dims_json} AS VARCHAR) AS dims, {quote_literal(m)} AS measure, "
        f"{local} AS bucket, coalesce(CAST({quote_identifier(m)} AS DOUBLE), 0) AS value,"
        f" {quote_identifier(m)} IS NULL AS value_null, {_exact_text(m, shape)} AS exact"
        f" FROM r WHERE {bounds}"
        for m in shape.measures
    ]
    return f"WITH r AS (SELECT * FROM {relation}) " + " UNION ALL ".join(parts)


def _exact_text(measure: str, shape: ResultShape) -> str:
    """SQL for the exact value of an integer or DECIMAL measure: its decimal text without
    trailing zeros after the point (so DECIMAL(18,2) 1.50 and DECIMAL(18,3) 1.500 are equal);
    NULL for a float measure."""
    if measure not in shape.exact:
        return "NULL::VARCHAR"
    text = f"CAST({quote_identifier(measure)} AS VARCHAR)"
    return f"CASE WHEN contains({text}, '.') THEN rtrim(rtrim({text}, '0'), '.') ELSE {text} END"
