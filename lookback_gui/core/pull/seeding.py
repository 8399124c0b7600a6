"""Seeding: the runs a schedule would have made over the past, written in one pass.

A replay (``lookback replay``) makes each past pull a whole pull of its own: a source database
attached for it, its query, its commit, its alerts. Seeding writes the same runs and versions for
a planned list of past pulls of ``$as_of`` metrics, faster: every pull of a source reads it
through one connection, all runs commit in one transaction, and the alert rules are evaluated
once the runs are in. What the store holds afterwards — runs, their counts, checks and warnings, versions,
current values, alert states — is what the same pulls made one by one would have left (a test
compares the two); only timings and log times differ.

Seeding is for stores being built (the demo's): a check that fails, or a source that cannot be
read, raises instead of recording a failed run, and the caller throws the store away.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import duckdb

from lookback_gui.core.errors import LookbackError, UsageError
from lookback_gui.core.project import MetricConfig, Project
from lookback_gui.core.project.definitions import definition_version
from lookback_gui.core.pull.checks import revision_check, schema_change_of
from lookback_gui.core.pull.run import settled_end
from lookback_gui.core.pull.staging import (
    StagedResult,
    execute_metric_query,
    metric_query,
    stage_result,
    staging_folder,
)
from lookback_gui.core.sources import connect_source
from lookback_gui.core.store import (
    CommitRequest,
    NewRun,
    RevisionRow,
    RunRecord,
    StagedValues,
    Store,
    uses_as_of,
)
from lookback_gui.core.timing.windows import Window, local_now

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PlannedPull:
    """One past pull to seed: ``metric`` pulled for ``window`` (as of its ``as_of``)."""

    metric: str
    trigger: str
    window: Window


def _fmt(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="seconds")


def seed(
    project: Project, store: Store, plan: Sequence[PlannedPull], *, progress: Progress | None = None
) -> list[RunRecord]:
    """Write the runs of ``plan`` (in its order, which must be the order of their known times
    for each metric) into ``store``; return them. ``progress(done, total)`` is called as the
    pulls are queried and committed (twice as many steps as pulls).

    Raises UsageError for a metric whose SQL does not use ``$as_of`` (its past cannot be
    seen), and LookbackError when a query or check fails.
    """
    configs = {name: project.metric(name) for name in dict.fromkeys(p.metric for p in plan)}
    for config in configs.values():
        if not uses_as_of(config.sql):
            raise UsageError(
                f"metric {config.name}: its SQL does not use $as_of, so its past cannot be seeded"
            )
    total = 2 * len(plan)
    tell = progress or (lambda done, total: None)
    with staging_folder() as staging, contextlib.ExitStack() as held:
        staged = _query_all(project, configs, plan, staging, held, tell, total)
        with store.batch():
            records = _commit_all(project, configs, store, plan, staged, tell, total)
    _evaluate_alerts(project, configs, store, records)
    return records


def _query_all(
    project: Project,
    configs: dict[str, MetricConfig],
    plan: Sequence[PlannedPull],
    staging: str,
    held: contextlib.ExitStack,
    tell: Progress,
    total: int,
) -> list[tuple[StagedResult, float]]:
    """Each planned pull's checked result (as a pull stages it), with its query's seconds."""
    connections: dict[tuple[str, str], duckdb.DuckDBPyConnection] = {}
    previous_rows: dict[str, int | None] = {}
    out: list[tuple[StagedResult, float]] = []
    for index, planned in enumerate(plan):
        config = configs[planned.metric]
        source = project.sources[config.source]
        key = (source.name, config.timezone)
        if key not in connections:
            con = connect_source(source, config.timezone, staging_dir=staging)
            held.callback(con.close)
            connections[key] = con
        con = connections[key]
        started = time.monotonic()
        raw = os.path.join(staging, f"result-{index}.parquet")
        try:
            execute_metric_query(con, metric_query(config, source), planned.window, config, source, into=raw)
        except duckdb.Error as exc:
            raise LookbackError(
                f"metric {config.name}: the query failed for the window "
                f"[{_fmt(planned.window.start)}, {_fmt(planned.window.end)}):"
                f" {' '.join(str(exc).split())}"
            ) from None
        result = stage_result(con, config, planned.window, previous_rows.get(config.name), raw)
        previous_rows[config.name] = result.rows
        out.append((result, time.monotonic() - started))
        tell(index + 1, total)
    return out


def _commit_all(
    project: Project,
    configs: dict[str, MetricConfig],
    store: Store,
    plan: Sequence[PlannedPull],
    staged: list[tuple[StagedResult, float]],
    tell: Progress,
    total: int,
) -> list[RunRecord]:
    """Record and commit each planned pull's run, as a pull does."""
    records: list[RunRecord] = []
    last: dict[str, RunRecord] = {}
    for index, (planned, (result, queried_s)) in enumerate(zip(plan, staged, strict=True)):
        config = configs[planned.metric]
        source = project.sources[config.source]
        window = planned.window
        definition = definition_version(config)
        started = time.monotonic()
        run_id = store.begin_run(
            NewRun(
                metric=config.name,
                trigger=planned.trigger,
                timezone=config.timezone,
                grain=config.grain.value,
                as_of=window.as_of,
                window_start=window.start,
                window_end=window.end,
                partial_start=window.partial_start,
                started_at=local_now(config.zone),
                sql=config.sql,
                params={"window_start": window.start, "window_end": window.end, "as_of": window.as_of},
                log=(
                    f"{planned.trigger} pull of {config.name} from {source.name} ({source.type}) "
                    f"for window [{_fmt(window.start)}, {_fmt(window.end)}) as of "
                    f"{_fmt(window.as_of)}"
                ),
                known_at=window.as_of,
                definition=definition,
            )
        )
        before = last.get(config.name)
        schema_change = schema_change_of(list(before.measures) if before else [], result.shape.measures)
        warnings = list(result.warnings)
        if schema_change:
            raise LookbackError(f"metric {config.name}: its measures changed while it was seeded")
        checks = list(result.checks)
        with store.begin_commit(run_id) as commit:
            summary = commit.diff(
                StagedValues(
                    metric=config.name,
                    sql=result.values_sql,
                    measures=result.shape.measures,
                    window_start=window.start,
                    window_end=window.end,
                    known_at=window.as_of,
                    count=result.values,
                    exact=bool(result.shape.exact),
                    definition=definition,
                )
            )
            revision_check(config, checks, warnings, summary)
            record = commit.commit(
                CommitRequest(
                    settled_end=settled_end(window, window.as_of, config),
                    finished_at=local_now(config.zone),
                    duration_s=queried_s + time.monotonic() - started,
                    attempts=1,
                    rows=result.rows,
                    warnings=warnings,
                    checks=checks,
                    schema_change=schema_change,
                    log_warnings=result.warnings,
                )
            )
        records.append(record)
        last[config.name] = record
        tell(len(plan) + index + 1, total)
    return records


