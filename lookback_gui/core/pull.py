"""A pull: run a metric's query for one window and commit what changed as one run.

:func:`run_pull` is a plain synchronous call. The command line, backfills, the scheduler's worker
threads and the tests all call it; only the scheduler runs it off the calling thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import psutil

from lookback_gui.core.definitions import definition_version
from lookback_gui.core.errors import (
    CancelledError,
    LookbackError,
    PullError,
    QualityError,
    QueryError,
    TransientSourceError,
    TransientStoreError,
    UsageError,
)
from lookback_gui.core.events import (
    AttemptFailed,
    DefinitionChanged,
    Notice,
    Observer,
    RunFinished,
    RunStarted,
    ignore,
)
from lookback_gui.core.failures import RetryPolicy, is_transient
from lookback_gui.core.project import MetricConfig, Project, SourceConfig
from lookback_gui.core.pushdown import read_only, remote_select
from lookback_gui.core.sources import (
    CheckedQuery,
    SourceConnections,
    check_pushdown_query,
    check_query,
    clean_duckdb_message,
    connect_source,
    quote_identifier,
    quote_literal,
    release_source,
    render_pushdown,
    timestamp_literal,
)
from lookback_gui.core.store import (
    CommitRequest,
    DiffSummary,
    NewRun,
    RunRecord,
    StagedValues,
    Store,
    uses_as_of,
)
from lookback_gui.core.windows import (
    Window,
    add_buckets,
    bucket_start,
    buckets_between,
    compute_window,
    local_now,
)

Clock = Callable[[], datetime]
TRIGGERS = ("schedule", "manual", "catch-up", "backfill", "command-line", "retry", "audit",
            "replay")

_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL")
_EXACT = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
          "UINTEGER", "UBIGINT", "UHUGEINT", "DECIMAL")
_TIME = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS",
         "TIMESTAMP_NS", "TIMESTAMPTZ", "DATETIME")
_RESULT = "__lookback_result"


class PullControl:
    """Lets another thread cancel a pull and read its progress.

    Cancelling interrupts the running query (DuckDB ``interrupt()``) and wakes a retry wait; the
    run then ends ``cancelled`` with nothing committed.
    """

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._children: list[PullControl] = []
        self.run_id: int | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def child(self) -> PullControl:
        """A control for one of several pulls running at once; cancelling this cancels it."""
        control = PullControl()
        with self._lock:
            self._children.append(control)
        if self.cancelled:
            control.cancel()
        return control

    def cancel(self) -> None:
        self._cancelled.set()
        with self._lock:
            children = list(self._children)
        for child in children:
            child.cancel()
        with self._lock:
            if self._con is not None:
                with contextlib.suppress(duckdb.Error):
                    self._con.interrupt()

    def attach(self, con: duckdb.DuckDBPyConnection | None) -> None:
        with self._lock:
            self._con = con

    def progress(self) -> float | None:
        """The running query's progress in percent, when DuckDB knows it."""
        with self._lock:
            if self._con is None:
                return None
            try:
                value = self._con.query_progress()
            except duckdb.Error:
                return None
        return value if value is not None and value >= 0 else None

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when cancelled; raise CancelledError if cancelled."""
        if self._cancelled.wait(seconds):
            raise CancelledError("cancelled")

    def check(self) -> None:
        if self._cancelled.is_set():
            raise CancelledError("cancelled")


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
        prefix=f"{STAGING_PREFIX}{pid}-{_process_started(pid) or 0}-", dir=base)


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
        parts = entry.name[len(STAGING_PREFIX):].split("-")
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
            raise QueryError(
                f"metric {metric.name}: measure '{column}' is {types[column]}, not a number"
            )
    dimensions = (list(metric.dimensions) if metric.dimensions is not None
                  else [c for c in others if c not in measures])
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
    return ResultShape(bucket=bucket, bucket_type=bucket_type, dimensions=tuple(dimensions),
                       measures=tuple(measures), exact=exact)


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


def _fmt(moment: datetime) -> str:
    return moment.isoformat(sep=" ")


def query_parameters(query: CheckedQuery, window: Window) -> dict[str, datetime]:
    values = {"window_start": window.start, "window_end": window.end, "as_of": window.as_of}
    return {name: values[name] for name in sorted(query.parameters)}


def execute_metric_query(con: duckdb.DuckDBPyConnection, query: CheckedQuery, window: Window,
                         metric: MetricConfig, source: SourceConfig | None = None,
                         limit: int | None = None, into: str | None = None) -> None:
    """Run the metric's SQL into a temporary table of the pull's own connection, or straight
    into the Parquet file ``into`` (one pass; the checks and the store then read that file).

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
            select, metadata = _parquet_ready(con, select, params)
            con.execute(f"COPY ({select}) TO {quote_literal(into)} (FORMAT parquet{metadata})",
                        params)
        else:
            con.execute(f"CREATE TEMP TABLE {_RESULT} AS {select}", params)


_WIDE_INTEGERS = ("HUGEINT", "UHUGEINT")
_WIDE_KEY = "lookback_wide_integers"


