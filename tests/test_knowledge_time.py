"""The store is bitemporal (DESIGN, *Knowledge time*): an oracle and the defects it guards.

The oracle is a hypothesis state machine that drives the real engine (a DuckDB source file, the
store, run_pull, backfill, retry_failed) and a deliberately simple model written from DESIGN side
by side: the model keeps, for every (metric, series, measure, bucket), a list of versions with
their known time and run, and derives everything from it by the rules' own words.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import tempfile
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from lookback_gui.core.errors import UsageError
from lookback_gui.core.insight.settling import load_revisions
from lookback_gui.core.project import Project, load_project
from lookback_gui.core.pull import backfill, run_pull
from lookback_gui.core.schedule.scheduler import plan_catch_up, retry_failed
from lookback_gui.core.store import Store
from tests.helpers import PROCESS_S, ts

DAY = timedelta(days=1)
START = datetime(2026, 10, 10, 9, 0)
LOOKBACK_DAYS = 3
REMOVED = "removed"

PROJECT = textwrap.dedent('''
    [store]
    path = "lookback.duckdb"

    [sources.shop]
    type = "duckdb"
    path = "shop.duckdb"

    [metrics.replayed]
    source = "shop"
    grain = "day"
    lookback = "3d"
    retries = 0
    sql = """
    SELECT date_trunc('day', ordered_at) AS bucket, country, count(*) AS orders,
           sum(amount) AS revenue
    FROM orders WHERE ordered_at >= $window_start AND ordered_at < $window_end
      AND arrived_at <= $as_of
    GROUP BY ALL
    """

    [metrics.plain]
    source = "shop"
    grain = "day"
    lookback = 3
    retries = 0
    sql = """
    SELECT date_trunc('day', ordered_at) AS bucket, country, count(*) AS orders,
           sum(amount) AS revenue
    FROM orders WHERE ordered_at >= $window_start AND ordered_at < $window_end
    GROUP BY ALL
    """
''')
METRICS = ("replayed", "plain")

# hours before now: often inside today's still-partial bucket, else any time in the lookbacks
hours_ago = st.one_of(st.integers(0, 12), st.integers(0, 8 * 24))
countries = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=3)


def day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def arrived_orders(path: Path, rows: list[tuple]) -> Path:
    """A DuckDB source whose orders say when each arrived: (id, ordered_at, arrived_at,
    country, amount)."""
    con = duckdb.connect(str(path))
    try:
        con.execute(
            "CREATE TABLE orders (id INTEGER, ordered_at TIMESTAMP, "
            "arrived_at TIMESTAMP, country VARCHAR, amount DOUBLE)"
        )
        if rows:
            con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", rows)
    finally:
        con.close()
    return path


class Model:
    """What the store must hold, from DESIGN's words alone."""

    def __init__(self) -> None:
        self.rows: dict[int, tuple[datetime, datetime, str, float]] = {}
        self.versions: dict[tuple, list[tuple[datetime, int, object]]] = {}
        self.runs: list[dict] = []  # succeeded runs: id, metric, start, end, known

    def result(self, metric: str, start: datetime, end: datetime, as_of: datetime) -> dict:
        out: dict[tuple, float] = {}
        for ordered, arrived, country, amount in self.rows.values():
            if not start <= ordered < end or (metric == "replayed" and arrived > as_of):
                continue
            bucket = day(ordered)
            out[(country, "orders", bucket)] = out.get((country, "orders", bucket), 0) + 1
            out[(country, "revenue", bucket)] = out.get((country, "revenue", bucket), 0) + amount
        return out

    def pull(
        self,
        metric: str,
        run: int,
        start: datetime,
        end: datetime,
        as_of: datetime,
        known: datetime,
        empty_ok: bool = False,
    ) -> tuple[int, int, int, int] | None:
        """Apply one pull; its counts (new, revised, removed, unchanged), None if it fails.

        An empty result is refused, except for a backfill chunk that no successful pull's
        window overlapped when the backfill was planned (nothing is stored there to lose)."""
        result = self.result(metric, start, end, as_of)
        if not result and not empty_ok:
            return None
        before = {}
        for key, versions in self.versions.items():
            if key[0] == metric and start <= key[3] < end:
                earlier = [v for v in versions if (v[0], v[1]) < (known, run)]
                if earlier:
                    before[key[1:]] = max(earlier, key=lambda v: (v[0], v[1]))[2]
        counts = [0, 0, 0, 0]
        for key in set(result) | set(before):
            old, new = before.get(key), result.get(key)
            if new is None:
                if old is not None and old != REMOVED:
                    self.versions[(metric, *key)].append((known, run, REMOVED))
                    counts[2] += 1
            elif old is None:
                self.versions.setdefault((metric, *key), []).append((known, run, new))
                counts[0] += 1
            elif old == REMOVED or old != new:
                self.versions[(metric, *key)].append((known, run, new))
                counts[1] += 1
            else:
                counts[3] += 1
        self.runs.append({"id": run, "metric": metric, "start": start, "end": end, "known": known})
        return counts[0], counts[1], counts[2], counts[3]

    def settled(self, metric: str, bucket: datetime, runs: list[dict]) -> bool:
        """A successful pull saw the bucket with a known time at or after the bucket's end."""
        return any(
            r["metric"] == metric and r["start"] <= bucket < r["end"] and r["known"] >= bucket + DAY
            for r in runs
        )

    def values(self, metric: str, keep=lambda known, run: True, runs=None) -> dict:
        runs = self.runs if runs is None else runs
        out = {}
        for key, versions in self.versions.items():
            seen = sorted((v for v in versions if keep(v[0], v[1])), key=lambda v: (v[0], v[1]))
            if key[0] != metric or not seen:
                continue
            last = seen[-1][2]
            out[key[1:]] = (
                None if last == REMOVED else last,
                seen[0][2],
                len(seen),
                not self.settled(metric, key[3], runs),
            )
        return out

    def changes(self, metric: str) -> set[tuple]:
        """Every change late data made (a version after the first whose value differs from
        the one before it, a removal as 0): (country, measure, bucket, run, known, before,
        after, the known time of the last successful pull before it that held the bucket)."""
        out = set()
        for key, versions in self.versions.items():
            if key[0] != metric:
                continue
            seen = sorted(versions, key=lambda v: (v[0], v[1]))
            for (_, _, old), (known, run, new) in itertools.pairwise(seen):
                before, after = (0.0 if v == REMOVED else float(v) for v in (old, new))
                if before == after:
                    continue
                pulls = [
                    r["known"]
                    for r in self.runs
                    if r["metric"] == metric
                    and r["start"] <= key[3] < r["end"]
                    and (r["known"], r["id"]) < (known, run)
                ]
                out.add((*key[1:], run, known, before, after, max(pulls, default=None)))
        return out

    def covered(self, metric: str) -> set[datetime]:
        buckets = set()
        for r in self.runs:
            if r["metric"] == metric:
                b = r["start"]
                while b < r["end"]:
                    if r["known"] >= b + DAY:
                        buckets.add(b)
                    b += DAY
        return buckets


