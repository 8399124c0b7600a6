"""The headless engine: project files, sources, windows, pulls and the versioned store.

Nothing in this package imports Qt; the desktop app and the command line are two faces of it.
"""

import importlib.util as _importlib_util
import sys as _sys


def _remember_that_pandas_is_missing() -> None:
    """DuckDB's Python binding looks for pandas on every query that binds parameters; without
    pandas each look searches the whole import path again (about 0.1 ms, a hundred times a
    pull). Record the miss once, as Python itself does for a module that is known to be absent.
    """
    if "pandas" not in _sys.modules and _importlib_util.find_spec("pandas") is None:
        _sys.modules["pandas"] = None  # type: ignore[assignment]


_remember_that_pandas_is_missing()
