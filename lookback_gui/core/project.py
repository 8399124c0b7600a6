"""The project file: sources and metrics in TOML, loaded, validated and edited in place.

Loading refuses a broken file as a whole with the file, the line and the key of the first mistake.
Editing goes through :class:`ProjectDocument`, which keeps the user's comments and layout
(tomlkit) and writes the file atomically.
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomlkit
import tomlkit.exceptions

from lookback_gui.core.dsn import parse_dsn
from lookback_gui.core.durations import parse_duration
from lookback_gui.core.errors import ProjectError
from lookback_gui.core.project_keys import keys_of
from lookback_gui.core.storage import STORAGE_KEYS, StorageConfig, is_url, storage_problem
from lookback_gui.core.storeconfig import STORE_TYPES, StoreConfig
from lookback_gui.core.windows import MAX_LOOKBACK, Grain, lookback_buckets

SOURCE_TYPES = ("duckdb", "sqlite", "postgres", "mysql", "parquet", "csv", "iceberg", "delta")
FILE_SOURCE_TYPES = ("duckdb", "sqlite", "parquet", "csv", "iceberg", "delta")
SERVER_SOURCE_TYPES = ("postgres", "mysql")
ALERT_KINDS = ("threshold", "restatement", "freshness", "failure")
SEVERITIES = ("error", "warn")
DEFAULT_STORE = "lookback.duckdb"
DEFAULT_PROJECT = "lookback.toml"
# the most a project file may ask for: more is a typo, and would tie up the machine or the source
MAX_RETRIES = 20
MAX_CONCURRENCY = 64

# which keys each table takes: the one table of keys that the manual is made from too
_TOP_KEYS = keys_of("project")
_STORE_KEYS = keys_of("store")
_SOURCE_KEYS = keys_of("source")
_METRIC_KEYS = keys_of("metric")
_CHECK_KEYS = keys_of("check")
_ALERT_KEYS = keys_of("alert")
_DASHBOARD_KEYS = keys_of("dashboard")
_DASHBOARD_CHART_KEYS = keys_of("dashboard chart")
DASHBOARD_COLUMNS = 2  # the dashboard's columns when the file does not say
# what a threshold rule judges: a provisional bucket by its nowcast (expected), the newest
# settled bucket (settled), or the newest complete bucket as it stands (latest)
JUDGES = ("expected", "settled", "latest")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class SourceConfig:
    """One source as the project file defines it.

    Attributes:
        name: the source's name (its table key).
        type: one of SOURCE_TYPES.
        path: for file sources, the path or glob as written.
        resolved_path: that path made absolute against the project's folder.
        dsn: for server sources, the connection string without a password.
        password_env: the environment variable that holds the password, if any.
        pushdown: for server sources, run the whole metric SQL on the server.
        trust_role: accept a pushdown source whose role can read more than its own database
            (the check then warns every time).
        concurrency: how many pulls may read this source at once (default 1).
        storage: how to reach a path in object storage (None for a local path).
        snapshot_as_of: for an Iceberg or Delta table, read the snapshot it had at the pull's
            as-of (a replay of what a pull then would have seen).
    """

    name: str
    type: str
    path: str | None = None
    resolved_path: str | None = None
    dsn: str | None = None
    password_env: str | None = None
    pushdown: bool = False
    concurrency: int = 1
    trust_role: bool = False
    storage: StorageConfig | None = None
    snapshot_as_of: bool = False

    @property
    def is_file(self) -> bool:
        return self.type in FILE_SOURCE_TYPES


@dataclass(frozen=True)
class CheckConfig:
    """One named quality check of a metric."""

    name: str
    severity: str = "error"
    measure: str | None = None
    min: float | None = None
    max: float | None = None
    row_change_pct: float | None = None
    revision_pct: float | None = None


@dataclass(frozen=True)
class AlertRule:
    """One alert rule of a metric; ``position`` is its 1-based place among the metric's rules."""

    kind: str
    position: int
    name: str | None = None
    measure: str | None = None
    above: float | None = None
    below: float | None = None
    series: Mapping[str, Any] = field(default_factory=dict)
    older_than: int | None = None
    change_pct: float | None = None
    max_age: timedelta | None = None
    command: str | None = None
    judge: str = "expected"

    @property
    def label(self) -> str:
        """The rule's name, or its kind and position."""
        return self.name or self.reference

    @property
    def reference(self) -> str:
        """Its kind and position, like ``threshold#1``: a name for it whether it has one or not."""
        return f"{self.kind}#{self.position}"