def _parquet_ready(con: duckdb.DuckDBPyConnection, select: str, params: Mapping[str, Any]
                   ) -> tuple[str, str]:
    """``select`` made fit for Parquet, and the COPY option that says how to read it back.

    Parquet has no 128-bit integer: DuckDB writes HUGEINT and UHUGEINT (what ``sum`` of a
    BIGINT gives) as DOUBLE, which would lose their exactness (DESIGN, *Exact*). Such columns
    travel as their decimal text, and the file's key-value metadata names them and their type
    for :func:`raw_relation`. A pushdown result never holds one (neither server has the type).
    """
    if "postgres_query(" in select or "mysql_query(" in select:
        return select, ""
    types = con.execute(f"DESCRIBE {select}", params).fetchall()
    wide = {str(name): str(kind) for name, kind, *_ in types if str(kind) in _WIDE_INTEGERS}
    if not wide:
        return select, ""
    casts = ", ".join(f"CAST({quote_identifier(n)} AS VARCHAR) AS {quote_identifier(n)}"
                      for n in wide)
    note = quote_literal(json.dumps(wide))
    return (f"SELECT * REPLACE ({casts}) FROM ({select})",
            f", KV_METADATA {{{_WIDE_KEY}: {note}}}")


def raw_relation(con: duckdb.DuckDBPyConnection, raw: str) -> str:
    """SQL for the staged result file ``raw`` with every column in its query's own type (the
    128-bit integers that :func:`_parquet_ready` wrote as text cast back)."""
    relation = f"read_parquet({quote_literal(raw)})"
    row = con.execute(f"SELECT decode(value) FROM parquet_kv_metadata({quote_literal(raw)}) "
                      "WHERE decode(key) = ?", [_WIDE_KEY]).fetchone()
    if row is None:
        return relation
    wide: dict[str, str] = json.loads(row[0])
    casts = ", ".join(f"CAST({quote_identifier(n)} AS {kind}) AS {quote_identifier(n)}"
                      for n, kind in wide.items() if kind in _WIDE_INTEGERS)
    return f"(SELECT * REPLACE ({casts}) FROM {relation})"


def metric_query(config: MetricConfig, source: SourceConfig) -> CheckedQuery:
    """The metric's SQL, checked for the way it will run."""
    return (check_pushdown_query(config.sql, source) if source.pushdown
            else check_query(config.sql, source))


