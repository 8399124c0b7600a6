"""The layers hold: the core never imports Qt, the core's packages import only the packages
below them, and inside each package each module only the modules below it (import-linter's
contracts in pyproject.toml)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contract_holds():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert len(contracts) >= 8  # Qt, the core's packages, inside each package, the store's parts
    assert f"{len(contracts)} kept, 0 broken" in result.stdout


def test_importing_the_cli_loads_no_qt():
    code = (
        "import sys, lookback_gui.cli, lookback_gui.core.pull, lookback_gui.core.store;"
        "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_importing_the_packages_changes_nothing_in_the_process():
    code = (
        "import sys; before = sys.getswitchinterval();"
        "import lookback_gui.core.pull, lookback_gui.core.schedule.scheduler, lookback_gui.cli;"
        "import lookback_gui.ui.main_window;"
        "print('pandas' in sys.modules and sys.modules['pandas'] is None,"
        " sys.getswitchinterval() == before)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.stdout.split() == ["False", "True"]