@dataclass(frozen=True)
class MetricConfig:
    """One metric: what to pull, from where, how often and over which window."""

    name: str
    source: str
    grain: Grain
    lookback: int | str
    buckets: int
    sql: str
    timezone: str = "UTC"
    schedule: str | None = None
    every: timedelta | None = None
    complete_buckets_only: bool = False
    allow_empty: bool = False
    measures: tuple[str, ...] | None = None
    dimensions: tuple[str, ...] | None = None
    retries: int = 3
    retry_base: timedelta = timedelta(seconds=2)
    retry_max: timedelta = timedelta(minutes=5)
    checks: tuple[CheckConfig, ...] = ()
    alerts: tuple[AlertRule, ...] = ()
    description: str | None = None
    audit_every: timedelta | None = None
    audit_factor: int = 4
    change_probe: str | None = None
    settle_share: float = 0.99

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def scheduled(self) -> bool:
        return self.schedule is not None or self.every is not None


@dataclass(frozen=True)
class DashboardChart:
    """One small chart of the dashboard: a metric, and optionally its measure and one series
    (None: the measure and series the chart would pick, the largest)."""

    metric: str
    measure: str | None = None
    series: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Dashboard:
    """The ``[dashboard]`` table: its charts in order and how many columns they fill; no
    charts means one chart per metric."""

    charts: tuple[DashboardChart, ...] = ()
    columns: int = DASHBOARD_COLUMNS


@dataclass(frozen=True)
class Project:
    """A loaded, validated project.

    Attributes:
        path: the project file (absolute).
        store: where runs and versions are kept (a local file or the team store).
        sources: the sources by name, in file order.
        metrics: the metrics by name, in file order.
        dashboard: the charts of the dashboard (``[dashboard]``).
    """

    path: Path
    store: StoreConfig
    sources: Mapping[str, SourceConfig]
    metrics: Mapping[str, MetricConfig]
    dashboard: Dashboard = field(default_factory=Dashboard)

    @property
    def store_path(self) -> Path:
        """The local store file; a team store has none (its lock files live nowhere)."""
        if self.store.path is None:
            raise ValueError(f"{self.path}: the store is a team store, not a file")
        return self.store.path

    @property
    def directory(self) -> Path:
        return self.path.parent

    def metric(self, name: str) -> MetricConfig:
        """The metric ``name``; raise UsageError listing the known ones otherwise."""
        from lookback_gui.core.errors import UsageError

        try:
            return self.metrics[name]
        except KeyError:
            known = ", ".join(self.metrics) or "none"
            raise UsageError(
                f"no metric named '{name}' in {self.path} (its metrics: {known})"
            ) from None


# --------------------------------------------------------------------------------------------
# Finding the line of a key


_HEADER = re.compile(r"^\s*(\[\[?)\s*(.+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_\-]+)\s*[=.]""")


def _split_dotted(text: str) -> list[str]:
    parts: list[str] = []
    for match in re.finditer(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_\-]+)', text):
        parts.append(next(g for g in match.groups() if g is not None))
    return parts


class _Locator:
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
            header = _HEADER.match(line)
            if header and not line.lstrip().startswith("#") and "=" not in line.split("]")[0]:
                names = tuple(_split_dotted(header.group(2)))
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
                name = _split_dotted(key.group(1))[0]
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


