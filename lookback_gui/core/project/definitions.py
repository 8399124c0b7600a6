"""A metric's definition version: a short hash of what decides its values.

The normalised SQL (comments dropped, whitespace runs made one space; string literals and
quoted names kept as written), the source, the grain, the time zone and the explicit measures
and dimensions. Every run records the version it ran under, so values that change because the
definition changed (*redefinitions*) are told apart from late data.
"""

from __future__ import annotations

import hashlib
import json
import re

from lookback_gui.core.project import MetricConfig

_TOKENS = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*")|(--[^\n]*|/\*.*?\*/)|(\s+)""", re.DOTALL)


def normalise_sql(sql: str) -> str:
    """``sql`` without comments, with each run of whitespace one space, trimmed."""

    def one(match: re.Match[str]) -> str:
        if match.group(1) is not None:  # a string literal or quoted name stays as written
            return match.group(1)
        return " "

    text = _TOKENS.sub(one, sql)
    return re.sub(r" +", " ", text).strip().rstrip(";").strip()


def definition_version(config: MetricConfig) -> str:
    """The version of ``config``'s definition: 12 hex digits of a SHA-256."""
    parts = {
        "sql": normalise_sql(config.sql),
        "source": config.source,
        "grain": config.grain.value,
        "timezone": config.timezone,
        "measures": list(config.measures) if config.measures is not None else None,
        "dimensions": list(config.dimensions) if config.dimensions is not None else None,
    }
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
