"""The commands that pull: ``pull``, ``backfill``, ``replay`` and ``retry-failed``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from lookback_gui.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    AddCommand,
    Parser,
    alert_warnings,
    as_of_flag,
    open_store,
    positive_int,
    print_warnings,
    progress_printer,
    project_of,
    time_range,
    until_ctrl_c,
)
from lookback_gui.cli.output import cell, run_summary
from lookback_gui.core.errors import UsageError

if TYPE_CHECKING:
    from lookback_gui.core.store import RunRecord


def cmd_pull(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.pull import run_pull

    project = project_of(args)
    config = project.metric(args.metric)
    as_of = as_of_flag(args.as_of, project, config.name)
    with open_store(project, err) as store:
        if args.audit:
            from lookback_gui.core.insight.advisor import audit_window
            from lookback_gui.core.timing.windows import local_now

            window = audit_window(config, as_of or local_now(config.zone))
            run = until_ctrl_c(
                lambda control: run_pull(
                    project,
                    config,
                    store,
                    trigger="audit",
                    window=window,
                    control=control,
                    observer=alert_warnings(err),
                    connections=args.connections,
                ),
                args.stop,
            )
        else:
            run = until_ctrl_c(
                lambda control: run_pull(
                    project,
                    config,
                    store,
                    trigger="command-line",
                    as_of=as_of,
                    control=control,
                    observer=alert_warnings(err),
                    connections=args.connections,
                ),
                args.stop,
            )
    out.write(run_summary(run) + "\n")
    print_warnings(run, err)
    if run.status == "cancelled":
        err.write(
            f"error: cancelled by {args.stop.said}: run {run.id} of {run.metric} is "
            "recorded as cancelled; nothing was committed\n"
        )
        return int(args.stop.code)
    if run.status != "succeeded":
        err.write(f"error: {run.error}\n")
        return EXIT_FAILED
    return EXIT_OK


@dataclass(frozen=True)
class _Batch:
    """How a command that makes many pulls (backfill, replay) speaks of them at its end."""

    command: str
    unit: str  # what it counts: "chunk(s)"
    failed_unit: str  # what failed: "backfill chunk(s)"
    stopped: str  # "the chunk(s) it stopped are"
    where: Callable[[RunRecord], str]  # which part of the work a run was


_BACKFILL = _Batch(
    "backfill",
    "chunk(s)",
    "backfill chunk(s)",
    "the chunk(s) it stopped are",
    lambda run: f"[{cell(run.window_start)}, {cell(run.window_end)})",
)
_REPLAY = _Batch(
    "replay", "pull(s)", "replayed pull(s)", "the pull it stopped is", lambda run: f"as of {cell(run.as_of)}"
)


def _said_the_end(
    batch: _Batch,
    metric: str,
    runs: list[RunRecord],
    total: int,
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
) -> int:
    """The failed runs, a cancellation or the success of a backfill or replay, and its exit
    status."""
    failed = [r for r in runs if r.status not in ("succeeded", "cancelled")]
    if failed:
        err.write(f"error: {len(failed)} of {len(runs)} {batch.failed_unit} of {metric} failed:\n")
        for run in failed:
            err.write(f"  run {run.id} {batch.where(run)}: {run.error}\n")
    if any(r.status == "cancelled" for r in runs) or len(runs) < total:
        done = sum(r.status == "succeeded" for r in runs)
        err.write(
            f"error: {batch.command} of {metric} cancelled by {args.stop.said} after "
            f"{done} of {total} {batch.unit}; {batch.stopped} recorded as cancelled\n"
        )
        return int(args.stop.code)
    if failed:
        return EXIT_FAILED
    out.write(f"{batch.command} {metric}: {len(runs)} {batch.unit} succeeded\n")
    return EXIT_OK


def cmd_backfill(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.pull import MAX_BACKFILL_CHUNKS, backfill, backfill_chunk_count

    project = project_of(args)
    config = project.metric(args.metric)
    start, end = time_range(args, project, config.name)
    total = backfill_chunk_count(config, start, end)
    plan = f"{total} chunk(s) of up to {config.buckets} {config.grain.value} bucket(s), one pull each"
    known = (
        "each as of its own end (--as-known-then)" if args.as_known_then else "each with what is known now"
    )
    if total > MAX_BACKFILL_CHUNKS and not args.yes:
        raise UsageError(
            f"backfill of {config.name} from {cell(start)} to {cell(end)} would "
            f"make {plan}; more than {MAX_BACKFILL_CHUNKS} is refused unless "
            "confirmed with --yes (or narrow --from/--to)"
        )
    concurrency = project.sources[config.source].concurrency
    workers = 2 if args.workers is None else args.workers
    if args.workers is not None and workers > concurrency:  # asked for more than it may
        known += (
            f"; {concurrency} at once, not {workers}: source {config.source} has concurrency = {concurrency}"
        )
    out.write(f"backfill {config.name}: {plan}, {known}\n")
    out.flush()
    with open_store(project, err) as store:
        runs = until_ctrl_c(
            lambda control: backfill(
                project,
                config,
                store,
                start,
                end,
                on_chunk=progress_printer(out, err),
                workers=workers,
                control=control,
                observer=alert_warnings(err),
                connections=args.connections,
                as_known_then=args.as_known_then,
            ),
            args.stop,
        )
    return _said_the_end(_BACKFILL, config.name, runs, total, args, out, err)


def cmd_replay(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.pull import MAX_BACKFILL_CHUNKS
    from lookback_gui.core.pull.replay import count_replay_times, replay, replay_windows
    from lookback_gui.core.timing.windows import local_now

    project = project_of(args)
    config = project.metric(args.metric)
    start, end = time_range(args, project, config.name)
    now = local_now(config.zone)
    if start >= now:
        raise UsageError(f"--from ({cell(start)}) is in the future; a replay pulls the past")
    snapshots = project.sources[config.source].snapshot_as_of
    count = count_replay_times(config, start, min(end, now), snapshots)  # counted: at once
    if count > MAX_BACKFILL_CHUNKS and not args.yes:
        raise UsageError(
            f"a replay of {config.name} from {cell(start)} to "
            f"{cell(min(end, now))} would make {count:,} pulls (more than "
            f"{MAX_BACKFILL_CHUNKS}); narrow the range, or add --yes to go ahead"
        )
    windows = replay_windows(config, start, end, now, snapshots=snapshots)
    if not windows:
        raise UsageError(
            f"metric {config.name}: its schedule has no time in [{cell(start)}, {cell(min(end, now))})"
        )
    if len(windows) > MAX_BACKFILL_CHUNKS and not args.yes:
        raise UsageError(
            f"a replay of {config.name} from {cell(start)} to "
            f"{cell(min(end, now))} would make {len(windows)} pulls (more than "
            f"{MAX_BACKFILL_CHUNKS}); narrow the range, or add --yes to go ahead"
        )
    stop = " (up to now)" if end > now else ""
    out.write(
        f"replay {config.name}: {len(windows)} pull(s) on its schedule from "
        f"{cell(windows[0].as_of)} to {cell(windows[-1].as_of)}{stop}\n"
    )
    out.flush()
    with open_store(project, err) as store:
        runs = until_ctrl_c(
            lambda control: replay(
                project,
                config,
                store,
                windows,
                on_run=progress_printer(out, err),
                control=control,
                observer=alert_warnings(err),
                connections=args.connections,
            ),
            args.stop,
        )
    return _said_the_end(_REPLAY, config.name, runs, len(windows), args, out, err)


def cmd_retry_failed(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.schedule.scheduler import retry_failed

    project = project_of(args)
    if args.metric:
        project.metric(args.metric)
    with open_store(project, err) as store:
        runs = until_ctrl_c(
            lambda control: retry_failed(
                project,
                store,
                args.metric,
                observer=alert_warnings(err),
                control=control,
                connections=args.connections,
            ),
            args.stop,
        )
    if not runs:
        out.write("no failed window is left uncovered\n")
        return EXIT_OK
    for run in runs:
        out.write(run_summary(run) + "\n")
        print_warnings(run, err)
    failed = [r for r in runs if r.status not in ("succeeded", "cancelled")]
    for run in failed:
        err.write(f"error: run {run.id} of {run.metric}: {run.error}\n")
    if any(r.status == "cancelled" for r in runs):
        err.write(
            f"error: retry-failed cancelled by {args.stop.said}; the run it stopped is "
            "recorded as cancelled\n"
        )
        return int(args.stop.code)
    return EXIT_FAILED if failed else EXIT_OK


def register(add: AddCommand, common: Parser) -> None:
    """Add pull, backfill, replay, retry-failed to the parser."""
    p = add("pull", cmd_pull, "one pull now; prints a one-line summary")
    p.add_argument("metric")
    p.add_argument("--as-of", metavar="TS", help="pull as of this time (default: now)")
    p.add_argument(
        "--audit",
        action="store_true",
        help="a deep pull over audit_factor times the lookback (trigger audit)",
    )
    p = add("backfill", cmd_backfill, "pull every bucket in [from, to) in window-sized chunks")
    p.add_argument("metric")
    p.add_argument("--from", dest="from_", metavar="TS", required=True)
    p.add_argument("--to", metavar="TS", required=True)
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="chunks pulled at once, at most the source's concurrency (default 2)",
    )
    p.add_argument("--yes", action="store_true", help="confirm a backfill of more than 1000 chunks")
    p.add_argument(
        "--as-known-then",
        action="store_true",
        help="pull each chunk as of its own end, not with what is known now (for "
        "SQL that uses $as_of; replay is usually what you want then)",
    )
    p = add(
        "replay",
        cmd_replay,
        "for SQL that uses $as_of: run the metric's schedule over "
        "the past, each pull as of its scheduled time",
    )
    p.add_argument("metric")
    p.add_argument("--from", dest="from_", metavar="TS", required=True)
    p.add_argument("--to", metavar="TS", required=True)
    p.add_argument(
        "--yes", action="store_true", help="go ahead even when the replay makes more than 1000 pulls"
    )
    p = add("retry-failed", cmd_retry_failed, "re-run exactly the windows of failed runs not covered since")
    p.add_argument("metric", nargs="?")
