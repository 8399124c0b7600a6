"""How the commands print: aligned tables, JSON, one-line run summaries and events."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from lookback_gui.core import jsonout
from lookback_gui.core.timing.moments import iso, machine_aware

if TYPE_CHECKING:  # the store (DuckDB, numpy) is imported by the commands that open it
    from lookback_gui.core.store import LogLine, RunRecord


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes" if not value.second else "seconds")
    if isinstance(value, float):
        return f"{value:.6g}" if not value.is_integer() else str(int(value))
    if isinstance(value, bool):
        return "yes" if value else ""
    return str(value)


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO, right: Sequence[str] = ()
) -> None:
    """Print an aligned table; columns named in ``right`` are right-aligned."""
    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if h in right else c.ljust(w) for c, w, h in zip(cells, widths, headers, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out.write(line(headers) + "\n")
    for row in text:
        out.write(line(row) + "\n")


def write_json(data: Any, out: TextIO) -> None:
    """Print ``data`` as valid JSON (RFC 8259), exact numbers, NaN and infinities as strings
    (see :mod:`jsonout`)."""
    out.write(jsonout.dumps(data) + "\n")


def series_label(dims: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in dims.items()) or "-"


def run_summary(run: RunRecord) -> str:
    window = f"[{cell(run.window_start)}, {cell(run.window_end)})"
    head = f"run {run.id} {run.metric} {run.status}: window {window}"
    if run.status == "succeeded":
        return (
            f"{head}, {run.rows} rows: {run.new} new, {run.revised} revised, "
            f"{run.removed} removed, {run.unchanged} unchanged "
            f"({run.duration_s or 0:.2f} s, {run.attempts} attempt"
            f"{'s' if run.attempts != 1 else ''})"
        )
    return f"{head} after {run.attempts} attempt{'s' if run.attempts != 1 else ''}"


_ATTEMPT = re.compile(
    r"^attempt (\d+) failed: (.*?)(?:; retrying in ([\d.]+) s "
    r"\(attempt \d+ of \d+\))?$",
    re.DOTALL,
)


def run_details(run: RunRecord, log: Sequence[LogLine]) -> dict[str, Any]:
    """Everything about one run, for ``show``: the keys of ``runs --json``, then its zone and
    grain, partial bucket, duration, each attempt (its error and the delay before the next),
    checks, warnings, schema change, log, and the SQL with its bound parameters."""
    data = run.to_json()
    tries: list[dict[str, Any]] = []
    for line in log:
        match = _ATTEMPT.match(line.message)
        if match:
            tries.append(
                {
                    "attempt": int(match.group(1)),
                    "error": match.group(2),
                    "retry_after_s": float(match.group(3)) if match.group(3) else None,
                }
            )
    if run.status == "succeeded" and run.attempts and all(t["attempt"] != run.attempts for t in tries):
        tries.append({"attempt": run.attempts, "error": None, "retry_after_s": None})
    used = sorted(name for name in run.params if re.search(rf"\${name}\b", run.sql or ""))
    data.update(
        {
            "timezone": run.timezone,
            "grain": run.grain,
            "partial_start": iso_or_none(run.partial_start),
            "duration_s": run.duration_s,
            "tries": tries,
            "checks": [dict(c) for c in run.checks],
            "warnings": list(run.warnings),
            "schema_change": dict(run.schema_change),
            "measures": list(run.measures),
            "log": [
                {"at": iso(machine_aware(line.at)), "level": line.level, "message": line.message}
                for line in log
            ],
            "sql": run.sql,
            "parameters": {name: run.params[name] for name in used},
        }
    )
    return data


def describe_event(event: object) -> str:
    """One log line for a scheduler event."""
    from lookback_gui.core.store import events as ev

    if isinstance(event, ev.RunStarted):
        return (
            f"run {event.run_id} {event.metric} started ({event.trigger}) for window "
            f"[{cell(event.window_start)}, {cell(event.window_end)})"
        )
    if isinstance(event, ev.AttemptFailed):
        then = (
            f"; retrying in {event.next_delay_s:.1f} s" if event.next_delay_s is not None else "; giving up"
        )
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


def size_text(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def iso_or_none(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
