"""The README's command table and the parser agree: every command is in the table, with every
option it takes, and the table names no command or option the parser does not know."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from lookback_gui.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
COMMON = {"--project", "--verbose", "--help", "-h"}


def _commands() -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found[prefix] = parser
            return
        for name, child in subs[0].choices.items():
            walk(child, f"{prefix} {name}".strip())

    walk(build_parser(), "")
    return found


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option not in COMMON
    }


def _table() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The command line", 1)[1]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `lookback ([a-z-]+(?: [a-z]+)?)\b([^`]*)` \|", line)
        if match:
            words = match.group(1).split()
            name = " ".join(w for w in words if (w.islower() and w.isalpha()) or "-" in w)
            rows[name] = match.group(0)
        elif rows and not line.startswith("|"):
            break
    return rows


COMMANDS = _commands()


def test_the_table_lists_every_command_and_no_other():
    assert sorted(_table()) == sorted(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_table_names_every_option_of_the_command(name):
    row = _table().get(name, "")
    written = set(re.findall(r"--[a-z][a-z-]*", row))
    assert written == _options(COMMANDS[name])
