"""The scheduler's upkeep between pulls: the freshness alerts, evaluated on every tick."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from lookback_gui.core.errors import LookbackError
from lookback_gui.core.project import Project
from lookback_gui.core.schedule.planning import local_time
from lookback_gui.core.store import Store
from lookback_gui.core.store.events import Notice, Observer


def check_freshness(
    project: Project, store: Store, clock: Callable[[], datetime], observer: Observer
) -> None:
    """Evaluate the freshness alerts of every metric that has one; a failure is said to
    ``observer`` as an error of that metric."""
    from lookback_gui.core.insight.alerts import evaluate_alerts

    for config in project.metrics.values():
        if any(rule.kind == "freshness" for rule in config.alerts):
            try:
                evaluate_alerts(
                    config,
                    store,
                    local_time(clock(), config),
                    project_dir=project.directory,
                    observer=observer,
                    kinds=("freshness",),
                )
            except LookbackError as exc:
                observer(
                    Notice(
                        level="error", message=f"{config.name}: freshness alert: {exc}", metric=config.name
                    )
                )
