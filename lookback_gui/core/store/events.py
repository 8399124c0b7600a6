"""Events of pulls and alerts, for whoever watches: the app, the daemon's log, tests.

Observers are called on the thread that does the work (a worker thread under the scheduler);
the payloads are frozen, so they can cross threads safely.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from lookback_gui.core.store import RunRecord


@dataclass(frozen=True)
class RunStarted:
    run_id: int
    metric: str
    trigger: str
    window_start: Any
    window_end: Any


@dataclass(frozen=True)
class AttemptFailed:
    run_id: int
    metric: str
    attempt: int
    error: str
    next_delay_s: float | None


@dataclass(frozen=True)
class Progress:
    run_id: int
    metric: str
    percent: float


@dataclass(frozen=True)
class RunFinished:
    run: RunRecord


@dataclass(frozen=True)
class AlertChanged:
    metric: str
    rule: str
    kind: str
    state: str
    since: Any
    message: str


@dataclass(frozen=True)
class AlertCommandFailed:
    """An alert rule's ``command`` could not run or exited with an error.

    Attributes:
        message: what went wrong, naming the command.
        run_id: the run whose evaluation fired the alert, or None (a freshness check).
    """

    metric: str
    rule: str
    message: str
    run_id: int | None = None


@dataclass(frozen=True)
class Notice:
    """Something the scheduler wants said: a coalesced fire, a project reload, a catch-up plan.

    Attributes:
        level: "info", "warning" or "error".
        metric: the metric it is about, or None.
    """

    level: str
    message: str
    metric: str | None = None


@dataclass(frozen=True)
class GapFillHeld:
    """A gap fill after downtime would make more pulls than a backfill makes unasked: it waits
    for a confirmation (the app asks; the daemon logs how to run it), and only the catch-up
    pull ran.

    Attributes:
        pulls: how many pulls the gap fill would make.
        start, end: the buckets it would fill, [start, end) (naive, the metric's zone).
        message: the line that says so, naming the command that runs it.
    """

    metric: str
    pulls: int
    start: Any
    end: Any
    message: str


@dataclass(frozen=True)
class DefinitionChanged:
    """A run was the first under a new definition of its metric: the values it changed are
    redefinitions, and the older ones still come from the old definition.

    Attributes:
        redefined: how many values the run redefined.
        start, end: the buckets older than the run's window that still come from the old
            definition, [start, end) (naive, the metric's zone); start is None when there are
            none. A backfill of them loads them under the new definition.
    """

    metric: str
    run_id: int
    old: str
    new: str
    redefined: int
    start: Any
    end: Any


Event = (
    RunStarted
    | AttemptFailed
    | Progress
    | RunFinished
    | AlertChanged
    | AlertCommandFailed
    | Notice
    | GapFillHeld
    | DefinitionChanged
)


class Observer(Protocol):
    """Anything that takes events; it must return quickly and never raise."""

    def __call__(self, event: Event) -> None: ...


class Fanout:
    """Sends each event to every subscribed observer; a failing observer does not stop others."""

    def __init__(self) -> None:
        self._observers: list[Observer] = []

    def subscribe(self, observer: Observer) -> None:
        self._observers.append(observer)

    def unsubscribe(self, observer: Observer) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    def __call__(self, event: Event) -> None:
        for observer in list(self._observers):
            try:
                observer(event)
            except Exception:  # an observer's bug must never break a pull
                import logging

                logging.getLogger(__name__).exception("observer failed on %r", event)


def ignore(event: Event) -> None:
    """An observer that does nothing."""
