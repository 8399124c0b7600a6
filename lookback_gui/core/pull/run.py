"""One pull: a metric's query for one window, its checks, and what changed committed as one
run, tried again after transient failures (:func:`run_pull`, :class:`PullContext`)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict, Unpack

import duckdb

from lookback_gui.core.errors import (
    CancelledError,
    LookbackError,
    PullError,
    QualityError,
    TransientStoreError,
    UsageError,
)
from lookback_gui.core.failures import RetryPolicy
from lookback_gui.core.project import MetricConfig, Project, SourceConfig
from lookback_gui.core.project.definitions import definition_version
from lookback_gui.core.pull.checks import (
    describe_schema_change,
    moment_text,
    revision_check,
    schema_change_of,
)
from lookback_gui.core.pull.control import Clock, PullControl
from lookback_gui.core.pull.probe import duckdb_failure, first_changed_bucket, run_probe
from lookback_gui.core.pull.staging import (
    ResultShape,
    StagedResult,
    execute_metric_query,
    metric_query,
    stage_result,
    staging_folder,
)
from lookback_gui.core.sources import (
    CheckedQuery,
    SourceConnections,
    connect_source,
    release_source,
)
from lookback_gui.core.store import (
    CommitRequest,
    NewRun,
    RunRecord,
    StagedValues,
    Store,
    uses_as_of,
)
from lookback_gui.core.store.events import (
    AttemptFailed,
    DefinitionChanged,
    Notice,
    Observer,
    RunFinished,
    RunStarted,
    ignore,
)
from lookback_gui.core.timing.windows import (
    Window,
    bucket_start,
    compute_window,
    local_now,
)


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
    return RetryPolicy(config.retries, config.retry_base.total_seconds(), config.retry_max.total_seconds())


class PullOptions(TypedDict, total=False):
    """How a pull runs: the keywords that :func:`run_pull` takes and that backfills and replays
    (:func:`~lookback_gui.core.pull.backfill.run_windows`) pass on to each of their pulls.

    Attributes:
        control: cancels the pull and shows its progress (default: one of its own).
        observer: told what happens (default: nobody).
        clock: now, in the metric's time zone (default: the real one).
        environ: where passwords are looked up (default: the process's environment).
        sleep: waits between attempts (default: the control's, until cancelled).
        connections: where the source database comes from (default: made for the pull).
    """

    control: PullControl | None
    observer: Observer
    clock: Clock | None
    environ: Mapping[str, str] | None
    sleep: Callable[[float], None] | None
    connections: SourceConnections | None


def run_pull(
    project: Project,
    metric: MetricConfig | str,
    store: Store,
    *,
    trigger: str = "manual",
    as_of: datetime | None = None,
    window: Window | None = None,
    **options: Unpack[PullOptions],
) -> RunRecord:
    """Pull ``metric`` for one window and return the finished run (whatever its status).

    The window is ``window`` if given, else the lookback window as of ``as_of`` (default: now in
    the metric's time zone); a pull is never as of the future (UsageError). Its versions are
    known at its as-of when the SQL replays the source with ``$as_of``, else at the moment its
    query ran. Failures are recorded in the run, not raised; a LookbackError is raised only
    when no run could be recorded at all. ``options``: see :class:`PullOptions`.
    """
    config = project.metric(metric) if isinstance(metric, str) else metric
    source = project.sources[config.source]
    control = options.get("control") or PullControl()
    now = options.get("clock") or functools.partial(local_now, config.zone)
    wait = options.get("sleep") or control.sleep
    observer = options.get("observer", ignore)
    window = _window_to_pull(config, window, as_of, now)
    # a table read as of the pull (snapshot_as_of) replays its source as $as_of SQL does
    replays = uses_as_of(config.sql) or source.snapshot_as_of
    definition = definition_version(config)
    started = time.monotonic()
    start = _new_run(config, source, trigger, window, now(), replays, definition)
    run_id = _begin_with_retries(store, start, config, wait, control)
    control.run_id = run_id
    observer(RunStarted(run_id, config.name, trigger, window.start, window.end))
    # what the pull holds until it ends: its private folder and its source connection
    with contextlib.ExitStack() as held:
        pull = PullContext(
            project=project,
            metric=config,
            source=source,
            window=window,
            control=control,
            store=store,
            clock=now,
            staging=held.enter_context(staging_folder()),
            run_id=run_id,
            connections=options.get("connections"),
            environ=options.get("environ"),
            observer=observer,
            definition=definition,
        )
        result = _pull(pull, held, wait, replays, started)
    observer(RunFinished(result))
    if pull.redefinition is not None and result.status == "succeeded":
        observer(pull.redefinition)
    _evaluate_alerts(project, config, store, now(), result, observer)
    return result


def _window_to_pull(
    config: MetricConfig, window: Window | None, as_of: datetime | None, now: Clock
) -> Window:
    """``window``, else the lookback window as of ``as_of`` (default: now); never as of the
    future."""
    if window is None:
        window = compute_window(as_of or now(), config.grain, config.buckets, config.complete_buckets_only)
    if window.as_of > now():
        raise UsageError(
            f"metric {config.name}: a pull as of {moment_text(window.as_of)} would be as "
            f"of the future (it is {moment_text(now().replace(microsecond=0))} in "
            f"{config.timezone})"
        )
    return window


def _new_run(
    config: MetricConfig,
    source: SourceConfig,
    trigger: str,
    window: Window,
    started_at: datetime,
    replays: bool,
    definition: str | None,
) -> NewRun:
    """The start of the run that records a pull of ``window``, with its first log line."""
    return NewRun(
        metric=config.name,
        trigger=trigger,
        timezone=config.timezone,
        grain=config.grain.value,
        as_of=window.as_of,
        window_start=window.start,
        window_end=window.end,
        partial_start=window.partial_start,
        started_at=started_at,
        sql=config.sql,
        params={"window_start": window.start, "window_end": window.end, "as_of": window.as_of},
        log=(
            f"{trigger} pull of {config.name} from {source.name} ({source.type}) for window "
            f"[{moment_text(window.start)}, {moment_text(window.end)}) as of {moment_text(window.as_of)}"
        ),
        known_at=window.as_of if replays else None,
        definition=definition,
    )


def _pull(
    pull: PullContext,
    held: contextlib.ExitStack,
    wait: Callable[[float], None],
    replays: bool,
    started: float,
) -> RunRecord:
    """Query, check and commit, and return the finished run. A cancel or a failure ends the
    run, recorded, not raised; anything else is a bug: it ends the run too, then is raised."""
    store, run_id = pull.store, pull.run_id
    try:
        pull.query  # noqa: B018 -- a refused SQL fails the run before any attempt
        pull.last = store.last_successful_run(pull.metric.name)
        staged, known_at = _stage_with_retries(pull, held, wait, replays)
        return _commit_with_retries(pull, staged, known_at, started, wait)
    except CancelledError:
        store.log(run_id, "warning", "cancelled; nothing was committed")
        _end(pull, "cancelled", "cancelled", started, attempts=pull.attempts)
    except LookbackError as exc:
        message = str(exc)
        if isinstance(exc, QualityError):
            store.log(run_id, "error", f"{message}; nothing was committed")
        elif pull.attempts == 0 or not isinstance(exc, PullError):
            store.log(run_id, "error", message)
        _end(pull, "failed", message, started)
    except Exception as exc:  # a bug: the run must not stay "running"; then report it
        _end(pull, "failed", f"internal error: {type(exc).__name__}: {exc}", started)
        raise
    return store.run(run_id)


def _end(pull: PullContext, status: str, error: str, started: float, attempts: int | None = None) -> None:
    """End the pull's run without values: ``status`` (failed or cancelled) and its ``error``;
    a failure counts one attempt at least."""
    pull.store.finish_run(
        pull.run_id,
        status=status,
        finished_at=pull.clock(),
        attempts=max(pull.attempts, 1) if attempts is None else attempts,
        error=error,
        duration_s=time.monotonic() - started,
    )


def _begin_with_retries(
    store: Store, start: NewRun, config: MetricConfig, wait: Callable[[float], None], control: PullControl
) -> int:
    """Record the run's start and return its id. A store that failed in a way that trying
    again may fix (the team store's catalog went away while the run was being recorded; nothing
    of it was kept) is tried again under the metric's retry policy, as a failed query is;
    when the policy gives up, the failure is raised (no run could be recorded). A start whose
    commit landed although its answer was lost is not recorded twice: the run it made is used."""
    policy = retry_policy(config)
    attempts = 0
    while True:
        attempts += 1
        try:
            begun = store.begun_run(start) if attempts > 1 else None
            return begun if begun is not None else store.begin_run(start)
        except TransientStoreError as exc:
            delay = policy.delay(exc, attempts)
            if delay is None:
                raise
        control.check()
        wait(delay)


def _stage_with_retries(
    pull: PullContext, held: contextlib.ExitStack, wait: Callable[[float], None], replays: bool
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
            failure = duckdb_failure(config, exc)
        control.check()  # a cancel that broke the attempt is no failure of the source
        delay = policy.delay(failure, attempts)
        if delay is None:
            store.log(pull.run_id, "error", f"attempt {attempts} failed: {failure}")
            pull.observer(AttemptFailed(pull.run_id, config.name, attempts, str(failure), None))
            raise failure
        store.log(
            pull.run_id,
            "warning",
            f"attempt {attempts} failed: {failure}; retrying in {delay:.2f} s "
            f"(attempt {attempts + 1} of {config.retries + 1})",
        )
        pull.observer(AttemptFailed(pull.run_id, config.name, attempts, str(failure), delay))
        store.set_attempts(pull.run_id, attempts)
        wait(delay)


def _commit_with_retries(
    pull: PullContext, staged: StagedResult, known_at: datetime, started: float, wait: Callable[[float], None]
) -> RunRecord:
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
            store.log(
                pull.run_id,
                "warning",
                f"attempt {attempts} failed: {failure}; committing again in "
                f"{delay:.2f} s (attempt {attempts + 1} of {config.retries + 1})",
            )
            store.set_attempts(pull.run_id, pull.attempts)
        wait(delay)


def _commit(pull: PullContext, staged: StagedResult, known_at: datetime, started: float) -> RunRecord:
    """Diff the staged result, run the checks on the diff, and commit it as the pull's run
    (nothing is written when a check fails or the pull is cancelled meanwhile)."""
    config, window, store = pull.metric, pull.window, pull.store
    schema_change = schema_change_of(pull.known_measures, staged.shape.measures)
    warnings = list(staged.warnings)
    if schema_change:
        text = describe_schema_change(schema_change)
        warnings.append(text)
        store.log(pull.run_id, "warning", text)
    checks = list(staged.checks)
    last = pull.last
    changed = last is not None and last.definition is not None and last.definition != pull.definition
    older = store.pull_extent(config.name)[0] if changed else None
    pull.control.check()
    with store.begin_commit(pull.run_id) as commit:
        summary = commit.diff(
            StagedValues(
                metric=config.name,
                sql=staged.values_sql,
                measures=staged.shape.measures,
                window_start=staged.diff_start or window.start,
                window_end=window.end,
                known_at=known_at,
                unchanged_before=(window.start, staged.diff_start) if staged.diff_start else None,
                count=staged.values,
                exact=bool(staged.shape.exact),
                definition=pull.definition,
            )
        )
        said: tuple[str, ...] = ()
        if changed:
            assert last is not None and last.definition is not None
            said = (_redefined(pull, summary.redefined, last.definition, older),)
            warnings += said
        revision_check(config, checks, warnings, summary)
        pull.control.check()
        record = commit.commit(
            CommitRequest(
                settled_end=settled_end(window, known_at, config),
                finished_at=pull.clock(),
                duration_s=time.monotonic() - started,
                attempts=pull.attempts,
                rows=staged.rows,
                warnings=warnings,
                checks=checks,
                schema_change=schema_change,
                log_warnings=(*staged.warnings, *said),
                probes=staged.probes,
            )
        )
    return record


def _redefined(pull: PullContext, redefined: int, old: str, first: datetime | None) -> str:
    """The run is the first under a new definition: the warning that says so, and how to load
    the older values under it (``first``: the metric's first bucket with data)."""
    config, window = pull.metric, pull.window
    assert pull.definition is not None
    start = first if first is not None and first < window.start else None
    text = (
        f"definition changed ({old} → {pull.definition}): {redefined} value(s) changed with "
        "it (redefinitions, not late data)"
    )
    if start is not None:
        text += (
            f"; the values before {moment_text(window.start)} still come from the old definition:"
            f" 'lookback backfill {config.name} --from {start.isoformat()} --to "
            f"{window.start.isoformat()}' loads them under the new one"
        )
    pull.redefinition = DefinitionChanged(
        config.name, pull.run_id, old, pull.definition, redefined, start, window.start
    )
    return text


def _evaluate_alerts(
    project: Project, config: MetricConfig, store: Store, now: datetime, run: RunRecord, observer: Observer
) -> None:
    if not config.alerts:
        return
    from lookback_gui.core.insight.alerts import evaluate_alerts  # numpy and the nowcast: only here

    try:  # a replay brings the states up to date, but the past is no news: no command runs
        evaluate_alerts(
            config,
            store,
            now,
            run=run,
            project_dir=project.directory,
            observer=observer,
            commands=run.trigger != "replay",
        )
    except LookbackError as exc:  # an alert must never undo or hide the run itself
        logging.getLogger(__name__).debug("alerts of %s: %s", config.name, exc)
        observer(
            Notice(
                "warning",
                f"{config.name}: its alert rules were not evaluated after run {run.id}: {exc}",
                config.name,
            )
        )


def _attempt(pull: PullContext, held: contextlib.ExitStack) -> StagedResult:
    """One attempt at the query. A failed attempt releases its source connection at once; a
    successful one with ``held``, after the commit, so that closing it stays off the pull's
    path."""
    con = connect_source(
        pull.source,
        pull.metric.timezone,
        environ=pull.environ,
        staging_dir=pull.staging,
        connections=pull.connections,
        as_of=pull.window.as_of,
    )
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
                shape=ResultShape("bucket", "TIMESTAMP", (), tuple(known)),
                rows=0,
                values_sql=None,
                checks=(),
                probes=probes,
                diff_start=window.end,
                warnings=("change_probe: no bucket changed since the last pull; the query was not run",),
            )
        if changed is not None and changed > window.start:
            heavy = Window(
                start=changed, end=window.end, as_of=window.as_of, partial_start=window.partial_start
            )
            previous_rows = None  # a narrower window is no basis for a row-count change
    control.check()
    raw = os.path.join(pull.staging, "result.parquet")
    wide = execute_metric_query(con, pull.query, heavy, config, pull.source, into=raw)
    control.check()
    staged = stage_result(con, config, heavy, previous_rows, raw, wide)
    if heavy is not window:
        note = (
            f"change_probe: buckets before {moment_text(heavy.start)} did not change; the query "
            f"ran for [{moment_text(heavy.start)}, {moment_text(heavy.end)})"
        )
        staged = dataclasses.replace(
            staged, warnings=(*staged.warnings, note), diff_start=heavy.start, probes=probes
        )
    elif probes:
        staged = dataclasses.replace(staged, probes=probes)
    return staged


def settled_end(window: Window, known_at: datetime, config: MetricConfig) -> datetime:
    """The end of the part of ``window`` that a pull known at ``known_at`` saw complete: the
    buckets that ended by then."""
    return min(window.end, max(window.start, bucket_start(known_at, config.grain)))
