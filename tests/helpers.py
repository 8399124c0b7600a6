"""Helpers to build real sources and project files for the tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

ORDERS_SCHEMA = "order_id BIGINT, ordered_at TIMESTAMP, country VARCHAR, amount DOUBLE"


def make_orders(path: Path, rows: list[tuple]) -> Path:
    """A DuckDB source file with an ``orders`` table holding ``rows``."""
    con = duckdb.connect(str(path))
    try:
        con.execute("DROP TABLE IF EXISTS orders")
        con.execute(f"CREATE TABLE orders ({ORDERS_SCHEMA})")
        if rows:
            con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", rows)
    finally:
        con.close()
    return path


DAILY_SQL = """
SELECT date_trunc('day', ordered_at) AS bucket, country,
       count(*) AS orders, sum(amount) AS revenue
FROM orders
WHERE ordered_at >= $window_start AND ordered_at < $window_end
GROUP BY ALL
"""


def project_text(source: str = 'type = "duckdb"\npath = "shop.duckdb"', sql: str = DAILY_SQL,
                 extra: str = "", metric: str = "daily_orders", grain: str = "day",
                 lookback: str = '"7d"', source_name: str = "shop") -> str:
    return (
        f'[store]\npath = "lookback.duckdb"\n\n[sources.{source_name}]\n{source}\n\n'
        f'[metrics.{metric}]\nsource = "{source_name}"\ngrain = "{grain}"\n'
        f'lookback = {lookback}\nretries = 0\n{extra}\nsql = """\n{sql.strip()}\n"""\n'
    )


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)
