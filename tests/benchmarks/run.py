"""Benchmarks: each of our operations against a baseline measured side by side in one run.

    python tests/benchmarks/run.py [--quick] [--json FILE] [--only NAME ...]

Data is built deterministically in a temporary folder. Pairs are measured alternately, several
times, and the medians compared; the table shows name, ours, baseline, ratio, target and ok.
`--quick` shrinks the data so the whole run takes about a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import duckdb  # noqa: E402

from lookback_gui.core.project import load_project  # noqa: E402
from lookback_gui.core.pull import backfill, run_pull  # noqa: E402
from lookback_gui.core.runtime import prefer_the_gui_thread, prepare_process  # noqa: E402
from lookback_gui.core.sources import SourceConnections  # noqa: E402
from lookback_gui.core.store import Store, open_store  # noqa: E402
from lookback_gui.core.store.schema import cluster_current, fill_arrivals  # noqa: E402
from tests.helpers import query  # noqa: E402

AS_OF = datetime(2026, 10, 31, 12, 0)
# the source databases of the pulls (nothing is opened before a pull asks); main() closes them
# at the end, as the command line and the app close theirs
CONNECTIONS = SourceConnections()


@dataclass
class Row:
    name: str
    ours_s: float | None
    baseline_s: float | None
    ratio: float | None
    target: str
    ok: bool


def median_pair(
    ours: Callable[[], object],
    baseline: Callable[[], object] | None,
    reps: int,
    before: Callable[[], object] | None = None,
) -> tuple[float, float | None]:
    """Alternate ours and the baseline ``reps`` times; return both medians (seconds)."""
    a, b = [], []
    ours()  # warm
    if baseline:
        baseline()
    for _ in range(reps):
        if before:
            before()
        start = time.perf_counter()
        ours()
        a.append(time.perf_counter() - start)
        if baseline:
            if before:
                before()
            start = time.perf_counter()
            baseline()
            b.append(time.perf_counter() - start)
    return statistics.median(a), (statistics.median(b) if b else None)


def puller(project: Any, store: Store) -> Callable[[], None]:
    """One pull of metric ``m`` as of AS_OF, which must succeed."""

    def run() -> None:
        result = run_pull(project, "m", store, as_of=AS_OF, connections=CONNECTIONS)
        assert result.status == "succeeded", result.error

    return run


def ratio_row(
    name: str,
    ours: float,
    base: float,
    limit: float,
    absolute: float | None = None,
    target: str | None = None,
) -> Row:
    """A ratio row, ok at most ``limit`` (and ``absolute`` seconds); ``target`` labels it."""
    ratio = ours / base if base else float("inf")
    ok = ratio <= limit and (absolute is None or ours <= absolute)
    target = target or f"<= {limit:g}" + (f" and <= {absolute * 1000:g} ms" if absolute else "")
    return Row(name, ours, base, ratio, target, ok)


def write_project(
    folder: Path, source: str, sql: str, extra: str = "", lookback: str = '"7d"', grain: str = "day"
) -> Path:
    """A project file with the source ``src`` and the metric ``m``, each key at the start of
    its line (a source or extra of several lines included), so that :func:`team_project` finds
    its [store] table."""
    path = folder / "lookback.toml"
    path.write_text(
        "\n".join(
            [
                "[store]",
                'path = "lookback.duckdb"',
                "",
                "[sources.src]",
                source,
                "",
                "[metrics.m]",
                'source = "src"',
                f'grain = "{grain}"',
                f"lookback = {lookback}",
                "retries = 0",
                "allow_empty = true",
                extra,
                'sql = """',
                sql,
                '"""',
                "",
            ]
        )
    )
    return path


# -- pull overhead ---------------------------------------------------------------------------

FACTS_SQL = (
    "SELECT date_trunc('day', ts) AS bucket, k, sum(v) AS v FROM facts "
    "WHERE ts >= $window_start AND ts < $window_end GROUP BY ALL"
)


def make_facts(path: Path, keys: int, days: int = 14, end: datetime = datetime(2026, 10, 31)) -> None:
    """``keys`` facts a day for the ``days`` days before ``end``, sorted by time."""
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE OR REPLACE TABLE facts AS SELECT ?::TIMESTAMP - to_days(d) AS ts, "
        "'k' || k AS k, (hash(d, k) % 1000)::DOUBLE AS v FROM range(?) t(d), range(?) u(k) "
        "ORDER BY ts",
        [end, days, keys],
    )
    con.close()