def stored(rows) -> dict:
    return {
        (r.dims["country"], r.measure, r.bucket): (r.value, r.first_value, r.versions, r.partial)
        for r in rows
    }


class KnowledgeTime(RuleBasedStateMachine):
    """Late rows, deletes, updates, pulls as of now and the past, backfills to now, retries."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        root = Path(self.folder.name)
        (root / "lookback.toml").write_text(PROJECT)
        self.source = arrived_orders(root / "shop.duckdb", [])
        self.project, self.store = self.open_store(root)
        self.model = Model()
        self.now = START
        self.next_id = 0

    def open_store(self, root: Path) -> tuple[Project, Store]:
        project = load_project(root / "lookback.toml")
        return project, Store(project.store_path)

    def teardown(self) -> None:
        self.store.close()
        self.folder.cleanup()

    def clock(self) -> datetime:
        return self.now

    def edit(self, sql: str, params: list) -> None:
        con = duckdb.connect(str(self.source))
        try:
            con.execute(sql, params)
        finally:
            con.close()

    def apply(self, run, as_of: datetime, empty_ok: bool = False) -> None:
        """Check one finished run of the engine against the model's pull."""
        assert run.as_of <= self.now, "a pull as of the future"
        replays = run.metric == "replayed"
        known = as_of if replays else self.now
        expected = self.model.pull(
            run.metric, run.id, run.window_start, run.window_end, as_of, known, empty_ok
        )
        if expected is None:
            assert run.status == "failed", run
            return
        assert run.status == "succeeded", run.error
        assert run.known_at == known
        assert (run.new, run.revised, run.removed, run.unchanged) == expected

    @initialize(
        rows=st.lists(
            st.tuples(hours_ago, st.integers(0, 72), countries, st.integers(-3, 50)), min_size=1, max_size=6
        )
    )
    def history(self, rows):
        for hours, delay, country, amount in rows:
            self.add(START - timedelta(hours=hours), min(delay, hours), country, amount)

    def add(self, ordered: datetime, delay_hours: int, country: str, amount: int) -> None:
        arrived = ordered + timedelta(hours=delay_hours)
        self.edit(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
            [self.next_id, ordered, arrived, country, float(amount)],
        )
        self.model.rows[self.next_id] = (ordered, arrived, country, float(amount))
        self.next_id += 1

    @rule(hours=hours_ago, country=countries, amount=st.integers(-3, 50))
    def late_row_arrives(self, hours, country, amount):
        self.add(self.now - timedelta(hours=hours), hours, country, amount)

    @precondition(lambda self: self.model.rows)
    @rule(pick=st.integers(0, 10**6))
    def delete_row(self, pick):
        row = sorted(self.model.rows)[pick % len(self.model.rows)]
        self.edit("DELETE FROM orders WHERE id = ?", [row])
        del self.model.rows[row]

    @precondition(lambda self: self.model.rows)
    @rule(pick=st.integers(0, 10**6), amount=st.integers(-3, 50))
    def update_row(self, pick, amount):
        row = sorted(self.model.rows)[pick % len(self.model.rows)]
        self.edit("UPDATE orders SET amount = ? WHERE id = ?", [float(amount), row])
        ordered, arrived, country, _ = self.model.rows[row]
        self.model.rows[row] = (ordered, arrived, country, float(amount))

    @rule(hours=st.integers(1, 40))
    def time_passes(self, hours):
        self.now += timedelta(hours=hours)

    @rule(metric=st.sampled_from(METRICS), hours_back=st.one_of(st.just(0), st.integers(1, 150)))
    def pull(self, metric, hours_back):
        as_of = self.now - timedelta(hours=hours_back)
        run = run_pull(self.project, metric, self.store, as_of=as_of, clock=self.clock)
        assert (run.window_start, run.window_end) == (
            day(as_of) + DAY - LOOKBACK_DAYS * DAY,
            day(as_of) + DAY,
        )
        self.apply(run, as_of)
        if run.status == "succeeded":  # a repeated pull adds nothing
            again = run_pull(self.project, metric, self.store, as_of=as_of, clock=self.clock)
            self.apply(again, as_of)
            assert (again.new, again.revised, again.removed) == (0, 0, 0)

    @rule(metric=st.sampled_from(METRICS), days_back=st.integers(1, 9), then=st.booleans())
    def backfill_to_now(self, metric, days_back, then):
        pulled = [(r["start"], r["end"]) for r in self.model.runs if r["metric"] == metric]
        runs = backfill(
            self.project,
            metric,
            self.store,
            day(self.now) - days_back * DAY,
            self.now,
            clock=self.clock,
            as_known_then=then,
        )
        assert runs[0].window_start == day(self.now) - days_back * DAY
        # [from, to) holds the bucket of now unless now is that bucket's very start
        assert runs[-1].window_end == (day(self.now) + DAY if self.now > day(self.now) else self.now)
        for run in runs:  # each chunk with what is known now; as known then: as of its end,
            # or now for the chunk that holds now
            assert run.as_of == (min(run.window_end, self.now) if then else self.now)
            self.apply(
                run,
                run.as_of,
                empty_ok=not any(s < run.window_end and run.window_start < e for s, e in pulled),
            )

    @rule(metric=st.sampled_from(METRICS))
    def retry_failed_windows(self, metric):
        for run in retry_failed(self.project, self.store, metric, clock=self.clock):
            self.apply(run, run.as_of)

    @invariant()
    def current_values_partial_and_coverage(self):
        for metric in METRICS:
            assert stored(self.store.history(metric)) == self.model.values(metric)
            spans = self.store.coverage(metric)
            buckets = set()
            for start, end in spans:
                b = start
                while b < end:
                    buckets.add(b)
                    b += DAY
            assert buckets == self.model.covered(metric)

    @invariant()
    def the_changes_late_data_made_as_the_commits_kept_them(self):
        for metric in METRICS:
            with self.store.reading() as cur:
                rows = cur.execute(
                    "SELECT dims, measure, bucket, run_id, known_at, prev_value, value,"
                    " prev_known_at FROM arrivals WHERE metric = ?",
                    [metric],
                ).fetchall()
            kept = {(json.loads(d)["country"], *rest) for d, *rest in rows}
            assert len(kept) == len(rows)
            changes = self.model.changes(metric)
            assert kept == changes
            # summed by measure, bucket, known time and the pull before, as the advisor reads
            with self.store.reading() as cur:
                rows = cur.execute(
                    "SELECT measure, bucket, known_at, prev_known_at, sum(revisions),"
                    " sum(magnitude), sum(signed) FROM arrival_sums WHERE metric = ?"
                    " GROUP BY ALL",
                    [metric],
                ).fetchall()
            sums: dict[tuple, list[float]] = {}
            for _c, measure, bucket, _run, known, before, after, prev in changes:
                total = sums.setdefault((measure, bucket, known, prev), [0, 0.0, 0.0])
                total[0] += 1
                total[1] += abs(after - before)
                total[2] += after - before
            assert {(*k, n, m, s) for *k, n, m, s in rows} == {(*k, *v) for k, v in sums.items()}

    @invariant()
    def the_past_as_known_at_a_time_and_after_a_run(self):
        runs = self.model.runs
        for r in runs[-2:]:
            for metric in METRICS:
                at = r["known"]
                assert stored(self.store.history(metric, as_known_at=at)) == self.model.values(
                    metric,
                    keep=lambda known, run, at=at: known <= at,
                    runs=[x for x in runs if x["known"] <= at],
                )
                n = r["id"]
                assert stored(self.store.history(metric, as_of_run=n)) == self.model.values(
                    metric, keep=lambda known, run, n=n: run <= n, runs=[x for x in runs if x["id"] <= n]
                )