class _Validator:
    def __init__(self, path: Path, text: str):
        self.path = path
        self.locator = _Locator(text)

    def fail(self, key_path: tuple[Any, ...], reason: str) -> ProjectError:
        return ProjectError(
            str(self.path), reason, line=self.locator.line(key_path), key=_dotted(key_path)
        )

    def table(self, value: Any, key_path: tuple[Any, ...]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key_path, f"expected a table, got {_kind(value)}")
        return value

    def known_keys(self, table: Mapping[str, Any], allowed: set[str],
                   key_path: tuple[Any, ...]) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), sorted(allowed), n=1, cutoff=0.6)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise self.fail(
                    (*key_path, key),
                    f"unknown key '{key}' ({hint}known keys here: {', '.join(sorted(allowed))})",
                )

    def string(self, table: Mapping[str, Any], key: str, key_path: tuple[Any, ...],
               required: bool = False) -> str | None:
        if key not in table:
            if required:
                raise self.fail(key_path, f"missing required key '{key}'")
            return None
        value = table[key]
        if not isinstance(value, str):
            raise self.fail((*key_path, key), f"expected a string, got {_kind(value)}")
        return value

    def boolean(self, table: Mapping[str, Any], key: str, key_path: tuple[Any, ...],
                default: bool) -> bool:
        if key not in table:
            return default
        value = table[key]
        if not isinstance(value, bool):
            raise self.fail((*key_path, key), f"expected true or false, got {_kind(value)}")
        return value

    def number(self, table: Mapping[str, Any], key: str,
               key_path: tuple[Any, ...]) -> float | None:
        if key not in table:
            return None
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail((*key_path, key), f"expected a number, got {_kind(value)}")
        if value != value:  # NaN: every comparison with it is false, so nothing would ever fail
            raise self.fail((*key_path, key), "expected a number, got nan")
        return float(value)

    def integer(self, table: Mapping[str, Any], key: str, key_path: tuple[Any, ...],
                minimum: int = 0, maximum: int | None = None) -> int | None:
        if key not in table:
            return None
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail((*key_path, key), f"expected a whole number, got {_kind(value)}")
        if value < minimum:
            raise self.fail((*key_path, key), f"must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:
            raise self.fail((*key_path, key), f"must be at most {maximum}, not {value}")
        return value

    def duration(self, table: Mapping[str, Any], key: str,
                 key_path: tuple[Any, ...]) -> timedelta | None:
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

    def names(self, table: Mapping[str, Any], key: str,
              key_path: tuple[Any, ...]) -> tuple[str, ...] | None:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail((*key_path, key), "expected a list of column names")
        return tuple(value)


def _dotted(key_path: tuple[Any, ...]) -> str:
    out = ""
    for part in key_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _kind(value: Any) -> str:
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


def _validate_cron(expression: str, zone: ZoneInfo) -> None:
    from lookback_gui.core.cron import cron_trigger

    if len(expression.split()) != 5:
        raise ValueError(
            f"'{expression}' is not a cron expression of 5 fields (minute hour day month weekday)"
        )
    try:
        trigger = cron_trigger(expression, zone)
    except ValueError as exc:
        raise ValueError(f"'{expression}' is not a valid cron expression: {exc}") from None
    if trigger.get_next_fire_time(None, datetime.now(zone)) is None:
        raise ValueError(f"'{expression}' never fires (no such date, like February 31)")


def parse_project(text: str, path: Path) -> Project:
    """Validate ``text`` as the project file at ``path``; raise ProjectError on the first mistake."""
    document = _parse_toml(text, path)
    data = document.unwrap()
    check = _Validator(path, text)
    check.known_keys(data, _TOP_KEYS, ())
    directory = path.parent

    store = _store(check, check.table(data.get("store", {}), ("store",)), directory)

    sources: dict[str, SourceConfig] = {}
    for name, raw in check.table(data.get("sources", {}), ("sources",)).items():
        key_path = ("sources", name)
        sources[name] = _source(check, name, check.table(raw, key_path), key_path, directory)

    metrics: dict[str, MetricConfig] = {}
    for name, raw in check.table(data.get("metrics", {}), ("metrics",)).items():
        key_path = ("metrics", name)
        metrics[name] = _metric(check, name, check.table(raw, key_path), key_path, sources)

    dashboard = _dashboard(check, check.table(data.get("dashboard", {}), ("dashboard",)),
                           metrics)
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


def _parse_toml(text: str, path: Path) -> tomlkit.TOMLDocument:
    """Parse ``text``; any TOML mistake becomes a ProjectError with its line."""
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        if "already exists" in str(exc):
            line = _duplicate_line(text, str(exc)) or exc.line
            raise ProjectError(str(path), f"not valid TOML: {_parse_reason(exc)}",
                               line=line) from None
        raise ProjectError(
            str(path), f"not valid TOML: {_parse_reason(exc)}", line=exc.line
        ) from None
    except tomlkit.exceptions.KeyAlreadyPresent as exc:
        raise ProjectError(str(path), f"not valid TOML: {exc}",
                           line=_duplicate_line(text, str(exc))) from None
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
        rf"""|["']?{name}["']?\s*=)""")
    hits = [n for n, t in enumerate(text.splitlines(), 1) if pattern.match(t)]
    return hits[1] if len(hits) > 1 else (hits[0] if hits else None)


def _refuse_a_password(check: _Validator, key_path: tuple[Any, ...], key: str, dsn: str) -> None:
    """A connection string in the project file never holds a password (``password=``,
    ``passwd=``, a URI's ``user:password@`` or ``?password=``: :func:`parse_dsn` reads them all)."""
    if parse_dsn(dsn).password_key is not None:
        raise check.fail(
            (*key_path, key),
            f"the {key} holds a password: secrets never go in the project file; "
            "set password_env to the name of an environment variable, or keep it in the keyring",
        )


