"""What the store hands out: runs, log lines, values, revisions and alert states, as frozen
records, and how their numbers are read back and written as JSON.

Integer and DECIMAL measures are kept exactly (the canonical decimal text) beside the DOUBLE that
charts read; :func:`stored_number` gives back the exact one where there is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from lookback_gui.core.timing.moments import iso

# values of FLOAT and DOUBLE measures within this relative difference are equal
DEFAULT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class RunRecord:
    """One run as the store holds it; the first keys are exactly those of ``runs --json``."""

    id: int
    metric: str
    trigger: str
    status: str
    as_of: datetime | None
    window_start: datetime | None
    window_end: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    rows: int | None
    new: int | None
    revised: int | None
    removed: int | None
    unchanged: int | None
    error: str | None
    timezone: str | None = None
    grain: str | None = None
    partial_start: datetime | None = None
    sql: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    measures: tuple[str, ...] = ()
    schema_change: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    checks: tuple[Mapping[str, Any], ...] = ()
    duration_s: float | None = None
    known_at: datetime | None = None
    settled_end: datetime | None = None
    definition: str | None = None

    JSON_KEYS = (
        "id",
        "metric",
        "trigger",
        "status",
        "as_of",
        "window_start",
        "window_end",
        "known_at",
        "started_at",
        "finished_at",
        "attempts",
        "rows",
        "new",
        "revised",
        "removed",
        "unchanged",
        "error",
        "definition",
    )

    # the moments among them: given with their UTC offset (the others are buckets, calendar
    # periods in the metric's zone)
    MOMENTS = ("as_of", "known_at", "started_at", "finished_at")

    def to_json(self) -> dict[str, Any]:
        return {
            key: iso(getattr(self, key), self.timezone)
            if key in self.MOMENTS
            else json_value(getattr(self, key))
            for key in self.JSON_KEYS
        }


@dataclass(frozen=True)
class CatchUpFacts:
    """What catch-up planning needs of one metric's runs: the first bucket any pull found data
    for and the latest moment seen of its successful pulls, and the bucket ranges they covered
    (merged, oldest first)."""

    first: datetime | None
    last_seen: datetime | None
    coverage: list[tuple[datetime, datetime]]


@dataclass(frozen=True)
class LogLine:
    run_id: int
    seq: int
    at: datetime
    level: str
    message: str


Number = float | int | Decimal


@dataclass(frozen=True)
class HistoryRow:
    """One value as known at some moment; integer and DECIMAL measures come exact (int,
    Decimal), others as float."""

    bucket: datetime
    dims: Mapping[str, Any]
    measure: str
    value: Number | None
    first_value: Number | None
    versions: int
    revised: bool
    partial: bool
    last_run: int = 0
    known_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": json_value(self.bucket),
            "dims": dict(self.dims),
            "measure": self.measure,
            "value": json_number(self.value),
            "first_value": json_number(self.first_value),
            "versions": self.versions,
            "revised": self.revised,
            "partial": self.partial,
        }


@dataclass(frozen=True)
class RevisionRow:
    """A version whose value differs from the one before it in known-time order.

    Attributes:
        known_at: the revising version's known time.
        prev_known_at: the known time of the version before it.
        kind: ``revision`` (late data), ``removal`` (the bucket vanished) or ``redefinition``
            (the value changed because the metric's definition did).
    """

    run: int
    bucket: datetime
    dims: Mapping[str, Any]
    measure: str
    old_value: Number | None
    new_value: Number | None
    known_at: datetime | None = None
    prev_known_at: datetime | None = None
    kind: str = "revision"

    @property
    def delta(self) -> Number | None:
        """new - old, exact where both are; None for a removal or a reappearance."""
        old, new = self.old_value, self.new_value
        if old is None or new is None:
            return None
        if isinstance(old, Decimal) or isinstance(new, Decimal):
            if isinstance(old, float) or isinstance(new, float):
                return float(new) - float(old)  # the measure's type changed
            return Decimal(new) - Decimal(old)
        return new - old

    @property
    def change_pct(self) -> float | None:
        """The change in percent of the old value; None where there is none to compare."""
        delta = self.delta
        if delta is None or self.old_value is None or not self.old_value:
            return None
        return float(delta) / abs(float(self.old_value)) * 100

    def to_json(self, zone: str | None = None) -> dict[str, Any]:
        """The keys of ``revisions --json``; ``known_at`` with the UTC offset of ``zone``, the
        metric's (in which it is stored)."""
        return {
            "run": self.run,
            "known_at": iso(self.known_at, zone),
            "bucket": json_value(self.bucket),
            "dims": dict(self.dims),
            "measure": self.measure,
            "old_value": json_number(self.old_value),
            "new_value": json_number(self.new_value),
            "kind": self.kind,
        }


@dataclass(frozen=True)
class AlertState:
    """One rule's state, with exactly the keys of ``alerts --json``."""

    metric: str
    rule: str
    kind: str
    state: str
    since: datetime
    message: str

    def to_json(self, zone: str | None = None) -> dict[str, Any]:
        """The keys of ``alerts --json``; ``since`` with the UTC offset of ``zone``, the zone
        of the metric it is about (in which it is stored)."""
        return {
            "metric": self.metric,
            "rule": self.rule,
            "kind": self.kind,
            "state": self.state,
            "since": iso(self.since, zone),
            "message": self.message,
        }


def json_number(value: Number | None) -> Number | None:
    """A value as JSON shows it: a float that is a whole number as an integer."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def stored_number(value: float | None, exact: str | None) -> Number | None:
    """A stored value: exact (int or Decimal) when its measure is, else the float."""
    if exact is None:
        return value
    return Decimal(exact) if "." in exact else int(exact)


def json_value(value: Any) -> Any:
    """A value as JSON shows it: a time in ISO 8601."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value