KnowledgeTime.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=14,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_the_store_agrees_with_a_model_of_knowledge_time = KnowledgeTime.TestCase


# -- the defects this guards, each as a plain regression test --------------------------------


@pytest.fixture
def replayed(tmp_path: Path):
    (tmp_path / "lookback.toml").write_text(PROJECT)
    arrived_orders(
        tmp_path / "shop.duckdb",
        [
            (1, ts("2026-10-05T10:00"), ts("2026-10-05T11:00"), "DE", 10.0),
            (2, ts("2026-10-05T12:00"), ts("2026-10-06T09:00"), "DE", 5.0),  # a day late
            (3, ts("2026-10-09T08:00"), ts("2026-10-09T08:30"), "DE", 1.0),
        ],
    )
    project = load_project(tmp_path / "lookback.toml")
    with Store(project.store_path) as store:
        yield project, store


def test_a_backfill_of_the_past_leaves_the_current_values_as_they_were(replayed):
    project, store = replayed
    now = ts("2026-10-07T12:00")
    run = run_pull(project, "replayed", store, as_of=now, clock=lambda: now)
    assert run.status == "succeeded", run.error
    before = stored(store.history("replayed"))
    assert before[("DE", "orders", ts("2026-10-05"))] == (2, 2, 1, False)
    # as known then: one chunk as of its own end, 10-06: it sees 10-05 before the late order
    # arrived
    runs = backfill(
        project, "replayed", store, ts("2026-10-03"), ts("2026-10-06"), clock=lambda: now, as_known_then=True
    )
    assert [(r.status, r.as_of, r.known_at, r.new) for r in runs] == [
        ("succeeded", ts("2026-10-06"), ts("2026-10-06"), 2)
    ]
    after = stored(store.history("replayed"))
    # the current values stay; the backfill's older view is in the history, known earlier
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
    assert after[("DE", "orders", ts("2026-10-05"))] == (2, 1, 2, False)
    past = {
        (r.bucket, r.measure): r.value for r in store.history("replayed", as_known_at=ts("2026-10-06T12:00"))
    }
    assert past == {(ts("2026-10-05"), "orders"): 1, (ts("2026-10-05"), "revenue"): 10.0}
    assert [(r.old_value, r.new_value, r.known_at) for r in store.revisions("replayed")] == [
        (1, 2, now),
        (10.0, 15.0, now),
    ]


