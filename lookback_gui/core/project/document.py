"""Editing the project file in place: :class:`ProjectDocument` keeps the user's comments and
layout (tomlkit) and writes the file atomically, after validating the new text."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions

from lookback_gui.core.errors import ProjectError
from lookback_gui.core.project.locate import HEADER, split_dotted
from lookback_gui.core.project.model import DASHBOARD_COLUMNS, DashboardChart, Project
from lookback_gui.core.project.parse import parse_project, parse_toml


class ProjectDocument:
    """A project file opened for editing: change it, then :meth:`save` it.

    Every change keeps the user's comments and layout. ``save`` validates the new text first,
    so a change that would break the project is refused and the file on disk stays as it was.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path).expanduser().absolute()
        text = self.path.read_text(encoding="utf-8-sig") if self.path.exists() else ""
        self.document = parse_toml(text, self.path)

    def _section(self, name: str) -> Any:
        if name not in self.document:
            self.document[name] = tomlkit.table(is_super_table=True)
        return self.document[name]

    def set_source(self, name: str, values: Mapping[str, Any]) -> None:
        """Create or update ``[sources.NAME]`` with ``values`` (None deletes a key); a key
        whose value does not change is left as written, comments and all."""
        self._update(self._section("sources"), name, values, {})

    def set_metric(self, name: str, values: Mapping[str, Any]) -> None:
        """Create or update ``[metrics.NAME]`` with ``values`` (None deletes a key); a key
        whose value does not change is left as written, and a key not given is kept."""
        self._update(self._section("metrics"), name, values, _METRIC_DEFAULTS)

    def rename_metric(self, old: str, new: str) -> None:
        """Rename ``[metrics.OLD]`` to NEW where it stands, with every key, sub-table and
        comment it holds; the dashboard's charts of it follow."""
        self._rename("metrics", old, new)
        self._rename_in_dashboard(old, new)

    def rename_source(self, old: str, new: str) -> None:
        """Rename ``[sources.OLD]`` to NEW where it stands, and point the metrics that read it
        at the new name."""
        self._rename("sources", old, new)
        metrics: Any = self.document.get("metrics", {})
        for name in list(metrics):
            table: Any = metrics[name]
            if isinstance(table, dict) and table.get("source") == old:
                table["source"] = new

    def set_dashboard(self, charts: list[DashboardChart], columns: int) -> None:
        """Write ``[dashboard]``: ``charts`` in order (one inline table each) and ``columns``;
        comments elsewhere in the table stay."""
        if "dashboard" not in self.document:
            self.document.add(tomlkit.nl())
            self.document["dashboard"] = tomlkit.table()
        table: Any = self.document["dashboard"]
        entries = tomlkit.array()
        entries.multiline(True)
        for chart in charts:
            entry = tomlkit.inline_table()
            entry["metric"] = chart.metric
            if chart.measure is not None:
                entry["measure"] = chart.measure
            if chart.series is not None:
                series = tomlkit.inline_table()
                series.update(chart.series)
                entry["series"] = series
            entries.append(entry)
        table["charts"] = entries
        if columns == DASHBOARD_COLUMNS and "columns" not in table:
            return
        table["columns"] = columns

    def _rename_in_dashboard(self, old: str, new: str) -> None:
        """Charts of the dashboard that show metric ``old`` show ``new``."""
        charts: Any = self.document.get("dashboard", {}).get("charts", [])
        for chart in charts if isinstance(charts, list) else []:
            if isinstance(chart, dict) and chart.get("metric") == old:
                chart["metric"] = new

    def _rename(self, section: str, old: str, new: str) -> None:
        if old == new:
            return
        tables = self.document.get(section, {})
        if old not in tables:
            raise ProjectError(str(self.path), f"no [{section}.{old}] to rename", key=f"{section}.{old}")
        if new in tables:
            raise ProjectError(
                str(self.path), f"there is already a [{section}.{new}]", key=f"{section}.{new}.name"
            )
        text = _rename_headers(self.text(), section, old, new)
        renamed = parse_toml(text, self.path)
        if old in renamed.get(section, {}):  # written inline or as dotted keys: move the value
            value = renamed[section][old]
            renamed[section].pop(old)
            renamed[section][new] = value
        self.document = renamed

    @staticmethod
    def _update(section: Any, name: str, values: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        created = name not in section
        if created:
            section[name] = tomlkit.table()
        table = section[name]
        for key, value in values.items():
            if value is None:
                table.pop(key, None)
                continue
            if key in table:
                if _same_value(key, _plain(table[key]), _plain(value)):
                    continue
            elif key in defaults and _plain(value) == defaults[key]:
                continue
            if key == "sql" and isinstance(value, str):
                table[key] = sql_string(value)
            else:
                table[key] = value
        if created:  # a blank line before whatever table follows it
            table.add(tomlkit.nl())

    def text(self) -> str:
        return tomlkit.dumps(self.document)

    def validate(self) -> Project:
        return parse_project(self.text(), self.path)

    def save(self) -> Project:
        """Validate and write the file atomically; return the project as saved."""
        project = self.validate()
        write_atomically(self.path, self.text())
        return project


_METRIC_DEFAULTS: Mapping[str, Any] = {
    "timezone": "UTC",
    "complete_buckets_only": False,
    "allow_empty": False,
}


def _plain(value: Any) -> Any:
    """A tomlkit item (or a plain value) as plain Python data."""
    return value.unwrap() if hasattr(value, "unwrap") else value


def _same_value(key: str, old: Any, new: Any) -> bool:
    if key == "sql" and isinstance(old, str) and isinstance(new, str):
        return old.strip() == new.strip()
    return bool(type(old) is type(new) and old == new)


def sql_string(text: str) -> Any:
    """``text`` as a multi-line TOML string that starts on the line after its opening quotes
    (TOML drops that first newline, so the value does not gain a blank first line)."""
    value = text.strip("\n") + "\n"
    item = tomlkit.string(value, multiline=True)
    item._original = "\n" + item._original  # shown, never part of the value
    return item


def _rename_headers(text: str, section: str, old: str, new: str) -> str:
    """``text`` with every table header under ``[SECTION.OLD]`` renamed to NEW."""
    out = []
    in_multiline: str | None = None
    for line in text.splitlines(keepends=True):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            out.append(line)
            continue
        header = HEADER.match(line.rstrip("\r\n"))
        if header and not line.lstrip().startswith("#"):
            names = split_dotted(header.group(2))
            if names[:2] == [section, old]:
                brackets = header.group(1)
                dotted = ".".join(_toml_key(n) for n in [section, new, *names[2:]])
                comment = f"  {header.group(3)}" if header.group(3) else ""
                ending = line[len(line.rstrip("\r\n")) :]
                line = f"{brackets}{dotted}{brackets.replace('[', ']')}{comment}{ending}"
        elif not line.lstrip().startswith("#"):
            for quote in ('"""', "'''"):
                if line.count(quote) % 2 == 1:
                    in_multiline = quote
        out.append(line)
    return "".join(out)


def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_\-]+", name) else tomlkit.dumps({name: 0}).split(" = ")[0]


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash leaves either the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o777)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
