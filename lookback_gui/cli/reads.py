"""The commands that read the store: ``runs``, ``show``, ``history`` and ``revisions``."""

from __future__ import annotations

import argparse
from typing import TextIO

from lookback_gui.cli.common import (
    EXIT_OK,
    AddCommand,
    Parser,
    open_store,
    positive_int,
    project_of,
    timestamp_flag,
)
from lookback_gui.cli.output import cell, print_table, run_details, series_label, write_json
from lookback_gui.core.timing.moments import local, local_zone_note, machine_aware


def cmd_runs(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    project = project_of(args)
    if args.metric is not None:
        project.metric(args.metric)
    with open_store(project, err, reading=True) as store:
        limit = None if args.limit is None or args.limit >= 2**62 else args.limit  # more: all
        runs = store.runs(metric=args.metric, limit=limit)
    if args.json:
        write_json([r.to_json() for r in runs], out)
        return EXIT_OK
    if not runs:
        out.write("no runs yet\n")
        return EXIT_OK
    headers = [
        "id",
        "metric",
        "trigger",
        "status",
        "as_of",
        "window",
        "attempts",
        "rows",
        "new",
        "revised",
        "removed",
        "unchanged",
        "error",
    ]
    out.write(f"{local_zone_note()}; windows are buckets in each metric's zone\n")
    rows = [
        [
            r.id,
            r.metric,
            r.trigger,
            r.status,
            local(r.as_of, r.timezone),
            f"[{cell(r.window_start)}, {cell(r.window_end)})",
            r.attempts,
            r.rows,
            r.new,
            r.revised,
            r.removed,
            r.unchanged,
            (r.error or "")[:80],
        ]
        for r in runs
    ]
    print_table(
        headers, rows, out, right=["id", "attempts", "rows", "new", "revised", "removed", "unchanged"]
    )
    return EXIT_OK


def cmd_show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    project = project_of(args)
    with open_store(project, err, reading=True) as store:
        run = store.run(args.run)
        log = store.run_log(args.run)
    data = run_details(run, log)
    if args.json:
        write_json(data, out)
        return EXIT_OK
    zone = run.timezone
    lines = [f"run {run.id} {run.metric} {run.status} ({run.trigger}); {local_zone_note()}"]
    window = f"[{cell(run.window_start)}, {cell(run.window_end)})"
    partial = f", partial from {cell(run.partial_start)}" if run.partial_start else ""
    lines.append(f"  window      {window} (buckets in {zone or 'UTC'}, {run.grain}{partial})")
    lines.append(f"  as of       {cell(local(run.as_of, zone))}")
    if run.known_at:
        lines.append(f"  known at    {cell(local(run.known_at, zone))}")
    if run.definition:
        lines.append(f"  definition  {run.definition}")
    duration = f" ({run.duration_s:.2f} s)" if run.duration_s is not None else ""
    lines.append(
        f"  started     {cell(local(run.started_at, zone))}, finished "
        f"{cell(local(run.finished_at, zone)) or '-'}{duration}"
    )
    lines.append(f"  attempts    {run.attempts}")
    for t in data["tries"]:
        if t["error"] is None:
            lines.append(f"    attempt {t['attempt']} succeeded")
        else:
            then = (
                f"; retried after {t['retry_after_s']:.2f} s"
                if t["retry_after_s"] is not None
                else "; gave up"
            )
            lines.append(f"    attempt {t['attempt']} failed: {t['error']}{then}")
    if run.status == "succeeded":
        lines.append(
            f"  counts      {run.rows} rows: {run.new} new, {run.revised} revised, "
            f"{run.removed} removed, {run.unchanged} unchanged"
        )
    if run.error:
        lines.append(f"  error       {run.error}")
    if run.checks:
        lines.append("  checks")
        lines += [
            f"    ok    {c.get('name')} ({c.get('severity')})"
            if c.get("ok")
            else f"    FAIL  {c.get('name')} ({c.get('severity')}): {c.get('message')}"
            for c in run.checks
        ]
    if run.warnings:
        lines.append("  warnings")
        lines += [f"    {w}" for w in run.warnings]
    lines.append("  log")
    lines += [f"    {cell(local(machine_aware(line.at)))}  {line.level:<7}  {line.message}" for line in log]
    lines.append("  sql")
    lines += [f"    {text}" for text in (run.sql or "").strip().splitlines()]
    if data["parameters"]:
        lines.append("  parameters")
        lines += [
            f"    ${name} = {str(value).replace('T', ' ')}" for name, value in data["parameters"].items()
        ]
    out.write("\n".join(lines) + "\n")
    return EXIT_OK


def cmd_history(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    project = project_of(args)
    config = project.metric(args.metric)
    known_at = (
        timestamp_flag(args.as_known_at, project, config.name, "--as-known-at")
        if args.as_known_at is not None
        else None
    )
    with open_store(project, err, reading=True) as store:
        if args.json or args.csv:  # streamed: DuckDB writes the lines
            from lookback_gui.core.store.export import write_history

            write_history(
                store,
                config.name,
                "json" if args.json else "csv",
                out,
                as_of_run=args.as_of_run,
                as_known_at=known_at,
            )
            return EXIT_OK
        rows = store.history(config.name, as_of_run=args.as_of_run, as_known_at=known_at)
    if not rows:
        out.write(f"no values of {config.name} yet\n")
    else:
        headers = ["bucket", "series", "measure", "value", "first_value", "versions", "flags"]
        table = []
        for r in rows:
            flags = [
                f
                for f, on in (
                    ("revised", r.revised),
                    ("partial", r.partial),
                    ("removed", r.value is None and r.versions > 1),
                )
                if on
            ]
            table.append(
                [
                    r.bucket,
                    series_label(dict(r.dims)),
                    r.measure,
                    r.value,
                    r.first_value,
                    r.versions,
                    " ".join(flags),
                ]
            )
        print_table(headers, table, out, right=["value", "first_value", "versions"])
    return EXIT_OK


def cmd_revisions(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    project = project_of(args)
    config = project.metric(args.metric)
    with open_store(project, err, reading=True) as store:
        if args.json:  # streamed: DuckDB writes the lines
            from lookback_gui.core.store.export import write_revisions

            write_revisions(store, config.name, out, config.timezone)
            return EXIT_OK
        rows = store.revisions(config.name)
    if not rows:
        out.write(f"no revisions of {config.name} yet\n")
        return EXIT_OK
    table = []
    for r in rows:
        change = ""
        if r.delta is not None:
            change = f"{r.delta:+.6g}"
            if r.change_pct is not None:
                change += f" ({r.change_pct:+.1f}%)"
        elif r.new_value is None:
            change = "removed"
        else:
            change = "reappeared"
        table.append(
            [r.run, r.bucket, series_label(dict(r.dims)), r.measure, r.old_value, r.new_value, change, r.kind]
        )
    print_table(
        ["run", "bucket", "series", "measure", "old_value", "new_value", "change", "kind"],
        table,
        out,
        right=["run", "old_value", "new_value"],
    )
    return EXIT_OK


def register(add: AddCommand, common: Parser) -> None:
    """Add runs, show, history, revisions to the parser."""
    p = add("runs", cmd_runs, "the run history, newest first")
    p.add_argument("--metric", metavar="M")
    p.add_argument(
        "--limit", metavar="N", type=positive_int, help="the newest N runs (at least 1; default: all)"
    )
    p.add_argument("--json", action="store_true")
    p = add(
        "show",
        cmd_show,
        "one run in full: window, attempts and their errors, counts, "
        "checks, log, and the SQL with its bound parameters",
    )
    p.add_argument("run", type=int, metavar="RUN")
    p.add_argument("--json", action="store_true")
    p = add("history", cmd_history, "current values, or as known after run N or at a time")
    p.add_argument("metric")
    when = p.add_mutually_exclusive_group()
    when.add_argument(
        "--as-of-run", metavar="N", type=int, help="the values as the store held them right after run N"
    )
    when.add_argument(
        "--as-known-at",
        metavar="TS",
        help="the values as known at TS (each its latest version known by then)",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")
    p = add("revisions", cmd_revisions, "every revision and removal, oldest first")
    p.add_argument("metric")
    p.add_argument("--json", action="store_true")