def stage_result(con: duckdb.DuckDBPyConnection, metric: MetricConfig, window: Window,
                 previous_rows: int | None, raw: str | None = None) -> StagedResult:
    """Check the query's result: the Parquet file ``raw`` if given, else the result table.

    For a file, the result also says how the store reads its values (one row per value).
    Raises QualityError on a check of severity ``error``.
    """
    relation = raw_relation(con, raw) if raw else _RESULT
    columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
    shape = infer_shape(columns, metric)
    b = f"CAST({quote_identifier(shape.bucket)} AS TIMESTAMP)"
    in_window = f"{b} >= $ws AND {b} < $we"
    window_params = {"ws": window.start, "we": window.end}
    key_columns = ", ".join([b, *(quote_identifier(d) for d in shape.dimensions)])
    measure_nulls = " + ".join(
        f"count(*) FILTER (WHERE {quote_identifier(m)} IS NULL)" for m in shape.measures)
    row = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {b} IS NULL),"
        f" count(*) FILTER (WHERE {b} IS NOT NULL AND NOT ({in_window})),"
        f" {measure_nulls},"
        f" (SELECT count(*) FROM (SELECT {key_columns} FROM {relation} GROUP BY ALL"
        f"  HAVING count(*) > 1))"
        f" FROM {relation}", window_params).fetchone()
    assert row is not None
    rows, null_buckets, outside, null_measures, duplicates = (int(x or 0) for x in row)
    dup_row: tuple[Any, ...] | None = None
    if duplicates:
        dup_row = con.execute(
            f"SELECT {duplicates}, min(__lookback_key) FROM (SELECT {key_columns}, "
            f"CAST({b} AS VARCHAR) AS __lookback_key FROM {relation} GROUP BY ALL "
            f"HAVING count(*) > 1)").fetchone()

    # a bucket must be the start of a bucket of the grain in the metric's time zone (the
    # connection's zone is the metric's, so a bucket with a time zone casts to local time;
    # DuckDB's week starts on Monday, as windows.bucket_start)
    unit = metric.grain.value
    misaligned = con.execute(
        f"SELECT count(*), min({b}) FROM {relation} WHERE {b} IS NOT NULL "
        f"AND {b} <> date_trunc({quote_literal(unit)}, {b})").fetchone()
    bad_buckets = int(misaligned[0] or 0) if misaligned else 0

    checks: list[dict[str, Any]] = []
    warnings: list[str] = []
    failures: list[str] = []

    def record(name: str, severity: str, ok: bool, message: str) -> None:
        checks.append({"name": name, "severity": severity, "ok": ok, "message": message})
        if not ok:
            (failures if severity == "error" else warnings).append(message)

    span = f"[{_fmt(window.start)}, {_fmt(window.end)})"
    record("empty", "warn" if metric.allow_empty else "error", rows > 0,
           f"the query returned no rows for the window {span}"
           + ("" if metric.allow_empty else
              "; an empty answer is refused (far more often an outage than a real zero): "
              "set allow_empty = true if it can really be empty"))
    record("null_bucket", "error", null_buckets == 0,
           f"{null_buckets} row(s) have no bucket (NULL)")
    record("bucket_start", "error", bad_buckets == 0,
           f"{bad_buckets} row(s) have a bucket that is not the start of a {metric.grain.value} "
           f"(first: {_fmt(misaligned[1]) if bad_buckets and misaligned else ''}); truncate "
           f"it, e.g. date_trunc('{metric.grain.value}', ordered_at) AS bucket")
    record("duplicate_keys", "error", duplicates == 0,
           f"{duplicates} (bucket, dimensions) combination(s) appear in more than one row "
           f"(first at {dup_row[1] if duplicates and dup_row else ''}); "
           "the query must aggregate (GROUP BY)")
    record("out_of_window", "warn", outside == 0,
           f"{outside} row(s) outside the window {span} were not stored")
    record("null_measure", "warn", null_measures == 0,
           f"{null_measures} measure value(s) are NULL")

    for check in metric.checks:
        if check.measure is not None:
            if check.measure not in shape.measures:
                record(check.name, check.severity, False,
                       f"check {check.name}: measure '{check.measure}' is not in the result")
                continue
            col = quote_identifier(check.measure)
            conds = []
            if check.min is not None:
                conds.append(f"{col} < {check.min!r}")
            if check.max is not None:
                conds.append(f"{col} > {check.max!r}")
            found = con.execute(
                f"SELECT count(*), min({col}), max({col}) FROM {relation} WHERE ({in_window}) "
                f"AND ({' OR '.join(conds)})", window_params).fetchone()
            bad = int(found[0]) if found else 0
            bounds = " and ".join(
                x for x in (f"at least {check.min:g}" if check.min is not None else "",
                            f"at most {check.max:g}" if check.max is not None else "") if x)
            record(check.name, check.severity, bad == 0,
                   f"check {check.name}: {bad} value(s) of {check.measure} are not {bounds}"
                   + (f" (from {found[1]:g} to {found[2]:g})" if bad and found else ""))
        elif check.row_change_pct is not None:
            if previous_rows:
                change = abs(rows - previous_rows) / previous_rows * 100
                record(check.name, check.severity, change <= check.row_change_pct,
                       f"check {check.name}: the row count changed by {change:.1f}% "
                       f"({previous_rows} → {rows}; at most {check.row_change_pct:g}%)")
            else:
                record(check.name, check.severity, True,
                       f"check {check.name}: no earlier run to compare the row count with")
    if failures:
        raise QualityError(f"metric {metric.name}: quality check failed: " + "; ".join(failures))

    dims_json = ("json_object(" + ", ".join(
        f"{quote_literal(d)}, {quote_identifier(d)}" for d in sorted(shape.dimensions)) + ")"
                 ) if shape.dimensions else "'{}'"
    if raw is None:
        return StagedResult(shape=shape, rows=rows, values_sql=None, warnings=tuple(warnings),
                            checks=tuple(checks))
    # read in the store's own connection, whose time zone is not the metric's: a bucket with a
    # time zone is turned into the metric's wall-clock time explicitly
    column = quote_identifier(shape.bucket)
    local = (f"timezone({quote_literal(metric.timezone)}, {column})"
             if shape.bucket_type.upper().startswith(("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"))
             else f"CAST({column} AS TIMESTAMP)")
    bounds = f"{local} >= {timestamp_literal(window.start)} AND {local} < {timestamp_literal(window.end)}"
    parts = [
        f"SELECT CAST({dims_json} AS VARCHAR) AS dims, {quote_literal(m)} AS measure, "
        f"{local} AS bucket, coalesce(CAST({quote_identifier(m)} AS DOUBLE), 0) AS value,"
        f" {quote_identifier(m)} IS NULL AS value_null, {_exact_text(m, shape)} AS exact"
        f" FROM r WHERE {bounds}"
        for m in shape.measures
    ]
    values_sql = (f"WITH r AS (SELECT * FROM {relation}) " + " UNION ALL ".join(parts))
    return StagedResult(shape=shape, rows=rows, values_sql=values_sql,
                        warnings=tuple(warnings), checks=tuple(checks),
                        values=(rows - null_buckets - outside) * len(shape.measures))


def _exact_text(measure: str, shape: ResultShape) -> str:
    """SQL for the exact value of an integer or DECIMAL measure: its decimal text without
    trailing zeros after the point (so DECIMAL(18,2) 1.50 and DECIMAL(18,3) 1.500 are equal);
    NULL for a float measure."""
    if measure not in shape.exact:
        return "NULL::VARCHAR"
    text = f"CAST({quote_identifier(measure)} AS VARCHAR)"
    return f"CASE WHEN contains({text}, '.') THEN rtrim(rtrim({text}, '0'), '.') ELSE {text} END"


def _revision_check(metric: MetricConfig, checks: list[dict[str, Any]], warnings: list[str],
                    summary: DiffSummary) -> None:
    failures: list[str] = []
    for check in metric.checks:
        if check.revision_pct is None:
            continue
        largest = summary.max_revision_pct or 0.0
        ok = largest <= check.revision_pct
        message = (f"check {check.name}: the largest revision in this run is {largest:.1f}% "
                   f"(at most {check.revision_pct:g}%)")
        checks.append({"name": check.name, "severity": check.severity, "ok": ok,
                       "message": message})
        if not ok:
            (failures if check.severity == "error" else warnings).append(message)
    if failures:
        raise QualityError(f"metric {metric.name}: quality check failed: " + "; ".join(failures))


def _duckdb_failure(metric: MetricConfig, exc: duckdb.Error) -> PullError:
    message = clean_duckdb_message(str(exc))
    if is_transient(exc):
        return TransientSourceError(f"metric {metric.name}: source {metric.source}: {message}")
    return QueryError(f"metric {metric.name}: {message}")