def _store(check: _Validator, table: Mapping[str, Any], directory: Path) -> StoreConfig:
    key_path = ("store",)
    check.known_keys(table, _STORE_KEYS, key_path)
    kind = check.string(table, "type", key_path) or "duckdb"
    if kind not in STORE_TYPES:
        raise check.fail((*key_path, "type"),
                         f"unknown store type '{kind}' (expected {', '.join(STORE_TYPES)})")
    path = check.string(table, "path", key_path)
    catalog = check.string(table, "catalog", key_path)
    password_env = check.string(table, "password_env", key_path)
    data_path = check.string(table, "data_path", key_path)
    if kind == "duckdb":
        if path is not None and not path.strip():
            raise check.fail((*key_path, "path"), "the store's path is empty (leave the key out "
                             f"for {DEFAULT_STORE} beside the project file)")
        for key, value in (("catalog", catalog), ("password_env", password_env),
                           ("data_path", data_path)):
            if value is not None:
                raise check.fail((*key_path, key), f"a local store takes a 'path', not a '{key}'"
                                 " (set type = \"ducklake\" for a team store)")
        resolved = (directory / os.path.expanduser(path or DEFAULT_STORE)).resolve()
        return StoreConfig(type=kind, path=resolved)
    if path is not None:
        raise check.fail((*key_path, "path"), "a team store (ducklake) takes a 'catalog' and a "
                         "'data_path', not a 'path'")
    if not catalog:
        raise check.fail(key_path, "a team store (ducklake) needs a 'catalog': the PostgreSQL "
                         "DSN of its catalog database")
    if not data_path:
        raise check.fail(key_path, "a team store (ducklake) needs a 'data_path': the folder "
                         "every member reaches, where its data files go")
    _refuse_a_password(check, key_path, "catalog", catalog)
    storage = _storage(check, table, key_path, data_path, "data_path")
    if "://" not in data_path:  # a folder, relative to the project file; else object storage
        data_path = str((directory / os.path.expanduser(data_path)).resolve())
    return StoreConfig(type=kind, catalog=catalog, password_env=password_env,
                       data_path=data_path, storage=storage)


def _storage(check: _Validator, table: Mapping[str, Any], key_path: tuple[Any, ...],
             path: str | None, path_key: str) -> StorageConfig | None:
    """The object-storage keys of a source or team store (see core/storage.py); None when it
    has none. They belong to a URL only."""
    given = sorted(key for key in STORAGE_KEYS if key in table)
    if not is_url(path):
        if given:
            raise check.fail((*key_path, given[0]), f"{given[0]} is for object storage; the "
                             f"{path_key} is not a URL (s3://, gs://, az://, https://)")
        return None
    use_ssl = check.boolean(table, "use_ssl", key_path, True) if "use_ssl" in table else None
    storage = StorageConfig(
        access_key_id=check.string(table, "access_key_id", key_path),
        secret_env=check.string(table, "secret_env", key_path),
        endpoint=check.string(table, "endpoint", key_path),
        region=check.string(table, "region", key_path),
        url_style=check.string(table, "url_style", key_path),
        use_ssl=use_ssl,
        credential_chain=check.boolean(table, "credential_chain", key_path, False))
    problem = storage_problem(storage, path or "")
    if problem:
        raise check.fail((*key_path, problem[0]), problem[1])
    if problem is None and path and path.lower().startswith(("http://", "https://")) \
            and any(c in path for c in "*?["):
        raise check.fail((*key_path, path_key), "a web address names one file; it cannot be "
                         "a glob")
    return storage


