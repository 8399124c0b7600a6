"""What is installed is what is tested: the built wheel holds every module of the source tree.

An editable install imports straight from the checkout, so a package missing from the wheel goes
unnoticed until a user runs `pip install .`. This test builds the wheel the way pip does for that
command and compares its contents with the tree.
"""

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    # build from a copy, so the checkout gets no build/ or egg-info folder
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "lookback_gui", source / "lookback_gui", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("lookback_gui-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_holds_every_module_of_the_source_tree(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    tree = sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "lookback_gui").rglob("*.py")
        if "__pycache__" not in path.parts
    )
    assert len(tree) > 40
    assert [module for module in tree if module not in names] == []


def test_the_wheel_holds_the_resources_and_both_commands(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "lookback_gui/resources/lookback-gui.svg" in names
    assert "lookback_gui/resources/lookback-gui.desktop" in names
    (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for name, target in {**declared["scripts"], **declared["gui-scripts"]}.items():
        assert f"{name} = {target}" in text
        module = target.split(":")[0].replace(".", "/") + ".py"
        assert module in names
