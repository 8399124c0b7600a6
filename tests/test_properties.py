"""Property: any sequence of source edits and pulls leaves the current values equal to a fresh
aggregate of the source over the buckets pulled, and repeating a pull creates no versions."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store
from tests.helpers import project_text

BASE = datetime(2026, 10, 1)
SQL = """
SELECT date_trunc('day', ts) AS bucket, k, count(*) AS n, sum(v) AS total
FROM events WHERE ts >= $window_start AND ts < $window_end GROUP BY ALL
"""

moments = st.builds(lambda d, h: BASE + timedelta(days=d, hours=h), st.integers(0, 12), st.integers(0, 23))
values = st.one_of(st.integers(-5, 5).map(float), st.floats(-1e6, 1e6, allow_nan=False))
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), moments, st.sampled_from(["a", "b"]), values),
        st.tuples(st.just("delete"), st.integers(0, 50)),
        st.tuples(st.just("update"), st.integers(0, 50), values),
        st.tuples(st.just("pull"), st.integers(3, 14)),
    ),
    min_size=1,
    max_size=14,
)


def fresh_aggregate(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> dict:
    rows = con.execute(
        "SELECT date_trunc('day', ts), k, count(*), sum(v) FROM events WHERE ts >= ? AND ts < ? GROUP BY ALL",
        [start, end],
    ).fetchall()
    out = {}
    for bucket, k, n, total in rows:
        out[(bucket, k, "n")] = float(n)
        out[(bucket, k, "total")] = total
    return out


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_edits_and_pulls_keep_current_equal_to_the_source(ops):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "lookback.toml").write_text(
            project_text(sql=SQL, extra="allow_empty = true", lookback='"5d"')
        )
        source = root / "shop.duckdb"
        con = duckdb.connect(str(source))
        con.execute("CREATE TABLE events (id INTEGER, ts TIMESTAMP, k VARCHAR, v DOUBLE)")
        con.close()
        project = load_project(root / "lookback.toml")
        next_id = 0
        with Store(project.store_path) as store:
            for op in ops:
                con = duckdb.connect(str(source))
                ids = [r[0] for r in con.execute("SELECT id FROM events ORDER BY id").fetchall()]
                if op[0] == "add":
                    con.execute("INSERT INTO events VALUES (?, ?, ?, ?)", [next_id, op[1], op[2], op[3]])
                    next_id += 1
                elif op[0] == "delete" and ids:
                    con.execute("DELETE FROM events WHERE id = ?", [ids[op[1] % len(ids)]])
                elif op[0] == "update" and ids:
                    con.execute("UPDATE events SET v = ? WHERE id = ?", [op[2], ids[op[1] % len(ids)]])
                con.close()
                if op[0] != "pull":
                    continue
                as_of = BASE + timedelta(days=op[1], hours=12)
                run = run_pull(project, "daily_orders", store, as_of=as_of)
                assert run.status == "succeeded", run.error
                con = duckdb.connect(str(source), read_only=True)
                expected = fresh_aggregate(con, run.window_start, run.window_end)
                con.close()
                stored = {
                    (r.bucket, r.dims["k"], r.measure): r.value
                    for r in store.history("daily_orders")
                    if run.window_start <= r.bucket < run.window_end and r.value is not None
                }
                assert stored.keys() == expected.keys()
                assert all(close(stored[key], expected[key]) for key in expected)
                versions_before = sum(r.versions for r in store.history("daily_orders"))
                again = run_pull(project, "daily_orders", store, as_of=as_of)
                assert (again.new, again.revised, again.removed) == (0, 0, 0)
                assert sum(r.versions for r in store.history("daily_orders")) == versions_before
