"""The engine's parts on their own: the two phases of a commit, the retry policy next to the
one classifier of failures, and the source databases that an entry point owns."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import duckdb
import pytest

from lookback_gui.core.errors import QueryError, TransientSourceError
from lookback_gui.core.failures import RetryPolicy
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.sources import SourceConnections
from lookback_gui.core.store import CommitRequest, NewRun, StagedValues, Store
from tests.helpers import query, ts

WINDOW = (ts("2026-10-24"), ts("2026-10-31"))


def _begin(store: Store) -> int:
    return store.begin_run(
        NewRun(
            metric="m",
            trigger="manual",
            timezone="UTC",
            grain="day",
            as_of=ts("2026-10-30T12:00"),
            window_start=WINDOW[0],
            window_end=WINDOW[1],
            partial_start=ts("2026-10-30"),
            started_at=ts("2026-10-30T12:00"),
            sql="SELECT 1",
            params={},
        )
    )


def _values(value: int) -> StagedValues:
    sql = (
        f"SELECT '{{}}' AS dims, 'n' AS measure, TIMESTAMP '2026-10-25' AS bucket,"
        f" {value}::DOUBLE AS value, false AS value_null, '{value}' AS exact"
    )
    return StagedValues(
        metric="m",
        sql=sql,
        measures=("n",),
        window_start=WINDOW[0],
        window_end=WINDOW[1],
        known_at=ts("2026-10-30T12:00"),
    )


def _request() -> CommitRequest:
    return CommitRequest(
        settled_end=ts("2026-10-30"),
        finished_at=ts("2026-10-30T12:00:01"),
        duration_s=1.0,
        attempts=1,
        rows=1,
    )


def test_a_commit_is_a_diff_then_one_request_and_nothing_is_written_without_it(tmp_path):
    with Store(tmp_path / "lookback.duckdb") as store:
        run_id = _begin(store)
        with store.begin_commit(run_id) as commit:  # asked for the diff, never committed
            assert commit.diff(_values(3)).counts == {"new": 1, "revised": 0, "removed": 0, "unchanged": 0}
        with pytest.raises(QueryError), store.begin_commit(run_id) as commit:
            commit.diff(_values(3))
            raise QueryError("a check failed")  # the pull's own checks refuse it
        assert store.history("m") == []
        assert store.run(run_id).status == "running"

        with store.begin_commit(run_id) as commit:
            summary = commit.diff(_values(3))
            record = commit.commit(_request())
        assert summary.counts["new"] == 1
        assert (record.status, record.new, record.duration_s) == ("succeeded", 1, 1.0)
        assert [(r.value, r.partial) for r in store.history("m")] == [(3, False)]
        assert store.last_successful_run("m") == record

        second = _begin(store)
        with store.begin_commit(second) as commit:
            summary = commit.diff(_values(4))
            assert (summary.counts["revised"], summary.max_revision_pct) == (1, pytest.approx(100 / 3))
            commit.commit(_request())
        assert query(store, "SELECT id, commit_seq FROM runs ORDER BY id") == [(1, 1), (2, 2)]


def test_the_retry_policy_retries_only_transient_failures_with_capped_backoff():
    policy = RetryPolicy(retries=3, base_s=2.0, max_s=5.0)
    longest = [policy.delay(TransientSourceError("locked"), n, draw=lambda a, b: b) for n in (1, 2, 3, 4)]
    assert longest == [2.0, 4.0, 5.0, None]
    assert policy.delay(QueryError("bad SQL"), 1) is None
    assert policy.delay(duckdb.InterruptException("interrupted"), 1) is None
    assert RetryPolicy(0, 1.0, 1.0).delay(TransientSourceError("locked"), 1) is None
    assert 0 <= (policy.delay(TransientSourceError("locked"), 1) or -1) <= 2.0


def test_a_prepared_database_goes_to_the_next_pull_of_its_own_thread_only():
    with SourceConnections() as connections:
        connections.prepare()
        elsewhere: list[duckdb.DuckDBPyConnection] = []
        thread = threading.Thread(target=lambda: elsewhere.append(connections.take()))
        thread.start()
        thread.join()
        mine = connections.take()
        assert elsewhere[0] is not mine
        assert connections.take() is not mine  # taken once
        for con in (mine, *elsewhere):
            connections.give_back(con)
        connections.prepare()
    with pytest.raises(duckdb.ConnectionException):  # closed with the owner
        mine.execute("SELECT 1")


def test_pulls_with_and_without_the_entry_points_databases_agree(project):
    loaded = load_project(project)
    with Store(loaded.store_path) as store, SourceConnections() as connections:
        first = run_pull(loaded, "daily_orders", store, as_of=ts("2026-10-30T12:00"), connections=connections)
        connections.prepare()
        again = run_pull(loaded, "daily_orders", store, as_of=ts("2026-10-30T12:00"))
    assert (first.status, first.new) == ("succeeded", 4)
    assert (again.status, again.new, again.unchanged) == ("succeeded", 0, 4)


def test_importing_the_engine_starts_no_thread_and_registers_nothing_for_exit():
    code = (
        "import atexit, threading; ours = []; register = atexit.register;"
        "atexit.register = lambda f, *a, **k: (ours.append(f.__module__), register(f, *a,"
        " **k))[1];"
        "import lookback_gui.core.sources, lookback_gui.core.pull, lookback_gui.core.store,"
        " lookback_gui.core.schedule.scheduler, lookback_gui.cli;"
        "print([m for m in ours if m.startswith('lookback_gui')], threading.active_count())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ},
    )
    assert result.stdout.split() == ["[]", "1"]
