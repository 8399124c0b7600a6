"""Alert states: for each rule of each metric that has fired, whether it fires now and since
when (the ``alerts`` table)."""

from __future__ import annotations

from lookback_gui.core.store.database import Database
from lookback_gui.core.store.records import AlertState


class AlertStates:
    """The ``alerts`` table."""

    def __init__(self, db: Database):
        self._db = db

    def alert_state(self, metric: str, rule: str) -> AlertState | None:
        rows = self._db.read("SELECT metric, rule, kind, state, since, message FROM alerts "
                             "WHERE metric = ? AND rule = ?", [metric, rule])
        return AlertState(*rows[0]) if rows else None

    def set_alert_state(self, state: AlertState) -> None:
        with self._db.write() as cur:
            cur.execute("DELETE FROM alerts WHERE metric = ? AND rule = ?",
                        [state.metric, state.rule])
            cur.execute("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?)",
                        [state.metric, state.rule, state.kind, state.state, state.since,
                         state.message])

    def alert_states(self) -> list[AlertState]:
        """Every rule that has fired at least once, firing first, newest change first."""
        return [AlertState(*r) for r in self._db.read(
            "SELECT metric, rule, kind, state, since, message FROM alerts "
            "ORDER BY state = 'firing' DESC, since DESC, metric, rule")]
