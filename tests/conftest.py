"""Shared fixtures: every test runs with its own config and data folders, never the user's."""

from __future__ import annotations

import faulthandler
import gc
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import make_orders, project_text, ts


@pytest.fixture(autouse=True)
def _native_crashes_reported(request: pytest.FixtureRequest):
    """A native crash prints every thread's Python stack onto the session's stderr. The app's
    log (lookback_gui/core/applog.py) points faulthandler at its own file while a test runs it,
    and can only point it back at ``sys.stderr``, which a test's capture replaces: so before
    and after every test faulthandler is pointed again at pytest's own copy of stderr."""
    from _pytest.faulthandler import fault_handler_stderr_fd_key

    stderr = request.config.stash.get(fault_handler_stderr_fd_key, None)
    if stderr is None:
        yield
        return
    faulthandler.enable(file=stderr, all_threads=True)
    yield
    faulthandler.enable(file=stderr, all_threads=True)


@pytest.fixture(autouse=True)
def _fresh_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Point config, data and cache folders at a temporary folder; no keyring is reachable."""
    base = tmp_path_factory.mktemp("home")
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(base / name.lower()))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    yield


@pytest.fixture(autouse=True)
def _collect_cycles_on_the_main_thread():
    """Once a GUI test made a Bridge, the app's collector has switched Python's automatic
    cycle collection off (lookback_gui/ui/collector.py) and collects from a timer while an
    event loop runs; between tests it collects here, on the main thread, as that timer would."""
    yield
    collector = sys.modules.get("lookback_gui.ui.collector")
    if collector is not None and not gc.isenabled():
        # the widgets pytest-qt closed and deleteLater()ed go first: collecting the Python
        # half of a widget that Qt still holds clears what Qt calls as it deletes it
        from PySide6.QtCore import QCoreApplication, QEvent

        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
        collector.collect_if_due()


@pytest.fixture
def write_project(tmp_path: Path) -> Callable[..., Path]:
    def write(text: str | None = None, **kwargs: str) -> Path:
        path = tmp_path / "lookback.toml"
        path.write_text(textwrap.dedent(text) if text is not None else project_text(**kwargs))
        return path

    return write


@pytest.fixture
def project(write_project, tmp_path: Path) -> Path:
    """A project over a shop with two orders, on 2026-10-25 (DE) and 2026-10-29 (FR)."""
    make_orders(
        tmp_path / "shop.duckdb",
        [
            (1, ts("2026-10-25T10:00"), "DE", 10.0),
            (2, ts("2026-10-29T11:00"), "FR", 5.0),
        ],
    )
    return write_project()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    """A local S3-compatible server (moto's server mode) for the whole session, stopped at the
    end; see tests/s3server.py."""
    from tests.s3server import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3server")).start()
    yield server
    server.stop()


@pytest.fixture
def s3_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """The test server's secret key, in the environment variable that its sources name."""
    from tests.s3server import SECRET

    monkeypatch.setenv("LOOKBACK_TEST_S3_SECRET", SECRET)
    return SECRET
