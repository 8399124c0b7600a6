"""How tests/data/store_schema1.duckdb was made: this script, run with Lookback GUI at commit
fc8a67f (store schema 1), in an empty folder. It is kept to say what the file holds; the test
that opens the file is tests/test_store_migration.py.
"""

import textwrap
from datetime import datetime
from pathlib import Path

import duckdb

from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store

PROJECT = textwrap.dedent('''
    [store]
    path = "lookback.duckdb"

    [sources.shop]
    type = "duckdb"
    path = "shop.duckdb"

    [metrics.replayed]
    source = "shop"
    grain = "day"
    lookback = "4d"
    retries = 0
    sql = """
    SELECT date_trunc('day', ordered_at) AS bucket, country, count(*) AS orders,
           sum(amount) AS revenue
    FROM orders WHERE ordered_at >= $window_start AND ordered_at < $window_end
      AND arrived_at <= $as_of
    GROUP BY ALL
    """

    [[metrics.replayed.alerts]]
    kind = "threshold"
    measure = "orders"
    below = 2

    [metrics.plain]
    source = "shop"
    grain = "day"
    lookback = 3
    retries = 0
    sql = """
    SELECT date_trunc('day', ordered_at) AS bucket, count(*) AS orders
    FROM orders WHERE ordered_at >= $window_start AND ordered_at < $window_end
    GROUP BY ALL
    """
''')

ROWS = [  # order, ordered at, arrived at, country, amount
    (1, "2026-10-20 10:00", "2026-10-20 11:00", "DE", 10.0),
    (2, "2026-10-21 10:00", "2026-10-23 11:00", "DE", 5.0),
    (3, "2026-10-22 09:00", "2026-10-22 09:30", "München", 7.5),
    (4, "2026-10-24 08:00", "2026-10-24 09:00", "FR", 1.0),
    (5, "2026-10-22 12:00", "2026-10-25 09:00", "München", 2.5),
    (6, "2026-10-25 12:00", "2026-10-25 13:00", "DE", 3.0),
]


def edit(path: Path, sql: str) -> None:
    con = duckdb.connect(str(path))
    con.execute(sql)
    con.close()


def main(folder: Path = Path("proj")) -> None:
    folder.mkdir(exist_ok=True)
    source = folder / "shop.duckdb"
    con = duckdb.connect(str(source))
    con.execute(
        "CREATE TABLE orders (order_id BIGINT, ordered_at TIMESTAMP, "
        "arrived_at TIMESTAMP, country VARCHAR, amount DOUBLE)"
    )
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", ROWS)
    con.close()
    (folder / "lookback.toml").write_text(PROJECT)
    project = load_project(folder / "lookback.toml")
    with Store(project.store_path) as store:
        for as_of in [
            "2026-10-22T12:00",
            "2026-10-23T12:00",
            "2026-10-25T10:00",
            "2026-10-26T00:00",
        ]:  # runs 1-4
            run_pull(project, "replayed", store, as_of=datetime.fromisoformat(as_of))
        noon = datetime.fromisoformat("2026-10-25T12:00")
        run_pull(project, "plain", store, as_of=noon)  # run 5
        edit(source, "DELETE FROM orders WHERE country = 'FR'")
        run_pull(project, "plain", store, as_of=noon)  # run 6: a removal
        edit(source, "DELETE FROM orders")
        run_pull(
            project,
            "plain",
            store,  # run 7: fails, empty
            as_of=datetime.fromisoformat("2026-10-26T12:00"),
        )


if __name__ == "__main__":
    main()