def test_a_backfill_to_now_pulls_the_chunk_that_holds_now_as_of_now(replayed):
    project, store = replayed
    now = ts("2026-10-09T12:00")
    runs = backfill(project, "replayed", store, ts("2026-10-06"), now, clock=lambda: now)
    assert [r.as_of for r in runs] == [now, now]
    today = [r for r in store.history("replayed") if r.bucket == ts("2026-10-09")]
    assert today and all(r.partial for r in today)
    with pytest.raises(UsageError, match="future"):
        run_pull(project, "replayed", store, as_of=now + timedelta(hours=1), clock=lambda: now)
    # the backfill looked at the present: the scheduler owes no catch-up right now
    config = dataclasses.replace(project.metrics["replayed"], every=timedelta(hours=6))
    assert plan_catch_up(config, store, now) == []
    assert [p.trigger for p in plan_catch_up(config, store, now + timedelta(hours=7))] == ["catch-up"]


def test_a_replay_between_two_pulls_splits_the_change_they_saw_in_two(replayed):
    """The changes late data made, as the advisor reads them, follow a replay of the past
    that slots versions between those of earlier commits."""
    project, store = replayed
    config = project.metrics["replayed"]
    con = duckdb.connect(str(project.path.parent / "shop.duckdb"))
    con.execute("INSERT INTO orders VALUES (4, '2026-10-05 13:00', '2026-10-07 06:00', 'DE', 5)")
    con.close()  # two days late
    first, between, now = ts("2026-10-05T20:00"), ts("2026-10-06T12:00"), ts("2026-10-07T12:00")
    for as_of in (first, now, between):
        run = run_pull(project, "replayed", store, as_of=as_of, clock=lambda: now)
        assert run.status == "succeeded", run.error
    found = load_revisions(store, config)
    assert [
        (m, p, v, a, pa)
        for m, p, v, a, pa in zip(
            found["measure"],
            found["prev_value"],
            found["value"],
            found["age"],
            found["prev_age"],
            strict=True,
        )
    ] == [
        ("orders", 1, 2, 1, 0),
        ("revenue", 10.0, 15.0, 1, 0),  # the replay, known 10-06
        ("orders", 2, 3, 2, 1),
        ("revenue", 15.0, 20.0, 2, 1),
    ]  # the pull known 10-07