@dataclass
class PullContext:
    """Everything one pull works with, and how far it got.

    Attributes:
        project: the project the metric belongs to (alert commands run in its folder).
        metric: the metric as pulled (a back-fill chunk may allow an empty result).
        source: the metric's source.
        window: the window pulled.
        control: cancels the pull and shows its progress.
        store: where the run is recorded.
        clock: now, in the metric's time zone.
        staging: the pull's private folder; its result goes there as Parquet.
        run_id: the run that records the pull.
        connections: where its source database comes from (None: it is made here).
        environ: where passwords are looked up (None: the process's environment).
        observer: told what happens.
        last: the metric's newest successful run before this one.
        attempts: attempts at the query so far.
        definition: the version of the metric's definition the pull runs under.
        redefinition: set when the run is the first under a new definition.
    """

    project: Project
    metric: MetricConfig
    source: SourceConfig
    window: Window
    control: PullControl
    store: Store
    clock: Clock
    staging: str
    run_id: int
    connections: SourceConnections | None = None
    environ: Mapping[str, str] | None = None
    observer: Observer = ignore
    last: RunRecord | None = None
    attempts: int = 0
    definition: str | None = None
    redefinition: DefinitionChanged | None = None

    @functools.cached_property
    def query(self) -> CheckedQuery:
        """The metric's SQL, checked for the way it will run (PullError if it is refused)."""
        return metric_query(self.metric, self.source)

    @property
    def previous_rows(self) -> int | None:
        """The row count of the last successful run, for the row-change check."""
        return self.last.rows if self.last else None

    @property
    def known_measures(self) -> list[str]:
        """The measures of the last successful run, to tell a schema change."""
        return list(self.last.measures) if self.last else []

    @property
    def retry_policy(self) -> RetryPolicy:
        return retry_policy(self.metric)


def retry_policy(config: MetricConfig) -> RetryPolicy:
    """When a pull of ``config`` tries again: its ``retries``, ``retry_base`` and
    ``retry_max``."""
    return RetryPolicy(config.retries, config.retry_base.total_seconds(),
                       config.retry_max.total_seconds())


def run_pull(
    project: Project,
    metric: MetricConfig | str,
    store: Store,
    *,
    trigger: str = "manual",
    as_of: datetime | None = None,
    window: Window | None = None,
    control: PullControl | None = None,
    observer: Observer = ignore,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] | None = None,
    connections: SourceConnections | None = None,
) -> RunRecord:
    """Pull ``metric`` for one window and return the finished run (whatever its status).

    The window is ``window`` if given, else the lookback window as of ``as_of`` (default: now in
    the metric's time zone); a pull is never as of the future (UsageError). Its versions are
    known at its as-of when the SQL replays the source with ``$as_of``, else at the moment its
    query ran. Failures are recorded in the run, not raised; a LookbackError is raised only
    when no run could be recorded at all. ``connections`` (from the process's entry point)
    gives the source database; ``sleep`` waits between attempts (default: until cancelled).
    """
    config = project.metric(metric) if isinstance(metric, str) else metric
    source = project.sources[config.source]
    zone = config.zone
    control = control or PullControl()
    now = clock or (lambda: local_now(zone))
    if window is None:
        window = compute_window(as_of or now(), config.grain, config.buckets,
                                config.complete_buckets_only)
    if window.as_of > now():
        raise UsageError(f"metric {config.name}: a pull as of {_fmt(window.as_of)} would be as "
                         f"of the future (it is {_fmt(now().replace(microsecond=0))} in "
                         f"{config.timezone})")
    # a table read as of the pull (snapshot_as_of) replays its source as $as_of SQL does
    replays = uses_as_of(config.sql) or source.snapshot_as_of
    definition = definition_version(config)
    started = time.monotonic()
    run_id = _begin_with_retries(store, NewRun(
        metric=config.name, trigger=trigger, timezone=config.timezone, grain=config.grain.value,
        as_of=window.as_of, window_start=window.start, window_end=window.end,
        partial_start=window.partial_start, started_at=now(), sql=config.sql,
        params={"window_start": window.start, "window_end": window.end, "as_of": window.as_of},
        log=(f"{trigger} pull of {config.name} from {source.name} ({source.type}) for window "
             f"[{_fmt(window.start)}, {_fmt(window.end)}) as of {_fmt(window.as_of)}"),
        known_at=window.as_of if replays else None, definition=definition,
    ), config, sleep or control.sleep, control)
    control.run_id = run_id
    observer(RunStarted(run_id, config.name, trigger, window.start, window.end))
    result: RunRecord
    # what the pull holds until it ends: its private folder and its source connection
    held = contextlib.ExitStack()
    pull = PullContext(
        project=project, metric=config, source=source, window=window, control=control,
        store=store, clock=now, staging=held.enter_context(staging_folder()), run_id=run_id,
        connections=connections, environ=environ, observer=observer, definition=definition)
    try:
        pull.query  # noqa: B018 -- a refused SQL fails the run before any attempt
        pull.last = store.last_successful_run(config.name)
        staged, known_at = _stage_with_retries(pull, held, sleep or control.sleep, replays)
        result = _commit_with_retries(pull, staged, known_at, started, sleep or control.sleep)
    except CancelledError:
        store.log(run_id, "warning", "cancelled; nothing was committed")
        store.finish_run(run_id, status="cancelled", finished_at=now(), attempts=pull.attempts,
                         error="cancelled", duration_s=time.monotonic() - started)
        result = store.run(run_id)
    except LookbackError as exc:
        message = str(exc)
        if isinstance(exc, QualityError):
            store.log(run_id, "error", f"{message}; nothing was committed")
        elif pull.attempts == 0 or not isinstance(exc, PullError):
            store.log(run_id, "error", message)
        store.finish_run(run_id, status="failed", finished_at=now(),
                         attempts=max(pull.attempts, 1), error=message,
                         duration_s=time.monotonic() - started)
        result = store.run(run_id)
    except Exception as exc:  # a bug: the run must not stay "running"; then report it
        store.finish_run(run_id, status="failed", finished_at=now(),
                         attempts=max(pull.attempts, 1),
                         error=f"internal error: {type(exc).__name__}: {exc}",
                         duration_s=time.monotonic() - started)
        raise
    finally:
        held.close()
    observer(RunFinished(result))
    if pull.redefinition is not None and result.status == "succeeded":
        observer(pull.redefinition)
    _evaluate_alerts(project, config, store, now(), result, observer)
    return result