def _source(check: _Validator, name: str, table: Mapping[str, Any], key_path: tuple[Any, ...],
            directory: Path) -> SourceConfig:
    if not _NAME.match(name):
        raise check.fail(key_path, "a source name takes letters, digits, '_' and '-' only")
    check.known_keys(table, _SOURCE_KEYS, key_path)
    kind = check.string(table, "type", key_path, required=True)
    if kind not in SOURCE_TYPES:
        raise check.fail((*key_path, "type"),
                         f"unknown source type '{kind}' (expected {', '.join(SOURCE_TYPES)})")
    path = check.string(table, "path", key_path)
    dsn = check.string(table, "dsn", key_path)
    password_env = check.string(table, "password_env", key_path)
    pushdown = check.boolean(table, "pushdown", key_path, False)
    trust_role = check.boolean(table, "trust_role", key_path, False)
    concurrency = check.integer(table, "concurrency", key_path, minimum=1,
                                maximum=MAX_CONCURRENCY) or 1
    snapshot_as_of = check.boolean(table, "snapshot_as_of", key_path, False)
    if snapshot_as_of and kind not in ("iceberg", "delta"):
        raise check.fail((*key_path, "snapshot_as_of"), "snapshot_as_of reads an Iceberg or "
                         f"Delta table as it was at the pull's as-of; a {kind} source keeps no "
                         "snapshots")
    storage = _storage(check, table, key_path, path, "path")
    if pushdown and kind not in SERVER_SOURCE_TYPES:
        raise check.fail((*key_path, "pushdown"),
                         "pushdown runs the SQL on a postgres or mysql server; a "
                         f"{kind} source is read by DuckDB itself")
    if trust_role and kind not in SERVER_SOURCE_TYPES:
        raise check.fail((*key_path, "trust_role"),
                         "trust_role accepts the role of a postgres or mysql server; a "
                         f"{kind} source has none")
    if kind in FILE_SOURCE_TYPES:
        if not path:
            raise check.fail(key_path, f"a {kind} source needs a 'path'")
        if dsn is not None:
            raise check.fail((*key_path, "dsn"), f"a {kind} source takes a 'path', not a 'dsn'")
        if password_env is not None:
            raise check.fail((*key_path, "password_env"), f"a {kind} source has no password")
        if is_url(path) and kind in ("duckdb", "sqlite"):
            raise check.fail((*key_path, "path"), f"a {kind} source is a file on this computer; "
                             "object storage holds parquet, csv, iceberg or delta sources")
        resolved = path if is_url(path) else str(directory / os.path.expanduser(path))
        return SourceConfig(name=name, type=kind, path=path, resolved_path=resolved,
                            concurrency=concurrency, storage=storage,
                            snapshot_as_of=snapshot_as_of)
    if dsn is None:
        raise check.fail(key_path, f"a {kind} source needs a 'dsn'")
    if path is not None:
        raise check.fail((*key_path, "path"), f"a {kind} source takes a 'dsn', not a 'path'")
    _refuse_a_password(check, key_path, "dsn", dsn)
    if kind == "mysql" and parse_dsn(dsn).database is None:
        raise check.fail((*key_path, "dsn"),
                         "a mysql dsn must name its database (database=NAME, or "
                         "mysql://user@host:3306/NAME): the metric SQL reads that one only")
    return SourceConfig(name=name, type=kind, dsn=dsn, password_env=password_env,
                        pushdown=pushdown, concurrency=concurrency, trust_role=trust_role)