def _evaluate_alerts(
    project: Project, configs: dict[str, MetricConfig], store: Store, records: list[RunRecord]
) -> None:
    """The alert rules after the seeded runs, as a replay brings them up to date (no command
    runs: the past is no news). A restatement rule judges one run's revisions alone, so it is
    judged after each run in turn, from one read of the revisions; the other rules judge the
    store as it stands, so they are judged after each metric's last run."""
    from lookback_gui.core.insight.alerts import evaluate_alerts

    last = {record.metric: record.id for record in records}
    reader = cast(Store, _RevisionsReadOnce(store))
    for record in records:
        config = configs[record.metric]
        if config.alerts:
            evaluate_alerts(
                config,
                reader,
                local_now(config.zone),
                run=record,
                project_dir=project.directory,
                commands=False,
                kinds=None if last[record.metric] == record.id else ("restatement",),
            )


class _RevisionsReadOnce:
    """The store, whose revisions of one run come from one read of all of the metric's."""

    def __init__(self, store: Store):
        self._store = store
        self._by_run: dict[tuple[str, int], list[RevisionRow]] = {}
        self._read: set[str] = set()

    def revisions(self, metric: str, newest: int | None = None, run: int | None = None) -> list[RevisionRow]:
        if newest is not None or run is None:
            return self._store.revisions(metric, newest, run)
        if metric not in self._read:
            self._read.add(metric)
            for row in self._store.revisions(metric):
                self._by_run.setdefault((metric, row.run), []).append(row)
        return self._by_run.get((metric, run), [])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
