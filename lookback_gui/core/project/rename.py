"""Renaming a metric: its table in the project file and its history in the store, in one step.

The store is renamed first, in one write transaction; the project file is then written
atomically. When the file cannot be written the store is renamed back, so the two never
disagree about the metric's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lookback_gui.core.errors import LookbackError, UsageError
from lookback_gui.core.project import Project, ProjectDocument
from lookback_gui.core.store import Store


@dataclass(frozen=True)
class Renamed:
    """What a rename moved.

    Attributes:
        project: the project as saved under the new name.
        moved: rows moved in the store, by table (runs, versions, current, probes, alerts).
    """

    project: Project
    moved: dict[str, int]

    @property
    def summary(self) -> str:
        m = self.moved
        return (
            f"{m.get('runs', 0)} run(s), {m.get('versions', 0)} version(s), "
            f"{m.get('current', 0)} current value(s) and {m.get('alerts', 0)} alert "
            "state(s)"
        )


def rename_metric(
    project: Project, store: Store, old: str, new: str, edit: Callable[[ProjectDocument], None] | None = None
) -> Renamed:
    """Rename metric ``old`` to ``new`` in ``project``'s file (comments and layout kept) and in
    ``store``. ``edit`` makes further changes to the document in the same save (the app's
    metric editor saves its other fields with the rename)."""
    new = new.strip()
    if not new:
        raise UsageError("the new name of a metric cannot be empty")
    project.metric(old)  # an unknown metric is a usage error naming the known ones
    if new != old and new in project.metrics:
        raise UsageError(f"there is already a metric '{new}' in {project.path}")
    document = ProjectDocument(project.path)
    document.rename_metric(old, new)
    if edit is not None:
        edit(document)
    document.validate()  # a name the project file cannot hold is refused before anything moves
    if new == old:
        return Renamed(document.save(), {})
    if new in store.metric_names():
        raise UsageError(f"{store.label} already holds runs of a metric '{new}'; pick another name")
    moved = store.rename_metric(old, new)
    try:
        saved = document.save()
    except (OSError, LookbackError):
        store.rename_metric(new, old)
        raise
    return Renamed(saved, moved)
