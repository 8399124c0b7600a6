"""The program: the parser made from every command group's ``register``, and ``main``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TextIO

from lookback_gui.cli import insight, project, pulls, reads, schedule, store
from lookback_gui.cli.common import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Parser, Stop, UsageExit
from lookback_gui.core.errors import (
    LookbackError,
    ProjectError,
    UsageError,
)
from lookback_gui.core.project import DEFAULT_PROJECT


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument(
        "--project",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help=f"the project file (default: {DEFAULT_PROJECT} in this folder)",
    )
    common.add_argument(
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks of unexpected errors",
    )
    parser = Parser(
        prog="lookback",
        parents=[common],
        description="Re-pull metrics over their lookback window and keep every "
        "version (the headless side of Lookback GUI).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    def add(name: str, func: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    for group in (pulls, reads, insight, project, schedule, store):
        group.register(add, common)
    return parser


_TIME_FLAGS = ("--as-of", "--from", "--to", "--as-known-at")


def _join_relative_times(argv: Sequence[str]) -> list[str]:
    """Let ``--as-of -2d`` mean ``--as-of=-2d`` (argparse would read -2d as an option)."""
    out: list[str] = []
    items = list(argv)
    index = 0
    while index < len(items):
        item = items[index]
        following = items[index + 1] if index + 1 < len(items) else ""
        if item in _TIME_FLAGS and following[:1] == "-" and following[1:2].isdigit():
            out.append(f"{item}={following}")
            index += 2
            continue
        out.append(item)
        index += 1
    return out


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command; return its exit status. Ctrl+C at any moment (while the command's
    modules load, too) is one ``error:`` line and status 130."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        return _main(argv, out, err)
    except KeyboardInterrupt:
        err.write("error: interrupted by Ctrl+C\n")
        return EXIT_CANCELLED


def _main(argv: Sequence[str] | None, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.runtime import prepare_process

    prepare_process()
    parser = build_parser()
    try:
        args = parser.parse_args(_join_relative_times(sys.argv[1:] if argv is None else argv))
    except UsageExit as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    args.project = getattr(args, "project", None)
    args.stop = Stop()
    verbose = getattr(args, "verbose", False)
    _say_log_records(verbose)
    # the databases the pulls see their sources through: made and closed here, for this run
    # (imported once the arguments are read: --help and a usage error load no DuckDB)
    from lookback_gui.core.sources import SourceConnections

    args.connections = SourceConnections()
    try:
        return int(args.func(args, out, err))
    except (ProjectError, UsageError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    except LookbackError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        err.write("error: interrupted by Ctrl+C\n")
        return EXIT_CANCELLED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        from lookback_gui.core.applog import log_file, log_unexpected
        from lookback_gui.core.failures import classify

        if classify(exc) == "cancelled":  # Ctrl+C inside a query: DuckDB stops it and says so
            err.write("error: interrupted by Ctrl+C\n")
            return EXIT_CANCELLED
        if verbose:
            traceback.print_exc(file=err)
        if log_file() is not None:  # a process that keeps the log file (lookback schedule)
            err.write(f"error: {log_unexpected(args.command, exc)}\n")
            return EXIT_FAILED
        err.write(
            f"error: unexpected {type(exc).__name__}: {exc} (this is a bug; run with "
            "--verbose for the traceback)\n"
        )
        return EXIT_FAILED
    finally:
        args.connections.close()


class _Prefixed(logging.Handler):
    """Log records that reach no handler of their own, as ``warning:`` / ``error:`` lines;
    with ``verbose``, an error's traceback follows its line."""

    verbose = False

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else "warning"
        with contextlib.suppress(Exception):
            sys.stderr.write(f"{level}: {record.getMessage()}\n")
            if self.verbose and record.exc_info:
                sys.stderr.write("".join(traceback.format_exception(*record.exc_info)))


def _say_log_records(verbose: bool) -> None:
    """Every line a command prints on stderr starts ``error:`` or ``warning:``, log records
    of the core included (Python would print their bare message)."""
    if not isinstance(logging.lastResort, _Prefixed):
        logging.lastResort = _Prefixed(logging.WARNING)
    logging.lastResort.verbose = verbose


def entry_point() -> None:
    from lookback_gui.start import start

    start()
