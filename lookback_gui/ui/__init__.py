"""The desktop app: a thin Qt layer over :mod:`lookback_gui.core`.

PySide6 is imported before pyqtgraph and the binding is named, so pyqtgraph never guesses.
"""

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import sys as _sys

import PySide6  # noqa: F401  (before pyqtgraph)

# The GUI thread shares the interpreter with worker threads (store reads, chart loads, the
# advisor). Switching threads more often than Python's default 5 ms keeps every call from Qt
# into Python (a table cell, a paint) from waiting behind a busy worker.
_sys.setswitchinterval(0.0005)
