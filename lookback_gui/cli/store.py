"""``lookback store``: what the store holds, compaction, and copying it."""

from __future__ import annotations

import argparse
from typing import TextIO

from lookback_gui.cli.common import (
    EXIT_CANCELLED,
    EXIT_OK,
    AddCommand,
    Parser,
    open_store,
    project_of,
    store_wait,
)
from lookback_gui.cli.output import print_table, size_text, write_json
from lookback_gui.core.errors import (
    UsageError,
)
from lookback_gui.core.project import load_project


def cmd_store_stats(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.store.housekeeping import store_stats

    project = project_of(args)
    with open_store(project, err, reading=True) as store:
        stats = store_stats(store)
        label = store.label
    if args.json:
        write_json(stats.to_json(), out)
        return EXIT_OK
    size = (
        f"{size_text(stats.bytes)} of data files"
        if project.store.team
        else f"{size_text(stats.bytes)} ({size_text(stats.free_bytes)} free)"
    )
    out.write(f"{label}: {size}, {stats.runs:,} runs, {stats.versions:,} versions, {stats.values:,} values\n")
    if stats.metrics:
        out.write("\n")
        print_table(
            [
                "metric",
                "runs",
                "failed",
                "versions",
                "values",
                "revised",
                "first bucket",
                "last bucket",
                "size",
            ],
            [
                [
                    m.metric,
                    f"{m.runs:,}",
                    f"{m.failed_runs:,}",
                    f"{m.versions:,}",
                    f"{m.values:,}",
                    f"{m.revised_values:,}",
                    m.first_bucket,
                    m.last_bucket,
                    size_text(m.bytes),
                ]
                for m in stats.metrics
            ],
            out,
            right=["runs", "failed", "versions", "values", "revised", "size"],
        )
    return EXIT_OK


def cmd_store_copy(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.store.copying import copy_store

    project = project_of(args)
    other = load_project(args.to)
    if other.store == project.store:
        raise UsageError(f"{args.to} uses the same store as {project.path}: nothing to copy")

    def progress(message: str) -> None:
        if getattr(args, "verbose", False):
            err.write(message + "\n")

    import duckdb

    from lookback_gui.core.failures import classify

    with open_store(project, err, reading=True) as source, open_store(other, err) as target:
        try:
            done = copy_store(source, target, progress)
        except (KeyboardInterrupt, RuntimeError, duckdb.Error) as exc:
            if classify(exc) != "cancelled":
                raise
            err.write(
                f"error: store copy cancelled by Ctrl+C; nothing was copied: "
                f"{target.label} is left as it was\n"
            )
            return EXIT_CANCELLED
        out.write(
            f"copied {done.runs:,} runs and {done.versions:,} versions from {source.name} to {target.name}\n"
        )
    return EXIT_OK


def cmd_store_compact(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.store.housekeeping import compact_store

    project = project_of(args)
    waiting, wait_s = store_wait(err)
    if project.store.team:
        from lookback_gui.core.store import open_store

        with open_store(project.store, waiting=waiting, wait_s=wait_s) as store:
            files = store.compact()
        out.write(
            f"compacted {project.store.describe()}: {files.before:,} → {files.after:,} "
            "data files; every run and version kept\n"
        )
        return EXIT_OK
    done = compact_store(project.store_path, waiting=waiting, wait_s=wait_s)
    out.write(
        f"compacted {project.store_path}: {size_text(done.before_bytes)} → "
        f"{size_text(done.after_bytes)}; every run and version kept "
        f"({done.rows['runs']:,} runs, {done.rows['versions']:,} versions)\n"
    )
    return EXIT_OK


def register(add: AddCommand, common: Parser) -> None:
    """Add store to the parser."""
    p = add("store", cmd_store_stats, "the store: what it holds, and compaction")
    store_sub = p.add_subparsers(dest="store_command", metavar="ACTION", parser_class=Parser)
    store_sub.required = True
    q = store_sub.add_parser(
        "stats",
        parents=[common],
        help="runs, versions and size, by metric",
        description="runs, versions and size, by metric",
    )
    q.set_defaults(func=cmd_store_stats)
    q.add_argument("--json", action="store_true")
    q = store_sub.add_parser(
        "compact",
        parents=[common],
        help="rewrite the store into a fresh file (every run and version kept)",
        description="rewrite the store into a fresh file that holds every run and version, "
        "without the space of rewritten rows; the store is held exclusively "
        "meanwhile, and a compaction stopped halfway leaves it as it was",
    )
    q.set_defaults(func=cmd_store_compact)
    q = store_sub.add_parser(
        "copy",
        parents=[common],
        help="copy every run and version into the store of another project file",
        description="copy every run, version, log line and alert state of this project's "
        "store into the store of another project file (a local store into a team "
        "store, or back); the other store must hold no run yet",
    )
    q.add_argument(
        "--to", required=True, metavar="OTHER.toml", help="the project file whose store receives the copy"
    )
    q.set_defaults(func=cmd_store_copy)
