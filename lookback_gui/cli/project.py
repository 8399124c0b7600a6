"""The commands about the project: ``check``, ``rename`` and ``demo``."""

from __future__ import annotations

import argparse
import contextlib
from typing import TextIO

from lookback_gui.cli.common import EXIT_FAILED, EXIT_OK, AddCommand, Parser, open_store, project_of
from lookback_gui.core.errors import (
    PullError,
    UsageError,
)


def cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.pull import check_metric
    from lookback_gui.core.sources import describe_schema, source_warnings

    project = project_of(args)
    out.write(
        f"project {project.path}: ok ({len(project.sources)} source(s), {len(project.metrics)} metric(s))\n"
    )
    failures = 0
    failed_sources: set[str] = set()
    for source in project.sources.values():
        try:
            schema = describe_schema(source)
        except PullError as exc:
            failures += 1
            failed_sources.add(source.name)
            err.write(f"error: {exc}\n")
            out.write(f"source {source.name} ({source.type}): FAILED\n")
            continue
        tables = len({row["table"] for row in schema})
        out.write(f"source {source.name} ({source.type}): ok, {tables} table(s)\n")
        with contextlib.suppress(PullError):
            for warning in source_warnings(source):
                err.write(f"warning: {warning}\n")
    for metric in project.metrics.values():
        if metric.source in failed_sources:  # its error is said once, by its source's line
            out.write(f"metric {metric.name}: not tried (its source {metric.source} failed)\n")
            continue
        try:
            shape = check_metric(project, metric)
        except PullError as exc:
            failures += 1
            message = str(exc)
            if not message.startswith(f"metric {metric.name}"):
                message = f"metric {metric.name}: {message}"
            err.write(f"error: {message}\n")
            out.write(f"metric {metric.name}: FAILED\n")
            continue
        dims = ", ".join(shape.dimensions) or "none"
        out.write(f"metric {metric.name}: ok (measures: {', '.join(shape.measures)}; dimensions: {dims})\n")
    return EXIT_FAILED if failures else EXIT_OK


def cmd_rename(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``rename METRIC NEW``: the project file and the store in one step."""
    from lookback_gui.core.project.rename import rename_metric

    project = project_of(args)
    with open_store(project, err) as store:
        try:
            done = rename_metric(project, store, args.metric, args.new)
        except OSError as exc:
            raise UsageError(
                f"cannot write {project.path}: {exc.strerror or exc}; nothing was renamed"
            ) from None
    out.write(
        f"renamed {args.metric} to {args.new.strip()} in {project.path} and in "
        f"{store.label}: {done.summary}\n"
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.demo import write_demo

    path = write_demo(args.dir)
    out.write(
        f"demo project written: {path}\n"
        f"try:  cd {path.parent} && lookback pull daily_orders --as-of -2d && "
        "lookback pull daily_orders && lookback revisions daily_orders\n"
    )
    return EXIT_OK


def register(add: AddCommand, common: Parser) -> None:
    """Add check, rename, demo to the parser."""
    add("check", cmd_check, "validate the project file and try every source and metric")
    p = add(
        "rename",
        cmd_rename,
        "rename a metric in the project file and in the store, with its runs, versions and alert states",
    )
    p.add_argument("metric")
    p.add_argument("new", metavar="NEW")
    p = add("demo", cmd_demo, "write a demo project with a sample source that has late events")
    p.add_argument("dir", metavar="DIR")
