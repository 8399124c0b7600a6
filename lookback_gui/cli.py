"""``lookback``: the headless command line over the same core as the desktop app.

Exit status: 0 success; 1 a pull or check failed; 2 a usage or project-file error. Errors are one
line on stderr starting ``error:``; ``--verbose`` adds the traceback of unexpected ones.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar

from lookback_gui.core import jsonout
from lookback_gui.core.errors import (
    LookbackError,
    ProjectError,
    PullError,
    StoreBusyError,
    StoreError,
    UsageError,
)
from lookback_gui.core.moments import iso, local, local_zone_note, machine_aware
from lookback_gui.core.project import DEFAULT_PROJECT, Project, load_project
from lookback_gui.core.windows import parse_timestamp

if TYPE_CHECKING:  # the store (DuckDB, numpy) is imported by the commands that open it
    import threading

    from lookback_gui.core.events import Event, Observer
    from lookback_gui.core.pull import PullControl
    from lookback_gui.core.scheduler import Scheduler
    from lookback_gui.core.store import LogLine, RunRecord, Store

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class _Stop:
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


class _UsageExit(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageExit(f"{message} (see '{self.prog} --help')")


# -- output helpers ----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes" if not value.second else "seconds")
    if isinstance(value, float):
        return f"{value:.6g}" if not value.is_integer() else str(int(value))
    if isinstance(value, bool):
        return "yes" if value else ""
    return str(value)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO,
                right: Sequence[str] = ()) -> None:
    """Print an aligned table; columns named in ``right`` are right-aligned."""
    text = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if h in right else c.ljust(w)
                 for c, w, h in zip(cells, widths, headers, strict=True)]
        return "  ".join(parts).rstrip()

    out.write(line(headers) + "\n")
    for row in text:
        out.write(line(row) + "\n")


def write_json(data: Any, out: TextIO) -> None:
    """Print ``data`` as valid JSON (RFC 8259), exact numbers, NaN and infinities as strings
    (see :mod:`jsonout`)."""
    out.write(jsonout.dumps(data) + "\n")


def _series(dims: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in dims.items()) or "-"


def run_summary(run: RunRecord) -> str:
    window = f"[{_cell(run.window_start)}, {_cell(run.window_end)})"
    head = f"run {run.id} {run.metric} {run.status}: window {window}"
    if run.status == "succeeded":
        return (f"{head}, {run.rows} rows: {run.new} new, {run.revised} revised, "
                f"{run.removed} removed, {run.unchanged} unchanged "
                f"({run.duration_s or 0:.2f} s, {run.attempts} attempt"
                f"{'s' if run.attempts != 1 else ''})")
    return f"{head} after {run.attempts} attempt{'s' if run.attempts != 1 else ''}"


# -- commands ----------------------------------------------------------------------------------


def _project(args: argparse.Namespace) -> Project:
    if args.project is not None and not args.project.strip():
        raise UsageError(f"--project is empty; give a project file (or leave it out for "
                         f"{DEFAULT_PROJECT} in this folder)")
    return load_project(args.project or DEFAULT_PROJECT)


def _timestamp(text: str, project: Project, metric: str, flag: str) -> datetime:
    try:
        return parse_timestamp(text, project.metrics[metric].zone)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _store_wait(err: TextIO) -> tuple[Callable[[str], None], float]:
    """How a command waits for a store another process uses: it says so on ``err`` and gives
    up after LOOKBACK_STORE_WAIT seconds (default 60)."""
    from lookback_gui.core.storelock import WAIT_S

    def waiting(message: str) -> None:
        err.write(message + "\n")
        err.flush()

    try:
        return waiting, float(os.environ.get("LOOKBACK_STORE_WAIT", WAIT_S))
    except ValueError:
        raise UsageError("LOOKBACK_STORE_WAIT must be a number of seconds") from None


def _open_store(project: Project, err: TextIO, reading: bool = False) -> Store:
    """The project's store. While another process is using it the command waits, says so
    after a moment, and gives up after LOOKBACK_STORE_WAIT seconds (default 60).

    A command that only reads (``reading``) opens a local store for writing where it can (so
    that runs of dead processes are marked interrupted), else read-only (a read-only file or
    folder, a full disk). A team store is always opened for writing: readers never wait there.
    """
    from lookback_gui.core.store import open_store

    waiting, wait_s = _store_wait(err)
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


def _as_of(text: str | None, project: Project, metric: str) -> datetime | None:
    """``--as-of``, which is never in the future (None: now)."""
    from lookback_gui.core.windows import local_now

    if text is None:
        return None
    moment = _timestamp(text, project, metric, "--as-of")
    now = local_now(project.metrics[metric].zone)
    if moment > now:
        raise UsageError(f"--as-of: {text!r} ({_cell(moment)}) is in the future (now is "
                         f"{_cell(now)}); a pull is never as of a time that has not come yet")
    return moment


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _print_warnings(run: RunRecord, err: TextIO) -> None:
    for warning in run.warnings:
        err.write(f"warning: {run.metric}: {warning}\n")


T = TypeVar("T")


def _until_ctrl_c(work: Callable[[PullControl], T], stop: _Stop | None = None) -> T:
    """Run ``work`` on a thread of its own; Ctrl+C (SIGINT) or SIGTERM cancels it through its
    control, and ``stop`` notes which.

    The main thread only waits, so the signal never lands inside DuckDB or a store write: the
    pull sees a cancellation, records its run ``cancelled`` and returns within a second or two.
    A second Ctrl+C or SIGTERM stops the process at once.
    """
    import signal
    import threading

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
    previous = ({sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
                if in_main else {})
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


def _alert_warnings(err: TextIO) -> Observer:
    """An observer that prints a failed alert command, and a warning or error a pull wants
    said (its alert rules could not be evaluated), as a ``warning:`` / ``error:`` line."""
    from lookback_gui.core.events import AlertCommandFailed, Notice

    def observe(event: Event) -> None:
        if isinstance(event, AlertCommandFailed):
            err.write(f"warning: {event.metric}: {event.message}\n")
        elif isinstance(event, Notice) and event.level in ("warning", "error"):
            err.write(f"{event.level}: {event.message}\n")

    return observe


def cmd_pull(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.pull import run_pull

    project = _project(args)
    config = project.metric(args.metric)
    as_of = _as_of(args.as_of, project, config.name)
    with _open_store(project, err) as store:
        if args.audit:
            from lookback_gui.core.advisor import audit_window
            from lookback_gui.core.windows import local_now

            window = audit_window(config, as_of or local_now(config.zone))
            run = _until_ctrl_c(lambda control: run_pull(
                project, config, store, trigger="audit", window=window, control=control,
                observer=_alert_warnings(err), connections=args.connections), args.stop)
        else:
            run = _until_ctrl_c(lambda control: run_pull(
                project, config, store, trigger="command-line", as_of=as_of, control=control,
                observer=_alert_warnings(err), connections=args.connections), args.stop)
    out.write(run_summary(run) + "\n")
    _print_warnings(run, err)
    if run.status == "cancelled":
        err.write(f"error: cancelled by {args.stop.said}: run {run.id} of {run.metric} is "
                  "recorded as cancelled; nothing was committed\n")
        return int(args.stop.code)
    if run.status != "succeeded":
        err.write(f"error: {run.error}\n")
        return EXIT_FAILED
    return EXIT_OK


def _range(args: argparse.Namespace, project: Project, metric: str) -> tuple[datetime, datetime]:
    """``--from`` and ``--to`` of a backfill or replay."""
    start = _timestamp(args.from_, project, metric, "--from")
    end = _timestamp(args.to, project, metric, "--to")
    if end <= start:
        raise UsageError(f"--to ({_cell(end)}) must be after --from ({_cell(start)})")
    return start, end


def _progress(out: TextIO, err: TextIO) -> Callable[[int, int, RunRecord], None]:
    """One line per finished pull of a backfill or replay: "[3/12] run 7 ..."."""
    def progress(index: int, count: int, run: RunRecord) -> None:
        out.write(f"[{index}/{count}] {run_summary(run)}\n")
        out.flush()
        _print_warnings(run, err)

    return progress


def cmd_backfill(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.pull import MAX_BACKFILL_CHUNKS, backfill, backfill_chunk_count

    project = _project(args)
    config = project.metric(args.metric)
    start, end = _range(args, project, config.name)
    total = backfill_chunk_count(config, start, end)
    plan = (f"{total} chunk(s) of up to {config.buckets} {config.grain.value} bucket(s), one "
            f"pull each")
    known = ("each as of its own end (--as-known-then)" if args.as_known_then
             else "each with what is known now")
    if total > MAX_BACKFILL_CHUNKS and not args.yes:
        raise UsageError(f"backfill of {config.name} from {_cell(start)} to {_cell(end)} would "
                         f"make {plan}; more than {MAX_BACKFILL_CHUNKS} is refused unless "
                         "confirmed with --yes (or narrow --from/--to)")
    concurrency = project.sources[config.source].concurrency
    workers = 2 if args.workers is None else args.workers
    if args.workers is not None and workers > concurrency:  # asked for more than it may
        known += (f"; {concurrency} at once, not {workers}: source {config.source} has "
                  f"concurrency = {concurrency}")
    out.write(f"backfill {config.name}: {plan}, {known}\n")
    out.flush()
    with _open_store(project, err) as store:
        runs = _until_ctrl_c(lambda control: backfill(
            project, config, store, start, end, on_chunk=_progress(out, err), workers=workers,
            control=control, observer=_alert_warnings(err), connections=args.connections,
            as_known_then=args.as_known_then), args.stop)
    cancelled = [r for r in runs if r.status == "cancelled"]
    failed = [r for r in runs if r.status not in ("succeeded", "cancelled")]
    if failed:
        err.write(f"error: {len(failed)} of {len(runs)} backfill chunk(s) of {config.name} "
                  "failed:\n")
        for run in failed:
            err.write(f"  run {run.id} [{_cell(run.window_start)}, {_cell(run.window_end)}): "
                      f"{run.error}\n")
    if cancelled or len(runs) < total:
        done = sum(r.status == "succeeded" for r in runs)
        err.write(f"error: backfill of {config.name} cancelled by {args.stop.said} after {done} "
                  f"of {total} chunk(s); the chunk(s) it stopped are recorded as cancelled\n")
        return int(args.stop.code)
    if failed:
        return EXIT_FAILED
    out.write(f"backfill {config.name}: {len(runs)} chunk(s) succeeded\n")
    return EXIT_OK


def cmd_replay(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.pull import MAX_BACKFILL_CHUNKS
    from lookback_gui.core.replay import count_replay_times, replay, replay_windows
    from lookback_gui.core.windows import local_now

    project = _project(args)
    config = project.metric(args.metric)
    start, end = _range(args, project, config.name)
    now = local_now(config.zone)
    if start >= now:
        raise UsageError(f"--from ({_cell(start)}) is in the future; a replay pulls the past")
    snapshots = project.sources[config.source].snapshot_as_of
    count = count_replay_times(config, start, min(end, now), snapshots)  # counted: at once
    if count > MAX_BACKFILL_CHUNKS and not args.yes:
        raise UsageError(f"a replay of {config.name} from {_cell(start)} to "
                         f"{_cell(min(end, now))} would make {count:,} pulls (more than "
                         f"{MAX_BACKFILL_CHUNKS}); narrow the range, or add --yes to go ahead")
    windows = replay_windows(config, start, end, now, snapshots=snapshots)
    if not windows:
        raise UsageError(f"metric {config.name}: its schedule has no time in "
                         f"[{_cell(start)}, {_cell(min(end, now))})")
    if len(windows) > MAX_BACKFILL_CHUNKS and not args.yes:
        raise UsageError(f"a replay of {config.name} from {_cell(start)} to "
                         f"{_cell(min(end, now))} would make {len(windows)} pulls (more than "
                         f"{MAX_BACKFILL_CHUNKS}); narrow the range, or add --yes to go ahead")
    stop = " (up to now)" if end > now else ""
    out.write(f"replay {config.name}: {len(windows)} pull(s) on its schedule from "
              f"{_cell(windows[0].as_of)} to {_cell(windows[-1].as_of)}{stop}\n")
    out.flush()
    with _open_store(project, err) as store:
        runs = _until_ctrl_c(lambda control: replay(
            project, config, store, windows, on_run=_progress(out, err), control=control,
            observer=_alert_warnings(err), connections=args.connections), args.stop)
    failed = [r for r in runs if r.status not in ("succeeded", "cancelled")]
    if failed:
        err.write(f"error: {len(failed)} of {len(runs)} replayed pull(s) of {config.name} "
                  "failed:\n")
        for run in failed:
            err.write(f"  run {run.id} as of {_cell(run.as_of)}: {run.error}\n")
    if any(r.status == "cancelled" for r in runs) or len(runs) < len(windows):
        done = sum(r.status == "succeeded" for r in runs)
        err.write(f"error: replay of {config.name} cancelled by {args.stop.said} after {done} "
                  f"of {len(windows)} pull(s); the pull it stopped is recorded as cancelled\n")
        return int(args.stop.code)
    if failed:
        return EXIT_FAILED
    out.write(f"replay {config.name}: {len(runs)} pull(s) succeeded\n")
    return EXIT_OK


def cmd_rename(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``rename METRIC NEW``: the project file and the store in one step."""
    from lookback_gui.core.rename import rename_metric

    project = _project(args)
    with _open_store(project, err) as store:
        try:
            done = rename_metric(project, store, args.metric, args.new)
        except OSError as exc:
            raise UsageError(f"cannot write {project.path}: {exc.strerror or exc}; nothing "
                             "was renamed") from None
    out.write(f"renamed {args.metric} to {args.new.strip()} in {project.path} and in "
              f"{store.label}: {done.summary}\n")
    return EXIT_OK