def _metric(check: _Validator, name: str, table: Mapping[str, Any], key_path: tuple[Any, ...],
            sources: Mapping[str, SourceConfig]) -> MetricConfig:
    if not _NAME.match(name):
        raise check.fail(key_path, "a metric name takes letters, digits, '_' and '-' only")
    check.known_keys(table, _METRIC_KEYS, key_path)
    source = check.string(table, "source", key_path, required=True)
    assert source is not None
    if source not in sources:
        known = ", ".join(sources) or "none defined"
        raise check.fail((*key_path, "source"), f"unknown source '{source}' (sources: {known})")
    grain_text = check.string(table, "grain", key_path, required=True)
    try:
        grain = Grain(grain_text or "")
    except ValueError:
        raise check.fail(
            (*key_path, "grain"),
            f"unknown grain '{grain_text}' (expected minute, hour, day, week or month)",
        ) from None
    if "lookback" not in table:
        raise check.fail(key_path, "missing required key 'lookback'")
    lookback = table["lookback"]
    if isinstance(lookback, bool) or not isinstance(lookback, int | str):
        raise check.fail((*key_path, "lookback"),
                         f"expected a duration like \"7d\" or a number of buckets, "
                         f"got {_kind(lookback)}")
    try:
        buckets = lookback_buckets(lookback, grain)
    except ValueError as exc:
        raise check.fail((*key_path, "lookback"), str(exc)) from None
    sql = check.string(table, "sql", key_path, required=True)
    assert sql is not None
    if not sql.strip():
        raise check.fail((*key_path, "sql"), "the SQL is empty")
    timezone = check.string(table, "timezone", key_path)
    if timezone is not None and not timezone.strip():
        raise check.fail((*key_path, "timezone"), "the time zone is empty (use an IANA name "
                         "like \"Europe/Berlin\" or \"UTC\", or leave the key out for UTC)")
    timezone = timezone or "UTC"
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise check.fail((*key_path, "timezone"),
                         f"unknown time zone '{timezone}' (use an IANA name like "
                         "\"Europe/Berlin\" or \"UTC\")") from None
    schedule = check.string(table, "schedule", key_path)
    every = check.duration(table, "every", key_path)
    if schedule is not None and every is not None:
        raise check.fail((*key_path, "every"), "give either 'schedule' or 'every', not both")
    if schedule is not None:
        try:
            _validate_cron(schedule, zone)
        except ValueError as exc:
            raise check.fail((*key_path, "schedule"), str(exc)) from None
    if every is not None and every <= timedelta(0):
        raise check.fail((*key_path, "every"), "must be longer than zero")
    retries = check.integer(table, "retries", key_path, minimum=0, maximum=MAX_RETRIES)
    retry_base = check.duration(table, "retry_base", key_path)
    retry_max = check.duration(table, "retry_max", key_path)
    measures = check.names(table, "measures", key_path)
    dimensions = check.names(table, "dimensions", key_path)
    if measures and dimensions and set(measures) & set(dimensions):
        both = ", ".join(sorted(set(measures) & set(dimensions)))
        raise check.fail((*key_path, "dimensions"), f"{both} cannot be a measure and a dimension")
    audit_every = check.duration(table, "audit_every", key_path)
    if audit_every is not None and audit_every <= timedelta(0):
        raise check.fail((*key_path, "audit_every"), "must be longer than zero")
    audit_factor = check.integer(table, "audit_factor", key_path, minimum=2)
    if audit_factor is not None:
        try:
            lookback_buckets(buckets * audit_factor, grain)
        except ValueError:
            raise check.fail((*key_path, "audit_factor"), f"{audit_factor} times the lookback "
                             "is too long: an audit may span at most 100 years") from None
    settle_share = check.number(table, "settle_share", key_path)
    if settle_share is not None and not 0 < settle_share <= 1:
        raise check.fail((*key_path, "settle_share"),
                         f"must be a share above 0 and at most 1 (0.99: 99 %), not {settle_share}")
    checks = _checks(check, table.get("checks", {}), (*key_path, "checks"))
    alerts = _alerts(check, table.get("alerts", []), (*key_path, "alerts"))
    return MetricConfig(
        name=name,
        source=source,
        grain=grain,
        lookback=lookback,
        buckets=buckets,
        sql=sql,
        timezone=timezone,
        schedule=schedule,
        every=every,
        complete_buckets_only=check.boolean(table, "complete_buckets_only", key_path, False),
        allow_empty=check.boolean(table, "allow_empty", key_path, False),
        measures=measures,
        dimensions=dimensions,
        retries=3 if retries is None else retries,
        retry_base=retry_base or timedelta(seconds=2),
        retry_max=retry_max or timedelta(minutes=5),
        checks=checks,
        alerts=alerts,
        description=check.string(table, "description", key_path),
        audit_every=audit_every,
        audit_factor=4 if audit_factor is None else audit_factor,
        change_probe=_change_probe(check, table, key_path),
        settle_share=0.99 if settle_share is None else float(settle_share),
    )


def _change_probe(check: _Validator, table: Mapping[str, Any],
                  key_path: tuple[Any, ...]) -> str | None:
    """The metric's ``change_probe``: one query that only reads (a SQL mistake in it is found
    when the metric is checked or pulled, as for the metric's own SQL)."""
    import duckdb

    probe = check.string(table, "change_probe", key_path)
    if probe is None:
        return None
    if not probe.strip():
        raise check.fail((*key_path, "change_probe"), "the change_probe's SQL is empty")
    try:
        statements = duckdb.extract_statements(probe)
    except duckdb.Error:
        return probe
    if len(statements) > 1:
        raise check.fail((*key_path, "change_probe"), f"the change_probe holds {len(statements)} "
                         "statements; it is exactly one query (SELECT, WITH or FROM ...)")
    if statements and statements[0].type != duckdb.StatementType.SELECT:
        kind = " ".join(probe.split()[:1]).upper()
        article = "an" if kind[:1] in "AEIOU" else "a"
        raise check.fail((*key_path, "change_probe"), f"the change_probe is {article} {kind} "
                         "statement; it may only read (SELECT, WITH or FROM ...)")
    return probe


