"""``lookback schedule``: the scheduler headless until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import threading
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

from lookback_gui.cli.common import EXIT_OK, AddCommand, Parser, open_store, positive_int, project_of
from lookback_gui.cli.output import describe_event
from lookback_gui.core.errors import (
    StoreBusyError,
)
from lookback_gui.core.project import Project

if TYPE_CHECKING:  # the store (DuckDB, numpy) is imported by the commands that open it
    import threading

    from lookback_gui.core.schedule.scheduler import Scheduler


def cmd_schedule(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import signal
    import threading

    from lookback_gui.core.schedule.scheduler import Scheduler
    from lookback_gui.core.store.events import Progress

    project = project_of(args)
    _start_log(err)
    try:
        store = open_store(project, err)
    except StoreBusyError as exc:
        raise StoreBusyError(f"cannot start the scheduler: {exc}", exc.pid) from None
    stop = threading.Event()
    lock = threading.Lock()

    def log_line(event: object) -> None:
        if isinstance(event, Progress):
            return
        with lock:
            stamp = datetime.now().isoformat(sep=" ", timespec="seconds")
            for line in describe_event(event).splitlines():
                out.write(f"{stamp} {line}\n")
            out.flush()

    scheduler = Scheduler(project, store, workers=args.workers, connections=args.connections)
    scheduler.events.subscribe(log_line)
    # errors nobody expected: their tracebacks go to this log and to the log file
    tracebacks = _LogLines(out, lock)
    logging.getLogger().addHandler(tracebacks)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not _take_the_lease(project, scheduler, stop, out, err):
            scheduler.shutdown(grace_s=0)
            out.write(
                f"{datetime.now().isoformat(sep=' ', timespec='seconds')} "
                "scheduler stopped while standing by\n"
            )
            return EXIT_OK
        scheduled = [m for m in project.metrics.values() if m.scheduled]
        log_line_text = (
            f"scheduler started for {project.path}: {len(scheduled)} scheduled "
            f"metric(s), {args.workers} worker(s); stop with Ctrl+C or SIGTERM"
        )
        out.write(f"{datetime.now().isoformat(sep=' ', timespec='seconds')} {log_line_text}\n")
        out.flush()
        scheduler.catch_up()
        # a timed wait: the system may hand SIGTERM to any thread of the process, and Python
        # runs its handler only once the main thread wakes up
        while not stop.wait(0.2):
            pass
        with lock:
            out.write(
                f"{datetime.now().isoformat(sep=' ', timespec='seconds')} stopping: "
                "no new pulls; running pulls get 10 s before they are cancelled\n"
            )
            out.flush()
        scheduler.shutdown(grace_s=10.0)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        store.close()
        logging.getLogger().removeHandler(tracebacks)
    out.write(f"{datetime.now().isoformat(sep=' ', timespec='seconds')} scheduler stopped\n")
    return EXIT_OK


class _LogLines(logging.Handler):
    """Error records (with their tracebacks) as lines of ``lookback schedule``'s log."""

    def __init__(self, out: TextIO, lock: threading.Lock):
        super().__init__(logging.ERROR)
        self.out = out
        self.out_lock = lock
        self.setFormatter(logging.Formatter("%(levelname)s %(threadName)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            stamp = datetime.now().isoformat(sep=" ", timespec="seconds")
            with self.out_lock:
                for line in text.splitlines():
                    self.out.write(f"{stamp} {line}\n")
                self.out.flush()
        except Exception:
            self.handleError(record)


def _start_log(err: TextIO) -> None:
    """The log file the desktop app keeps too (a folder that cannot be written: a warning)."""
    from lookback_gui.core.applog import enable_logging, log_dir

    try:
        enable_logging()
    except OSError as exc:
        err.write(f"warning: no log file: cannot write {log_dir()}: {exc.strerror}\n")


def _take_the_lease(
    project: Project, scheduler: Scheduler, stop: threading.Event, out: TextIO, err: TextIO
) -> bool:
    """Start ``scheduler``. On a team store whose scheduler runs elsewhere, stand by and take
    over when that one stops or dies; False when stopped while standing by."""

    standing_by = False
    while True:
        try:
            scheduler.start(catch_up=False)
            return True
        except StoreBusyError as exc:
            if not project.store.team:
                scheduler.shutdown(grace_s=0)
                raise StoreBusyError(f"cannot start the scheduler: {exc}", exc.pid) from None
            if not standing_by:
                standing_by = True
                said = f"standing by: {exc}; this one takes over when it stops"
                out.write(f"{datetime.now().isoformat(sep=' ', timespec='seconds')} {said}\n")
                out.flush()
                err.write(f"warning: {said}\n")
                err.flush()
        if stop.wait(1.0):
            return False


def register(add: AddCommand, common: Parser) -> None:
    """Add schedule to the parser."""
    p = add("schedule", cmd_schedule, "run the scheduler headless until SIGINT/SIGTERM")
    p.add_argument(
        "--workers", type=positive_int, default=2, metavar="N", help="pulls that may run at once (default 2)"
    )
