"""Pulls against real DuckDB files: counting, removals, idempotence, time travel, failures."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import psutil
import pytest

from lookback_gui.core.project import load_project
from lookback_gui.core.pull import PullControl, backfill, backfill_windows, run_pull
from lookback_gui.core.store import Store
from tests.helpers import make_orders, project_text, ts

AS_OF = ts("2026-10-30T12:00")


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return make_orders(
        tmp_path / "shop.duckdb",
        [
            (1, ts("2026-10-25T10:00"), "DE", 10.0),
            (2, ts("2026-10-25T11:00"), "DE", 5.0),
            (3, ts("2026-10-26T09:00"), "FR", 7.5),
            (4, ts("2026-10-30T08:00"), "DE", 1.0),
        ],
    )


def edit(path: Path, sql: str, params: list | None = None) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute(sql, params)
    finally:
        con.close()


def values(store: Store, metric: str = "daily_orders", run: int | None = None) -> dict:
    return {
        (str(r.bucket.date()), r.dims.get("country"), r.measure): r.value
        for r in store.history(metric, as_of_run=run)
    }


def counts(run) -> tuple:
    return (run.new, run.revised, run.removed, run.unchanged)


def test_first_pull_stores_the_window_and_counts_everything_new(write_project, shop):
    project = load_project(write_project())
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF, clock=lambda: AS_OF)
        assert run.status == "succeeded", run.error
        assert run.known_at == AS_OF  # plain SQL: known when its query ran
        assert (run.window_start, run.window_end) == (ts("2026-10-24"), ts("2026-10-31"))
        assert run.rows == 3
        assert counts(run) == (6, 0, 0, 0)
        current = values(store)
        assert current[("2026-10-25", "DE", "orders")] == 2
        assert current[("2026-10-25", "DE", "revenue")] == 15.0
        partial = {(str(r.bucket.date()), r.measure): r.partial for r in store.history("daily_orders")}
        assert partial[("2026-10-30", "orders")] is True
        assert partial[("2026-10-25", "orders")] is False


def test_repeating_a_pull_creates_no_versions(write_project, shop):
    project = load_project(write_project())
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store, as_of=AS_OF)
        again = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert counts(again) == (0, 0, 0, 6)
        assert all(r.versions == 1 for r in store.history("daily_orders"))


def test_late_rows_revise_and_deleted_rows_remove_then_reappear(write_project, shop):
    project = load_project(write_project())
    with Store(project.store_path) as store:
        first = run_pull(project, "daily_orders", store, as_of=AS_OF)
        edit(shop, "INSERT INTO orders VALUES (5, '2026-10-25 20:00', 'DE', 2.0)")
        edit(shop, "DELETE FROM orders WHERE country = 'FR'")
        second = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert counts(second) == (0, 2, 2, 2)
        revisions = store.revisions("daily_orders")
        kinds = {(str(r.bucket.date()), r.measure): (r.old_value, r.new_value) for r in revisions}
        assert kinds[("2026-10-25", "orders")] == (2, 3)
        assert kinds[("2026-10-26", "orders")] == (1, None)
        # removed and still absent: counted in none of the four
        third = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert counts(third) == (0, 0, 0, 4)
        # reappearing is a revision, not new
        edit(shop, "INSERT INTO orders VALUES (3, '2026-10-26 09:00', 'FR', 7.5)")
        fourth = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert counts(fourth) == (0, 2, 0, 4)
        history = {
            (str(r.bucket.date()), r.dims.get("country"), r.measure): r for r in store.history("daily_orders")
        }
        fr = history[("2026-10-26", "FR", "orders")]
        assert (fr.value, fr.first_value, fr.versions, fr.revised) == (1, 1, 3, True)
        # time travel: as known after the first run, and after the removal
        assert values(store, run=first.id)[("2026-10-25", "DE", "orders")] == 2
        after_removal = values(store, run=second.id)
        assert after_removal[("2026-10-26", "FR", "orders")] is None
        assert after_removal[("2026-10-25", "DE", "orders")] == 3


def test_rows_outside_the_window_are_not_stored_and_warned(write_project, shop):
    sql = "SELECT date_trunc('day', ordered_at) AS bucket, count(*) AS orders FROM orders GROUP BY ALL"
    edit(shop, "INSERT INTO orders VALUES (9, '2026-09-01 10:00', 'DE', 1.0)")
    project = load_project(write_project(sql=sql))
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert run.status == "succeeded"
        assert run.rows == 4 and run.new == 3
        assert any("1 row(s) outside the window" in w for w in run.warnings)
        assert all(r.bucket >= ts("2026-10-24") for r in store.history("daily_orders"))


def test_float_noise_is_not_a_revision(write_project, shop):
    sql = (
        "SELECT date_trunc('day', ordered_at) AS bucket, sum(amount) AS revenue FROM orders "
        "WHERE ordered_at >= $window_start AND ordered_at < $window_end GROUP BY ALL"
    )
    project = load_project(write_project(sql=sql))
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store, as_of=AS_OF)
        edit(shop, "UPDATE orders SET amount = amount * (1 + 1e-13)")
        again = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert counts(again) == (0, 0, 0, 3)
        edit(shop, "UPDATE orders SET amount = amount * 1.001")
        changed = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert changed.revised == 3


def test_empty_result_is_refused_unless_allowed(write_project, shop):
    edit(shop, "DELETE FROM orders")
    project = load_project(write_project())
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert run.status == "failed"
        assert "no rows" in run.error and "allow_empty" in run.error
        assert store.history("daily_orders") == []
    allowed = load_project(write_project(extra="allow_empty = true"))
    with Store(allowed.store_path) as store:
        assert run_pull(allowed, "daily_orders", store, as_of=AS_OF).status == "succeeded"


def test_empty_result_after_values_removes_them_only_when_allowed(write_project, shop):
    project = load_project(write_project(extra="allow_empty = true"))
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store, as_of=AS_OF)
        edit(shop, "DELETE FROM orders")
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert counts(run) == (0, 0, 6, 0)


def test_duplicate_keys_fail_and_commit_nothing(write_project, shop):
    sql = (
        "SELECT date_trunc('day', ordered_at) AS bucket, amount AS revenue FROM orders "
        "WHERE ordered_at >= $window_start AND ordered_at < $window_end"
    )
    project = load_project(write_project(sql=sql))
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert run.status == "failed"
        assert "must aggregate" in run.error
        assert store.history("daily_orders") == []


def test_error_check_fails_run_and_keeps_previous_values(write_project, shop):
    extra = '[metrics.daily_orders.checks]\nfew = { measure = "orders", max = 2 }\n'
    path = write_project(project_text() + "\n" + extra)
    project = load_project(path)
    with Store(project.store_path) as store:
        assert run_pull(project, "daily_orders", store, as_of=AS_OF).status == "succeeded"
        edit(shop, "INSERT INTO orders VALUES (7, '2026-10-25 12:00', 'DE', 1.0)")
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert run.status == "failed"
        assert "check few: 1 value(s) of orders are not at most 2" in run.error
        assert values(store)[("2026-10-25", "DE", "orders")] == 2


def test_warn_check_commits_and_flags(write_project, shop):
    extra = '\n[metrics.daily_orders.checks]\nbig = { revision_pct = 10, severity = "warn" }\n'
    project = load_project(write_project(project_text() + extra))
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store, as_of=AS_OF)
        edit(shop, "UPDATE orders SET amount = amount * 2 WHERE order_id = 3")
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert run.status == "succeeded" and run.revised == 1
        assert any("largest revision in this run is 100.0%" in w for w in run.warnings)
        assert any(c["name"] == "big" and not c["ok"] for c in run.checks)


def test_a_dropped_measure_is_a_schema_change_not_a_removal(write_project, shop):
    project = load_project(write_project())
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store, as_of=AS_OF)
    narrower = DAILY_ONLY_ORDERS
    project = load_project(write_project(sql=narrower))
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert counts(run) == (0, 0, 0, 3)
        assert run.schema_change == {"dropped": ["revenue"]}
        assert values(store)[("2026-10-25", "DE", "revenue")] == 15.0


DAILY_ONLY_ORDERS = (
    "SELECT date_trunc('day', ordered_at) AS bucket, country, count(*) AS orders FROM orders "
    "WHERE ordered_at >= $window_start AND ordered_at < $window_end GROUP BY ALL"
)


def test_syntax_error_fails_at_once_without_retry(write_project, shop):
    path = write_project(sql="SELEC bucket FROM orders")
    path.write_text(path.read_text().replace("retries = 0", "retries = 5"))
    project = load_project(path)
    with Store(project.store_path) as store:
        run = run_pull(
            project,
            "daily_orders",
            store,
            as_of=AS_OF,
            sleep=lambda s: pytest.fail("a syntax error must not be retried"),
        )
        assert run.status == "failed" and run.attempts == 1
        assert "syntax error" in run.error


def test_missing_column_fails_at_once_and_names_it(write_project, shop):
    sql = "SELECT date_trunc('day', ordered_at) AS bucket, sum(price) AS revenue FROM orders GROUP BY ALL"
    project = load_project(write_project(sql=sql))
    with Store(project.store_path) as store:
        run = run_pull(
            project, "daily_orders", store, as_of=AS_OF, sleep=lambda s: pytest.fail("must not be retried")
        )
        assert run.status == "failed" and run.attempts == 1
        assert "price" in run.error


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("INSERT INTO orders VALUES (1, now(), 'DE', 1)", "INSERT statement"),
        ("DELETE FROM orders", "DELETE statement"),
        ("SELECT 1 AS bucket; DROP TABLE orders", "2 statements"),
        ("ATTACH 'other.duckdb' AS o", "ATTACH statement"),
        ("COPY orders TO 'x.csv'", "COPY statement"),
    ],
)
def test_writing_statements_are_refused_before_they_run(write_project, shop, sql, message):
    project = load_project(write_project(sql=sql))
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert run.status == "failed"
        assert message in run.error
    con = duckdb.connect(str(shop), read_only=True)
    assert con.execute("SELECT count(*) FROM orders").fetchone() == (4,)
    con.close()


def test_the_query_cannot_reach_other_files(write_project, shop, tmp_path):
    other = make_orders(tmp_path / "other.duckdb", [(1, ts("2026-10-25"), "X", 1.0)])
    sql = (
        f"SELECT date_trunc('day', ordered_at) AS bucket, count(*) AS n "
        f"FROM read_csv('{tmp_path / 'lookback.toml'}') GROUP BY ALL"
    )
    project = load_project(write_project(sql=sql))
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert run.status == "failed"
        assert "disabled by configuration" in run.error
    assert other.exists()


def test_missing_file_is_retried_with_backoff_then_fails_naming_the_path(write_project, tmp_path):
    text = project_text(
        source='type = "duckdb"\npath = "gone.duckdb"', extra='retry_base = "1s"\nretry_max = "2s"'
    ).replace("retries = 0", "retries = 2")
    project = load_project(write_project(text))
    delays: list[float] = []
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF, sleep=delays.append)
        assert run.status == "failed"
        assert run.attempts == 3
        assert "gone.duckdb" in run.error and "not found" in run.error
        assert len(delays) == 2 and 0 <= delays[0] <= 1 and 0 <= delays[1] <= 2
        log = [line.message for line in store.run_log(run.id)]
        assert sum("retrying in" in m for m in log) == 2
        assert any("attempt 3 failed" in m for m in log)


def test_a_file_that_appears_between_retries_is_picked_up(write_project, tmp_path):
    text = project_text().replace("retries = 0", "retries = 3")
    project = load_project(write_project(text))

    def create_source(delay: float) -> None:
        make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-25T10:00"), "DE", 10.0)])

    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF, sleep=create_source)
        assert run.status == "succeeded" and run.attempts == 2


@pytest.mark.parametrize("sql", [None, "SELECT nonsense FROM orders"])
def test_the_source_file_is_free_for_its_writers_when_a_pull_returns(write_project, shop, sql):
    """An export job may rewrite the source the moment a pull is over, succeeded or failed."""
    project = load_project(write_project(sql=sql) if sql else write_project())
    with Store(project.store_path) as store:
        for _ in range(3):
            run = run_pull(project, "daily_orders", store, as_of=AS_OF)
            assert run.status == ("failed" if sql else "succeeded")
            held = [f.path for f in psutil.Process().open_files()]
            assert str(shop) not in held
            edit(shop, "UPDATE orders SET amount = amount + 1")


def test_chart_data_is_in_bucket_order_whatever_order_pulls_stored_it(write_project, shop):
    edit(
        shop,
        "INSERT INTO orders VALUES (5, '2026-10-20 10:00', 'DE', 3.0), "
        "(6, '2026-10-18 10:00', 'DE', 4.0), (7, '2026-10-27 10:00', 'DE', 2.0)",
    )
    project = load_project(write_project())
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store, as_of=AS_OF)  # the newest week first
        backfill(project, "daily_orders", store, ts("2026-10-17"), ts("2026-10-24"))
        history = sorted(
            (r.bucket, r.value)
            for r in store.history("daily_orders")
            if r.measure == "revenue" and r.dims == {"country": "DE"}
        )
        for run in (None, store.runs(limit=1)[0].id):
            data = store.chart_data("daily_orders", "revenue", {"country": "DE"}, as_of_run=run)
            buckets = [b.astype("datetime64[us]").item() for b in data["bucket"]]
            assert buckets == [b for b, _ in history]
            assert list(data["value"]) == [v for _, v in history]


def test_chart_series_holds_the_details_of_marked_buckets_only(write_project, shop):
    project = load_project(write_project())
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store, as_of=AS_OF)
        edit(shop, "UPDATE orders SET amount = 99 WHERE order_id = 3; DELETE FROM orders WHERE order_id = 4")
        run_pull(project, "daily_orders", store, as_of=AS_OF)
        for run in (None, 1):
            for dims in ({"country": "DE"}, {"country": "FR"}):
                full = store.chart_data("daily_orders", "revenue", dims, as_of_run=run)
                thin = store.chart_series("daily_orders", "revenue", dims, as_of_run=run)
                np.testing.assert_array_equal(thin["bucket"], full["bucket"])
                np.testing.assert_array_equal(thin["value"], full["value"])
                marked = np.flatnonzero((full["versions"] > 1) | full["partial"])
                np.testing.assert_array_equal(thin["marked"], marked)
                for name in ("first_value", "versions", "last_run", "removed", "partial"):
                    np.testing.assert_array_equal(thin[name], full[name][marked], err_msg=name)
                plain = np.setdiff1d(np.arange(len(full["bucket"])), marked)
                assert (full["versions"][plain] == 1).all()
                np.testing.assert_array_equal(full["first_value"][plain], full["value"][plain])
                if run is None:
                    for bucket, last in zip(full["bucket"], full["last_run"], strict=True):
                        assert (
                            store.bucket_run(
                                "daily_orders", "revenue", dims, bucket.astype("datetime64[us]").item()
                            )
                            == last
                        )
        # latest: the revised FR bucket and the removed DE one are marked; DE 10-25 is plain
        fr = store.chart_series("daily_orders", "revenue", {"country": "FR"})
        assert list(fr["versions"]) == [2] and fr["first_value"][0] == 7.5
        de = store.chart_series("daily_orders", "revenue", {"country": "DE"})
        assert list(de["marked"]) == [1] and list(de["removed"]) == [True]


def test_cancel_before_commit_leaves_nothing(write_project, shop):
    project = load_project(write_project())
    control = PullControl()
    control.cancel()
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF, control=control)
        assert run.status == "cancelled"
        assert store.history("daily_orders") == []


def test_backfill_chunks_are_window_sized_complete_pulls(write_project, shop):
    project = load_project(write_project())
    config = project.metrics["daily_orders"]
    windows = backfill_windows(config, ts("2026-10-01"), ts("2026-10-20"))
    assert [(w.start, w.end) for w in windows] == [
        (ts("2026-10-01"), ts("2026-10-08")),
        (ts("2026-10-08"), ts("2026-10-15")),
        (ts("2026-10-15"), ts("2026-10-20")),
    ]
    assert all(w.as_of > w.end and w.partial_start is None for w in windows)  # known now
    then = backfill_windows(config, ts("2026-10-01"), ts("2026-10-20"), as_known_then=True)
    assert all(w.as_of == w.end and w.partial_start is None for w in then)
    with Store(project.store_path) as store:
        runs = backfill(project, config, store, ts("2026-10-20"), ts("2026-10-31"))
        assert [r.trigger for r in runs] == ["backfill", "backfill"]
        assert [r.status for r in runs] == ["succeeded", "succeeded"]
        assert sum(r.new for r in runs) == 6
        assert not any(r.partial for r in store.history("daily_orders"))


def test_parallel_backfill_gives_the_same_values_and_overlaps(write_project, shop, tmp_path):
    from lookback_gui.core.store.events import RunFinished, RunStarted

    sql = (
        "SELECT date_trunc('day', ordered_at) AS bucket, country, count(*) AS orders, "
        "sum(amount) AS revenue FROM orders, range(300000) "
        "WHERE ordered_at >= $window_start AND ordered_at < $window_end GROUP BY ALL"
    )
    text = project_text(sql=sql, lookback="2", extra="allow_empty = true").replace(
        'path = "shop.duckdb"', 'path = "shop.duckdb"\nconcurrency = 2'
    )
    project = load_project(write_project(text))
    assert project.sources["shop"].concurrency == 2
    open_runs: set[int] = set()
    most = [0]

    def watch(event: object) -> None:
        if isinstance(event, RunStarted):
            open_runs.add(event.run_id)
            most[0] = max(most[0], len(open_runs))
        elif isinstance(event, RunFinished):
            open_runs.discard(event.run.id)

    with Store(project.store_path) as store:
        runs = backfill(
            project, "daily_orders", store, ts("2026-10-21"), ts("2026-10-31"), workers=2, observer=watch
        )
        assert len(runs) == 5 and all(r.status == "succeeded" for r in runs)
        assert [r.window_start for r in runs] == sorted(r.window_start for r in runs)
        assert most[0] == 2
        parallel = values(store)
    (tmp_path / "lookback.duckdb").unlink()
    with Store(project.store_path) as store:
        backfill(project, "daily_orders", store, ts("2026-10-21"), ts("2026-10-31"), workers=1)
        assert values(store) == parallel


PROBE_SQL = """
SELECT date_trunc('day', ordered_at) AS bucket, count(*) AS n, max(order_id) AS last_id
FROM orders WHERE ordered_at >= $window_start AND ordered_at < $window_end GROUP BY ALL
"""


def test_change_probe_runs_the_query_only_from_the_first_changed_bucket(write_project, shop, tmp_path):
    extra = f'complete_buckets_only = true\nchange_probe = """{PROBE_SQL}"""'
    project = load_project(write_project(extra=extra))
    as_of = ts("2026-10-31T12:00")  # window [10-24, 10-31), all complete
    with Store(project.store_path) as store:
        first = run_pull(project, "daily_orders", store, as_of=as_of)
        assert counts(first) == (6, 0, 0, 0)
        quiet = run_pull(project, "daily_orders", store, as_of=as_of)
        assert counts(quiet) == (0, 0, 0, 6)
        assert any("the query was not run" in w for w in quiet.warnings)
        edit(shop, "INSERT INTO orders VALUES (8, '2026-10-30 09:00', 'FR', 4.0)")
        late = run_pull(project, "daily_orders", store, as_of=as_of)
        assert counts(late) == (2, 0, 0, 6)  # FR on 10-30 is new; the rest untouched
        assert any("the query ran for [2026-10-30 00:00:00, 2026-10-31 00:00:00)" in w for w in late.warnings)
        edit(shop, "DELETE FROM orders WHERE country = 'FR' AND ordered_at < '2026-10-27'")
        removal = run_pull(project, "daily_orders", store, as_of=as_of)
        assert counts(removal) == (0, 0, 2, 6)
        probed = values(store)
    (tmp_path / "lookback.duckdb").unlink()
    plain = load_project(write_project(extra="complete_buckets_only = true"))
    with Store(plain.store_path) as store:
        run_pull(plain, "daily_orders", store, as_of=as_of)
        assert {k: v for k, v in probed.items() if v is not None} == values(store)


def test_a_bucket_with_a_time_zone_becomes_the_metrics_wall_clock_time(write_project, tmp_path):
    con = duckdb.connect(str(tmp_path / "shop.duckdb"))
    con.execute("CREATE TABLE orders (ordered_at TIMESTAMPTZ, amount DOUBLE)")
    # 23:30 UTC on the 24th is already the 25th in Berlin
    con.execute("INSERT INTO orders VALUES ('2026-10-24 23:30:00+00', 1.0), ('2026-10-25 10:00:00+00', 2.0)")
    con.close()
    sql = (
        "SELECT date_trunc('day', ordered_at) AS bucket, count(*) AS orders FROM orders "
        "WHERE ordered_at >= $window_start AND ordered_at < $window_end GROUP BY ALL"
    )
    project = load_project(write_project(sql=sql, extra='timezone = "Europe/Berlin"'))
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=AS_OF)
        assert run.status == "succeeded", run.error
        assert [(r.bucket, r.value) for r in store.history("daily_orders")] == [(ts("2026-10-25"), 2)]


def test_a_run_whose_start_landed_although_its_answer_was_lost_is_recorded_once(
    write_project, shop, monkeypatch
):
    """The team store's catalog can go away right after a commit, before its answer arrives:
    the start of the run was recorded, yet it failed as transient. Tried again, the pull goes
    on with the run it recorded, rather than leaving it ``running`` beside a second one."""
    from lookback_gui.core.errors import TransientStoreError

    path = write_project()
    path.write_text(path.read_text().replace("retries = 0", "retries = 2"))
    project = load_project(path)
    with Store(project.store_path) as store:
        real = store.begin_run
        lost: list[int] = []

        def begin_run(start):  # type: ignore[no-untyped-def]
            run_id = real(start)  # committed ...
            if not lost:  # ... and the first time the answer is lost on the way back
                lost.append(run_id)
                raise TransientStoreError("the catalog database went away (the answer was lost)")
            return run_id

        monkeypatch.setattr(store, "begin_run", begin_run)
        result = run_pull(project, "daily_orders", store, as_of=AS_OF, sleep=lambda _s: None)
        assert result.status == "succeeded" and lost
        [run] = store.runs()
        assert (run.id, run.status) == (lost[0], "succeeded")