def _checks(check: _Validator, raw: Any, key_path: tuple[Any, ...]) -> tuple[CheckConfig, ...]:
    out = []
    for name, entry in check.table(raw, key_path).items():
        entry_path = (*key_path, name)
        table = check.table(entry, entry_path)
        check.known_keys(table, _CHECK_KEYS, entry_path)
        severity = check.string(table, "severity", entry_path) or "error"
        if severity not in SEVERITIES:
            raise check.fail((*entry_path, "severity"),
                             f"unknown severity '{severity}' (expected error or warn)")
        measure = check.string(table, "measure", entry_path)
        low = check.number(table, "min", entry_path)
        high = check.number(table, "max", entry_path)
        row_change = check.number(table, "row_change_pct", entry_path)
        revision = check.number(table, "revision_pct", entry_path)
        kinds = sum(x is not None for x in (measure, row_change, revision))
        if kinds != 1:
            raise check.fail(entry_path, "a check is one of: { measure = ..., min/max = ... }, "
                             "{ row_change_pct = ... } or { revision_pct = ... }")
        if measure is not None and low is None and high is None:
            raise check.fail(entry_path, f"the check on '{measure}' needs a 'min' or a 'max'")
        if measure is None and (low is not None or high is not None):
            raise check.fail(entry_path, "'min' and 'max' need a 'measure'")
        for key, value in (("row_change_pct", row_change), ("revision_pct", revision)):
            if value is not None and value < 0:
                raise check.fail((*entry_path, key), "must not be negative")
        out.append(CheckConfig(name=name, severity=severity, measure=measure, min=low, max=high,
                               row_change_pct=row_change, revision_pct=revision))
    return tuple(out)


def _alerts(check: _Validator, raw: Any, key_path: tuple[Any, ...]) -> tuple[AlertRule, ...]:
    if not isinstance(raw, list):
        raise check.fail(key_path, "alerts are a list of tables ([[metrics.NAME.alerts]])")
    out: list[AlertRule] = []
    names: set[str] = set()
    for index, entry in enumerate(raw):
        entry_path = (*key_path, index)
        table = check.table(entry, entry_path)
        check.known_keys(table, _ALERT_KEYS, entry_path)
        kind = check.string(table, "kind", entry_path, required=True)
        if kind not in ALERT_KINDS:
            raise check.fail((*entry_path, "kind"),
                             f"unknown alert kind '{kind}' (expected {', '.join(ALERT_KINDS)})")
        assert kind is not None
        measure = check.string(table, "measure", entry_path)
        above = check.number(table, "above", entry_path)
        below = check.number(table, "below", entry_path)
        series = table.get("series", {})
        if not isinstance(series, Mapping):
            raise check.fail((*entry_path, "series"),
                             "expected a table of dimension values, like { country = \"DE\" }")
        older_than = check.integer(table, "older_than", entry_path, minimum=1)
        change_pct = check.number(table, "change_pct", entry_path)
        max_age = check.duration(table, "max_age", entry_path)
        allowed = keys_of("alert", only=kind)
        for key in table:
            if key not in allowed:
                raise check.fail((*entry_path, key), f"a {kind} alert takes no '{key}'")
        if kind == "threshold":
            if measure is None:
                raise check.fail(entry_path, "a threshold alert needs a 'measure'")
            if above is None and below is None:
                raise check.fail(entry_path, "a threshold alert needs 'above' or 'below'")
        judge = check.string(table, "judge", entry_path) or "expected"
        if judge not in JUDGES:
            raise check.fail((*entry_path, "judge"),
                             f"unknown judge '{judge}' (expected {', '.join(JUDGES)})")
        if kind == "restatement" and older_than is None:
            raise check.fail(entry_path, "a restatement alert needs 'older_than' (buckets)")
        if kind == "freshness" and max_age is None:
            raise check.fail(entry_path, "a freshness alert needs 'max_age' (like \"26h\")")
        name = check.string(table, "name", entry_path)
        if name is not None:
            if not name.strip():
                raise check.fail((*entry_path, "name"), "the rule's name is empty (leave the key "
                                 f"out to call it {kind}#{index + 1})")
            if name in names:
                raise check.fail((*entry_path, "name"), f"another alert rule of this metric is "
                                 f"already named '{name}'; rule names are unique per metric")
            names.add(name)
        out.append(AlertRule(
            kind=kind, position=index + 1, name=name,
            measure=measure, above=above, below=below, series=dict(series),
            older_than=older_than, change_pct=change_pct, max_age=max_age,
            command=_command(check, table, entry_path), judge=judge,
        ))
    return tuple(out)


