"""Trying a metric without storing anything: ``lookback check`` and the editor's Preview."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

from lookback_gui.core.errors import (
    CancelledError,
    QueryError,
)
from lookback_gui.core.project import MetricConfig, Project
from lookback_gui.core.pull.control import PullControl
from lookback_gui.core.pull.probe import duckdb_failure
from lookback_gui.core.pull.staging import (
    _RESULT,
    ResultShape,
    execute_metric_query,
    infer_shape,
    metric_query,
    stage_result,
)
from lookback_gui.core.sources import (
    connect_source,
    release_source,
)
from lookback_gui.core.timing.windows import (
    Window,
    compute_window,
    local_now,
)


def check_metric(
    project: Project, metric: MetricConfig | str, environ: Mapping[str, str] | None = None
) -> ResultShape:
    """Check that a metric's SQL is accepted, binds on its source and has a usable result shape.

    Nothing is pulled or stored: the query is planned for the current window with ``LIMIT 0``.
    Raises PullError (with the reason) when it would fail.
    """
    config = project.metric(metric) if isinstance(metric, str) else metric
    source = project.sources[config.source]
    query = metric_query(config, source)
    window = compute_window(
        local_now(config.zone), config.grain, config.buckets, config.complete_buckets_only
    )
    con = connect_source(source, config.timezone, environ=environ)
    try:
        execute_metric_query(con, query, window, config, source, limit=0)
        columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {_RESULT}").fetchall()]
    except duckdb.Error as exc:
        raise duckdb_failure(config, exc) from None
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


def preview_metric(
    project: Project,
    config: MetricConfig,
    limit: int = 200,
    environ: Mapping[str, str] | None = None,
    control: PullControl | None = None,
) -> Preview:
    """Run ``config``'s query for its current window; nothing is stored.

    ``config`` may be an edited metric that is not saved yet. Raises PullError with the reason
    (DuckDB's message keeps the line and position of a SQL error).
    """
    source = project.sources.get(config.source)
    if source is None:
        raise QueryError(f"metric {config.name}: unknown source '{config.source}'")
    query = metric_query(config, source)
    window = compute_window(
        local_now(config.zone), config.grain, config.buckets, config.complete_buckets_only
    )
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
        raise duckdb_failure(config, exc) from None
    finally:
        if control is not None:
            control.attach(None)
        release_source(con, source)
    return Preview(
        window=window,
        shape=staged.shape,
        columns=columns,
        rows=tuple(rows),
        total_rows=int(total[0]) if total else 0,
        warnings=staged.warnings,
    )