def bench_pull_overhead(folder: Path, values: int, reps: int) -> Row:
    work = folder / f"overhead_{values}"
    work.mkdir()
    keys = max(1, values // 7)
    make_facts(work / "src.duckdb", keys)
    project = load_project(write_project(work, 'type = "duckdb"\npath = "src.duckdb"', FACTS_SQL))
    store = Store(project.store_path)
    run_pull(
        project,
        "m",
        store,
        as_of=AS_OF,  # the store holds the window: a lookback pull
        connections=CONNECTIONS,
    )
    flip = [0]

    def revise_one_percent() -> None:
        flip[0] += 1
        con = duckdb.connect(str(work / "src.duckdb"))
        con.execute("UPDATE facts SET v = v + 1 WHERE (hash(k) + ?) % 100 = 0", [flip[0]])
        con.close()
        CONNECTIONS.prepare()  # between two pulls, as a scheduler's worker does after each

    def ours() -> None:
        run = run_pull(project, "m", store, as_of=AS_OF, connections=CONNECTIONS)
        assert run.status == "succeeded", run.error

    window = {"window_start": datetime(2026, 10, 25), "window_end": datetime(2026, 11, 1)}
    target = work / "baseline.duckdb"

    def baseline() -> None:
        con = duckdb.connect(str(target))
        con.execute(f"ATTACH '{work / 'src.duckdb'}' AS src (READ_ONLY)")
        con.execute("CREATE OR REPLACE TABLE result (bucket TIMESTAMP, k VARCHAR, v DOUBLE)")
        query = FACTS_SQL.replace("FROM facts", "FROM src.facts")
        con.execute(f"INSERT INTO result SELECT * FROM ({query})", window)
        con.close()

    ours_s, base_s = median_pair(ours, baseline, reps, before=revise_one_percent)
    store.close()
    label = {1000: "1k", 100_000: "100k", 1_000_000: "1m", 5_000_000: "5m"}[values]
    return ratio_row(f"pull_overhead_{label}", ours_s, base_s or 0, 1.25, 0.030 if values == 1000 else None)


def make_events(path: Path, rows: int, days: int, keys: int) -> None:
    """``rows`` events spread evenly over the ``days`` before 2026-10-31, sorted by time."""
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE events AS SELECT TIMESTAMP '2026-10-31' - to_seconds(CAST("
        "(i * 1.0 / $n) * $days * 86400 AS BIGINT)) AS ts, 'k' || (i % $keys) AS k, "
        "(i % 97)::DOUBLE AS v, i AS id FROM range($n) r(i) ORDER BY ts",
        {"n": rows, "days": days, "keys": keys},
    )
    con.close()


# -- growth ----------------------------------------------------------------------------------

EVENTS_SQL = (
    "SELECT date_trunc('day', ts) AS bucket, k, count(*) AS n, sum(v) AS v FROM events "
    "WHERE ts >= $window_start AND ts < $window_end GROUP BY ALL"
)


def bench_history_growth(folder: Path, rows: int, reps: int) -> Row:
    timings = {}
    projects = {}
    for label, days in (("long", 730), ("short", 91)):
        work = folder / f"history_{label}"
        work.mkdir()
        make_events(work / "src.duckdb", rows if label == "long" else rows * days // 730, days, keys=100)
        projects[label] = load_project(
            write_project(work, 'type = "duckdb"\npath = "src.duckdb"', EVENTS_SQL)
        )
    stores = {k: Store(p.store_path) for k, p in projects.items()}

    timings["long"], timings["short"] = median_pair(
        puller(projects["long"], stores["long"]), puller(projects["short"], stores["short"]), reps
    )
    for store in stores.values():
        store.close()
    return ratio_row("history_growth", timings["long"], timings["short"] or 0, 1.2)


def bench_store_growth(folder: Path, versions: int, runs: int, reps: int) -> Row:
    stores = {}
    work = folder / "store_growth"
    work.mkdir()
    make_facts(work / "src.duckdb", 1000 // 7 + 1)
    for label in ("big", "empty"):
        sub = work / label
        sub.mkdir()
        project = load_project(
            write_project(sub, f'type = "duckdb"\npath = "{work / "src.duckdb"}"', FACTS_SQL)
        )
        store = Store(project.store_path)
        if label == "big":
            seed_store(store, versions, runs)
        stores[label] = (project, store)

    def pull(label: str) -> Callable[[], None]:
        return puller(*stores[label])

    def revise() -> None:
        con = duckdb.connect(str(work / "src.duckdb"))
        con.execute("UPDATE facts SET v = v + 1 WHERE hash(k) % 50 = 0")
        con.close()

    big, empty = median_pair(pull("big"), pull("empty"), reps, before=revise)
    for _, store in stores.values():
        store.close()
    return ratio_row("store_growth", big, empty or 0, 1.5)


def seed_store(store: Store, versions: int, runs: int) -> None:
    """Fill a store with ``runs`` earlier runs and ``versions`` versions of older buckets."""
    with store.reading() as cur:
        per_run = max(1, versions // runs)
        cur.execute(
            "INSERT INTO runs (id, metric, trigger, status, timezone, grain, as_of, window_start, "
            "window_end, started_at, finished_at, attempts, rows, new, revised, removed, unchanged, "
            "duration_s, known_at, settled_end, commit_seq) SELECT i, 'm', 'schedule', 'succeeded',"
            " 'UTC', 'day', TIMESTAMP '2020-01-01' + to_hours(i), TIMESTAMP '2020-01-01' + "
            "to_hours(i) - INTERVAL 7 DAY, TIMESTAMP '2020-01-01' + to_hours(i), TIMESTAMP "
            "'2020-01-01' + to_hours(i), TIMESTAMP '2020-01-01' + to_hours(i), 1, ?, ?, 0, 0, 0, "
            "0.1, TIMESTAMP '2020-01-01' + to_hours(i), TIMESTAMP '2020-01-01' + to_hours(i), i "
            "FROM range(1, ? + 1) t(i)",
            [per_run, per_run, runs],
        )
        cur.execute(
            f"DROP SEQUENCE run_ids; CREATE SEQUENCE run_ids START {runs + 1}; "
            f"DROP SEQUENCE commit_seqs; CREATE SEQUENCE commit_seqs START {runs + 1}"
        )
        cur.execute(
            "INSERT INTO versions SELECT 'm', '{\"k\":' || (i % 1000) || '}', 'v', "
            "TIMESTAMP '2020-01-01' + to_days(CAST(i // 1000 AS INTEGER) % 2000), "
            "1 + i // ?, (i % 977)::DOUBLE, false, false, TIMESTAMP '2020-01-01' + "
            "to_hours(1 + i // ?), NULL, false FROM range(?) t(i)",
            [per_run, per_run, versions],
        )
        cur.execute(
            "INSERT INTO current SELECT metric, dims, measure, bucket, arg_max(value, run_id), false, "
            "false, max(run_id), arg_min(value, run_id), min(run_id), count(*)::INTEGER, "
            "max(known_at), NULL, NULL, min(known_at) FROM versions GROUP BY ALL ORDER BY bucket"
        )


# -- GUI -------------------------------------------------------------------------------------


def _app() -> object:
    from PySide6.QtWidgets import QApplication

    import lookback_gui.ui  # noqa: F401

    prefer_the_gui_thread()  # as the desktop app does at its start
    return QApplication.instance() or QApplication([])


def heartbeat(work: Callable[[Callable[[], None]], None]) -> float:
    """Longest gap (s) of a 10 ms GUI-thread timer while ``work(done)`` runs."""
    from PySide6.QtCore import QEventLoop, QTimer

    _app()
    gaps: list[float] = []
    last = [time.perf_counter()]

    def beat() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer(interval=10)
    timer.timeout.connect(beat)
    loop = QEventLoop()
    timer.start()
    last[0] = time.perf_counter()
    QTimer.singleShot(50, lambda: work(loop.quit))
    loop.exec()
    timer.stop()
    return max(gaps[1:]) if len(gaps) > 1 else float("inf")


def bench_gui_pull(folder: Path, values: int) -> Row:
    """The desktop app's own "run now" of a pull returning 1M values: the longest GUI-thread
    stall from the click through the pull and its commit (on a worker) to the window showing
    the result (runs, status, chart)."""
    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from lookback_gui.core.store.events import RunFinished
    from lookback_gui.ui.main_window import MainWindow

    _app()
    work = folder / "gui_pull"
    work.mkdir()
    # "run now" pulls as of now: the facts lie in today's lookback window
    today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    make_facts(work / "src.duckdb", values // 7, days=7, end=today)
    path = write_project(work, 'type = "duckdb"\npath = "src.duckdb"', FACTS_SQL)
    window = MainWindow(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    window.resize(1200, 800)
    window.show()
    opening = QEventLoop()
    window.opened.connect(lambda _session: opening.quit())
    window.open_failed.connect(lambda message: (print(message, file=sys.stderr), opening.quit()))
    window.open_project(path)
    opening.exec()
    assert window.session is not None
    window.select_metric("m")
    finished: list[Any] = []

    def work_fn(quit_loop: Callable[[], None]) -> None:
        def seen(event: object) -> None:
            if isinstance(event, RunFinished) and not finished:
                finished.append(event.run)
                QTimer.singleShot(1000, quit_loop)  # and the window catching up with it

        window.bridge.core_event.connect(seen)
        window.run_now()

    gap = heartbeat(work_fn)
    assert finished and finished[0].status == "succeeded", finished
    assert finished[0].new == values // 7 * 7  # every fact a value of its own
    window.quitting = True
    window.close_session(wait=True)
    window.close()
    return Row("gui_heartbeat_pull", gap, 0.010, gap / 0.010, "<= 5 (<= 50 ms)", gap <= 0.050)


def chart_store(folder: Path, points: int, catalog: str | None = None) -> tuple[Store, object]:
    """A store holding one series of ``points`` minute buckets, the last 1 % revised (a team
    store when ``catalog`` names its catalog database)."""
    from lookback_gui.core.project import parse_project

    work = folder / "chart"
    work.mkdir(exist_ok=True)
    path = write_project(
        work, 'type = "duckdb"\npath = "src.duckdb"', FACTS_SQL, grain="minute", lookback='"60m"'
    )
    if catalog:
        team_project(path, catalog)
    project = parse_project(path.read_text(), path)
    store = open_store(project.store)
    with store.writing() as cur:
        if not cur.execute("SELECT count(*) FROM current").fetchone()[0]:
            cur.execute(
                "INSERT INTO current SELECT 'm', '{}', 'v', TIMESTAMP '2024-01-01' + to_minutes(i), "
                "(i % 1440)::DOUBLE + sin(i), false, i > $n * 0.999, 1, (i % 1440)::DOUBLE, 1, "
                "CASE WHEN i > $n * 0.99 THEN 2 ELSE 1 END, TIMESTAMP '2024-06-01', NULL, NULL, "
                "TIMESTAMP '2024-06-01' FROM range($n) t(i)",
                {"n": points},
            )
    return store, project.metrics["m"]


def bench_gui_chart(folder: Path, points: int, catalog: str | None = None) -> tuple[Row, Row]:
    """The chart asked to show a 1M-point series: the longest GUI-thread stall from the request
    through loading (on a worker), drawing and the first painted frame; and the time from the
    request to that first frame (median of three fresh charts on freshly opened stores)."""
    from PySide6.QtCore import QEvent, QEventLoop, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    from lookback_gui.ui.bridge import Bridge
    from lookback_gui.ui.chart import ChartWidget

    app = _app()
    store, config = chart_store(folder, points, catalog)
    store_config = open_config(folder / "chart" / "lookback.toml")
    bridge = Bridge()

    def fresh_chart() -> ChartWidget:
        chart = ChartWidget(bridge)
        chart.resize(1200, 700)
        chart.show()
        QApplication.processEvents()  # the empty chart's own first paint is not part of it
        return chart

    def reopen() -> None:  # the store as the app has it just after opening: nothing cached
        nonlocal store
        store.close()
        store = open_store(store_config)

    def show_series(chart: ChartWidget, done: Callable[[], None]) -> None:
        """Ask ``chart`` for the series; call ``done`` once Qt has painted its first frame."""

        class FirstPaint(QObject):
            def eventFilter(self, _watched: QObject, event: QEvent) -> bool:
                if event.type() == QEvent.Type.Paint and loaded[0] and not fired[0]:
                    fired[0] = True
                    QTimer.singleShot(0, done)  # runs once this paint has finished
                return False

        loaded, fired = [False], [False]

        def on_loaded(data: Any) -> None:
            assert data.drawing is not None and len(data.drawing.x) == points
            loaded[0] = True

        watcher = FirstPaint(chart)
        chart.plot.viewport().installEventFilter(watcher)
        chart.loaded.connect(on_loaded)
        chart.set_metric(store, config)

    chart = fresh_chart()
    reopen()
    finished = [False]

    def work(quit_loop: Callable[[], None]) -> None:
        def then() -> None:
            finished[0] = True
            QTimer.singleShot(100, quit_loop)  # and the beats just after it

        show_series(chart, then)

    gap = heartbeat(work)
    assert finished[0]
    chart.close()
    frames = []
    for _ in range(3):
        chart = fresh_chart()
        reopen()
        loop = QEventLoop()
        start = time.perf_counter()
        show_series(chart, loop.quit)
        loop.exec()
        frames.append(time.perf_counter() - start)
        chart.close()
    first = statistics.median(frames)
    bridge.shutdown()
    store.close()
    del app
    kind = "team_" if catalog else ""
    # a team store reads Parquet files through its catalog (README: *Benchmarks*)
    bound = 0.200 if catalog else 0.100
    return (
        Row(f"{kind}gui_heartbeat_chart", gap, 0.010, gap / 0.010, "<= 5 (<= 50 ms)", gap <= 0.050),
        Row(f"{kind}chart_first_frame", first, None, None, f"<= {bound * 1000:.0f} ms", first <= bound),
    )


# -- the team store --------------------------------------------------------------------------

TEAM_SERVER = os.environ.get("LOOKBACK_BENCH_PG", "host=127.0.0.1 port=5432 user=postgres")


@contextlib.contextmanager
def team_catalog() -> Iterator[str]:
    """A fresh catalog database for a team store on the PostgreSQL server, dropped after."""
    import uuid

    import psycopg

    name = f"lookback_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{TEAM_SERVER} dbname=postgres", autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{TEAM_SERVER} dbname={name}"
    finally:
        with psycopg.connect(f"{TEAM_SERVER} dbname=postgres", autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def team_project(path: Path, catalog: str, data: str = 'data_path = "lake"\n') -> None:
    """Point the project file at ``path`` to a team store in ``catalog``, its data files where
    ``data`` (the data_path key and its own keys) says."""
    text, local = path.read_text(), '[store]\npath = "lookback.duckdb"\n'
    if local not in text:  # measuring a local store under a team store's name
        raise RuntimeError(f"{path}: no local [store] table to turn into a team store")
    path.write_text(text.replace(local, f'[store]\ntype = "ducklake"\ncatalog = "{catalog}"\n{data}'))


@contextlib.contextmanager
def team_data_in_s3(folder: Path) -> Iterator[str]:
    """The data_path keys of a team store in a bucket of the local S3 server (moto), started
    here and stopped after."""
    from tests.s3server import SECRET, S3Server

    server = S3Server(folder).start()
    try:
        os.environ["LOOKBACK_TEST_S3_SECRET"] = SECRET
        bucket = server.bucket("team")
        yield f'data_path = "s3://{bucket}/lake"\n{server.source_keys()}'
        requests = server.requests_since(0)
        print(
            f"team store in S3: {sum(r.method == 'PUT' for r in requests)} PUT, "
            f"{sum(r.method in ('GET', 'HEAD') for r in requests)} GET/HEAD requests",
            file=sys.stderr,
            flush=True,
        )
    finally:
        server.stop()


def open_config(path: Path) -> Any:
    return load_project(path).store


def bench_team_pull(folder: Path, values: int, reps: int, in_s3: bool = False) -> Row:
    """The same lookback pull (1 % of its values revised each time) into a team store and into
    a local store, alternated: the team store's cost over the local one. ``in_s3``: the team
    store's data files in the local S3 server instead of a folder."""
    work = folder / f"team_{values}"
    work.mkdir()
    make_facts(work / "src.duckdb", max(1, values // 7))
    local_dir, team_dir = work / "local", work / "team"
    local_dir.mkdir()
    team_dir.mkdir()
    source = f'type = "duckdb"\npath = "{work / "src.duckdb"}"'
    local = load_project(write_project(local_dir, source, FACTS_SQL))
    flip = [0]

    def revise_one_percent() -> None:
        flip[0] += 1
        con = duckdb.connect(str(work / "src.duckdb"))
        con.execute("UPDATE facts SET v = v + 1 WHERE (hash(k) + ?) % 100 = 0", [flip[0]])
        con.close()

    with team_catalog() as catalog, contextlib.ExitStack() as stack:
        data = stack.enter_context(team_data_in_s3(work)) if in_s3 else 'data_path = "lake"\n'
        path = write_project(team_dir, source, FACTS_SQL)
        team_project(path, catalog, data)
        team = load_project(path)
        with open_store(local.store) as local_store, open_store(team.store) as team_store:
            for project, store in ((local, local_store), (team, team_store)):
                puller(project, store)()  # the store holds the window: a lookback pull
            ours_s, base_s = median_pair(
                puller(team, team_store), puller(local, local_store), reps, before=revise_one_percent
            )
    label = {1000: "1k", 100_000: "100k"}[values]
    return ratio_row(
        f"team_{'s3_' if in_s3 else ''}pull_{label}",
        ours_s,
        base_s or 0,
        TEAM_PULL_LIMIT[values],
        target=f"<= {TEAM_PULL_LIMIT[values]:g} (team store{' in S3' if in_s3 else ''} / local store)",
    )


# the team store's pull against the local store's (README: *Benchmarks*, why these bounds)
TEAM_PULL_LIMIT = {1000: 2.0, 100_000: 1.5}


def bench_runs_view(folder: Path, runs: int) -> Row:
    from PySide6.QtCore import QEventLoop, QSettings

    from lookback_gui.ui.main_window import MainWindow

    _app()
    work = folder / "runs_view"
    work.mkdir()
    make_facts(work / "src.duckdb", 10)
    project = load_project(write_project(work, 'type = "duckdb"\npath = "src.duckdb"', FACTS_SQL))
    store = Store(project.store_path)
    seed_store(store, versions=runs, runs=runs)
    store.close()
    window = MainWindow(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    window.resize(1200, 800)
    window.show()
    loop = QEventLoop()
    window.refreshed.connect(loop.quit)
    start = time.perf_counter()
    window.open_project(project.path, start_scheduler=False)
    loop.exec()
    window.tabs.setCurrentWidget(window.runs_log)
    window.runs_log.view.grab()
    elapsed = time.perf_counter() - start
    assert window.runs_model.rowCount() > 0
    window.quitting = True
    window.close_session(wait=True)
    window.close()
    return Row("runs_view_open", elapsed, None, None, "<= 300 ms", elapsed <= 0.300)


# -- processes -------------------------------------------------------------------------------


def bench_cli_runs(folder: Path, reps: int) -> Row:
    work = folder / "cli"
    work.mkdir()
    make_facts(work / "src.duckdb", 10)
    path = write_project(work, 'type = "duckdb"\npath = "src.duckdb"', FACTS_SQL)
    project = load_project(path)
    with Store(project.store_path) as store:
        seed_store(store, versions=1000, runs=100)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def ours() -> None:
        subprocess.run(
            [sys.executable, "-m", "lookback_gui.cli", "runs", "--limit", "20", "--project", str(path)],
            check=True,
            capture_output=True,
            env=env,
        )

    def baseline() -> None:
        subprocess.run([sys.executable, "-c", "import duckdb"], check=True, capture_output=True)

    ours_s, base_s = median_pair(ours, baseline, reps)
    return ratio_row("cli_runs", ours_s, base_s or 0, 2)


def bench_peak_rss(folder: Path, values: int) -> Row:
    work = folder / "rss"
    work.mkdir()
    make_facts(work / "src.duckdb", values // 7)
    path = write_project(work, 'type = "duckdb"\npath = "src.duckdb"', FACTS_SQL)
    code = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {str(ROOT)!r})
        from datetime import datetime
        from lookback_gui.core.project import load_project
        from lookback_gui.core.pull import run_pull
        from lookback_gui.core.store import Store
        project = load_project({str(path)!r})
        store = Store(project.store_path)
        run = run_pull(project, "m", store, as_of=datetime(2026, 10, 31, 12))
        assert run.new >= {values} * 0.99, run
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    """)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    peak = int(out.stdout.strip()) / 1e6
    return Row("pull_peak_rss", peak, None, None, "<= 400 MB", peak <= 400)


# -- scale -----------------------------------------------------------------------------------


def bench_pushdown(folder: Path, rows: int, reps: int) -> Row | None:
    from lookback_gui.core.sources import load_extension

    dsn = "host=127.0.0.1 port=5432 dbname=test user=postgres"
    con = duckdb.connect()
    try:
        load_extension(con, "postgres")
        con.execute(f"ATTACH '{dsn}' AS pg (TYPE postgres)")
    except duckdb.Error as exc:
        print(f"pushdown: skipped, PostgreSQL is not reachable ({exc})", file=sys.stderr)
        return None
    con.execute("CALL postgres_execute('pg', 'DROP TABLE IF EXISTS lookback_bench_events')")
    con.execute(
        "CALL postgres_execute('pg', 'CREATE TABLE lookback_bench_events AS SELECT "
        "TIMESTAMP ''2026-10-31'' - (i * (730.0 * 86400 / "
        + str(rows)
        + ")) * interval ''1 second'' AS ts, ''k'' || (i % 100) AS k, (i % 97)::float8 AS v "
        "FROM generate_series(1, " + str(rows) + ") i')"
    )
    con.execute("CALL postgres_execute('pg', 'CREATE INDEX ON lookback_bench_events (ts)')")
    con.execute("CALL postgres_execute('pg', 'ANALYZE lookback_bench_events')")
    con.close()
    sql = (
        "SELECT date_trunc('day', ts) AS bucket, k, count(*) AS n, sum(v) AS v "
        "FROM lookback_bench_events "
        "WHERE ts >= $window_start AND ts < $window_end GROUP BY 1, 2"
    )
    projects = {}
    # the test server's superuser: its role is accepted knowingly (the role check is tested in
    # tests/test_pushdown_roles.py; here the speed is measured)
    for label, extra in (("pushdown", "\npushdown = true\ntrust_role = true"), ("scan", "")):
        work = folder / f"pg_{label}"
        work.mkdir()
        projects[label] = load_project(write_project(work, f'type = "postgres"\ndsn = "{dsn}"' + extra, sql))
    stores = {k: Store(p.store_path) for k, p in projects.items()}

    ours, base = median_pair(
        puller(projects["pushdown"], stores["pushdown"]), puller(projects["scan"], stores["scan"]), reps
    )
    for store in stores.values():
        store.close()
    return ratio_row("pushdown_vs_scan_pg", ours, base or 0, 1.0, target="< 1 (faster than attach-and-scan)")


# a deliberately heavy metric: each window costs real work on the source
HEAVY_EVENTS_SQL = (
    "SELECT date_trunc('day', ts) AS bucket, k, count(DISTINCT v) AS n, "
    "median(v) AS med FROM events "
    "WHERE ts >= $window_start AND ts < $window_end GROUP BY ALL"
)


def bench_parallel_backfill(folder: Path, rows: int, reps: int) -> Row:
    work = folder / "parallel"
    work.mkdir()
    make_events(work / "src.duckdb", rows, days=120, keys=100)
    project = load_project(
        write_project(work, 'type = "duckdb"\npath = "src.duckdb"\nconcurrency = 2', HEAVY_EVENTS_SQL)
    )

    def run(workers: int) -> Callable[[], None]:
        def go() -> None:
            store_path = work / f"store_{workers}.duckdb"
            store_path.unlink(missing_ok=True)
            with Store(store_path) as store:
                runs = backfill(
                    project,
                    "m",
                    store,
                    datetime(2026, 7, 3),
                    datetime(2026, 10, 30),
                    workers=workers,
                    connections=CONNECTIONS,
                )
                assert all(r.status == "succeeded" for r in runs)

        return go

    two, one = median_pair(run(2), run(1), reps)
    return ratio_row("backfill_2_workers_vs_1", two, one or 0, 1.0, target="< 1 (2 workers faster)")


def bench_change_probe(folder: Path, rows: int, reps: int) -> Row:
    work = folder / "probe"
    work.mkdir()
    make_events(work / "src.duckdb", rows, days=30, keys=1000)
    probe = (
        "SELECT date_trunc('day', ts) AS bucket, count(*) AS n, max(id) AS last_id "
        "FROM events WHERE ts >= $window_start AND ts < $window_end GROUP BY ALL"
    )
    projects = {}
    for label, extra in (("probe", f'change_probe = """{probe}"""'), ("plain", "")):
        sub = work / label
        sub.mkdir()
        projects[label] = load_project(
            write_project(
                sub,
                f'type = "duckdb"\npath = "{work / "src.duckdb"}"',
                HEAVY_EVENTS_SQL,
                extra="complete_buckets_only = true\n" + extra,
                lookback='"14d"',
            )
        )
    stores = {k: Store(p.store_path) for k, p in projects.items()}
    for label in stores:
        run_pull(projects[label], "m", stores[label], as_of=AS_OF, connections=CONNECTIONS)
    counter = [rows]

    def last_day_changes() -> None:
        counter[0] += 1
        con = duckdb.connect(str(work / "src.duckdb"))
        con.execute("INSERT INTO events VALUES (TIMESTAMP '2026-10-30 12:00', 'k1', 5.0, ?)", [counter[0]])
        con.close()

    ours, base = median_pair(
        puller(projects["probe"], stores["probe"]),
        puller(projects["plain"], stores["plain"]),
        reps,
        before=last_day_changes,
    )
    for store in stores.values():
        store.close()
    return ratio_row(
        "change_probe_last_day", ours, base or 0, 0.5, target="< 0.5 (probe skips unchanged days)"
    )


# -- a year of use ---------------------------------------------------------------------------

YEAR_START = datetime(2025, 11, 1)
# the moments at which a version of a bucket is known, in quarter hours after the bucket's start:
# first inside the bucket (partial), then by the pulls 1 h, 4 h, 9 h and 16 h later (a lookback
# of 24 h re-pulls each bucket 96 times; most pulls find it unchanged)
VERSION_QUARTERS = [0, 4, 16, 36, 64]


@dataclass(frozen=True)
class YearShape:
    """A project pulled every 15 minutes: ``metrics`` metrics of grain hour and lookback 24 h,
    the first with ``big_series`` series and the others ``series`` each, two measures (``n``
    BIGINT, exact, and ``v`` DOUBLE), over ``hours`` hours."""

    metrics: int
    hours: int
    big_series: int
    series: int

    @property
    def runs(self) -> int:
        return self.metrics * self.hours * 4

    def big_values(self) -> int:
        return self.big_series * 2 * self.hours


def year_shape(quick: bool, hours: int | None = None) -> YearShape:
    return YearShape(metrics=20, hours=hours or (24 * 30 if quick else 24 * 365), big_series=60, series=16)


YEAR_METRIC = """
[metrics.{name}]
source = "src"
grain = "hour"
lookback = "24h"
every = "15m"
retries = 0
sql = '''
SELECT date_trunc('hour', ts) AS bucket, k, count(*) AS n, sum(x) AS v FROM facts
WHERE ts >= $window_start AND ts < $window_end GROUP BY ALL
'''
"""

YEAR_ALERT = """
[[metrics.m00.alerts]]
kind = "threshold"
measure = "n"
below = 10
"""


def build_year_store(folder: Path, shape: YearShape) -> Path:
    """A project and its store as ``shape`` says a year of 15-minute pulls leaves them, built
    with set-based inserts into the store's own tables. Every succeeded run's
    window, known time and settled span are those the pull would have recorded; about one in
    200 pulls failed (none of them stored a version). Returns the project file."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(folder / "src.duckdb"))
    con.execute("CREATE TABLE IF NOT EXISTS facts (ts TIMESTAMP, k VARCHAR, x DOUBLE)")
    con.close()
    names = [f"m{i:02d}" for i in range(shape.metrics)]
    text = (
        '[store]\npath = "lookback.duckdb"\n\n[sources.src]\ntype = "duckdb"\n'
        'path = "src.duckdb"\n' + "".join(YEAR_METRIC.format(name=n) for n in names) + YEAR_ALERT
    )
    (folder / "lookback.toml").write_text(text)
    project = load_project(folder / "lookback.toml")
    store = Store(project.store_path)  # the schema, as the app makes it
    store.close()
    con = duckdb.connect(str(project.store_path))
    con.execute("SET enable_progress_bar = false")
    p = {
        "m": shape.metrics,
        "h": shape.hours,
        "n": shape.hours * 4,
        "start": YEAR_START,
        "big": shape.big_series,
        "small": shape.series,
    }
    con.execute(
        """
        INSERT INTO runs (id, metric, trigger, status, timezone, grain, as_of, window_start,
            window_end, partial_start, started_at, finished_at, attempts, rows, new, revised,
            removed, unchanged, error, sql, params, measures, schema_change, warnings, checks,
            duration_s, known_at, settled_end, commit_seq)
        SELECT id, metric, 'schedule', CASE WHEN failed THEN 'failed' ELSE 'succeeded' END,
               'UTC', 'hour', t, date_trunc('hour', t) - INTERVAL 23 HOUR,
               date_trunc('hour', t) + INTERVAL 1 HOUR, date_trunc('hour', t), t,
               t + INTERVAL 2 SECOND, 1,
               CASE WHEN failed THEN NULL ELSE s * 48 END, CASE WHEN failed THEN NULL ELSE 0 END,
               CASE WHEN failed THEN NULL ELSE s END, CASE WHEN failed THEN NULL ELSE 0 END,
               CASE WHEN failed THEN NULL ELSE s * 47 END,
               CASE WHEN failed THEN 'source src: cannot be reached' END,
               'SELECT ...', '{}', '["n", "v"]', '{}', '[]', '[]', 1.5,
               CASE WHEN failed THEN NULL ELSE t END,
               CASE WHEN failed THEN NULL ELSE date_trunc('hour', t) END,
               CASE WHEN failed THEN NULL ELSE id END
        FROM (SELECT k * $m + i + 1 AS id, 'm' || lpad(CAST(i AS VARCHAR), 2, '0') AS metric,
                     $start + to_minutes(CAST(k * 15 AS BIGINT)) AS t,
                     k % 4 = 3 AND hash(i, k) % 50 = 0 AS failed,
                     CASE WHEN i = 0 THEN $big ELSE $small END AS s
              FROM range($n) a(k), range($m) b(i))
        ORDER BY id
        """,
        {k: p[k] for k in ("m", "n", "start", "big", "small")},
    )
    con.execute(
        "INSERT INTO run_log SELECT id, 1, started_at, "
        "CASE WHEN status = 'failed' THEN 'error' ELSE 'info' END, "
        "coalesce(error, 'succeeded') FROM runs ORDER BY id"
    )
    con.execute(
        f"DROP SEQUENCE run_ids; CREATE SEQUENCE run_ids START {shape.runs + 1}; "
        f"DROP SEQUENCE commit_seqs; CREATE SEQUENCE commit_seqs START {shape.runs + 1}"
    )
    quarters = VERSION_QUARTERS
    count = " + ".join(f"CASE WHEN {q} < 4 * ($h - b) THEN 1 ELSE 0 END" for q in quarters)
    con.execute(
        f"""
        CREATE TEMP TABLE vals AS
        SELECT i, b, m, 'm' || lpad(CAST(i AS VARCHAR), 2, '0') AS metric,
               '{{"k":"s' || s || '"}}' AS dims, CASE m WHEN 0 THEN 'n' ELSE 'v' END AS measure,
               $start + to_hours(CAST(b AS BIGINT)) AS bucket,
               CAST(hash(i, s, m, b) % 1000 AS BIGINT) AS base,
               least(1 + CAST(hash(i, s, m, b) % 5 AS INTEGER), {count}) AS nv,
               hash(i, s, m, b) % 997 = 0 AS gone
        FROM range($m) a(i), range(greatest($big, $small)) c(s), range(2) d(m), range($h) e(b)
        WHERE s < CASE WHEN i = 0 THEN $big ELSE $small END
        """,
        {k: p[k] for k in ("m", "h", "start", "big", "small")},
    )
    version = f"""
        SELECT *, {quarters}[j + 1] AS q, 4 * b + {quarters}[j + 1] AS k,
               gone AND j = nv - 1 AND nv > 1 AS rem,
               CASE m WHEN 0 THEN CAST(base + j AS DOUBLE) ELSE base * 1.5 + j * 0.25 END AS val,
               CASE m WHEN 0 THEN CAST(base + j AS VARCHAR) END AS ex
        FROM (SELECT *, unnest(range(nv)) AS j FROM vals)
    """
    con.execute(
        f"""
        INSERT INTO versions
        SELECT metric, dims, measure, bucket, k * $m + i + 1,
               CASE WHEN rem THEN NULL ELSE val END, rem, q = 0,
               $start + to_minutes(CAST(k * 15 AS BIGINT)), CASE WHEN rem THEN NULL ELSE ex END,
               false
        FROM ({version}) ORDER BY k, i
        """,
        {"m": p["m"], "start": p["start"]},
    )
    con.execute(
        f"""
        INSERT INTO current
        SELECT metric, dims, measure, bucket,
               CASE WHEN last.rem THEN NULL ELSE last.val END, last.rem, b = $h - 1,
               last.k * $m + i + 1, first.val, first.k * $m + i + 1, nv,
               $start + to_minutes(CAST(last.k * 15 AS BIGINT)),
               CASE WHEN last.rem THEN NULL ELSE last.ex END, first.ex,
               $start + to_minutes(CAST(first.k * 15 AS BIGINT))
        FROM (SELECT i, b, metric, dims, measure, bucket, nv,
                     arg_max({{'val': val, 'ex': ex, 'rem': rem, 'k': k}}, j) AS last,
                     arg_min({{'val': val, 'ex': ex, 'k': k}}, j) AS first
              FROM ({version}) GROUP BY ALL)
        ORDER BY bucket, metric
        """,
        {"m": p["m"], "h": p["h"], "start": p["start"]},
    )
    con.execute("DROP TABLE vals")
    fill_arrivals(con)  # the changes late data made, as the commits would have kept them
    cluster_current(con)  # as a migration or a compaction leaves it
    con.execute("CHECKPOINT")
    con.close()
    return folder / "lookback.toml"


def year_store(folder: Path, quick: bool) -> Path:
    """The year-of-use project the parent process built (LOOKBACK_BENCH_YEAR), or a new one."""
    given = os.environ.get("LOOKBACK_BENCH_YEAR")
    if given:
        return Path(given)
    return build_year_store(folder / "year", year_shape(quick))


def _process_peak(argv: list[str], stdout: Any = subprocess.DEVNULL) -> tuple[float, float]:
    """Run ``argv`` (a Python command line) as a process; (its seconds, its peak RSS in MB)."""
    code = textwrap.dedent("""
        import resource, runpy, sys
        argv = sys.argv[1:]
        sys.argv = argv if argv[0] != "-m" else argv[1:]
        try:
            if argv[0] == "-m":
                runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
            else:
                exec(argv[1])
        except SystemExit as exc:
            if exc.code:
                raise
        finally:
            sys.stdout.flush()
            print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed: {done.stderr[-2000:]}")
    return elapsed, int(done.stderr.strip().splitlines()[-1]) / 1024


def _timed_pair(ours: list[str], baseline: list[str], reps: int, out: Path) -> tuple[float, float, float]:
    """Alternate two process command lines ``reps`` times, each writing to ``out``; (median
    seconds of ours, of the baseline, the peak RSS of ours in MB)."""
    a, b, peaks = [], [], []
    for _ in range(reps):
        with out.open("w") as sink:
            seconds, peak = _process_peak(ours, sink)
        a.append(seconds)
        peaks.append(peak)
        with out.open("w") as sink:
            b.append(_process_peak(baseline, sink)[0])
    return statistics.median(a), statistics.median(b), max(peaks)


def _copy_baseline(store: Path, select: str, fmt: str, out: Path) -> list[str]:
    """A process that opens the store with bare DuckDB and COPYs ``select`` to ``out``."""
    options = "FORMAT json, ARRAY true" if fmt == "json" else "FORMAT csv, HEADER true"
    sql = f"COPY ({select}) TO '{out}' ({options})"
    return ["-c", f"import duckdb; duckdb.connect({str(store)!r}, read_only=True).execute({sql!r})"]


HISTORY_SELECT = (
    "SELECT bucket, dims, measure, value, first_value, versions, versions > 1 AS "
    "revised, partial FROM current WHERE metric = 'm00' ORDER BY bucket, dims, measure"
)
REVISIONS_SELECT = (
    "SELECT run_id AS run, known_at, bucket, dims, measure, lag(value) OVER w AS "
    "old_value, value AS new_value FROM versions WHERE metric = 'm00' "
    "WINDOW w AS (PARTITION BY dims, measure, bucket ORDER BY known_at, run_id) "
    "QUALIFY row_number() OVER w > 1 ORDER BY known_at, run_id, bucket, dims, measure"
)


def bench_cli_reads(folder: Path, quick: bool, reps: int) -> list[Row]:
    """``history --json``, ``revisions --json`` and ``history --csv`` of the year store's big
    metric as whole processes, against a process that COPYs the same rows to the same format
    with bare DuckDB; and the peak memory of ours."""
    project = load_project(year_store(folder, quick))
    store = project.store_path
    with duckdb.connect(str(store), read_only=True) as con:
        values = con.execute("SELECT count(*) FROM current WHERE metric = 'm00'").fetchone()[0]
    rows = []
    for name, argv, select, fmt in (
        ("cli_history_json", ["history", "m00", "--json"], HISTORY_SELECT, "json"),
        ("cli_revisions_json", ["revisions", "m00", "--json"], REVISIONS_SELECT, "json"),
        ("cli_history_csv", ["history", "m00", "--csv"], HISTORY_SELECT, "csv"),
    ):
        ours = ["-m", "lookback_gui.cli", *argv, "--project", str(project.path)]
        copy_to = folder / f"copy.{fmt}"
        ours_s, base_s, peak = _timed_pair(
            ours, _copy_baseline(store, select, fmt, copy_to), reps, folder / f"out.{fmt}"
        )
        label = f"<= 1.5 at {values / 1e6:.2f}M values"
        rows.append(ratio_row(name, ours_s, base_s, 1.5, target=label))
        rows.append(Row(f"{name}_rss", peak, None, None, "<= 300 MB", peak <= 300))
    return rows


def bench_advise_year(folder: Path, quick: bool, reps: int) -> list[Row]:
    """``lookback advise m00`` on the year store as a whole process: time and peak memory."""
    project = load_project(year_store(folder, quick))
    argv = ["-m", "lookback_gui.cli", "advise", "m00", "--json", "--project", str(project.path)]
    results = [_process_peak(argv) for _ in range(max(1, reps // 2))]
    seconds = statistics.median(r[0] for r in results)
    peak = max(r[1] for r in results)
    return [
        Row("advise_year_store", seconds, None, None, "<= 500 ms", seconds <= 0.5),
        Row("advise_year_store_rss", peak, None, None, "<= 400 MB", peak <= 400),
    ]


APP_OPEN = """
import json, os, sys, time
from pathlib import Path
project, ini = Path(sys.argv[1]), sys.argv[2]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from lookback_gui.core.runtime import prefer_the_gui_thread, prepare_process
prepare_process()
prefer_the_gui_thread()
from PySide6.QtCore import QEvent, QEventLoop, QObject, QSettings, QTimer
from PySide6.QtWidgets import QApplication
import lookback_gui.ui
from lookback_gui.ui.main_window import MainWindow, _settings_key
app = QApplication(sys.argv[:1])
settings = QSettings(ini, QSettings.Format.IniFormat)
settings.setValue(f"view/{_settings_key(project)}/metric", "m00")  # the metric shown last time
window = MainWindow(settings)
window.resize(1400, 860)
window.show()
marks = {}
loop = QEventLoop()
def check():
    if "chart" in marks and "runs" in marks:
        loop.quit()
class FirstPaint(QObject):
    def eventFilter(self, _watched, event):
        if event.type() == QEvent.Type.Paint and "loaded" in marks and "chart" not in marks:
            QTimer.singleShot(0, painted)  # runs once this paint has finished
        return False
def painted():
    marks.setdefault("chart", time.time())
    check()
def loaded(data):
    if data.drawing is not None and data.metric == "m00":
        marks.setdefault("loaded", time.time())
def first_page():
    if "runs" not in marks and window.runs_model.rowCount() > 0:
        window.runs_log.view.grab()  # the first page of the runs log, painted
        marks["runs"] = time.time()
        check()
watcher = FirstPaint()
window.chart.plot.viewport().installEventFilter(watcher)
window.chart.loaded.connect(loaded)
poll = QTimer(interval=2)
poll.timeout.connect(first_page)
poll.start()
window.open_failed.connect(lambda message: (print(message, file=sys.stderr), loop.quit()))
marks["open"] = time.time()
window.open_project(project, start_scheduler=False)
QTimer.singleShot(120000, loop.quit)
loop.exec()
marks["rows"] = window.runs_model.rowCount()
window.quitting = True
window.close_session(wait=True)
print(json.dumps(marks))
"""


def bench_app_open(folder: Path, quick: bool, reps: int) -> list[Row]:
    """The desktop app started as a process on the year store, its last metric (``m00``, 60
    series) to be shown: from the process's start to the first painted frame of the chart
    with the metric's data; and from opening the project to the first page of the runs log
    (700k runs) painted (seen within 2 ms). The scheduler is not started (it would pull on
    the year store)."""
    project = load_project(year_store(folder, quick))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    charts, pages = [], []
    for rep in range(reps):
        ini = folder / f"app_open_{rep}.ini"
        start = time.time()
        done = subprocess.run(
            [sys.executable, "-c", APP_OPEN, str(project.path), str(ini)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the app did not open: {done.stderr[-2000:]}")
        marks = json.loads(done.stdout.strip().splitlines()[-1])
        if "chart" not in marks or "runs" not in marks:
            raise RuntimeError(f"the app did not show the chart and the runs: {marks}")
        charts.append(marks["chart"] - start)
        pages.append(marks["runs"] - marks["open"])
    chart, page = statistics.median(charts), statistics.median(pages)
    return [
        Row("app_open_year_store", chart, None, None, "<= 1000 ms", chart <= 1.0),
        Row("app_open_runs_first_page", page, None, None, "<= 200 ms", page <= 0.200),
    ]


def bench_alert_eval(folder: Path, quick: bool, reps: int) -> Row:
    """The threshold rule of the big metric judged after its latest run, as a pull does."""
    from lookback_gui.core.insight.alerts import evaluate_alerts

    project = load_project(year_store(folder, quick))
    config = project.metrics["m00"]
    with Store(project.store_path) as store:
        run = store.runs(metric="m00", status="succeeded", limit=1)[0]
        values = query(store, "SELECT count(*) FROM current WHERE metric = 'm00'")[0][0]
        assert run.known_at is not None
        now = run.known_at

        def judge() -> None:
            evaluate_alerts(config, store, now, run=run, kinds=("threshold",))

        seconds, _ = median_pair(judge, None, reps * 3)
    return Row(
        "alert_eval_after_run",
        seconds,
        None,
        None,
        f"<= 50 ms at {values / 1e6:.2f}M values",
        seconds <= 0.050,
    )


def bench_catch_up_plan(folder: Path, quick: bool, reps: int) -> list[Row]:
    """What a project owes when it opens after a night off, planned as the scheduler does for
    every metric of the year store; and the failed windows ``retry-failed`` would re-run."""
    from datetime import timedelta

    from lookback_gui.core.schedule.scheduler import plan_catch_up

    project = load_project(year_store(folder, quick))
    with Store(project.store_path) as store:
        runs = query(store, "SELECT count(*) FROM runs")[0][0]
        end = query(store, "SELECT max(as_of) FROM runs")[0][0]
        now = end + timedelta(hours=9)

        def plan() -> None:
            known = store.catch_up_facts()
            for config in project.metrics.values():
                assert plan_catch_up(config, store, now, known[config.name])

        def failed() -> None:  # as retry-failed finds them, for every metric at once
            assert store.uncovered_failures()

        planning, retrying = median_pair(plan, failed, reps)
    bound = 0.050 * runs / 100_000
    label = f"<= 50 ms per 100k runs ({runs / 1000:.0f}k: {bound * 1000:.0f} ms)"
    return [
        Row("catch_up_plan", planning, None, None, label, planning <= bound),
        Row("retry_failed_plan", retrying, None, None, label, (retrying or 0) <= bound),
    ]


def bench_store_bytes(folder: Path, quick: bool) -> Row:
    """Bytes of store file per version after the year, against a store of a quarter of it
    (the same project): the ratio says whether a version costs more as history grows."""
    sizes = []
    for label, shape in (
        ("year", year_shape(quick)),
        ("quarter", year_shape(quick, year_shape(quick).hours // 4)),
    ):
        if label == "year":
            path = load_project(year_store(folder, quick)).store_path
        else:
            path = load_project(build_year_store(folder / label, shape)).store_path
        with duckdb.connect(str(path), read_only=True) as con:
            versions = con.execute("SELECT count(*) FROM versions").fetchone()[0]
        sizes.append(path.stat().st_size / versions)
    return Row(
        "store_bytes_per_version",
        sizes[0],
        sizes[1],
        sizes[0] / sizes[1],
        "report; <= 1.1 (no growth)",
        sizes[0] / sizes[1] <= 1.1,
    )


def bench_cli_start(folder: Path, reps: int) -> Row:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def ours() -> None:
        subprocess.run(
            [sys.executable, "-m", "lookback_gui.cli", "--help"], check=True, capture_output=True, env=env
        )

    def baseline() -> None:
        subprocess.run([sys.executable, "-c", "import duckdb"], check=True, capture_output=True)

    ours_s, base_s = median_pair(ours, baseline, reps * 2)
    return ratio_row("cli_start", ours_s, base_s or 0, 2.0)


def bench_cli_pull(folder: Path, rows: int, reps: int) -> Row:
    """``lookback pull`` as a whole process (a lookback pull of 7 days of a ``rows``-row
    source, the window already stored) against a process that runs the same query with bare
    DuckDB on the same file and stores its result in a table of its own."""
    work = folder / "cli_pull"
    work.mkdir()
    make_events(work / "src.duckdb", rows, 730, keys=100)
    project = write_project(work, 'type = "duckdb"\npath = "src.duckdb"', EVENTS_SQL)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ours = [
        sys.executable,
        "-m",
        "lookback_gui.cli",
        "pull",
        "m",
        "--as-of",
        AS_OF.isoformat(),
        "--project",
        str(project),
    ]
    subprocess.run(ours, check=True, capture_output=True, env=env)  # the window is stored
    query = EVENTS_SQL.replace("FROM events", "FROM src.events")
    code = (
        f"import duckdb\nfrom datetime import datetime\n"
        f"con = duckdb.connect({str(work / 'bare.duckdb')!r})\n"
        f"con.execute(\"ATTACH '{work / 'src.duckdb'}' AS src (READ_ONLY)\")\n"
        f"con.execute('CREATE OR REPLACE TABLE result AS ' + {query!r}, "
        "{'window_start': datetime(2026, 10, 25), 'window_end': datetime(2026, 11, 1)})\n"
    )
    baseline = [sys.executable, "-c", code]

    def run(argv: list[str]) -> Callable[[], None]:
        return lambda: subprocess.run(argv, check=True, capture_output=True, env=env)

    ours_s, base_s = median_pair(run(ours), run(baseline), reps)
    return ratio_row(
        "cli_pull_process", ours_s, base_s or 0, 2.0, target=f"<= 2 (a process, {rows / 1e6:g}M-row source)"
    )


def bench_pull_big(folder: Path, values: int, reps: int) -> list[Row]:
    """A pull of ``values`` values (unchanged but for 1 %) against the bare query + insert,
    and the peak memory of a first pull of them in a process of its own."""
    row = bench_pull_overhead(folder, values, reps)
    peak = bench_peak_rss(folder, values)
    label = f"{values // 1_000_000}m"
    return [
        Row(
            f"pull_{label}_values",
            row.ours_s,
            row.baseline_s,
            row.ratio,
            "<= 1.3",
            row.ratio is not None and row.ratio <= 1.3,
        ),
        Row(f"pull_{label}_values_rss", peak.ours_s, None, None, "<= 1000 MB", (peak.ours_s or 0) <= 1000),
    ]


# -- object storage --------------------------------------------------------------------------

S3_DAY_SQL = (
    "SELECT date_trunc('day', event_at) AS bucket, country, count(*) AS n, "
    "sum(amount) AS amount FROM src "
    "WHERE day >= CAST($window_start AS DATE) AND day < CAST($window_end AS DATE) "
    "AND event_at >= $window_start AND event_at < $window_end GROUP BY ALL"
)
# the same without the partition column: nothing tells DuckDB which days' objects hold the window
S3_EVENT_SQL = (
    "SELECT date_trunc('day', event_at) AS bucket, country, count(*) AS n, "
    "sum(amount) AS amount FROM src "
    "WHERE event_at >= $window_start AND event_at < $window_end GROUP BY ALL"
)
S3_AS_OF = datetime(2025, 6, 7, 12)
S3_WINDOW = {"window_start": datetime(2025, 6, 1), "window_end": datetime(2025, 6, 8)}


def bench_s3_window(folder: Path, per_day: int, reps: int) -> list[Row]:
    """A pull of a 7-day window of a year of daily hive-partitioned Parquet objects in the local
    S3 server (moto) against the bare DuckDB query over the same URLs, and the bytes each read,
    counted by a relay in front of the server."""
    from lookback_gui.core.duck import load_named_extension
    from tests.s3server import KEY_ID, REGION, SECRET, CountingProxy, S3Server

    server = S3Server(folder).start()
    try:
        relay = CountingProxy(server.port)
        bucket = server.bucket("year")

        def secret(con: duckdb.DuckDBPyConnection) -> None:
            load_named_extension(con, "httpfs")
            con.execute(
                f"CREATE SECRET s3 (TYPE s3, KEY_ID '{KEY_ID}', SECRET '{SECRET}', "
                f"ENDPOINT '127.0.0.1:{relay.port}', REGION '{REGION}', "
                "URL_STYLE 'path', USE_SSL false)"
            )

        with duckdb.connect() as writer:  # 365 objects events/day=YYYY-MM-DD/data_0.parquet
            secret(writer)
            writer.execute(
                f"COPY (SELECT TIMESTAMP '2025-01-01' + to_microseconds("
                f"(i * 86400000000 // {per_day})::BIGINT) AS event_at, "
                "(hash(i) % 1000)::DOUBLE AS amount, ['DE', 'FR', 'US', 'IT', 'ES'][i % 5 + 1] "
                f"AS country, CAST(event_at AS DATE) AS day FROM range(365 * {per_day}) t(i)) "
                f"TO 's3://{bucket}/events' (FORMAT parquet, PARTITION_BY (day))"
            )
        pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        total = sum(o["Size"] for page in pages for o in page.get("Contents", []))
        url = f"s3://{bucket}/events/*/*.parquet"
        os.environ["LOOKBACK_BENCH_S3_SECRET"] = SECRET
        source = (
            f'type = "parquet"\npath = "{url}"\naccess_key_id = "{KEY_ID}"\n'
            'secret_env = "LOOKBACK_BENCH_S3_SECRET"\n'
            f'endpoint = "127.0.0.1:{relay.port}"\nregion = "{REGION}"\n'
            'url_style = "path"\nuse_ssl = false'
        )
        projects = {}
        for label, sql in (("day", S3_DAY_SQL), ("event", S3_EVENT_SQL)):
            (folder / label).mkdir()
            projects[label] = load_project(write_project(folder / label, source, sql))
        stores = {label: Store(p.store_path) for label, p in projects.items()}

        def pull(label: str) -> Callable[[], None]:
            def run() -> None:
                result = run_pull(
                    projects[label], "m", stores[label], as_of=S3_AS_OF, connections=CONNECTIONS
                )
                assert result.status == "succeeded", result.error

            return run

        def bare() -> None:
            con = duckdb.connect(str(folder / "baseline.duckdb"))
            secret(con)
            con.execute(
                "CREATE OR REPLACE TABLE result (bucket TIMESTAMP, country VARCHAR, n BIGINT, amount DOUBLE)"
            )
            query = S3_DAY_SQL.replace("FROM src", f"FROM read_parquet('{url}')")
            con.execute(f"INSERT INTO result SELECT * FROM ({query})", S3_WINDOW)
            con.close()

        def read(work: Callable[[], None]) -> tuple[int, int]:
            """(bytes the server sent, GET and HEAD requests) while ``work`` ran."""
            mark, before = server.mark(), relay.received
            work()
            reads = [r for r in server.requests_since(mark) if r.method in ("GET", "HEAD")]
            return relay.received - before, len(reads)

        pull("day")()  # the store holds the window: a lookback pull, as in pull_overhead
        ours_s, base_s = median_pair(pull("day"), bare, reps, before=CONNECTIONS.prepare)
        ours_bytes, ours_requests = read(pull("day"))
        base_bytes, base_requests = read(bare)
        event_bytes, event_requests = read(pull("event"))
        for store in stores.values():
            store.close()
        relay.close()
    finally:
        server.stop()
    print(
        f"s3: 365 objects, {total / 1e6:.1f} MB; a pull read {ours_bytes / 1e3:.0f} kB in "
        f"{ours_requests} requests, the bare query {base_bytes / 1e3:.0f} kB in "
        f"{base_requests}; without the partition filter {event_bytes / 1e3:.0f} kB in "
        f"{event_requests}",
        file=sys.stderr,
        flush=True,
    )
    window = total * 7 / 365  # the window's share of the data
    return [
        ratio_row("s3_pull_7d_of_365", ours_s, base_s or 0, 1.5),
        Row(
            "s3_pull_7d_bytes",
            ours_bytes,
            window,
            ours_bytes / window,
            "<= 1.5 x the window's 7/365 share",
            ours_bytes / window <= 1.5,
        ),
        Row(
            "s3_pull_7d_bytes_unfiltered",
            event_bytes,
            window,
            event_bytes / window,
            "report (no partition filter)",
            True,
        ),
    ]


# -- main ------------------------------------------------------------------------------------


def _on_a_team_store(bench: Callable[..., Any], folder: Path, *args: Any) -> Any:
    with team_catalog() as catalog:
        return bench(folder, *args, catalog)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, under a minute")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--only", nargs="*", help="run only benchmarks whose name starts so")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # run one benchmark in this process
    args = parser.parse_args(argv)
    prepare_process()  # as the command line and the app do at their start
    try:
        return _main(args)
    finally:
        CONNECTIONS.close()


def bench_demo_seed(folder: Path, days: int, reps: int) -> Row:
    """The demo's history (``days`` days of it) seeded in one pass, against the same pulls
    made one by one: each builds a new demo store from the same sample source."""
    import shutil

    from lookback_gui.core.demo import history_plan, write_demo
    from lookback_gui.core.project import load_project
    from lookback_gui.core.pull.seeding import seed

    now = datetime(2026, 10, 31, 12, 0)
    source = write_demo(folder / "source", now=now).parent / "shop.duckdb"
    counter = iter(range(10_000))

    def fresh() -> tuple[Any, list[Any]]:
        target = folder / f"demo-{next(counter)}"
        target.mkdir()
        shutil.copy(source, target / "shop.duckdb")
        shutil.copy(source.parent / "lookback.toml", target / "lookback.toml")
        project = load_project(target / "lookback.toml")
        return project, history_plan(project, now, days=days)

    def seeded() -> None:
        project, plan = fresh()
        with open_store(project.store) as store:
            seed(project, store, plan)

    def pulled() -> None:
        project, plan = fresh()
        with open_store(project.store) as store:
            for pull in plan:
                run = run_pull(
                    project,
                    pull.metric,
                    store,
                    trigger=pull.trigger,
                    window=pull.window,
                    connections=CONNECTIONS,
                )
                assert run.status == "succeeded", run.error

    ours, base = median_pair(seeded, pulled, reps)
    assert base is not None
    return ratio_row(
        f"demo_seed_{days}d", ours, base, 0.5, target="<= 0.5 (one pass / the same pulls one by one)"
    )


def _main(args: argparse.Namespace) -> int:
    q = args.quick
    reps = 3 if q else 7
    sizes = {
        "history_rows": 2_000_000 if q else 20_000_000,
        "store_versions": 1_000_000 if q else 10_000_000,
        "pg_rows": 300_000 if q else 3_000_000,
        "backfill_rows": 2_000_000 if q else 8_000_000,
        "probe_rows": 2_000_000 if q else 10_000_000,
        "big_pull": 1_000_000 if q else 5_000_000,
        "s3_rows_per_day": 10_000 if q else 20_000,
        "cli_pull_rows": 2_000_000 if q else 20_000_000,
    }
    plan: list[tuple[str, Callable[[Path], object]]] = [
        ("pull_overhead_1k", lambda f: bench_pull_overhead(f, 1000, reps * 3)),
        ("pull_overhead_100k", lambda f: bench_pull_overhead(f, 100_000, reps)),
        ("pull_overhead_1m", lambda f: bench_pull_overhead(f, 1_000_000, max(3, reps // 2))),
        ("history_growth", lambda f: bench_history_growth(f, sizes["history_rows"], reps)),
        ("store_growth", lambda f: bench_store_growth(f, sizes["store_versions"], 10_000, reps)),
        ("gui_heartbeat_pull", lambda f: bench_gui_pull(f, 1_000_000)),
        ("gui_heartbeat_chart", lambda f: bench_gui_chart(f, 1_000_000)),
        ("team_pull_1k", lambda f: bench_team_pull(f, 1000, reps * 2)),
        ("team_pull_100k", lambda f: bench_team_pull(f, 100_000, reps)),
        ("team_s3_pull_1k", lambda f: bench_team_pull(f, 1000, reps * 2, in_s3=True)),
        ("team_s3_pull_100k", lambda f: bench_team_pull(f, 100_000, reps, in_s3=True)),
        ("team_gui_heartbeat_chart", lambda f: _on_a_team_store(bench_gui_chart, f, 1_000_000)),
        ("runs_view_open", lambda f: bench_runs_view(f, 100_000)),
        ("cli_runs", lambda f: bench_cli_runs(f, reps)),
        ("pull_peak_rss", lambda f: bench_peak_rss(f, 1_000_000)),
        ("pushdown", lambda f: bench_pushdown(f, sizes["pg_rows"], reps)),
        ("backfill", lambda f: bench_parallel_backfill(f, sizes["backfill_rows"], max(3, reps // 2))),
        ("change_probe", lambda f: bench_change_probe(f, sizes["probe_rows"], reps)),
        ("cli_start", lambda f: bench_cli_start(f, reps)),
        ("demo_seed", lambda f: bench_demo_seed(f, 14 if q else 42, 3)),
        ("cli_pull_process", lambda f: bench_cli_pull(f, sizes["cli_pull_rows"], reps)),
        ("pull_5m_values", lambda f: bench_pull_big(f, sizes["big_pull"], max(3, reps // 2))),
        ("s3_pull_7d", lambda f: bench_s3_window(f, sizes["s3_rows_per_day"], reps)),
        # on the store a year of use leaves (built once, before these run)
        ("cli_reads", lambda f: bench_cli_reads(f, q, max(3, reps // 2))),
        ("advise_year_store", lambda f: bench_advise_year(f, q, reps)),
        ("app_open_year_store", lambda f: bench_app_open(f, q, max(3, reps // 2))),
        ("alert_eval_after_run", lambda f: bench_alert_eval(f, q, reps)),
        ("catch_up_plan", lambda f: bench_catch_up_plan(f, q, reps)),
        ("store_bytes_per_version", lambda f: bench_store_bytes(f, q)),
    ]
    year_rows = (
        "cli_reads",
        "advise_year_store",
        "app_open_year_store",
        "alert_eval_after_run",
        "catch_up_plan",
        "store_bytes_per_version",
    )
    if args.one:
        with tempfile.TemporaryDirectory(prefix="lookback-bench-") as temp:
            result = dict(plan)[args.one](Path(temp))
        found = [r for r in (result if isinstance(result, tuple | list) else [result]) if r is not None]
        Path(args.json).write_text(json.dumps([asdict(r) for r in found]))
        return 0
    rows: list[Row] = []
    chosen = [name for name, _ in plan if not args.only or any(name.startswith(o) for o in args.only)]
    with tempfile.TemporaryDirectory(prefix="lookback-year-") as year:
        if any(name in year_rows for name in chosen) and "LOOKBACK_BENCH_YEAR" not in os.environ:
            shape = year_shape(q)
            print(f"building the year store ({shape.runs} runs)…", file=sys.stderr, flush=True)
            start = time.perf_counter()
            os.environ["LOOKBACK_BENCH_YEAR"] = str(build_year_store(Path(year), shape))
            print(f"built in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        rows += run_each(chosen, q)
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 0


def run_each(chosen: list[str], q: bool) -> list[Row]:
    rows: list[Row] = []
    for name in chosen:
        print(f"running {name}…", file=sys.stderr, flush=True)
        # each benchmark runs in a process of its own: no state, memory or threads carry over
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            command = [sys.executable, __file__, "--one", name, "--json", out.name]
            done = subprocess.run(command + (["--quick"] if q else []), check=False)
            if done.returncode != 0:
                print(f"{name}: failed (exit {done.returncode})", file=sys.stderr)
                rows.append(Row(name, None, None, None, "did not finish", False))
                continue
            rows += [Row(**r) for r in json.loads(Path(out.name).read_text())]
    return rows


def print_table(rows: list[Row]) -> None:
    def fmt(seconds: float | None, name: str) -> str:
        if seconds is None:
            return "—"
        if name == "pull_peak_rss" or name.endswith("_rss"):
            return f"{seconds:.0f} MB"
        if name == "store_bytes_per_version":
            return f"{seconds:.1f} B"
        if "_bytes" in name:
            return f"{seconds / 1e3:.0f} kB"
        return f"{seconds * 1000:.1f} ms"

    header = f"{'name':<26} {'ours':>11} {'baseline':>11} {'ratio':>7}  {'target':<34} ok"
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        print(
            f"{r.name:<26} {fmt(r.ours_s, r.name):>11} {fmt(r.baseline_s, r.name):>11} "
            f"{ratio:>7}  {r.target:<34} {'yes' if r.ok else 'NO'}"
        )


if __name__ == "__main__":
    sys.exit(main())
