"""Whether a measure is additive: whether its values of several series may be summed.

A stacked chart shows the sum of its series at every bucket, which means something only for a
measure that adds up (orders, revenue), not for an average, a ratio or a count of distinct
things (two countries' distinct customers may be the same people).

The rule: a measure is additive unless its name, or the expression the metric's SQL gives it,
says one of ``NON_ADDITIVE_WORDS`` (as a word of the name: ``avg_price``, ``conversion_rate``;
as a function: ``avg(...)``, ``percentile_cont(...)``; ``count(DISTINCT ...)``), takes the
``min`` or ``max`` of its rows, or divides by a column (a ratio: ``sum(a) / count(*)``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

NON_ADDITIVE_WORDS = (
    "avg",
    "average",
    "mean",
    "ratio",
    "rate",
    "pct",
    "percent",
    "share",
    "median",
    "percentile",
    "quantile",
    "distinct",
)
EXTREMES = ("min", "max", "arg_min", "arg_max")  # aggregates whose sum means nothing


@dataclass(frozen=True)
class Additivity:
    """Whether a measure adds up across series, and if not, the reason in words.

    Attributes:
        additive: its values of several series may be summed.
        reason: why not (empty when additive), e.g. "its SQL takes avg(...)".
    """

    additive: bool
    reason: str = ""


def words(text: str) -> list[str]:
    """The lower-case words of a name: ``avgOrderValue`` and ``avg_order_value`` both give
    avg, order, value."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", text)
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def measure_additivity(measure: str, sql: str | None = None) -> Additivity:
    """Whether ``measure`` is additive, by its name and (when given) by the expression of the
    metric's ``sql`` that computes it."""
    said = [w for w in words(measure) if w in NON_ADDITIVE_WORDS]
    if said:
        return Additivity(False, f"its name says {said[0]!r}")
    if sql:
        for expression in _expressions_of(measure, sql):
            reason = _non_additive(expression)
            if reason:
                return Additivity(False, f"its SQL {reason}")
    return Additivity(True)


def _expressions_of(measure: str, sql: str) -> list[dict[str, Any]]:
    """The expressions of every SELECT list (of the query, its CTEs and subqueries) that give
    a column named ``measure``; none when DuckDB cannot parse the SQL (a server's dialect)."""
    import duckdb

    try:
        with duckdb.connect() as con:
            row = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    except duckdb.Error:
        return []
    tree = json.loads(row[0]) if row else {}
    if not isinstance(tree, dict) or tree.get("error"):
        return []
    wanted = measure.lower()
    found: list[dict[str, Any]] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for item in node.get("select_list") or ():
                if isinstance(item, dict) and _output_name(item).lower() == wanted:
                    found.append(item)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(tree.get("statements", []))
    return found


def _output_name(item: dict[str, Any]) -> str:
    if item.get("alias"):
        return str(item["alias"])
    if item.get("class") == "COLUMN_REF" and item.get("column_names"):
        return str(item["column_names"][-1])
    return ""


def _non_additive(node: Any) -> str:
    """What in the expression ``node`` makes it non-additive, in words; empty if nothing."""
    if isinstance(node, list):
        return next((r for r in map(_non_additive, node) if r), "")
    if not isinstance(node, dict):
        return ""
    if node.get("class") == "FUNCTION":
        name = str(node.get("function_name", ""))
        if node.get("distinct"):
            return f"takes {name}(DISTINCT ...)"
        if name.lower() in EXTREMES:
            return f"takes {name}(...)"
        said = [w for w in words(name) if w in NON_ADDITIVE_WORDS]
        if said:
            return f"takes {name}(...)"
        children = node.get("children") or []
        if name == "/" and len(children) == 2 and _refers_to_a_column(children[1]):
            return "divides by a column (a ratio)"
    if node.get("class") == "COLUMN_REF":
        for column in node.get("column_names") or ():
            said = [w for w in words(str(column)) if w in NON_ADDITIVE_WORDS]
            if said:
                return f"uses the column {column}"
    if node.get("class") == "SUBQUERY":
        return ""  # a scalar subquery's inner columns are not this measure's expression
    return next(
        (
            r
            for key, value in node.items()
            if key not in ("alias", "function_name")
            for r in [_non_additive(value)]
            if r
        ),
        "",
    )


def _refers_to_a_column(node: Any) -> bool:
    if isinstance(node, list):
        return any(_refers_to_a_column(v) for v in node)
    if not isinstance(node, dict):
        return False
    if node.get("class") == "COLUMN_REF" or node.get("function_name") == "count_star":
        return True
    return any(_refers_to_a_column(v) for v in node.values())
