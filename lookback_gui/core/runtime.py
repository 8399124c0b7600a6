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


def leave_pandas_unloaded() -> None:
    """Record that pandas is not to be loaded, in a process that never uses it (the command
    line).

    Where pandas is installed (other packages bring it), DuckDB's Python binding imports it
    (and numpy) on the first query that binds parameters, to see whether a parameter is one of
    its objects: 0.3-0.8 s of every command's start. None of the program's commands uses
    pandas; marked absent, the binding takes it as not installed.
    """
    sys.modules.setdefault("pandas", None)  # type: ignore[arg-type]


def prefer_the_gui_thread() -> None:
    """Switch threads every 0.5 ms instead of Python's 5 ms.

    The GUI thread shares the interpreter with worker threads (store reads, chart loads, the
    advisor); switching more often keeps every call from Qt into Python (a table cell, a paint)
    from waiting behind a busy worker.
    """
    sys.setswitchinterval(0.0005)
