"""A metric's table: its source, grain, lookback, schedule and settling, validated."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lookback_gui.core.project.keys import keys_of
from lookback_gui.core.project.locate import Validator, kind_of
from lookback_gui.core.project.model import MAX_RETRIES, MetricConfig, SourceConfig
from lookback_gui.core.project.parse_rules import alert_rules, check_tables
from lookback_gui.core.project.parse_sources import NAME
from lookback_gui.core.timing.windows import Grain, lookback_buckets

_METRIC_KEYS = keys_of("metric")


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


def metric_settings(
    check: Validator,
    name: str,
    table: Mapping[str, Any],
    key_path: tuple[Any, ...],
    sources: Mapping[str, SourceConfig],
) -> MetricConfig:
    if not NAME.match(name):
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
    checks = check_tables(check, table.get("checks", {}), (*key_path, "checks"))
    alerts = alert_rules(check, table.get("alerts", []), (*key_path, "alerts"))
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