def test_a_bucket_settles_when_a_later_pull_sees_it_complete_even_unchanged(replayed):
    project, store = replayed
    noon, next_day = ts("2026-10-09T12:00"), ts("2026-10-10T12:00")
    run_pull(project, "replayed", store, as_of=noon, clock=lambda: noon)
    assert [r.partial for r in store.history("replayed") if r.bucket == ts("2026-10-09")] == [True, True]
    again = run_pull(project, "replayed", store, as_of=next_day, clock=lambda: next_day)
    assert again.revised == 0 and again.new == 0  # 10-09 did not change, and nothing new
    assert [r.partial for r in store.history("replayed") if r.bucket == ts("2026-10-09")] == [False, False]
    # as known after the first run it was still partial
    assert [r.partial for r in store.history("replayed", as_of_run=1) if r.bucket == ts("2026-10-09")] == [
        True,
        True,
    ]


# -- the command line: replay and history as known at a time --------------------------------

REPLAY_PROJECT = PROJECT.replace('lookback = "3d"\n', 'lookback = "3d"\nevery = "6h"\n', 1)


@pytest.fixture
def late_shop(tmp_path: Path) -> Path:
    """Orders of the last days in real time, some arriving a day late."""
    from lookback_gui.core.timing.windows import local_now

    now = local_now(load_zone("UTC")).replace(minute=0, second=0, microsecond=0)
    rows = []
    for i in range(40):
        ordered = now - timedelta(hours=3 * i + 1)
        rows.append(
            (
                i,
                ordered,
                ordered + timedelta(hours=30 if i % 3 == 0 else 1),
                "DE" if i % 2 else "Ürdün",
                float(i),
            )
        )
    arrived_orders(tmp_path / "shop.duckdb", [r for r in rows if r[2] <= now])
    (tmp_path / "lookback.toml").write_text(REPLAY_PROJECT)
    return tmp_path / "lookback.toml"