def _begin_with_retries(store: Store, start: NewRun, config: MetricConfig,
                        wait: Callable[[float], None], control: PullControl) -> int:
    """Record the run's start and return its id. A store that failed in a way that trying
    again may fix (the team store's catalog went away while the run was being recorded; nothing
    of it was kept) is tried again under the metric's retry policy, as a failed query is;
    when the policy gives up, the failure is raised (no run could be recorded)."""
    policy = retry_policy(config)
    attempts = 0
    while True:
        attempts += 1
        try:
            return store.begin_run(start)
        except TransientStoreError as exc:
            delay = policy.delay(exc, attempts)
            if delay is None:
                raise
        control.check()
        wait(delay)


def _stage_with_retries(pull: PullContext, held: contextlib.ExitStack,
                        wait: Callable[[float], None], replays: bool
                        ) -> tuple[StagedResult, datetime]:
    """Attempt the query until it succeeds or the retry policy gives up; return the staged
    result and the known time of its values."""
    config, control, store = pull.metric, pull.control, pull.store
    policy = pull.retry_policy
    while True:
        pull.attempts += 1
        attempts = pull.attempts
        control.check()
        queried_at = pull.window.as_of if replays else pull.clock()
        try:
            return _attempt(pull, held), queried_at
        except (QualityError, CancelledError):
            raise
        except PullError as exc:
            failure = exc
        except duckdb.Error as exc:
            if control.cancelled:
                raise CancelledError("cancelled") from None
            failure = _duckdb_failure(config, exc)
        control.check()  # a cancel that broke the attempt is no failure of the source
        delay = policy.delay(failure, attempts)
        if delay is None:
            store.log(pull.run_id, "error", f"attempt {attempts} failed: {failure}")
            pull.observer(AttemptFailed(pull.run_id, config.name, attempts, str(failure), None))
            raise failure
        store.log(pull.run_id, "warning",
                  f"attempt {attempts} failed: {failure}; retrying in {delay:.2f} s "
                  f"(attempt {attempts + 1} of {config.retries + 1})")
        pull.observer(AttemptFailed(pull.run_id, config.name, attempts, str(failure), delay))
        store.set_attempts(pull.run_id, attempts)
        wait(delay)


def _commit_with_retries(pull: PullContext, staged: StagedResult, known_at: datetime,
                         started: float, wait: Callable[[float], None]) -> RunRecord:
    """Commit the staged result. A commit that failed in a way that trying again may fix (the
    team store's catalog went away, or another process's commit conflicted with it) is tried
    again with the same staged result, under the metric's retry policy and counting as an
    attempt; a commit that landed although its answer was lost is not made twice."""
    config, store = pull.metric, pull.store
    while True:
        try:
            return _commit(pull, staged, known_at, started)
        except TransientStoreError as exc:
            failure = exc
        pull.control.check()
        with contextlib.suppress(TransientStoreError):
            landed = store.run(pull.run_id)
            if landed.status == "succeeded":
                return landed
        attempts = pull.attempts
        delay = pull.retry_policy.delay(failure, attempts)
        if delay is None:  # the run's end tells the failure
            pull.observer(AttemptFailed(pull.run_id, config.name, attempts, str(failure), None))
            raise failure
        pull.observer(AttemptFailed(pull.run_id, config.name, attempts, str(failure), delay))
        pull.attempts += 1
        with contextlib.suppress(TransientStoreError):  # the store may still be away
            store.log(pull.run_id, "warning",
                      f"attempt {attempts} failed: {failure}; committing again in "
                      f"{delay:.2f} s (attempt {attempts + 1} of {config.retries + 1})")
            store.set_attempts(pull.run_id, pull.attempts)
        wait(delay)


def _commit(pull: PullContext, staged: StagedResult, known_at: datetime,
            started: float) -> RunRecord:
    """Diff the staged result, run the checks on the diff, and commit it as the pull's run
    (nothing is written when a check fails or the pull is cancelled meanwhile)."""
    config, window, store = pull.metric, pull.window, pull.store
    schema_change = _schema_change(pull.known_measures, staged.shape.measures)
    warnings = list(staged.warnings)
    if schema_change:
        text = _describe_schema_change(schema_change)
        warnings.append(text)
        store.log(pull.run_id, "warning", text)
    checks = list(staged.checks)
    last = pull.last
    changed = (last is not None and last.definition is not None
               and last.definition != pull.definition)
    older = store.pull_extent(config.name)[0] if changed else None
    pull.control.check()
    with store.begin_commit(pull.run_id) as commit:
        summary = commit.diff(StagedValues(
            metric=config.name, sql=staged.values_sql, measures=staged.shape.measures,
            window_start=staged.diff_start or window.start, window_end=window.end,
            known_at=known_at,
            unchanged_before=(window.start, staged.diff_start) if staged.diff_start else None,
            count=staged.values, exact=bool(staged.shape.exact), definition=pull.definition))
        said: tuple[str, ...] = ()
        if changed:
            assert last is not None and last.definition is not None
            said = (_redefined(pull, summary.redefined, last.definition, older),)
            warnings += said
        _revision_check(config, checks, warnings, summary)
        pull.control.check()
        record = commit.commit(CommitRequest(
            settled_end=settled_end(window, known_at, config), finished_at=pull.clock(),
            duration_s=time.monotonic() - started, attempts=pull.attempts, rows=staged.rows,
            warnings=warnings, checks=checks, schema_change=schema_change,
            log_warnings=(*staged.warnings, *said),
            probes=staged.probes))
    return record


