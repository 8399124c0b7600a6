"""``python -m lookback_gui.cli``: the same program as ``lookback``."""

from lookback_gui.cli.program import entry_point

entry_point()
