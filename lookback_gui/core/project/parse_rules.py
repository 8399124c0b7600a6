"""A metric's checks and alert rules, validated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lookback_gui.core.project.keys import keys_of
from lookback_gui.core.project.locate import Validator
from lookback_gui.core.project.model import ALERT_KINDS, JUDGES, SEVERITIES, AlertRule, CheckConfig

_CHECK_KEYS = keys_of("check")
_ALERT_KEYS = keys_of("alert")


def check_tables(check: Validator, raw: Any, key_path: tuple[Any, ...]) -> tuple[CheckConfig, ...]:
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


def alert_rules(check: Validator, raw: Any, key_path: tuple[Any, ...]) -> tuple[AlertRule, ...]:
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