def _redefined(pull: PullContext, redefined: int, old: str, first: datetime | None) -> str:
    """The run is the first under a new definition: the warning that says so, and how to load
    the older values under it (``first``: the metric's first bucket with data)."""
    config, window = pull.metric, pull.window
    assert pull.definition is not None
    start = first if first is not None and first < window.start else None
    text = (f"definition changed ({old} → {pull.definition}): {redefined} value(s) changed with "
            "it (redefinitions, not late data)")
    if start is not None:
        text += (f"; the values before {_fmt(window.start)} still come from the old definition:"
                 f" 'lookback backfill {config.name} --from {start.isoformat()} --to "
                 f"{window.start.isoformat()}' loads them under the new one")
    pull.redefinition = DefinitionChanged(config.name, pull.run_id, old, pull.definition,
                                          redefined, start, window.start)
    return text


def _evaluate_alerts(project: Project, config: MetricConfig, store: Store, now: datetime,
                     run: RunRecord, observer: Observer) -> None:
    from lookback_gui.core.alerts import evaluate_alerts

    if not config.alerts:
        return
    try:  # a replay brings the states up to date, but the past is no news: no command runs
        evaluate_alerts(config, store, now, run=run, project_dir=project.directory,
                        observer=observer, commands=run.trigger != "replay")
    except LookbackError as exc:  # an alert must never undo or hide the run itself
        logging.getLogger(__name__).debug("alerts of %s: %s", config.name, exc)
        observer(Notice("warning", f"{config.name}: its alert rules were not evaluated after "
                        f"run {run.id}: {exc}", config.name))


def _attempt(pull: PullContext, held: contextlib.ExitStack) -> StagedResult:
    """One attempt at the query. A failed attempt releases its source connection at once; a
    successful one with ``held``, after the commit, so that closing it stays off the pull's
    path."""
    con = connect_source(pull.source, pull.metric.timezone, environ=pull.environ,
                         staging_dir=pull.staging, connections=pull.connections,
                         as_of=pull.window.as_of)
    pull.control.attach(con)
    try:
        staged = _query_and_stage(pull, con)
    except BaseException:
        pull.control.attach(None)
        release_source(con, pull.source, pull.connections)
        raise
    pull.control.attach(None)  # before the connection is given back: nothing may reach it then
    held.callback(release_source, con, pull.source, pull.connections)
    return staged


def _query_and_stage(pull: PullContext, con: duckdb.DuckDBPyConnection) -> StagedResult:
    config, window, control = pull.metric, pull.window, pull.control
    control.check()
    previous_rows = pull.previous_rows
    known = pull.known_measures
    probes: tuple[tuple[datetime, str], ...] = ()
    heavy = window
    if config.change_probe:
        fingerprints = run_probe(con, config, window, pull.source)
        stored = pull.store.probe_fingerprints(config.name, window.start, window.end)
        changed = first_changed_bucket(fingerprints, stored, window)
        probes = tuple((b, fp) for b, fp in fingerprints if stored.get(b) != fp)
        if changed is None and known:
            return StagedResult(
                shape=ResultShape("bucket", "TIMESTAMP", (), tuple(known)), rows=0,
                values_sql=None, checks=(), probes=probes, diff_start=window.end,
                warnings=("change_probe: no bucket changed since the last pull; the query "
                          "was not run",))
        if changed is not None and changed > window.start:
            heavy = Window(start=changed, end=window.end, as_of=window.as_of,
                           partial_start=window.partial_start)
            previous_rows = None  # a narrower window is no basis for a row-count change
    control.check()
    raw = os.path.join(pull.staging, "result.parquet")
    execute_metric_query(con, pull.query, heavy, config, pull.source, into=raw)
    control.check()
    staged = stage_result(con, config, heavy, previous_rows, raw)
    if heavy is not window:
        note = (f"change_probe: buckets before {_fmt(heavy.start)} did not change; the query "
                f"ran for [{_fmt(heavy.start)}, {_fmt(heavy.end)})")
        staged = dataclasses.replace(staged, warnings=(*staged.warnings, note),
                                     diff_start=heavy.start, probes=probes)
    elif probes:
        staged = dataclasses.replace(staged, probes=probes)
    return staged


