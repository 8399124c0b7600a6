"""The desktop app: a thin Qt layer over :mod:`lookback_gui.core`.

PySide6 is imported before pyqtgraph and the binding is named, so pyqtgraph never guesses.
"""

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import PySide6  # noqa: F401  (before pyqtgraph)
