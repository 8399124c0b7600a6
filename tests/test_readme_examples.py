"""The README's command-line examples are run, and their output matches what the README shows,
up to the numbers (counts, times and dates differ from day to day) and paths.

An example is a code block that starts with ``$ lookback demo`` (it makes the demo project it
runs against); its lines starting ``$ `` are commands, the lines under a command its output as
shown, and ``…`` in a shown line stands for any text. Other transcripts in the README show
situations a demo does not have (a full disk, a changed definition) and are not run.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _examples() -> list[list[tuple[str, list[str]]]]:
    blocks, current, inside = [], [], False
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if inside and current and current[0][0].startswith("lookback demo"):
                blocks.append(current)
            current, inside = [], not inside
            continue
        if not inside:
            continue
        if line.startswith("$ "):
            current.append((line[2:].split("  #")[0].strip(), []))
        elif current:
            current[-1][1].append(line)
    return blocks


def _shape(text: str, folder: Path) -> str:
    text = text.replace(str(folder), "DIR")
    text = re.sub(r"\d+(?:[.,:]\d+)*", "N", text)
    return re.sub(r"\s+", " ", text).strip()


def _matches(shown: str, actual: str) -> bool:
    pattern = ".*".join(re.escape(part.strip()) for part in shown.split("…"))
    return re.fullmatch(pattern, actual) is not None


EXAMPLES = _examples()


def test_the_readme_has_examples_to_run():
    assert EXAMPLES


@pytest.mark.parametrize("block", EXAMPLES, ids=lambda b: b[0][0][:40])
def test_a_readme_example_runs_as_shown(block, tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cwd = tmp_path
    for line, shown in block:
        for command in line.split(" && "):
            words = shlex.split(command)
            if words[0] == "cd":
                cwd = cwd / words[1]
                continue
            result = subprocess.run(words, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, f"{command}: {result.stderr}"
        if shown:
            actual = _shape(result.stdout, tmp_path)
            expected = _shape("\n".join(shown), tmp_path)
            assert _matches(expected, actual), f"{line}\nshown:  {expected}\nactual: {actual}"
