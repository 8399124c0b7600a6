"""Finding the line of a key in the project file's text, and the checks every value goes
through, each refusing with the file, the line and the key."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from lookback_gui.core.errors import ProjectError
from lookback_gui.core.timing.durations import parse_duration
from lookback_gui.core.timing.windows import MAX_LOOKBACK

# --------------------------------------------------------------------------------------------
# Finding the line of a key


HEADER = re.compile(r"^\s*(\[\[?)\s*(.+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_\-]+)\s*[=.]""")


def split_dotted(text: str) -> list[str]:
    parts: list[str] = []
    for match in re.finditer(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_\-]+)', text):
        parts.append(next(g for g in match.groups() if g is not None))
    return parts


class Locator:
    """Maps key paths like ("metrics", "m", "grain") to the line they are written on."""

    def __init__(self, text: str):
        self._tables: list[tuple[tuple[Any, ...], int]] = []  # (path, line) of each header
        self._keys: dict[tuple[Any, ...], int] = {}
        current: tuple[Any, ...] = ()
        array_counts: dict[tuple[str, ...], int] = {}
        in_multiline: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if in_multiline:
                if line.count(in_multiline) % 2 == 1:
                    in_multiline = None
                continue
            header = HEADER.match(line)
            if header and not line.lstrip().startswith("#") and "=" not in line.split("]")[0]:
                names = tuple(split_dotted(header.group(2)))
                if header.group(1) == "[[":
                    index = array_counts.get(names, 0)
                    array_counts[names] = index + 1
                    current = (*names, index)
                else:
                    current = names
                self._tables.append((current, number))
                self._keys.setdefault(current, number)
                continue
            key = _KEY.match(line)
            if key and not line.lstrip().startswith("#"):
                name = split_dotted(key.group(1))[0]
                self._keys.setdefault((*current, name), number)
                for quote in ('"""', "'''"):
                    if line.count(quote) % 2 == 1:
                        in_multiline = quote

    def line(self, path: tuple[Any, ...]) -> int | None:
        """The line of ``path``, or of its nearest written ancestor."""
        for end in range(len(path), 0, -1):
            found = self._keys.get(tuple(path[:end]))
            if found is not None:
                return found
        return None


# --------------------------------------------------------------------------------------------
# Validation


class Validator:
    def __init__(self, path: Path, text: str):
        self.path = path
        self.locator = Locator(text)

    def fail(self, key_path: tuple[Any, ...], reason: str) -> ProjectError:
        return ProjectError(str(self.path), reason, line=self.locator.line(key_path), key=dotted(key_path))

    def table(self, value: Any, key_path: tuple[Any, ...]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key_path, f"expected a table, got {kind_of(value)}")
        return value

    def known_keys(self, table: Mapping[str, Any], allowed: set[str], key_path: tuple[Any, ...]) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), sorted(allowed), n=1, cutoff=0.6)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise self.fail(
                    (*key_path, key),
                    f"unknown key '{key}' ({hint}known keys here: {', '.join(sorted(allowed))})",
                )

    def string(
        self, table: Mapping[str, Any], key: str, key_path: tuple[Any, ...], required: bool = False
    ) -> str | None:
        if key not in table:
            if required:
                raise self.fail(key_path, f"missing required key '{key}'")
            return None
        value = table[key]
        if not isinstance(value, str):
            raise self.fail((*key_path, key), f"expected a string, got {kind_of(value)}")
        return value

    def boolean(self, table: Mapping[str, Any], key: str, key_path: tuple[Any, ...], default: bool) -> bool:
        if key not in table:
            return default
        value = table[key]
        if not isinstance(value, bool):
            raise self.fail((*key_path, key), f"expected true or false, got {kind_of(value)}")
        return value

    def number(self, table: Mapping[str, Any], key: str, key_path: tuple[Any, ...]) -> float | None:
        if key not in table:
            return None
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail((*key_path, key), f"expected a number, got {kind_of(value)}")
        if value != value:  # NaN: every comparison with it is false, so nothing would ever fail
            raise self.fail((*key_path, key), "expected a number, got nan")
        return float(value)

    def integer(
        self,
        table: Mapping[str, Any],
        key: str,
        key_path: tuple[Any, ...],
        minimum: int = 0,
        maximum: int | None = None,
    ) -> int | None:
        if key not in table:
            return None
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail((*key_path, key), f"expected a whole number, got {kind_of(value)}")
        if value < minimum:
            raise self.fail((*key_path, key), f"must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:
            raise self.fail((*key_path, key), f"must be at most {maximum}, not {value}")
        return value

    def duration(self, table: Mapping[str, Any], key: str, key_path: tuple[Any, ...]) -> timedelta | None:
        text = self.string(table, key, key_path)
        if text is None:
            return None
        try:
            value = parse_duration(text)
        except ValueError as exc:
            raise self.fail((*key_path, key), str(exc)) from None
        if value > MAX_LOOKBACK:
            raise self.fail((*key_path, key), f"'{text}' is too long: at most 100 years")
        return value

    def names(self, table: Mapping[str, Any], key: str, key_path: tuple[Any, ...]) -> tuple[str, ...] | None:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail((*key_path, key), "expected a list of column names")
        return tuple(value)


def dotted(key_path: tuple[Any, ...]) -> str:
    out = ""
    for part in key_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__
