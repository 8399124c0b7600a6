"""The code keeps one style: ruff's lint rules and its formatter (pyproject.toml's settings)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUFF = Path(sys.executable).with_name("ruff")


def test_the_code_is_as_the_formatter_writes_it():
    result = subprocess.run(
        [str(RUFF), "format", "--check", "--diff", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


def test_the_code_passes_the_lint_rules():
    result = subprocess.run([str(RUFF), "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
