"""Alert states: for each rule of each metric that has fired, whether it fires now and since
when (the ``alerts`` table)."""

from __future__ import annotations

from lookback_gui.core.store.database import Database
from lookback_gui.core.store.records import AlertState

# a rule without a name was once written "threshold #1"; it is "threshold#1" now
_RULE = "regexp_replace(rule, '^(threshold|restatement|freshness|failure) #([0-9]+)$', '\\1#\\2') AS rule"


class AlertStates:
    """The ``alerts`` table."""

    def __init__(self, db: Database):
        self._db = db

    def alert_state(self, metric: str, rule: str) -> AlertState | None:
        rows = self._db.read(
            f"SELECT metric, {_RULE}, kind, state, since, message FROM alerts "
            "WHERE metric = ? AND rule IN (?, ?)",
            [metric, rule, _spaced(rule)],
        )
        return AlertState(*rows[0]) if rows else None

    def set_alert_state(self, state: AlertState) -> None:
        with self._db.write() as cur:
            cur.execute(
                "DELETE FROM alerts WHERE metric = ? AND rule IN (?, ?)",
                [state.metric, state.rule, _spaced(state.rule)],
            )
            cur.execute(
                "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?)",
                [state.metric, state.rule, state.kind, state.state, state.since, state.message],
            )

    def alert_states(self) -> list[AlertState]:
        """Every rule that has fired at least once, firing first, newest change first."""
        return [
            AlertState(*r)
            for r in self._db.read(
                f"SELECT metric, {_RULE}, kind, state, since, message FROM alerts "
                "ORDER BY state = 'firing' DESC, since DESC, metric, rule"
            )
        ]


def _spaced(rule: str) -> str:
    """The way a rule without a name was once written: "threshold #1" for "threshold#1"."""
    kind, sep, position = rule.partition("#")
    return f"{kind} #{position}" if sep and position.isdigit() and " " not in kind else rule
