"""Files shipped with the package: the app's icon and its desktop launcher."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def resource(name: str) -> Path:
    """A file shipped in the package's resources (the icon, the .desktop file)."""
    return Path(str(files("lookback_gui.resources") / name))