def run_probe(con: duckdb.DuckDBPyConnection, config: MetricConfig, window: Window,
              source: SourceConfig | None = None) -> tuple[tuple[datetime, str], ...]:
    """The change probe's fingerprint of each bucket of the window."""
    assert config.change_probe is not None
    probe = check_query(config.change_probe, source)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE __lookback_probe AS SELECT * FROM "
                    f"(\n{probe.text}\n)", query_parameters(probe, window))
    except duckdb.Error as exc:
        raise _duckdb_failure(config, exc) from None
    columns = [r[0] for r in con.execute("DESCRIBE __lookback_probe").fetchall()]
    bucket = next((c for c in columns if c.lower() == "bucket"), None)
    if bucket is None:
        raise QueryError(f"metric {config.name}: change_probe returns no 'bucket' column")
    others = [c for c in columns if c != bucket] or [bucket]
    fingerprint = " || '|' || ".join(
        f"coalesce(CAST({quote_identifier(c)} AS VARCHAR), '∅')" for c in others)
    rows = con.execute(
        f"SELECT CAST({quote_identifier(bucket)} AS TIMESTAMP) AS b, {fingerprint} "
        f"FROM __lookback_probe WHERE b >= $ws AND b < $we ORDER BY b",
        {"ws": window.start, "we": window.end}).fetchall()
    return tuple((b, fp) for b, fp in rows)


def first_changed_bucket(probes: tuple[tuple[datetime, str], ...], stored: Mapping[datetime, str],
                         window: Window) -> datetime | None:
    """The earliest bucket whose fingerprint is new, changed or gone; None when none is.

    The partial bucket is always taken as changed: it is still filling.
    """
    now = dict(probes)
    changed = [b for b in set(now) | set(stored) if now.get(b) != stored.get(b)]
    if window.partial_start is not None and window.partial_start < window.end:
        changed.append(window.partial_start)
    return min(changed) if changed else None


def _schema_change(known: list[str], measures: tuple[str, ...]) -> dict[str, list[str]]:
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


def _describe_schema_change(change: Mapping[str, list[str]]) -> str:
    parts = []
    if change.get("dropped"):
        parts.append("measure(s) no longer in the result: " + ", ".join(change["dropped"])
                     + " (their values are kept, not removed)")
    if change.get("added"):
        parts.append("new measure(s): " + ", ".join(change["added"]))
    return "schema change: " + "; ".join(parts)


def settled_end(window: Window, known_at: datetime, config: MetricConfig) -> datetime:
    """The end of the part of ``window`` that a pull known at ``known_at`` saw complete: the
    buckets that ended by then."""
    return min(window.end, max(window.start, bucket_start(known_at, config.grain)))


def backfill_windows(config: MetricConfig, start: datetime, end: datetime,
                     now: datetime | None = None, *,
                     as_known_then: bool = False) -> list[Window]:
    """Window-sized chunks covering every bucket in [start, end), oldest first.

    Each chunk is pulled with what is known now (its ``$as_of`` is ``now``, default: now in the
    metric's time zone, and so is its known time): a backfill loads the past as the source
    holds it today. With ``as_known_then`` each chunk is pulled as of its own end instead. Never
    as of the future: the chunk that holds ``now`` is pulled as of ``now``, with its bucket
    partial, and no chunk starts after it.
    """
    now = now or local_now(config.zone)
    first = bucket_start(start, config.grain)
    if end > now:  # up to the bucket that holds now
        last = add_buckets(bucket_start(now, config.grain), config.grain, 1)
    else:
        last = bucket_start(end, config.grain)
        if last < end:
            last = add_buckets(last, config.grain, 1)
    if last <= first:
        return []
    windows = []
    cursor = first
    while cursor < last:
        chunk_end = min(add_buckets(cursor, config.grain, config.buckets), last)
        if chunk_end <= now:
            windows.append(Window(start=cursor, end=chunk_end,
                                  as_of=chunk_end if as_known_then else now,
                                  partial_start=None))
        else:
            windows.append(Window(start=cursor, end=chunk_end, as_of=now,
                                  partial_start=bucket_start(now, config.grain)))
        cursor = chunk_end
    return windows


MAX_BACKFILL_CHUNKS = 1000  # more pulls than this in one backfill need a confirmation