def _dashboard(check: _Validator, table: Mapping[str, Any],
               metrics: Mapping[str, MetricConfig]) -> Dashboard:
    key_path: tuple[Any, ...] = ("dashboard",)
    check.known_keys(table, _DASHBOARD_KEYS, key_path)
    columns = check.integer(table, "columns", key_path, minimum=1)
    if columns is not None and columns > 12:
        raise check.fail((*key_path, "columns"), f"at most 12 columns, not {columns}")
    raw = table.get("charts", [])
    if not isinstance(raw, list):
        raise check.fail((*key_path, "charts"),
                         'expected a list of charts, like [{ metric = "daily_orders" }]')
    charts = []
    for index, entry in enumerate(raw):
        entry_path = (*key_path, "charts", index)
        chart = check.table(entry, entry_path)
        check.known_keys(chart, _DASHBOARD_CHART_KEYS, entry_path)
        metric = check.string(chart, "metric", entry_path, required=True)
        if metric not in metrics:
            known = ", ".join(metrics) or "none"
            raise check.fail((*entry_path, "metric"),
                             f"unknown metric '{metric}' (metrics: {known})")
        assert metric is not None
        series = chart.get("series")
        if series is not None and not isinstance(series, Mapping):
            raise check.fail((*entry_path, "series"),
                             "expected a table of dimension values, like { country = \"DE\" }")
        charts.append(DashboardChart(metric, check.string(chart, "measure", entry_path),
                                     dict(series) if series is not None else None))
    return Dashboard(tuple(charts), columns or DASHBOARD_COLUMNS)


def _command(check: _Validator, table: Mapping[str, Any],
             entry_path: tuple[Any, ...]) -> str | None:
    """An alert rule's ``command``: split like a shell line (and run without a shell)."""
    import shlex

    command = check.string(table, "command", entry_path)
    if command is None:
        return None
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise check.fail((*entry_path, "command"), f"the command cannot be split like a shell "
                         f"line: {str(exc).lower()}") from None
    if not argv:
        raise check.fail((*entry_path, "command"), "the command is empty (leave the key out "
                         "for no command)")
    return command


def load_project(path: str | os.PathLike[str]) -> Project:
    """Read and validate the project file at ``path``."""
    if not str(path).strip():
        raise ProjectError(repr(str(path)), "the project file's name is empty")
    file = Path(path).expanduser().absolute()
    if file.exists() and not file.is_file() and not file.is_dir():
        raise ProjectError(str(file), "is not a regular file (a device, a pipe or a socket); "
                           "give a project file (.toml)")
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


class ProjectDocument:
    """A project file opened for editing: change it, then :meth:`save` it.

    Every change keeps the user's comments and layout. ``save`` validates the new text first,
    so a change that would break the project is refused and the file on disk stays as it was.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path).expanduser().absolute()
        text = self.path.read_text(encoding="utf-8-sig") if self.path.exists() else ""
        self.document = _parse_toml(text, self.path)

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

    def remove_source(self, name: str) -> None:
        self._section("sources").pop(name, None)

    def remove_metric(self, name: str) -> None:
        self._section("metrics").pop(name, None)

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
            raise ProjectError(str(self.path), f"there is already a [{section}.{new}]",
                               key=f"{section}.{new}.name")
        text = _rename_headers(self.text(), section, old, new)
        renamed = _parse_toml(text, self.path)
        if old in renamed.get(section, {}):  # written inline or as dotted keys: move the value
            value = renamed[section][old]
            renamed[section].pop(old)
            renamed[section][new] = value
        self.document = renamed

    def set_store_path(self, path: str) -> None:
        if "store" not in self.document:
            self.document["store"] = tomlkit.table()
        self.document["store"]["path"] = path

    @staticmethod
    def _update(section: Any, name: str, values: Mapping[str, Any],
                defaults: Mapping[str, Any]) -> None:
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


_METRIC_DEFAULTS: Mapping[str, Any] = {"timezone": "UTC", "complete_buckets_only": False,
                                       "allow_empty": False}


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
        header = _HEADER.match(line.rstrip("\r\n"))
        if header and not line.lstrip().startswith("#"):
            names = _split_dotted(header.group(2))
            if names[:2] == [section, old]:
                brackets = header.group(1)
                dotted = ".".join(_toml_key(n) for n in [section, new, *names[2:]])
                comment = f"  {header.group(3)}" if header.group(3) else ""
                ending = line[len(line.rstrip("\r\n")):]
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


