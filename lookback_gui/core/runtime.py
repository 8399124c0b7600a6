"""What a process that runs pulls sets up once, at its entry point (never on import).

The command line, the desktop app and the benchmarks call :func:`prepare_process`; the desktop
app also :func:`prefer_the_gui_thread`. They also make the process's source databases
(:class:`lookback_gui.core.sources.SourceConnections`), hand them down to the pulls and close
them when they end.
"""

from __future__ import annotations

import importlib.util
import sys


def prepare_process() -> None:
    """Record once that pandas is missing, where it is.

    DuckDB's Python binding looks for pandas on every query that binds parameters; without
    pandas each look searches the whole import path again (about 0.1 ms, a hundred times a
    pull). Python itself records a module known to be absent this way.
    """
    if "pandas" not in sys.modules and importlib.util.find_spec("pandas") is None:
        sys.modules["pandas"] = None  # type: ignore[assignment]


def prefer_the_gui_thread() -> None:
    """Switch threads every 0.5 ms instead of Python's 5 ms.

    The GUI thread shares the interpreter with worker threads (store reads, chart loads, the
    advisor); switching more often keeps every call from Qt into Python (a table cell, a paint)
    from waiting behind a busy worker.
    """
    sys.setswitchinterval(0.0005)