def backfill_chunk_count(config: MetricConfig, start: datetime, end: datetime) -> int:
    """How many pulls a backfill of [start, end) makes, without listing them."""
    first = bucket_start(start, config.grain)
    last = bucket_start(end, config.grain)
    if last < end:
        last = add_buckets(last, config.grain, 1)
    if last <= first:
        return 0
    return -(-buckets_between(first, last, config.grain) // config.buckets)


def _uncovered_ok_empty(config: MetricConfig, store: Store,
                        plans: list[tuple[str, Window]]) -> Callable[[str, Window], MetricConfig]:
    """The config to pull a planned window with: a back-fill chunk that no successful pull
    covered any bucket of may come back empty (nothing is stored there that an outage could
    wrongly remove, e.g. before the data starts): it succeeds with a warning, not a failure."""
    if config.allow_empty or not any(trigger == "backfill" for trigger, _ in plans):
        return lambda trigger, window: config
    spans = [(r.window_start, r.window_end) for r in store.runs(metric=config.name,
                                                                status="succeeded")
             if r.window_start is not None and r.window_end is not None]
    relaxed = dataclasses.replace(config, allow_empty=True)

    def pick(trigger: str, window: Window) -> MetricConfig:
        if trigger != "backfill" or any(s < window.end and window.start < e for s, e in spans):
            return config
        return relaxed

    return pick


def run_windows(
    project: Project,
    config: MetricConfig,
    store: Store,
    plans: list[tuple[str, Window]],
    *,
    workers: int = 1,
    control: PullControl | None = None,
    observer: Observer = ignore,
    on_run: Callable[[int, int, RunRecord], None] | None = None,
    gate: threading.Semaphore | None = None,
    clock: Clock | None = None,
    connections: SourceConnections | None = None,
) -> list[RunRecord]:
    """Pull each (trigger, window) of ``plans``, up to ``workers`` at once.

    ``gate`` (the source's concurrency limit) is held around each pull. A failed pull does not
    stop the others; the runs come back in plan order.
    """
    from concurrent.futures import ThreadPoolExecutor

    control = control or PullControl()
    config_for = _uncovered_ok_empty(config, store, plans)
    results: list[RunRecord | None] = [None] * len(plans)
    done = [0]
    lock = threading.Lock()

    def one(index: int) -> None:
        if control.cancelled:
            return
        trigger, window = plans[index]
        child = control.child()
        if gate is not None:
            while not gate.acquire(timeout=0.2):
                if child.cancelled:
                    return
        try:
            run = run_pull(project, config_for(trigger, window), store, trigger=trigger,
                           window=window, control=child, observer=observer, clock=clock,
                           connections=connections)
        finally:
            if gate is not None:
                gate.release()
        results[index] = run
        with lock:
            done[0] += 1
            if on_run:
                on_run(done[0], len(plans), run)

    if workers <= 1 or len(plans) <= 1:
        for index in range(len(plans)):
            one(index)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill") as pool:
            for future in [pool.submit(one, i) for i in range(len(plans))]:
                future.result()
    return [r for r in results if r is not None]


def backfill(
    project: Project,
    metric: MetricConfig | str,
    store: Store,
    start: datetime,
    end: datetime,
    *,
    control: PullControl | None = None,
    observer: Observer = ignore,
    on_chunk: Callable[[int, int, RunRecord], None] | None = None,
    trigger: str = "backfill",
    clock: Clock | None = None,
    workers: int = 1,
    connections: SourceConnections | None = None,
    as_known_then: bool = False,
) -> list[RunRecord]:
    """Pull every bucket in [start, end) chunk by chunk, up to ``workers`` chunks at once
    (never more than the source's ``concurrency``); a failed chunk does not stop the rest.

    Every chunk is pulled with what is known now, unless ``as_known_then`` (each as of its
    own end: see :func:`backfill_windows`)."""
    config = project.metric(metric) if isinstance(metric, str) else metric
    source = project.sources[config.source]
    plans = [(trigger, w) for w in backfill_windows(config, start, end,
                                                    clock() if clock else None,
                                                    as_known_then=as_known_then)]
    return run_windows(project, config, store, plans,
                       workers=max(1, min(workers, source.concurrency)), control=control,
                       observer=observer, on_run=on_chunk, clock=clock,
                       connections=connections)


def check_metric(project: Project, metric: MetricConfig | str,
                 environ: Mapping[str, str] | None = None) -> ResultShape:
    """Check that a metric's SQL is accepted, binds on its source and has a usable result shape.

    Nothing is pulled or stored: the query is planned for the current window with ``LIMIT 0``.
    Raises PullError (with the reason) when it would fail.
    """
    config = project.metric(metric) if isinstance(metric, str) else metric
    source = project.sources[config.source]
    query = metric_query(config, source)
    window = compute_window(local_now(config.zone), config.grain, config.buckets,
                            config.complete_buckets_only)
    con = connect_source(source, config.timezone, environ=environ)
    try:
        execute_metric_query(con, query, window, config, source, limit=0)
        columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {_RESULT}").fetchall()]
    except duckdb.Error as exc:
        raise _duckdb_failure(config, exc) from None
    finally:
        release_source(con, source)
    return infer_shape(columns, config)


@dataclass(frozen=True)
class Preview:
    """What a metric's query returns for its current window, without storing anything.

    Attributes:
        window: the window it ran for.
        shape: bucket, dimensions and measures as a pull would read them.
        columns: the result's column names.
        rows: the first rows (at most the limit asked for).
        total_rows: how many rows the query returned.
        warnings: what the quality checks would warn about.
    """

    window: Window
    shape: ResultShape
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    total_rows: int
    warnings: tuple[str, ...]


def preview_metric(project: Project, config: MetricConfig, limit: int = 200,
                   environ: Mapping[str, str] | None = None,
                   control: PullControl | None = None) -> Preview:
    """Run ``config``'s query for its current window; nothing is stored.

    ``config`` may be an edited metric that is not saved yet. Raises PullError with the reason
    (DuckDB's message keeps the line and position of a SQL error).
    """
    source = project.sources.get(config.source)
    if source is None:
        raise QueryError(f"metric {config.name}: unknown source '{config.source}'")
    query = metric_query(config, source)
    window = compute_window(local_now(config.zone), config.grain, config.buckets,
                            config.complete_buckets_only)
    con = connect_source(source, config.timezone, environ=environ)
    if control is not None:
        control.attach(con)
    try:
        execute_metric_query(con, query, window, config, source)
        columns = tuple(r[0] for r in con.execute(f"DESCRIBE {_RESULT}").fetchall())
        total = con.execute(f"SELECT count(*) FROM {_RESULT}").fetchone()
        rows = con.execute(f"SELECT * FROM {_RESULT} LIMIT {int(limit)}").fetchall()
        relaxed = MetricConfig(**{**config.__dict__, "checks": (), "allow_empty": True})
        staged = stage_result(con, relaxed, window, None)
    except duckdb.Error as exc:
        if control is not None and control.cancelled:
            raise CancelledError("cancelled") from None
        raise _duckdb_failure(config, exc) from None
    finally:
        if control is not None:
            control.attach(None)
        release_source(con, source)
    return Preview(window=window, shape=staged.shape, columns=columns, rows=tuple(rows),
                   total_rows=int(total[0]) if total else 0, warnings=staged.warnings)