def cmd_runs(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    project = _project(args)
    if args.metric is not None:
        project.metric(args.metric)
    with _open_store(project, err, reading=True) as store:
        limit = None if args.limit is None or args.limit >= 2**62 else args.limit  # more: all
        runs = store.runs(metric=args.metric, limit=limit)
    if args.json:
        write_json([r.to_json() for r in runs], out)
        return EXIT_OK
    if not runs:
        out.write("no runs yet\n")
        return EXIT_OK
    headers = ["id", "metric", "trigger", "status", "as_of", "window", "attempts", "rows",
               "new", "revised", "removed", "unchanged", "error"]
    out.write(f"{local_zone_note()}; windows are buckets in each metric's zone\n")
    rows = [[r.id, r.metric, r.trigger, r.status, local(r.as_of, r.timezone),
             f"[{_cell(r.window_start)}, {_cell(r.window_end)})", r.attempts, r.rows, r.new,
             r.revised, r.removed, r.unchanged, (r.error or "")[:80]] for r in runs]
    print_table(headers, rows, out,
                right=["id", "attempts", "rows", "new", "revised", "removed", "unchanged"])
    return EXIT_OK


_ATTEMPT = re.compile(r"^attempt (\d+) failed: (.*?)(?:; retrying in ([\d.]+) s "
                      r"\(attempt \d+ of \d+\))?$", re.DOTALL)


def run_details(run: RunRecord, log: Sequence[LogLine]) -> dict[str, Any]:
    """Everything about one run, for ``show``: the keys of ``runs --json``, then its zone and
    grain, partial bucket, duration, each attempt (its error and the delay before the next),
    checks, warnings, schema change, log, and the SQL with its bound parameters."""
    data = run.to_json()
    tries: list[dict[str, Any]] = []
    for line in log:
        match = _ATTEMPT.match(line.message)
        if match:
            tries.append({"attempt": int(match.group(1)), "error": match.group(2),
                          "retry_after_s": float(match.group(3)) if match.group(3) else None})
    if run.status == "succeeded" and run.attempts and all(t["attempt"] != run.attempts
                                                         for t in tries):
        tries.append({"attempt": run.attempts, "error": None, "retry_after_s": None})
    used = sorted(name for name in run.params if re.search(rf"\${name}\b", run.sql or ""))
    data.update({
        "timezone": run.timezone, "grain": run.grain,
        "partial_start": _iso(run.partial_start), "duration_s": run.duration_s,
        "tries": tries, "checks": [dict(c) for c in run.checks], "warnings": list(run.warnings),
        "schema_change": dict(run.schema_change), "measures": list(run.measures),
        "log": [{"at": iso(machine_aware(line.at)), "level": line.level,
                 "message": line.message} for line in log],
        "sql": run.sql, "parameters": {name: run.params[name] for name in used},
    })
    return data


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def cmd_show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    project = _project(args)
    with _open_store(project, err, reading=True) as store:
        run = store.run(args.run)
        log = store.run_log(args.run)
    data = run_details(run, log)
    if args.json:
        write_json(data, out)
        return EXIT_OK
    zone = run.timezone
    lines = [f"run {run.id} {run.metric} {run.status} ({run.trigger}); {local_zone_note()}"]
    window = f"[{_cell(run.window_start)}, {_cell(run.window_end)})"
    partial = f", partial from {_cell(run.partial_start)}" if run.partial_start else ""
    lines.append(f"  window      {window} (buckets in {zone or 'UTC'}, {run.grain}{partial})")
    lines.append(f"  as of       {_cell(local(run.as_of, zone))}")
    if run.known_at:
        lines.append(f"  known at    {_cell(local(run.known_at, zone))}")
    if run.definition:
        lines.append(f"  definition  {run.definition}")
    duration = f" ({run.duration_s:.2f} s)" if run.duration_s is not None else ""
    lines.append(f"  started     {_cell(local(run.started_at, zone))}, finished "
                 f"{_cell(local(run.finished_at, zone)) or '-'}{duration}")
    lines.append(f"  attempts    {run.attempts}")
    for t in data["tries"]:
        if t["error"] is None:
            lines.append(f"    attempt {t['attempt']} succeeded")
        else:
            then = (f"; retried after {t['retry_after_s']:.2f} s" if t["retry_after_s"] is not None
                    else "; gave up")
            lines.append(f"    attempt {t['attempt']} failed: {t['error']}{then}")
    if run.status == "succeeded":
        lines.append(f"  counts      {run.rows} rows: {run.new} new, {run.revised} revised, "
                     f"{run.removed} removed, {run.unchanged} unchanged")
    if run.error:
        lines.append(f"  error       {run.error}")
    if run.checks:
        lines.append("  checks")
        lines += [f"    ok    {c.get('name')} ({c.get('severity')})" if c.get("ok") else
                  f"    FAIL  {c.get('name')} ({c.get('severity')}): {c.get('message')}"
                  for c in run.checks]
    if run.warnings:
        lines.append("  warnings")
        lines += [f"    {w}" for w in run.warnings]
    lines.append("  log")
    lines += [f"    {_cell(local(machine_aware(line.at)))}  {line.level:<7}  {line.message}"
              for line in log]
    lines.append("  sql")
    lines += [f"    {text}" for text in (run.sql or "").strip().splitlines()]
    if data["parameters"]:
        lines.append("  parameters")
        lines += [f"    ${name} = {str(value).replace('T', ' ')}"
                  for name, value in data["parameters"].items()]
    out.write("\n".join(lines) + "\n")
    return EXIT_OK


def cmd_history(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    project = _project(args)
    config = project.metric(args.metric)
    known_at = (_timestamp(args.as_known_at, project, config.name, "--as-known-at")
                if args.as_known_at is not None else None)
    with _open_store(project, err, reading=True) as store:
        if args.json or args.csv:  # streamed: DuckDB writes the lines
            from lookback_gui.core.export import write_history

            write_history(store, config.name, "json" if args.json else "csv", out,
                          as_of_run=args.as_of_run, as_known_at=known_at)
            return EXIT_OK
        rows = store.history(config.name, as_of_run=args.as_of_run, as_known_at=known_at)
    if not rows:
        out.write(f"no values of {config.name} yet\n")
    else:
        headers = ["bucket", "series", "measure", "value", "first_value", "versions", "flags"]
        table = []
        for r in rows:
            flags = [f for f, on in (("revised", r.revised), ("partial", r.partial),
                                     ("removed", r.value is None and r.versions > 1)) if on]
            table.append([r.bucket, _series(dict(r.dims)), r.measure, r.value, r.first_value,
                          r.versions, " ".join(flags)])
        print_table(headers, table, out, right=["value", "first_value", "versions"])
    return EXIT_OK


def cmd_revisions(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    project = _project(args)
    config = project.metric(args.metric)
    with _open_store(project, err, reading=True) as store:
        if args.json:  # streamed: DuckDB writes the lines
            from lookback_gui.core.export import write_revisions

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
        table.append([r.run, r.bucket, _series(dict(r.dims)), r.measure, r.old_value,
                      r.new_value, change, r.kind])
    print_table(["run", "bucket", "series", "measure", "old_value", "new_value", "change",
                 "kind"], table, out, right=["run", "old_value", "new_value"])
    return EXIT_OK


def cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.pull import check_metric
    from lookback_gui.core.sources import describe_schema, source_warnings

    project = _project(args)
    out.write(f"project {project.path}: ok ({len(project.sources)} source(s), "
              f"{len(project.metrics)} metric(s))\n")
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
        out.write(f"metric {metric.name}: ok (measures: {', '.join(shape.measures)}; "
                  f"dimensions: {dims})\n")
    return EXIT_FAILED if failures else EXIT_OK


def cmd_alerts(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if getattr(args, "try_rule", None):
        return cmd_alerts_try(args, out, err)
    project = _project(args)
    with _open_store(project, err, reading=True) as store:
        states = store.alert_states()

    def zone(metric: str) -> str | None:  # alert states are stored in their metric's zone
        config = project.metrics.get(metric)
        return config.timezone if config is not None else None

    if args.json:
        write_json([s.to_json(zone(s.metric)) for s in states], out)
    elif not states:
        out.write("no alert has fired yet\n")
    else:
        out.write(local_zone_note() + "\n")
        print_table(["metric", "rule", "kind", "state", "since", "message"],
                    [[s.metric, s.rule, s.kind, s.state, local(s.since, zone(s.metric)),
                      s.message] for s in states], out)
    return EXIT_OK


def cmd_alerts_try(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``alerts --try METRIC RULE``: how often a rule would have fired over the history."""
    from lookback_gui.core.alerts import find_rule, try_rule

    project = _project(args)
    metric, reference = args.try_rule
    config = project.metric(metric)
    rule = find_rule(config, reference)
    with _open_store(project, err, reading=True) as store:
        trial = try_rule(config, store, rule)
    if args.json:
        write_json(trial, out)
        return EXIT_OK
    out.write(f"{config.name} / {trial['rule']} ({trial['kind']}): would have fired "
              f"{trial['firings']} time(s) over {trial['runs_evaluated']} pull(s); its condition "
              f"held after {trial['runs_firing']} of them\n")
    if trial.get("judges"):
        out.write(f"each judge over the same pulls (this rule judges {trial['judge']}; a false "
                  "alarm fired on a bucket whose settled value did not cross):\n")
        print_table(["judge", "pulls firing", "firings", "buckets", "false alarms",
                     "not settled yet"],
                    [[name, j["runs_firing"], j["firings"], j["buckets_fired"],
                      j["false_alarms"], j["unsettled"]] for name, j in trial["judges"].items()],
                    out, right=["pulls firing", "firings", "buckets", "false alarms",
                                "not settled yet"])
    if trial["episodes"]:
        print_table(["run", "since", "resolved by run", "pulls", "message"],
                    [[e["run"], e["since"], e["resolved_run"] or "(still firing)", e["runs"],
                      e["message"][:100]] for e in trial["episodes"]], out,
                    right=["run", "pulls"])
    return EXIT_OK


def cmd_nowcast(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.nowcast import nowcast

    project = _project(args)
    config = project.metric(args.metric)
    with _open_store(project, err, reading=True) as store:
        result = nowcast(store, config)
    if args.json:
        write_json(result.to_json(), out)
        return EXIT_OK
    out.write(f"{config.name}: {result.message}\n")
    if result.rows:
        def num(value: float | None) -> str:
            return "" if value is None else f"{value:,.6g}"

        print_table(["bucket", "series", "measure", "age", "value", "expected", "low", "high",
                     "basis"],
                    [[r.bucket, _series(r.dims), r.measure, r.age, num(r.value), num(r.expected),
                      num(r.low), num(r.high), r.basis] for r in result.rows], out,
                    right=["age", "value", "expected", "low", "high"])
    return EXIT_OK


def cmd_vintages(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.vintages import cell_text, vintages

    project = _project(args)
    config = project.metric(args.metric)
    wanted: dict[str, str] = {}
    for item in args.series or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--series: expected KEY=VALUE, got {item!r}")
        wanted[key] = value
    with _open_store(project, err, reading=True) as store:
        matrix = vintages(store, config, args.measure, wanted)
    headers = ["bucket", *(d.isoformat() for d in matrix.dates)]
    if args.csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(headers)
        for bucket, cells in matrix.rows:
            writer.writerow([bucket.isoformat(), *(cell_text(c) for c in cells)])
        return EXIT_OK
    print_table(headers, [[b, *(cell_text(c) for c in cells)] for b, cells in matrix.rows], out,
                right=headers[1:])
    return EXIT_OK


def cmd_retry_failed(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.scheduler import retry_failed

    project = _project(args)
    if args.metric:
        project.metric(args.metric)
    with _open_store(project, err) as store:
        runs = _until_ctrl_c(lambda control: retry_failed(
            project, store, args.metric, observer=_alert_warnings(err), control=control,
            connections=args.connections), args.stop)
    if not runs:
        out.write("no failed window is left uncovered\n")
        return EXIT_OK
    for run in runs:
        out.write(run_summary(run) + "\n")
        _print_warnings(run, err)
    failed = [r for r in runs if r.status not in ("succeeded", "cancelled")]
    for run in failed:
        err.write(f"error: run {run.id} of {run.metric}: {run.error}\n")
    if any(r.status == "cancelled" for r in runs):
        err.write(f"error: retry-failed cancelled by {args.stop.said}; the run it stopped is "
                  "recorded as cancelled\n")
        return int(args.stop.code)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_advise(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.advisor import advise

    project = _project(args)
    config = project.metric(args.metric)
    if not 0 < args.share <= 100:
        raise UsageError("--share is a percentage between 0 and 100")
    with _open_store(project, err, reading=True) as store:
        advice = advise(store, config, share=args.share / 100)
    if args.json:
        write_json(advice.to_json(), out)
        return EXIT_OK
    out.write(f"{config.name}: {advice.message}\n")
    if not advice.enough_history:
        return EXIT_OK
    grain = config.grain.value
    measures = sorted({m for p in advice.settling_curve for m in p["share_present"]})
    if advice.settling_curve:
        out.write("\nshare of the final value present, by age:\n")
        rows = [[f"{p['age_buckets']} {grain}(s)", *(
            "" if p["share_present"].get(m) is None else f"{p['share_present'][m]:.1f}%"
            for m in measures)] for p in advice.settling_curve]
        print_table(["age", *measures], rows, out, right=measures)
    if advice.revisions_by_age:
        out.write("\nrevisions by age:\n")
        print_table(["age", "revisions", "magnitude"],
                    [[f"{r['age_buckets']} {grain}(s)", f"{r['revisions_share'] * 100:.1f}%",
                      f"{r['magnitude_share'] * 100:.1f}%"] for r in advice.revisions_by_age],
                    out, right=["revisions", "magnitude"])
    if advice.candidates:
        out.write("\npolicies tried on the stored history:\n")
        print_table(["policy", "magnitude", "revisions", "largest error", "pulls", "rows read"],
                    [[("* " if c["current"] else "  ") + c["policy"],
                      f"{c['magnitude_share'] * 100:.2f}%", f"{c['revisions_share'] * 100:.1f}%",
                      _error_profile(c["max_error_by_age"]), c["pulls"],
                      c["rows_read"] if c["rows_read"] is not None else c["buckets_read"]]
                     for c in advice.candidates], out,
                    right=["magnitude", "revisions", "pulls", "rows read"])
        out.write("(* the current policy; largest error: in % of the settled value at ages "
                  "0, 1, 2, … until it is 0)\n")
    backtest = advice.nowcast_backtest
    if backtest and not backtest["by_age"]:
        out.write(f"\nnowcast tried on the stored history: not yet, {backtest.get('reason')}\n")
    if backtest and backtest["by_age"]:
        coverage = backtest["coverage"]
        widened = (f"; the nowcast scales its intervals × {backtest['widen']:.2f}, which held "
                   f"it {backtest['calibrated_coverage'] * 100:.0f}% of the time"
                   if backtest.get("widen", 1) != 1 else "")
        out.write(f"\nnowcast tried on the stored history (80% interval held the settled value "
                  f"{'' if coverage is None else f'{coverage * 100:.0f}% of the time'}"
                  f"{widened}):\n")
        print_table(["age", "nowcast error", "raw error", "interval held"],
                    [[f"{b['age_buckets']} {grain}(s)", f"{b['nowcast_error_pct']:.2f}%",
                      f"{b['raw_error_pct']:.2f}%",
                      "" if b["coverage"] is None else f"{b['coverage'] * 100:.0f}%"]
                     for b in backtest["by_age"]], out,
                    right=["nowcast error", "raw error", "interval held"])
    if advice.missed_revisions:
        out.write(f"\n{len(advice.missed_revisions)} revision(s) found by audits beyond the "
                  "lookback:\n")
        print_table(["run", "bucket", "series", "measure", "old", "new", "age"],
                    [[m["run"], m["bucket"], _series(m["dims"]), m["measure"], m["old_value"],
                      m["new_value"], m["age_buckets"]] for m in advice.missed_revisions[:50]],
                    out, right=["run", "old", "new", "age"])
    return EXIT_OK


def _error_profile(errors: list[dict[str, Any]]) -> str:
    """The largest errors by age as a short list, up to the first age where it is 0."""
    parts = []
    for entry in errors:
        value = entry["max_error_pct"]
        parts.append("-" if value is None else f"{value:.3g}")
        if value == 0:
            break
    return " ".join(parts[:12]) + (" …" if len(parts) > 12 else "")


def describe_event(event: object) -> str:
    """One log line for a scheduler event."""
    from lookback_gui.core import events as ev

    if isinstance(event, ev.RunStarted):
        return (f"run {event.run_id} {event.metric} started ({event.trigger}) for window "
                f"[{_cell(event.window_start)}, {_cell(event.window_end)})")
    if isinstance(event, ev.AttemptFailed):
        then = (f"; retrying in {event.next_delay_s:.1f} s" if event.next_delay_s is not None
                else "; giving up")
        return f"run {event.run_id} {event.metric} attempt {event.attempt} failed: {event.error}{then}"
    if isinstance(event, ev.RunFinished):
        text = run_summary(event.run) + (f": {event.run.error}" if event.run.error else "")
        return "\n".join([text, *(f"warning: {event.run.metric}: {w}" for w in event.run.warnings)])
    if isinstance(event, ev.AlertChanged):
        return f"alert {event.metric} / {event.rule} ({event.kind}) {event.state}: {event.message}"
    if isinstance(event, ev.AlertCommandFailed):
        return f"warning: {event.metric}: {event.message}"
    if isinstance(event, ev.Notice):
        return f"{event.level}: {event.message}"
    if isinstance(event, ev.GapFillHeld):
        return ""  # said by its Notice
    if isinstance(event, ev.Progress):
        return f"{event.metric}: {event.percent:.0f}%"
    return repr(event)


def cmd_schedule(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import signal
    import threading

    from lookback_gui.core.errors import StoreBusyError
    from lookback_gui.core.events import Progress
    from lookback_gui.core.scheduler import Scheduler

    project = _project(args)
    _start_log(err)
    try:
        store = _open_store(project, err)
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
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not _take_the_lease(project, scheduler, stop, out, err):
            scheduler.shutdown(grace_s=0)
            out.write(f"{datetime.now().isoformat(sep=' ', timespec='seconds')} "
                      "scheduler stopped while standing by\n")
            return EXIT_OK
        scheduled = [m for m in project.metrics.values() if m.scheduled]
        log_line_text = (f"scheduler started for {project.path}: {len(scheduled)} scheduled "
                         f"metric(s), {args.workers} worker(s); stop with Ctrl+C or SIGTERM")
        out.write(f"{datetime.now().isoformat(sep=' ', timespec='seconds')} {log_line_text}\n")
        out.flush()
        scheduler.catch_up()
        # a timed wait: the system may hand SIGTERM to any thread of the process, and Python
        # runs its handler only once the main thread wakes up
        while not stop.wait(0.2):
            pass
        with lock:
            out.write(f"{datetime.now().isoformat(sep=' ', timespec='seconds')} stopping: "
                      "no new pulls; running pulls get 10 s before they are cancelled\n")
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


def _take_the_lease(project: Project, scheduler: Scheduler, stop: threading.Event,
                    out: TextIO, err: TextIO) -> bool:
    """Start ``scheduler``. On a team store whose scheduler runs elsewhere, stand by and take
    over when that one stops or dies; False when stopped while standing by."""
    from lookback_gui.core.errors import StoreBusyError

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


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def cmd_store_stats(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.housekeeping import store_stats

    project = _project(args)
    with _open_store(project, err, reading=True) as store:
        stats = store_stats(store)
        label = store.label
    if args.json:
        write_json(stats.to_json(), out)
        return EXIT_OK
    size = (f"{_size(stats.bytes)} of data files" if project.store.team else
            f"{_size(stats.bytes)} ({_size(stats.free_bytes)} free)")
    out.write(f"{label}: {size}, {stats.runs:,} runs, {stats.versions:,} versions, "
              f"{stats.values:,} values\n")
    if stats.metrics:
        out.write("\n")
        print_table(["metric", "runs", "failed", "versions", "values", "revised", "first bucket",
                     "last bucket", "size"],
                    [[m.metric, f"{m.runs:,}", f"{m.failed_runs:,}", f"{m.versions:,}",
                      f"{m.values:,}", f"{m.revised_values:,}", m.first_bucket, m.last_bucket,
                      _size(m.bytes)] for m in stats.metrics], out,
                    right=["runs", "failed", "versions", "values", "revised", "size"])
    return EXIT_OK


def cmd_store_copy(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.storecopy import copy_store

    project = _project(args)
    other = load_project(args.to)
    if other.store == project.store:
        raise UsageError(f"{args.to} uses the same store as {project.path}: nothing to copy")

    def progress(message: str) -> None:
        if getattr(args, "verbose", False):
            err.write(message + "\n")

    import duckdb

    from lookback_gui.core.failures import classify

    with _open_store(project, err, reading=True) as source, _open_store(other, err) as target:
        try:
            done = copy_store(source, target, progress)
        except (KeyboardInterrupt, RuntimeError, duckdb.Error) as exc:
            if classify(exc) != "cancelled":
                raise
            err.write(f"error: store copy cancelled by Ctrl+C; nothing was copied: "
                      f"{target.label} is left as it was\n")
            return EXIT_CANCELLED
        out.write(f"copied {done.runs:,} runs and {done.versions:,} versions from "
                  f"{source.name} to {target.name}\n")
    return EXIT_OK


def cmd_store_compact(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.housekeeping import compact_store

    project = _project(args)
    waiting, wait_s = _store_wait(err)
    if project.store.team:
        from lookback_gui.core.store import open_store

        with open_store(project.store, waiting=waiting, wait_s=wait_s) as store:
            files = store.compact()
        out.write(f"compacted {project.store.describe()}: {files.before:,} → {files.after:,} "
                  "data files; every run and version kept\n")
        return EXIT_OK
    done = compact_store(project.store_path, waiting=waiting, wait_s=wait_s)
    out.write(f"compacted {project.store_path}: {_size(done.before_bytes)} → "
              f"{_size(done.after_bytes)}; every run and version kept "
              f"({done.rows['runs']:,} runs, {done.rows['versions']:,} versions)\n")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.demo import write_demo

    path = write_demo(args.dir)
    out.write(f"demo project written: {path}\n"
              f"try:  cd {path.parent} && lookback pull daily_orders --as-of -2d && "
              "lookback pull daily_orders && lookback revisions daily_orders\n")
    return EXIT_OK


# -- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--project", metavar="FILE", default=argparse.SUPPRESS,
                        help=f"the project file (default: {DEFAULT_PROJECT} in this folder)")
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks of unexpected errors")
    parser = _Parser(prog="lookback", parents=[common],
                     description="Re-pull metrics over their lookback window and keep every "
                                 "version (the headless side of Lookback GUI).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, func: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = add("pull", cmd_pull, "one pull now; prints a one-line summary")
    p.add_argument("metric")
    p.add_argument("--as-of", metavar="TS", help="pull as of this time (default: now)")
    p.add_argument("--audit", action="store_true",
                   help="a deep pull over audit_factor times the lookback (trigger audit)")

    p = add("backfill", cmd_backfill, "pull every bucket in [from, to) in window-sized chunks")
    p.add_argument("metric")
    p.add_argument("--from", dest="from_", metavar="TS", required=True)
    p.add_argument("--to", metavar="TS", required=True)
    p.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="chunks pulled at once, at most the source's concurrency (default 2)")
    p.add_argument("--yes", action="store_true",
                   help="confirm a backfill of more than 1000 chunks")
    p.add_argument("--as-known-then", action="store_true",
                   help="pull each chunk as of its own end, not with what is known now (for "
                   "SQL that uses $as_of; replay is usually what you want then)")

    p = add("replay", cmd_replay, "for SQL that uses $as_of: run the metric's schedule over "
            "the past, each pull as of its scheduled time")
    p.add_argument("metric")
    p.add_argument("--from", dest="from_", metavar="TS", required=True)
    p.add_argument("--to", metavar="TS", required=True)
    p.add_argument("--yes", action="store_true",
                   help="go ahead even when the replay makes more than 1000 pulls")

    p = add("rename", cmd_rename, "rename a metric in the project file and in the store, with "
            "its runs, versions and alert states")
    p.add_argument("metric")
    p.add_argument("new", metavar="NEW")

    p = add("runs", cmd_runs, "the run history, newest first")
    p.add_argument("--metric", metavar="M")
    p.add_argument("--limit", metavar="N", type=_positive_int,
                   help="the newest N runs (at least 1; default: all)")
    p.add_argument("--json", action="store_true")

    p = add("show", cmd_show, "one run in full: window, attempts and their errors, counts, "
                              "checks, log, and the SQL with its bound parameters")
    p.add_argument("run", type=int, metavar="RUN")
    p.add_argument("--json", action="store_true")

    p = add("history", cmd_history, "current values, or as known after run N or at a time")
    p.add_argument("metric")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--as-of-run", metavar="N", type=int,
                      help="the values as the store held them right after run N")
    when.add_argument("--as-known-at", metavar="TS",
                      help="the values as known at TS (each its latest version known by then)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")

    p = add("revisions", cmd_revisions, "every revision and removal, oldest first")
    p.add_argument("metric")
    p.add_argument("--json", action="store_true")

    add("check", cmd_check, "validate the project file and try every source and metric")

    p = add("schedule", cmd_schedule, "run the scheduler headless until SIGINT/SIGTERM")
    p.add_argument("--workers", type=_positive_int, default=2, metavar="N",
                   help="pulls that may run at once (default 2)")

    p = add("retry-failed", cmd_retry_failed,
            "re-run exactly the windows of failed runs not covered since")
    p.add_argument("metric", nargs="?")

    p = add("alerts", cmd_alerts, "alert states, firing first")
    p.add_argument("--json", action="store_true")
    p.add_argument("--try", dest="try_rule", nargs=2, metavar=("METRIC", "RULE"),
                   help="how often a threshold or restatement rule (its name, or kind and "
                        "position like threshold#1) would have fired over the stored history")

    p = add("nowcast", cmd_nowcast, "for each provisional bucket: its current value and the "
            "value it is expected to settle at, with an 80%% interval")
    p.add_argument("metric")
    p.add_argument("--json", action="store_true")

    p = add("vintages", cmd_vintages, "the vintage matrix: one row per bucket, one column per "
            "known date, each cell the value as known then")
    p.add_argument("metric")
    p.add_argument("--measure", metavar="M", help="the measure (needed when there are several)")
    p.add_argument("--series", metavar="K=V", action="append",
                   help="only the series with this dimension value (repeatable); the values "
                        "of all matching series are summed")
    p.add_argument("--csv", action="store_true", help="CSV (default: an aligned table)")

    p = add("advise", cmd_advise, "how late this metric's data arrives, and the lookback it needs")
    p.add_argument("metric")
    p.add_argument("--share", type=float, default=99.0, metavar="PCT",
                   help="the share of revised magnitude to catch (default 99)")
    p.add_argument("--json", action="store_true")

    p = add("store", cmd_store_stats, "the store: what it holds, and compaction")
    store_sub = p.add_subparsers(dest="store_command", metavar="ACTION", parser_class=_Parser)
    store_sub.required = True
    q = store_sub.add_parser("stats", parents=[common], help="runs, versions and size, by metric",
                             description="runs, versions and size, by metric")
    q.set_defaults(func=cmd_store_stats)
    q.add_argument("--json", action="store_true")
    q = store_sub.add_parser(
        "compact", parents=[common],
        help="rewrite the store into a fresh file (every run and version kept)",
        description="rewrite the store into a fresh file that holds every run and version, "
                    "without the space of rewritten rows; the store is held exclusively "
                    "meanwhile, and a compaction stopped halfway leaves it as it was")
    q.set_defaults(func=cmd_store_compact)
    q = store_sub.add_parser(
        "copy", parents=[common],
        help="copy every run and version into the store of another project file",
        description="copy every run, version, log line and alert state of this project's "
                    "store into the store of another project file (a local store into a team "
                    "store, or back); the other store must hold no run yet")
    q.add_argument("--to", required=True, metavar="OTHER.toml",
                   help="the project file whose store receives the copy")
    q.set_defaults(func=cmd_store_copy)

    p = add("demo", cmd_demo, "write a demo project with a sample source that has late events")
    p.add_argument("dir", metavar="DIR")
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


def main(argv: Sequence[str] | None = None, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
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
    except _UsageExit as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    args.project = getattr(args, "project", None)
    args.stop = _Stop()
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
        err.write(f"error: unexpected {type(exc).__name__}: {exc} (this is a bug; run with "
                  "--verbose for the traceback)\n")
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


if __name__ == "__main__":
    entry_point()
