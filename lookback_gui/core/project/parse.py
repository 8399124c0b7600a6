"""Loading the project file: the text parsed, every table validated, one :class:`Project` made.

A broken file is refused as a whole with the file, the line and the key of the first mistake."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions

from lookback_gui.core.errors import ProjectError
from lookback_gui.core.project.keys import keys_of
from lookback_gui.core.project.locate import Validator
from lookback_gui.core.project.model import (
    DASHBOARD_COLUMNS,
    Dashboard,
    DashboardChart,
    MetricConfig,
    Project,
    SourceConfig,
)
from lookback_gui.core.project.parse_metric import metric_settings
from lookback_gui.core.project.parse_sources import source_settings
from lookback_gui.core.project.parse_store import store_settings

# which keys each table takes: the one table of keys that the manual is made from too
_TOP_KEYS = keys_of("project")
_DASHBOARD_KEYS = keys_of("dashboard")
_DASHBOARD_CHART_KEYS = keys_of("dashboard chart")


def parse_project(text: str, path: Path) -> Project:
    """Validate ``text`` as the project file at ``path``; raise ProjectError on the first mistake."""
    document = parse_toml(text, path)
    data = document.unwrap()
    check = Validator(path, text)
    check.known_keys(data, _TOP_KEYS, ())
    directory = path.parent

    store = store_settings(check, check.table(data.get("store", {}), ("store",)), directory)

    sources: dict[str, SourceConfig] = {}
    for name, raw in check.table(data.get("sources", {}), ("sources",)).items():
        key_path = ("sources", name)
        sources[name] = source_settings(check, name, check.table(raw, key_path), key_path, directory)

    metrics: dict[str, MetricConfig] = {}
    for name, raw in check.table(data.get("metrics", {}), ("metrics",)).items():
        key_path = ("metrics", name)
        metrics[name] = metric_settings(check, name, check.table(raw, key_path), key_path, sources)

    dashboard = _dashboard(check, check.table(data.get("dashboard", {}), ("dashboard",)), metrics)
    return Project(
        path=path,
        store=store,
        sources=sources,
        metrics=metrics,
        dashboard=dashboard,
    )


def _parse_reason(exc: tomlkit.exceptions.ParseError) -> str:
    message = str(exc)
    return re.sub(r"\s+at line \d+ col \d+$", "", message)


def parse_toml(text: str, path: Path) -> tomlkit.TOMLDocument:
    """Parse ``text``; any TOML mistake becomes a ProjectError with its line."""
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        if "already exists" in str(exc):
            line = _duplicate_line(text, str(exc)) or exc.line
            raise ProjectError(str(path), f"not valid TOML: {_parse_reason(exc)}", line=line) from None
        raise ProjectError(str(path), f"not valid TOML: {_parse_reason(exc)}", line=exc.line) from None
    except tomlkit.exceptions.KeyAlreadyPresent as exc:
        raise ProjectError(
            str(path), f"not valid TOML: {exc}", line=_duplicate_line(text, str(exc))
        ) from None
    except tomlkit.exceptions.TOMLKitError as exc:
        raise ProjectError(str(path), f"not valid TOML: {exc}") from None


def _duplicate_line(text: str, message: str) -> int | None:
    """The line where a key or table named in tomlkit's "already exists" message repeats."""
    key = re.search(r'Key "(.+?)" already exists', message)
    if not key:
        return None
    name = re.escape(key.group(1).split(".")[-1])
    pattern = re.compile(
        rf"""^\s*(\[+[^\]]*[.\s"']{name}["']?\s*\]+|\[+\s*["']?{name}["']?\s*\]+"""
        rf"""|["']?{name}["']?\s*=)"""
    )
    hits = [n for n, t in enumerate(text.splitlines(), 1) if pattern.match(t)]
    return hits[1] if len(hits) > 1 else (hits[0] if hits else None)


def _dashboard(check: Validator, table: Mapping[str, Any], metrics: Mapping[str, MetricConfig]) -> Dashboard:
    key_path: tuple[Any, ...] = ("dashboard",)
    check.known_keys(table, _DASHBOARD_KEYS, key_path)
    columns = check.integer(table, "columns", key_path, minimum=1)
    if columns is not None and columns > 12:
        raise check.fail((*key_path, "columns"), f"at most 12 columns, not {columns}")
    raw = table.get("charts", [])
    if not isinstance(raw, list):
        raise check.fail(
            (*key_path, "charts"), 'expected a list of charts, like [{ metric = "daily_orders" }]'
        )
    charts = []
    for index, entry in enumerate(raw):
        entry_path = (*key_path, "charts", index)
        chart = check.table(entry, entry_path)
        check.known_keys(chart, _DASHBOARD_CHART_KEYS, entry_path)
        metric = check.string(chart, "metric", entry_path, required=True)
        if metric not in metrics:
            known = ", ".join(metrics) or "none"
            raise check.fail((*entry_path, "metric"), f"unknown metric '{metric}' (metrics: {known})")
        assert metric is not None
        series = chart.get("series")
        if series is not None and not isinstance(series, Mapping):
            raise check.fail(
                (*entry_path, "series"), 'expected a table of dimension values, like { country = "DE" }'
            )
        charts.append(
            DashboardChart(
                metric,
                check.string(chart, "measure", entry_path),
                dict(series) if series is not None else None,
            )
        )
    return Dashboard(tuple(charts), columns or DASHBOARD_COLUMNS)


def load_project(path: str | os.PathLike[str]) -> Project:
    """Read and validate the project file at ``path``."""
    if not str(path).strip():
        raise ProjectError(repr(str(path)), "the project file's name is empty")
    file = Path(path).expanduser().absolute()
    if file.exists() and not file.is_file() and not file.is_dir():
        raise ProjectError(
            str(file), "is not a regular file (a device, a pipe or a socket); give a project file (.toml)"
        )
    try:
        text = file.read_text(encoding="utf-8-sig")  # a byte order mark some editors write
    except FileNotFoundError:
        raise ProjectError(str(file), "no such project file") from None
    except IsADirectoryError:
        raise ProjectError(str(file), "is a folder, not a project file") from None
    except UnicodeDecodeError:
        raise ProjectError(str(file), "is not a UTF-8 text file") from None
    except OSError as exc:
        raise ProjectError(str(file), f"cannot be read: {exc.strerror}") from None
    return parse_project(text, file)
