"""Which measures may be stacked: the additivity rule, by the measure's name and by the
expression the metric's SQL gives it (parsed by DuckDB, CTEs included)."""

from __future__ import annotations

import pytest

from lookback_gui.core.insight.additivity import measure_additivity, words
from tests.helpers import DAILY_SQL

SQL = """
WITH daily AS (
    SELECT date_trunc('day', ordered_at) AS bucket, country,
           count(*) AS orders, sum(amount) AS revenue, sum(amount) / 100 AS revenue_hundreds,
           count(DISTINCT customer) AS buyers, sum(amount) / count(*) AS basket,
           max(amount) AS biggest, median(amount) AS middle, avg(amount) AS typical,
           quantile_cont(amount, 0.9) AS p90, sum(amount) / sum(weight) AS per_kilo,
           sum(refund_rate) AS refunds
    FROM orders
    WHERE ordered_at >= $window_start AND ordered_at < $window_end
    GROUP BY ALL
)
SELECT *, revenue AS takings FROM daily
"""


@pytest.mark.parametrize(
    ("measure", "additive"),
    [
        ("orders", True),
        ("revenue", True),
        ("revenue_hundreds", True),
        ("takings", True),
        ("buyers", False),
        ("basket", False),
        ("biggest", False),
        ("middle", False),
        ("typical", False),
        ("p90", False),
        ("per_kilo", False),
        ("refunds", False),
        ("not_in_the_sql", True),
    ],
)
def test_the_sql_expression_of_a_measure_decides(measure: str, additive: bool) -> None:
    result = measure_additivity(measure, SQL)
    assert result.additive is additive
    assert (result.reason == "") is additive


@pytest.mark.parametrize(
    "name",
    [
        "avg_price",
        "conversionRate",
        "Share_of_orders",
        "pct_late",
        "MEAN",
        "distinct_users",
        "p50_median",
        "refund_ratio",
    ],
)
def test_a_name_that_says_it_is_not_additive(name: str) -> None:
    result = measure_additivity(name, DAILY_SQL)
    assert not result.additive
    assert "its name says" in result.reason


def test_words_of_a_name_are_whole_words() -> None:
    assert words("avgOrderValue") == ["avg", "order", "value"]
    # "generated" holds "rate", "shares_sold" is not "share": only whole words count
    assert measure_additivity("generated_orders").additive
    assert measure_additivity("shares_sold").additive


def test_the_reason_names_what_the_sql_does() -> None:
    assert measure_additivity("buyers", SQL).reason == "its SQL takes count(DISTINCT ...)"
    assert measure_additivity("basket", SQL).reason == "its SQL divides by a column (a ratio)"
    assert measure_additivity("typical", SQL).reason == "its SQL takes avg(...)"


def test_sql_that_duckdb_cannot_parse_leaves_the_name_to_decide() -> None:
    assert measure_additivity("orders", "SELEKT nonsense").additive
    assert not measure_additivity("avg_orders", "SELEKT nonsense").additive
