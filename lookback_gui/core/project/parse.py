"""Loading the project file: the text parsed, every table validated, one :class:`Project` made.

A broken file is refused as a whole with the file, the line and the key of the first mistake."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomlkit
import tomlkit.exceptions

from lookback_gui.core.errors import ProjectError
from lookback_gui.core.project.keys import keys_of
from lookback_gui.core.project.locate import Validator, kind_of
from lookback_gui.core.project.model import (
    ALERT_KINDS,
    DASHBOARD_COLUMNS,
    DEFAULT_STORE,
    FILE_SOURCE_TYPES,
    JUDGES,
    MAX_CONCURRENCY,
    MAX_RETRIES,
    SERVER_SOURCE_TYPES,
    SEVERITIES,
    SOURCE_TYPES,
    AlertRule,
    CheckConfig,
    Dashboard,
    DashboardChart,
    MetricConfig,
    Project,
    SourceConfig,
)
from lookback_gui.core.storage.dsn import parse_dsn
from lookback_gui.core.storage.store_config import STORE_TYPES, StoreConfig
from lookback_gui.core.storage.urls import STORAGE_KEYS, StorageConfig, is_url, storage_problem
from lookback_gui.core.timing.windows import Grain, lookback_buckets


def _validate_cron(expression: str, zone: ZoneInfo) -> None:
    from lookback_gui.core.timing.cron import cron_trigger

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


# which keys each table takes: the one table of keys that the manual is made from too
_TOP_KEYS = keys_of("project")
_STORE_KEYS = keys_of("store")
_SOURCE_KEYS = keys_of("source")
_METRIC_KEYS = keys_of("metric")
_CHECK_KEYS = keys_of("check")
_ALERT_KEYS = keys_of("alert")
_DASHBOARD_KEYS = keys_of("dashboard")
_DASHBOARD_CHART_KEYS = keys_of("dashboard chart")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def parse_project(text: str, path: Path) -> Project:
    """Validate ``text`` as the project file at ``path``; raise ProjectError on the first mistake."""
    document = parse_toml(text, path)
    data = document.unwrap()
    check = Validator(path, text)
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


def _refuse_a_password(check: Validator, key_path: tuple[Any, ...], key: str, dsn: str) -> None:
    """A connection string in the project file never holds a password (``password=``,
    ``passwd=``, a URI's ``user:password@`` or ``?password=``: :func:`parse_dsn` reads them all)."""
    if parse_dsn(dsn).password_key is not None:
        raise check.fail(
            (*key_path, key),
            f"the {key} holds a password: secrets never go in the project file; "
            "set password_env to the name of an environment variable, or keep it in the keyring",
        )


def _store(check: Validator, table: Mapping[str, Any], directory: Path) -> StoreConfig:
    key_path = ("store",)
    check.known_keys(table, _STORE_KEYS, key_path)
    kind = check.string(table, "type", key_path) or "duckdb"
    if kind not in STORE_TYPES:
        raise check.fail(
            (*key_path, "type"), f"unknown store type '{kind}' (expected {', '.join(STORE_TYPES)})"
        )
    path = check.string(table, "path", key_path)
    catalog = check.string(table, "catalog", key_path)
    password_env = check.string(table, "password_env", key_path)
    data_path = check.string(table, "data_path", key_path)
    if kind == "duckdb":
        if path is not None and not path.strip():
            raise check.fail(
                (*key_path, "path"),
                f"the store's path is empty (leave the key out for {DEFAULT_STORE} beside the project file)",
            )
        for key, value in (("catalog", catalog), ("password_env", password_env), ("data_path", data_path)):
            if value is not None:
                raise check.fail(
                    (*key_path, key),
                    f"a local store takes a 'path', not a '{key}' (set type = \"ducklake\" for a team store)",
                )
        resolved = (directory / os.path.expanduser(path or DEFAULT_STORE)).resolve()
        return StoreConfig(type=kind, path=resolved)
    if path is not None:
        raise check.fail(
            (*key_path, "path"), "a team store (ducklake) takes a 'catalog' and a 'data_path', not a 'path'"
        )
    if not catalog:
        raise check.fail(
            key_path, "a team store (ducklake) needs a 'catalog': the PostgreSQL DSN of its catalog database"
        )
    if not data_path:
        raise check.fail(
            key_path,
            "a team store (ducklake) needs a 'data_path': the folder "
            "every member reaches, where its data files go",
        )
    _refuse_a_password(check, key_path, "catalog", catalog)
    storage = _storage(check, table, key_path, data_path, "data_path")
    if "://" not in data_path:  # a folder, relative to the project file; else object storage
        data_path = str((directory / os.path.expanduser(data_path)).resolve())
    return StoreConfig(
        type=kind, catalog=catalog, password_env=password_env, data_path=data_path, storage=storage
    )


def _storage(
    check: Validator, table: Mapping[str, Any], key_path: tuple[Any, ...], path: str | None, path_key: str
) -> StorageConfig | None:
    """The object-storage keys of a source or team store (see core/storage/urls.py); None when it
    has none. They belong to a URL only."""
    given = sorted(key for key in STORAGE_KEYS if key in table)
    if not is_url(path):
        if given:
            raise check.fail(
                (*key_path, given[0]),
                f"{given[0]} is for object storage; the "
                f"{path_key} is not a URL (s3://, gs://, az://, https://)",
            )
        return None
    use_ssl = check.boolean(table, "use_ssl", key_path, True) if "use_ssl" in table else None
    storage = StorageConfig(
        access_key_id=check.string(table, "access_key_id", key_path),
        secret_env=check.string(table, "secret_env", key_path),
        endpoint=check.string(table, "endpoint", key_path),
        region=check.string(table, "region", key_path),
        url_style=check.string(table, "url_style", key_path),
        use_ssl=use_ssl,
        credential_chain=check.boolean(table, "credential_chain", key_path, False),
    )
    problem = storage_problem(storage, path or "")
    if problem:
        raise check.fail((*key_path, problem[0]), problem[1])
    if (
        problem is None
        and path
        and path.lower().startswith(("http://", "https://"))
        and any(c in path for c in "*?[")
    ):
        raise check.fail((*key_path, path_key), "a web address names one file; it cannot be a glob")
    return storage


def _source(
    check: Validator, name: str, table: Mapping[str, Any], key_path: tuple[Any, ...], directory: Path
) -> SourceConfig:
    if not _NAME.match(name):
        raise check.fail(key_path, "a source name takes letters, digits, '_' and '-' only")
    check.known_keys(table, _SOURCE_KEYS, key_path)
    kind = check.string(table, "type", key_path, required=True)
    if kind not in SOURCE_TYPES:
        raise check.fail(
            (*key_path, "type"), f"unknown source type '{kind}' (expected {', '.join(SOURCE_TYPES)})"
        )
    path = check.string(table, "path", key_path)
    dsn = check.string(table, "dsn", key_path)
    password_env = check.string(table, "password_env", key_path)
    pushdown = check.boolean(table, "pushdown", key_path, False)
    trust_role = check.boolean(table, "trust_role", key_path, False)
    concurrency = check.integer(table, "concurrency", key_path, minimum=1, maximum=MAX_CONCURRENCY) or 1
    snapshot_as_of = check.boolean(table, "snapshot_as_of", key_path, False)
    if snapshot_as_of and kind not in ("iceberg", "delta"):
        raise check.fail(
            (*key_path, "snapshot_as_of"),
            "snapshot_as_of reads an Iceberg or "
            f"Delta table as it was at the pull's as-of; a {kind} source keeps no "
            "snapshots",
        )
    storage = _storage(check, table, key_path, path, "path")
    if pushdown and kind not in SERVER_SOURCE_TYPES:
        raise check.fail(
            (*key_path, "pushdown"),
            f"pushdown runs the SQL on a postgres or mysql server; a {kind} source is read by DuckDB itself",
        )
    if trust_role and kind not in SERVER_SOURCE_TYPES:
        raise check.fail(
            (*key_path, "trust_role"),
            f"trust_role accepts the role of a postgres or mysql server; a {kind} source has none",
        )
    if kind in FILE_SOURCE_TYPES:
        if not path:
            raise check.fail(key_path, f"a {kind} source needs a 'path'")
        if dsn is not None:
            raise check.fail((*key_path, "dsn"), f"a {kind} source takes a 'path', not a 'dsn'")
        if password_env is not None:
            raise check.fail((*key_path, "password_env"), f"a {kind} source has no password")
        if is_url(path) and kind in ("duckdb", "sqlite"):
            raise check.fail(
                (*key_path, "path"),
                f"a {kind} source is a file on this computer; "
                "object storage holds parquet, csv, iceberg or delta sources",
            )
        resolved = path if is_url(path) else str(directory / os.path.expanduser(path))
        return SourceConfig(
            name=name,
            type=kind,
            path=path,
            resolved_path=resolved,
            concurrency=concurrency,
            storage=storage,
            snapshot_as_of=snapshot_as_of,
        )
    if dsn is None:
        raise check.fail(key_path, f"a {kind} source needs a 'dsn'")
    if path is not None:
        raise check.fail((*key_path, "path"), f"a {kind} source takes a 'dsn', not a 'path'")
    _refuse_a_password(check, key_path, "dsn", dsn)
    if kind == "mysql" and parse_dsn(dsn).database is None:
        raise check.fail(
            (*key_path, "dsn"),
            "a mysql dsn must name its database (database=NAME, or "
            "mysql://user@host:3306/NAME): the metric SQL reads that one only",
        )
    return SourceConfig(
        name=name,
        type=kind,
        dsn=dsn,
        password_env=password_env,
        pushdown=pushdown,
        concurrency=concurrency,
        trust_role=trust_role,
    )


def _metric(
    check: Validator,
    name: str,
    table: Mapping[str, Any],
    key_path: tuple[Any, ...],
    sources: Mapping[str, SourceConfig],
) -> MetricConfig:
    if not _NAME.match(name):
        raise check.fail(key_path, "a metric name takes letters, digits, '_' and '-' only")
    check.known_keys(table, _METRIC_KEYS, key_path)
    source = check.string(table, "source", key_path, required=True)
    assert source is not None
    if source not in sources:
        known = ", ".join(sources) or "none defined"
        raise check.fail((*key_path, "source"), f"unknown source '{source}' (sources: {known})")
    grain, lookback, buckets = _lookback(check, table, key_path)
    sql = check.string(table, "sql", key_path, required=True)
    assert sql is not None
    if not sql.strip():
        raise check.fail((*key_path, "sql"), "the SQL is empty")
    timezone, zone = _zone(check, table, key_path)
    schedule, every = _schedule(check, table, key_path, zone)
    retries = check.integer(table, "retries", key_path, minimum=0, maximum=MAX_RETRIES)
    retry_base = check.duration(table, "retry_base", key_path)
    retry_max = check.duration(table, "retry_max", key_path)
    measures = check.names(table, "measures", key_path)
    dimensions = check.names(table, "dimensions", key_path)
    if measures and dimensions and set(measures) & set(dimensions):
        both = ", ".join(sorted(set(measures) & set(dimensions)))
        raise check.fail((*key_path, "dimensions"), f"{both} cannot be a measure and a dimension")
    audit_every, audit_factor = _audit(check, table, key_path, grain, buckets)
    settle_share = check.number(table, "settle_share", key_path)
    if settle_share is not None and not 0 < settle_share <= 1:
        raise check.fail(
            (*key_path, "settle_share"),
            f"must be a share above 0 and at most 1 (0.99: 99 %), not {settle_share}",
        )
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


def _lookback(
    check: Validator, table: Mapping[str, Any], key_path: tuple[Any, ...]
) -> tuple[Grain, int | str, int]:
    """A metric's grain, its lookback as written and the lookback in buckets."""
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
        raise check.fail(
            (*key_path, "lookback"),
            f'expected a duration like "7d" or a number of buckets, got {kind_of(lookback)}',
        )
    try:
        buckets = lookback_buckets(lookback, grain)
    except ValueError as exc:
        raise check.fail((*key_path, "lookback"), str(exc)) from None
    return grain, lookback, buckets


def _zone(check: Validator, table: Mapping[str, Any], key_path: tuple[Any, ...]) -> tuple[str, ZoneInfo]:
    """A metric's time zone: its name (UTC when the file does not say) and the zone."""
    timezone = check.string(table, "timezone", key_path)
    if timezone is not None and not timezone.strip():
        raise check.fail(
            (*key_path, "timezone"),
            "the time zone is empty (use an IANA name "
            'like "Europe/Berlin" or "UTC", or leave the key out for UTC)',
        )
    timezone = timezone or "UTC"
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise check.fail(
            (*key_path, "timezone"),
            f'unknown time zone \'{timezone}\' (use an IANA name like "Europe/Berlin" or "UTC")',
        ) from None
    return timezone, zone


def _schedule(
    check: Validator, table: Mapping[str, Any], key_path: tuple[Any, ...], zone: ZoneInfo
) -> tuple[str | None, timedelta | None]:
    """A metric's ``schedule`` (cron) or ``every``: one of them, or neither."""
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
    return schedule, every


def _audit(
    check: Validator, table: Mapping[str, Any], key_path: tuple[Any, ...], grain: Grain, buckets: int
) -> tuple[timedelta | None, int | None]:
    """How often a metric's deep pull runs (``audit_every``) and how deep (``audit_factor``)."""
    audit_every = check.duration(table, "audit_every", key_path)
    if audit_every is not None and audit_every <= timedelta(0):
        raise check.fail((*key_path, "audit_every"), "must be longer than zero")
    audit_factor = check.integer(table, "audit_factor", key_path, minimum=2)
    if audit_factor is not None:
        try:
            lookback_buckets(buckets * audit_factor, grain)
        except ValueError:
            raise check.fail(
                (*key_path, "audit_factor"),
                f"{audit_factor} times the lookback is too long: an audit may span at most 100 years",
            ) from None
    return audit_every, audit_factor


def _change_probe(check: Validator, table: Mapping[str, Any], key_path: tuple[Any, ...]) -> str | None:
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
        raise check.fail(
            (*key_path, "change_probe"),
            f"the change_probe holds {len(statements)} "
            "statements; it is exactly one query (SELECT, WITH or FROM ...)",
        )
    if statements and statements[0].type != duckdb.StatementType.SELECT:
        kind = " ".join(probe.split()[:1]).upper()
        article = "an" if kind[:1] in "AEIOU" else "a"
        raise check.fail(
            (*key_path, "change_probe"),
            f"the change_probe is {article} {kind} statement; it may only read (SELECT, WITH or FROM ...)",
        )
    return probe


def _checks(check: Validator, raw: Any, key_path: tuple[Any, ...]) -> tuple[CheckConfig, ...]:
    out = []
    for name, entry in check.table(raw, key_path).items():
        entry_path = (*key_path, name)
        table = check.table(entry, entry_path)
        check.known_keys(table, _CHECK_KEYS, entry_path)
        severity = check.string(table, "severity", entry_path) or "error"
        if severity not in SEVERITIES:
            raise check.fail(
                (*entry_path, "severity"), f"unknown severity '{severity}' (expected error or warn)"
            )
        measure = check.string(table, "measure", entry_path)
        low = check.number(table, "min", entry_path)
        high = check.number(table, "max", entry_path)
        row_change = check.number(table, "row_change_pct", entry_path)
        revision = check.number(table, "revision_pct", entry_path)
        kinds = sum(x is not None for x in (measure, row_change, revision))
        if kinds != 1:
            raise check.fail(
                entry_path,
                "a check is one of: { measure = ..., min/max = ... }, "
                "{ row_change_pct = ... } or { revision_pct = ... }",
            )
        if measure is not None and low is None and high is None:
            raise check.fail(entry_path, f"the check on '{measure}' needs a 'min' or a 'max'")
        if measure is None and (low is not None or high is not None):
            raise check.fail(entry_path, "'min' and 'max' need a 'measure'")
        for key, value in (("row_change_pct", row_change), ("revision_pct", revision)):
            if value is not None and value < 0:
                raise check.fail((*entry_path, key), "must not be negative")
        out.append(
            CheckConfig(
                name=name,
                severity=severity,
                measure=measure,
                min=low,
                max=high,
                row_change_pct=row_change,
                revision_pct=revision,
            )
        )
    return tuple(out)


def _alerts(check: Validator, raw: Any, key_path: tuple[Any, ...]) -> tuple[AlertRule, ...]:
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
            raise check.fail(
                (*entry_path, "kind"), f"unknown alert kind '{kind}' (expected {', '.join(ALERT_KINDS)})"
            )
        assert kind is not None
        measure = check.string(table, "measure", entry_path)
        above = check.number(table, "above", entry_path)
        below = check.number(table, "below", entry_path)
        series = table.get("series", {})
        if not isinstance(series, Mapping):
            raise check.fail(
                (*entry_path, "series"), 'expected a table of dimension values, like { country = "DE" }'
            )
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
            raise check.fail(
                (*entry_path, "judge"), f"unknown judge '{judge}' (expected {', '.join(JUDGES)})"
            )
        if kind == "restatement" and older_than is None:
            raise check.fail(entry_path, "a restatement alert needs 'older_than' (buckets)")
        if kind == "freshness" and max_age is None:
            raise check.fail(entry_path, "a freshness alert needs 'max_age' (like \"26h\")")
        name = check.string(table, "name", entry_path)
        if name is not None:
            if not name.strip():
                raise check.fail(
                    (*entry_path, "name"),
                    f"the rule's name is empty (leave the key out to call it {kind}#{index + 1})",
                )
            if name in names:
                raise check.fail(
                    (*entry_path, "name"),
                    f"another alert rule of this metric is "
                    f"already named '{name}'; rule names are unique per metric",
                )
            names.add(name)
        out.append(
            AlertRule(
                kind=kind,
                position=index + 1,
                name=name,
                measure=measure,
                above=above,
                below=below,
                series=dict(series),
                older_than=older_than,
                change_pct=change_pct,
                max_age=max_age,
                command=_command(check, table, entry_path),
                judge=judge,
            )
        )
    return tuple(out)


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


def _command(check: Validator, table: Mapping[str, Any], entry_path: tuple[Any, ...]) -> str | None:
    """An alert rule's ``command``: split like a shell line (and run without a shell)."""
    import shlex

    command = check.string(table, "command", entry_path)
    if command is None:
        return None
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise check.fail(
            (*entry_path, "command"), f"the command cannot be split like a shell line: {str(exc).lower()}"
        ) from None
    if not argv:
        raise check.fail((*entry_path, "command"), "the command is empty (leave the key out for no command)")
    return command


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
