"""What every command uses: the exit statuses, the project and store a command opens, the
flags of time, and Ctrl+C."""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, NoReturn, TextIO, TypeVar

from lookback_gui.cli.output import cell, run_summary
from lookback_gui.core.errors import (
    StoreBusyError,
    StoreError,
    UsageError,
)
from lookback_gui.core.project import DEFAULT_PROJECT, Project, load_project
from lookback_gui.core.timing.windows import parse_timestamp

if TYPE_CHECKING:  # the store (DuckDB, numpy) is imported by the commands that open it
    from lookback_gui.core.pull import PullControl
    from lookback_gui.core.store import RunRecord, Store
    from lookback_gui.core.store.events import Event, Observer

# a command group's ``register`` gets this: add(name, command, help) -> its parser
AddCommand = Callable[[str, Callable[..., int], str], argparse.ArgumentParser]


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class Stop:
    """Which signal stopped a command's pulls (None: none did): Ctrl+C (SIGINT) exits 130,
    SIGTERM 143; either way the pull it stopped is recorded ``cancelled``."""

    def __init__(self) -> None:
        self.by: str | None = None

    @property
    def said(self) -> str:
        return self.by or "Ctrl+C"

    @property
    def code(self) -> int:
        return EXIT_TERMINATED if self.by == "SIGTERM" else EXIT_CANCELLED


class UsageExit(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageExit(f"{message} (see '{self.prog} --help')")


def project_of(args: argparse.Namespace) -> Project:
    if args.project is not None and not args.project.strip():
        raise UsageError(
            f"--project is empty; give a project file (or leave it out for {DEFAULT_PROJECT} in this folder)"
        )
    return load_project(args.project or DEFAULT_PROJECT)


def timestamp_flag(text: str, project: Project, metric: str, flag: str) -> datetime:
    try:
        return parse_timestamp(text, project.metrics[metric].zone)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def store_wait(err: TextIO) -> tuple[Callable[[str], None], float]:
    """How a command waits for a store another process uses: it says so on ``err`` and gives
    up after LOOKBACK_STORE_WAIT seconds (default 60)."""
    from lookback_gui.core.store.lock import WAIT_S

    def waiting(message: str) -> None:
        err.write(message + "\n")
        err.flush()

    try:
        return waiting, float(os.environ.get("LOOKBACK_STORE_WAIT", WAIT_S))
    except ValueError:
        raise UsageError("LOOKBACK_STORE_WAIT must be a number of seconds") from None


def open_store(project: Project, err: TextIO, reading: bool = False) -> Store:
    """The project's store. While another process is using it the command waits, says so
    after a moment, and gives up after LOOKBACK_STORE_WAIT seconds (default 60).

    A command that only reads (``reading``) opens a local store for writing where it can (so
    that runs of dead processes are marked interrupted), else read-only (a read-only file or
    folder, a full disk). A team store is always opened for writing: readers never wait there.
    """
    from lookback_gui.core.store import open_store

    waiting, wait_s = store_wait(err)
    if project.store.team:
        return open_store(project.store, waiting=waiting, wait_s=wait_s)
    path = project.store_path
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    if not reading or not path.exists() or writable:
        try:
            return open_store(project.store, waiting=waiting, wait_s=wait_s)
        except StoreBusyError:
            raise
        except StoreError:
            if not reading or not path.exists():
                raise
    return open_store(project.store, read_only=True, waiting=waiting, wait_s=wait_s)


def as_of_flag(text: str | None, project: Project, metric: str) -> datetime | None:
    """``--as-of``, which is never in the future (None: now)."""
    from lookback_gui.core.timing.windows import local_now

    if text is None:
        return None
    moment = timestamp_flag(text, project, metric, "--as-of")
    now = local_now(project.metrics[metric].zone)
    if moment > now:
        raise UsageError(
            f"--as-of: {text!r} ({cell(moment)}) is in the future (now is "
            f"{cell(now)}); a pull is never as of a time that has not come yet"
        )
    return moment


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def print_warnings(run: RunRecord, err: TextIO) -> None:
    for warning in run.warnings:
        err.write(f"warning: {run.metric}: {warning}\n")


T = TypeVar("T")


def until_ctrl_c(work: Callable[[PullControl], T], stop: Stop | None = None) -> T:
    """Run ``work`` on a thread of its own; Ctrl+C (SIGINT) or SIGTERM cancels it through its
    control, and ``stop`` notes which.

    The main thread only waits, so the signal never lands inside DuckDB or a store write: the
    pull sees a cancellation, records its run ``cancelled`` and returns within a second or two.
    A second Ctrl+C or SIGTERM stops the process at once.
    """
    import signal

    from lookback_gui.core.pull import PullControl

    control = PullControl()
    done: list[T] = []
    failed: list[BaseException] = []

    def target() -> None:
        try:
            done.append(work(control))
        except BaseException as exc:
            failed.append(exc)

    def on_signal(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if stop is not None:
            stop.by = "SIGTERM" if signum == signal.SIGTERM else "Ctrl+C"
        control.cancel()

    in_main = threading.current_thread() is threading.main_thread()
    previous = (
        {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    )
    try:
        thread = threading.Thread(target=target, name="pull", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(0.1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed:
        raise failed[0]
    return done[0]


def alert_warnings(err: TextIO) -> Observer:
    """An observer that prints a failed alert command, and a warning or error a pull wants
    said (its alert rules could not be evaluated), as a ``warning:`` / ``error:`` line."""
    from lookback_gui.core.store.events import AlertCommandFailed, Notice

    def observe(event: Event) -> None:
        if isinstance(event, AlertCommandFailed):
            err.write(f"warning: {event.metric}: {event.message}\n")
        elif isinstance(event, Notice) and event.level in ("warning", "error"):
            err.write(f"{event.level}: {event.message}\n")

    return observe


def time_range(args: argparse.Namespace, project: Project, metric: str) -> tuple[datetime, datetime]:
    """``--from`` and ``--to`` of a backfill or replay."""
    start = timestamp_flag(args.from_, project, metric, "--from")
    end = timestamp_flag(args.to, project, metric, "--to")
    if end <= start:
        raise UsageError(f"--to ({cell(end)}) must be after --from ({cell(start)})")
    return start, end


def progress_printer(out: TextIO, err: TextIO) -> Callable[[int, int, RunRecord], None]:
    """One line per finished pull of a backfill or replay: "[3/12] run 7 ..."."""

    def progress(index: int, count: int, run: RunRecord) -> None:
        out.write(f"[{index}/{count}] {run_summary(run)}\n")
        out.flush()
        print_warnings(run, err)

    return progress