def load_zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def test_replay_fills_in_the_history_and_leaves_the_present_as_it_was(late_shop):
    from tests.helpers import run_cli

    p = str(late_shop)
    assert run_cli("pull", "replayed", "--project", p)[0] == 0
    before = json.loads(run_cli("history", "replayed", "--project", p, "--json")[1])

    code, out, err = run_cli("replay", "replayed", "--project", p, "--from", "-3d", "--to", "now")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("replay replayed: 12 pull(s) on its schedule from ")
    assert lines[1].startswith("[1/12] run 2 replayed succeeded")
    assert lines[-1] == "replay replayed: 12 pull(s) succeeded"

    runs = json.loads(run_cli("runs", "--project", p, "--json")[1])
    replayed = [r for r in runs if r["trigger"] == "replay"]
    assert len(replayed) == 12
    assert all(r["known_at"] == r["as_of"] for r in replayed)  # $as_of SQL: known at its as-of
    steps = sorted(datetime.fromisoformat(r["as_of"]) for r in replayed)
    assert {b - a for a, b in itertools.pairwise(steps)} == {timedelta(hours=6)}

    # the present is as it was; the late orders now show as revisions in the past
    after = json.loads(run_cli("history", "replayed", "--project", p, "--json")[1])
    first = before[0]["bucket"]  # older buckets are new: the pull's window did not reach them
    assert [(r["bucket"], r["dims"], r["measure"], r["value"]) for r in after if r["bucket"] >= first] == [
        (r["bucket"], r["dims"], r["measure"], r["value"]) for r in before
    ]
    assert any(r["bucket"] < first for r in after)
    revisions = json.loads(run_cli("revisions", "replayed", "--project", p, "--json")[1])
    assert any(
        r["measure"] == "orders" and r["old_value"] is not None and r["new_value"] > r["old_value"]
        for r in revisions
    )
    known = [r["known_at"] for r in revisions]
    assert known == sorted(known)

    # as known at a replayed pull's time = as known after that run
    middle = replayed[len(replayed) // 2]
    at = json.loads(
        run_cli("history", "replayed", "--project", p, "--json", "--as-known-at", middle["known_at"])[1]
    )
    assert at and all(r["versions"] >= 1 for r in at)
    code, out, err = run_cli("history", "replayed", "--project", p, "--as-known-at", "2026-13-01")
    assert code == 2 and err.startswith("error: --as-known-at")


def test_replay_is_refused_for_sql_without_as_of_and_metrics_without_schedule(late_shop):
    from tests.helpers import run_cli

    p = str(late_shop)
    code, _, err = run_cli("replay", "plain", "--project", p, "--from", "-2d", "--to", "now")
    assert code == 2
    assert "does not use $as_of" in err and "lookback backfill" in err
    late_shop.write_text(PROJECT)  # no schedule
    code, _, err = run_cli("replay", "replayed", "--project", p, "--from", "-2d", "--to", "now")
    assert code == 2 and "has no schedule" in err
    late_shop.write_text(REPLAY_PROJECT.replace('every = "6h"', 'every = "1m"'))
    code, _, err = run_cli("replay", "replayed", "--project", p, "--from", "-2d", "--to", "now")
    assert code == 2 and "2,880 pulls" in err and "--yes" in err


def test_a_threshold_alert_fires_on_a_bucket_that_settled_without_changing(tmp_path):
    text = PROJECT.replace(
        "[metrics.plain]",
        '[[metrics.replayed.alerts]]\nkind = "threshold"\nmeasure = "orders"\nbelow = 2\n\n[metrics.plain]',
    )
    (tmp_path / "lookback.toml").write_text(text)
    arrived_orders(
        tmp_path / "shop.duckdb",
        [
            (1, ts("2026-10-08T10:00"), ts("2026-10-08T10:00"), "DE", 1.0),
            (2, ts("2026-10-08T11:00"), ts("2026-10-08T11:00"), "DE", 1.0),
            (3, ts("2026-10-09T08:00"), ts("2026-10-09T08:00"), "DE", 1.0),
        ],
    )
    project = load_project(tmp_path / "lookback.toml")
    noon, next_day = ts("2026-10-09T12:00"), ts("2026-10-10T12:00")
    with Store(project.store_path) as store:
        run_pull(project, "replayed", store, as_of=noon, clock=lambda: noon)
        assert store.alert_states() == []  # 10-08 (2 orders) is the latest complete bucket
        run_pull(project, "replayed", store, as_of=next_day, clock=lambda: next_day)
        states = store.alert_states()
        assert [(s.state, s.message) for s in states] == [
            ("firing", "orders at 2026-10-09 00:00:00: country=DE: 1 < 2")
        ]


def test_a_backfill_from_the_app_over_the_demo_leaves_every_current_value(tmp_path):
    """The app's Backfill (Ctrl+B) runs through its scheduler: over the demo, whose SQL replays
    the source with $as_of, the chunks are known at their own ends, so no value goes back to
    an older view: a value stays unless a chunk knew it later than any pull before it did."""
    from datetime import UTC

    from lookback_gui.core.demo import seed_history, write_demo
    from lookback_gui.core.schedule.scheduler import Scheduler

    now = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
    path = write_demo(tmp_path / "demo", now=now)
    seed_history(path, now=now)
    project = load_project(path)
    with Store(project.store_path) as store:
        before = {
            (r.bucket, r.dims["country"], r.measure): (r.value, r.known_at)
            for r in store.history("daily_orders")
        }
        scheduler = Scheduler(project, store, clock=lambda: now.replace(tzinfo=UTC))
        try:
            assert scheduler.backfill("daily_orders", now - timedelta(days=70), now) is not None
            assert scheduler.wait_idle(timeout=PROCESS_S)
        finally:
            scheduler.shutdown(grace_s=1)
        runs = store.runs(metric="daily_orders", trigger="backfill")
        assert len(runs) == 11 and all(r.as_of <= now for r in runs)
        after = {
            (r.bucket, r.dims["country"], r.measure): (r.value, r.known_at)
            for r in store.history("daily_orders")
        }
        for key, (value, known) in before.items():
            assert after[key] == (value, known) or after[key][1] > known, key
        # the lookback window was pulled as of now: nothing knew it later
        recent = [k for k in before if k[0] >= now - timedelta(days=7)]
        assert recent and all(after[k] == before[k] for k in recent)
