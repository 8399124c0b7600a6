"""The ``lookback`` command line: outputs, JSON keys, exit codes and bad input."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time

import duckdb
import psutil
import pytest

from lookback_gui.core.store import Store
from tests.helpers import (
    PROCESS_S,
    lookback_process,
    project_text,
    run_cli,
    store_held_by_another_process,
)

RUN_KEYS = [
    "id",
    "metric",
    "trigger",
    "status",
    "as_of",
    "window_start",
    "window_end",
    "known_at",
    "started_at",
    "finished_at",
    "attempts",
    "rows",
    "new",
    "revised",
    "removed",
    "unchanged",
    "error",
    "definition",
]


def test_pull_runs_history_revisions_json(project, tmp_path):
    p = str(project)
    code, out, _ = run_cli("pull", "daily_orders", "--project", p, "--as-of", "2026-10-30T12:00")
    assert code == 0
    assert out.startswith("run 1 daily_orders succeeded: window [2026-10-24 00:00, 2026-10-31 00:00)")
    assert "4 new, 0 revised, 0 removed, 0 unchanged" in out
    con = duckdb.connect(str(tmp_path / "shop.duckdb"))
    con.execute("INSERT INTO orders VALUES (3, '2026-10-25 12:00', 'DE', 1.0)")
    con.close()
    assert run_cli("--project", p, "pull", "daily_orders", "--as-of", "2026-10-31T12:00")[0] == 0

    code, out, _ = run_cli("runs", "--project", p, "--json")
    runs = json.loads(out)
    assert [list(r) for r in runs] == [RUN_KEYS, RUN_KEYS]
    assert [r["id"] for r in runs] == [2, 1]
    assert runs[0]["window_start"] == "2026-10-25T00:00:00"
    assert runs[0]["as_of"] == "2026-10-31T12:00:00+00:00"
    assert (runs[0]["new"], runs[0]["revised"], runs[0]["removed"], runs[0]["unchanged"]) == (0, 2, 0, 2)
    assert runs[0]["trigger"] == "command-line" and runs[0]["error"] is None
    code, out, _ = run_cli("runs", "--project", p, "--json", "--limit", "1", "--metric", "daily_orders")
    assert len(json.loads(out)) == 1

    code, out, _ = run_cli("history", "daily_orders", "--project", p, "--json")
    rows = json.loads(out)
    assert list(rows[0]) == [
        "bucket",
        "dims",
        "measure",
        "value",
        "first_value",
        "versions",
        "revised",
        "partial",
    ]
    de = next(r for r in rows if r["dims"] == {"country": "DE"} and r["measure"] == "orders")
    assert (de["value"], de["first_value"], de["versions"], de["revised"]) == (2, 1, 2, True)
    fr = next(r for r in rows if r["dims"] == {"country": "FR"} and r["measure"] == "orders")
    assert fr["partial"] is False and fr["bucket"] == "2026-10-29T00:00:00"

    code, out, _ = run_cli("history", "daily_orders", "--project", p, "--json", "--as-of-run", "1")
    old = next(r for r in json.loads(out) if r["dims"] == {"country": "DE"} and r["measure"] == "orders")
    assert (old["value"], old["versions"]) == (1, 1)

    code, out, _ = run_cli("history", "daily_orders", "--project", p, "--csv")
    assert out.splitlines()[0] == "bucket,country,measure,value,first_value,versions,revised,partial"

    code, out, _ = run_cli("revisions", "daily_orders", "--project", p, "--json")
    revisions = json.loads(out)
    assert list(revisions[0]) == [
        "run",
        "known_at",
        "bucket",
        "dims",
        "measure",
        "old_value",
        "new_value",
        "kind",
    ]
    assert revisions[0]["known_at"] == runs[0]["known_at"]  # plain SQL: when its query ran
    assert {k: v for k, v in revisions[0].items() if k != "known_at"} == {
        "run": 2,
        "bucket": "2026-10-25T00:00:00",
        "dims": {"country": "DE"},
        "measure": "orders",
        "old_value": 1,
        "new_value": 2,
        "kind": "revision",
    }
    assert run_cli("revisions", "daily_orders", "--project", p)[1].startswith("run")


def test_project_defaults_to_lookback_toml_in_this_folder(project, monkeypatch):
    monkeypatch.chdir(project.parent)
    code, out, _ = run_cli("runs")
    assert code == 0 and out == "no runs yet\n"


def test_backfill_chunks_before_the_data_succeed_with_a_warning(project, tmp_path):
    code, out, err = run_cli(
        "backfill", "daily_orders", "--project", str(project), "--from", "2026-10-11", "--to", "2026-10-31"
    )
    # [10-11, 10-18) and [10-18, 10-25) have no rows and nothing stored: empty is no failure
    assert code == 0, err
    assert "3 chunk(s)" in out
    assert err.count("warning: daily_orders: the query returned no rows") == 2
    with Store(tmp_path / "lookback.duckdb") as store:
        statuses = [r.status for r in reversed(store.runs())]
    assert statuses == ["succeeded", "succeeded", "succeeded"]


def test_check_reports_each_source_and_metric(project):
    code, out, err = run_cli("check", "--project", str(project))
    assert code == 0, err
    assert "source shop (duckdb): ok, 1 table(s)" in out
    assert "metric daily_orders: ok (measures: orders, revenue; dimensions: country)" in out


BAD_PROJECTS = [
    ("[store  #<\npath = 1", "not valid TOML"),
    ('[sources.shop]\ntype = "duckdb"\npath = "a"\n[sources.shop]  #<\ntype = "csv"', "not valid TOML"),
    ('colour = "blue"  #<\n', "unknown key 'colour'"),
    ('[sources.shop]\ntype = "excel"  #<\npath = "a.xlsx"\n', "unknown source type 'excel'"),
    ('[sources.shop]  #<\ntype = "duckdb"\n', "needs a 'path'"),
    (
        '[sources.db]\ntype = "postgres"\ndsn = "host=x password=hunter2"  #<\n',
        "secrets never go in the project file",
    ),
    ('[sources.shop]\ntype = "duckdb"\npath = "s"\nport = 5  #<\n', "unknown key 'port'"),
    ('METRIC\ngrain = "dya"  #<\n', "unknown grain 'dya'"),
    ('METRIC\ngrain = "day"\nlookback = "36h"  #<\n', "'36h' is not a whole number of day buckets"),
    ('METRIC\ngrain = "month"\nlookback = "30d"  #<\n', "number of buckets"),
    (
        '[sources.shop]\ntype = "duckdb"\npath = "shop.duckdb"\n[metrics.m]  #<\nsource = "shop"\n'
        'grain = "day"\nlookback = "7d"\n',
        "missing required key 'sql'",
    ),
    (
        'METRIC\ngrain = "day"\nlookback = "7d"\nsql = "x"\nschedule = "0 25 * * *"  #<\n',
        "not a valid cron expression",
    ),
    ('METRIC\ngrain = "day"\nlookback = "7d"\nsql = "x"\nschedule = "daily"  #<\n', "5 fields"),
    ('METRIC\ngrain = "day"\nlookback = "7d"\nsql = "x"\nevery = "0m"  #<\n', "longer than zero"),
    ('METRIC\ngrain = "day"\nlookback = "7d"\nsql = "x"\nevery = "soon"  #<\n', "not a duration"),
    (
        'METRIC\ngrain = "day"\nlookback = "7d"\ntimezone = "Mars/Olympus"  #<\nsql = "x"\n',
        "unknown time zone",
    ),
    ('METRIC\ngrain = "day"\nlookback = "7d"\nretries = "3"  #<\nsql = "x"\n', "expected a whole number"),
    ('METRIC\ngrain = "day"\nlookback = "7d"\nsql = "x"\ncolour = 1  #<\n', "unknown key 'colour'"),
    (
        'METRIC\ngrain = "day"\nlookback = "7d"\nsql = "x"\n[metrics.m.checks]\n'
        'c = { measure = "orders" }  #<\n',
        "needs a 'min' or a 'max'",
    ),
    (
        'METRIC\ngrain = "day"\nlookback = "7d"\nsql = "x"\n[[metrics.m.alerts]]\nkind = "weather"  #<\n',
        "unknown alert kind 'weather'",
    ),
    (
        'METRIC\ngrain = "day"\nlookback = "7d"\nsql = "x"\n[[metrics.m.alerts]]  #<\nkind = "freshness"\n',
        "needs 'max_age'",
    ),
    (
        'METRIC\ngrain = "day"\nlookback = "7d"\nsql = "x"\n[[metrics.m.alerts]]\n'
        'kind = "threshold"\nmeasure = "orders"\nbelow = "ten"  #<\n',
        "expected a number",
    ),
    ('METRIC\nlookback = "7d"\nsql = "x"\nsource = "nowhere"  #<\n', "unknown source 'nowhere'"),
]


@pytest.mark.parametrize(("text", "message"), BAD_PROJECTS)
def test_broken_project_files_name_the_line_and_exit_2(tmp_path, text, message):
    """Each mistake is refused as a whole, naming the file and the line marked #<."""
    text = (
        text.replace(
            "METRIC",
            '[sources.shop]\ntype = "duckdb"\npath = "shop.duckdb"\n\n[metrics.m]\ngrain = "day"'
            if "grain" not in text
            else '[sources.shop]\ntype = "duckdb"\npath = "shop.duckdb"\n\n[metrics.m]\nsource = "shop"',
        )
        if text.startswith("METRIC")
        else text
    )
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "#<" in t)
    path = tmp_path / "lookback.toml"
    path.write_text(text)
    code, out, err = run_cli("runs", "--project", str(path))
    assert code == 2
    assert err.startswith(f"error: {path}:{line}: "), err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unknown_metric_source_reference(tmp_path):
    path = tmp_path / "lookback.toml"
    path.write_text(project_text().replace('source = "shop"', 'source = "warehouse"'))
    code, _, err = run_cli("check", "--project", str(path))
    assert code == 2
    assert ":9: metrics.daily_orders.source: unknown source 'warehouse' (sources: shop)" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pull", "nope"], "no metric named 'nope'"),
        (["pull", "daily_orders", "--as-of", "yesterday-ish"], "--as-of: 'yesterday-ish' is not a timestamp"),
        (["backfill", "daily_orders", "--from", "2026-10-10", "--to", "2026-10-01"], "must be after --from"),
        (["backfill", "daily_orders", "--from", "2026-10-10"], "the following arguments are required: --to"),
        (["history", "daily_orders", "--as-of-run", "99"], "no run 99"),
        (["runs", "--limit", "many"], "'many' is not a whole number"),
        (["frobnicate"], "invalid choice"),
        (["history", "daily_orders", "--json", "--csv"], "not allowed with argument"),
        (["runs", "--metric", "ghost"], "no metric named 'ghost'"),
    ],
)
def test_usage_errors_exit_2(project, args, message):
    code, _, err = run_cli(*args, "--project", str(project))
    assert code == 2
    assert err.startswith("error: ") and message in err


def test_missing_project_file(tmp_path):
    code, _, err = run_cli("runs", "--project", str(tmp_path / "nope.toml"))
    assert code == 2 and "nope.toml: no such project file" in err


def test_failed_pull_exits_1_with_one_error_line(project):
    project.write_text(project.read_text().replace("FROM orders", "FROM orderz"))
    code, out, err = run_cli("pull", "daily_orders", "--project", str(project))
    assert code == 1
    assert "failed" in out
    assert err.startswith("error: metric daily_orders: ") and "orderz" in err
    assert "LINE 4: FROM orderz" in err  # DuckDB's position, on the same line
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_source_file_exits_1_naming_it(project, tmp_path):
    (tmp_path / "shop.duckdb").unlink()
    code, _, err = run_cli("pull", "daily_orders", "--project", str(project))
    assert code == 1
    assert f"file not found: shop.duckdb ({tmp_path / 'shop.duckdb'})" in err


def test_store_that_is_not_a_store(project, tmp_path):
    (tmp_path / "lookback.duckdb").write_text("hello, I am a text file\n")
    code, _, err = run_cli("runs", "--project", str(project))
    assert code == 1
    assert err.startswith(f"error: store {tmp_path / 'lookback.duckdb'}")
    assert err.count("\n") == 1


def test_demo_writes_a_project_once(tmp_path):
    code, out, _ = run_cli("demo", str(tmp_path / "demo"))
    assert code == 0 and (tmp_path / "demo" / "lookback.toml").exists()
    code, _, err = run_cli("demo", str(tmp_path / "demo"))
    assert code == 2 and "already exists" in err


def test_demo_shows_revisions_after_two_pulls(tmp_path, monkeypatch):
    run_cli("demo", str(tmp_path / "demo"))
    monkeypatch.chdir(tmp_path / "demo")
    assert run_cli("pull", "daily_orders", "--as-of", "-2d")[0] == 0
    code, out, _ = run_cli("pull", "daily_orders")
    assert code == 0
    revisions = json.loads(run_cli("revisions", "daily_orders", "--json")[1])
    assert len(revisions) > 10
    assert run_cli("check")[0] == 0
    assert run_cli("pull", "hourly_revenue")[0] == 0


# -- other processes ---------------------------------------------------------------------------


def test_a_process_that_has_the_store_open_makes_way_for_others(project, tmp_path):
    with store_held_by_another_process(tmp_path / "lookback.duckdb"):
        proc = lookback_process(
            "pull", "daily_orders", "--project", str(project), "--as-of", "2026-10-30T12:00"
        )
        out, err = proc.communicate(timeout=PROCESS_S)
        assert proc.returncode == 0, err
        proc = lookback_process("runs", "--project", str(project), "--json")
        out, err = proc.communicate(timeout=PROCESS_S)
        assert proc.returncode == 0, err
        assert [r["status"] for r in json.loads(out)] == ["succeeded"]


def test_a_store_busy_in_another_process_is_waited_for_then_names_its_pid(project, tmp_path):
    with store_held_by_another_process(tmp_path / "lookback.duckdb", busy=True) as holder:
        proc = lookback_process(
            "runs", "--project", str(project), env={**os.environ, "LOOKBACK_STORE_WAIT": "3"}
        )
        out, err = proc.communicate(timeout=PROCESS_S)
        assert proc.returncode == 1
        lines = err.splitlines()
        assert lines[0].startswith(
            f"waiting for store {tmp_path / 'lookback.duckdb'}: in use by PID {holder.pid}"
        )
        assert lines[1].startswith(
            f"error: store {tmp_path / 'lookback.duckdb'} is in use by another process (PID {holder.pid}"
        )
        assert "was not free after 3 s" in lines[1] and len(lines) == 2


def test_kill_9_during_a_pull_leaves_an_interrupted_run_and_intact_data(project, tmp_path):
    assert run_cli("pull", "daily_orders", "--project", str(project), "--as-of", "2026-10-30T12:00")[0] == 0
    slow = (
        "SELECT date_trunc('day', ordered_at) AS bucket, count(*) AS orders "
        "FROM orders, range(3000000000) GROUP BY ALL"
    )
    text = project.read_text() + textwrap.dedent(f'''
        [metrics.slow]
        source = "shop"
        grain = "day"
        lookback = "7d"
        sql = "{slow}"
    ''')
    project.write_text(text)
    proc = lookback_process("pull", "slow", "--project", str(project))
    ps = psutil.Process(proc.pid)
    deadline = time.monotonic() + PROCESS_S
    wal = tmp_path / "lookback.duckdb.wal"
    # wait until the query is running: the run row is committed and the process burns CPU
    while not (wal.exists() and sum(ps.cpu_times()[:2]) > 2.0):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the slow pull never started"
        ps.cpu_percent(interval=0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=PROCESS_S)
    assert proc.returncode == -signal.SIGKILL
    with Store(tmp_path / "lookback.duckdb") as store:
        runs = {r.metric: r for r in store.runs()}
        assert runs["slow"].status == "interrupted"
        assert "ended before it finished" in runs["slow"].error
        assert runs["daily_orders"].status == "succeeded"
        assert len(store.history("daily_orders")) == 4
    code, out, _ = run_cli("runs", "--project", str(project), "--json")
    assert [r["status"] for r in json.loads(out)] == ["interrupted", "succeeded"]


def test_backfill_says_when_the_source_caps_its_workers(project):
    code, out, err = run_cli(
        "backfill",
        "daily_orders",
        "--project",
        str(project),
        "--from",
        "2026-10-25",
        "--to",
        "2026-10-31",
        "--workers",
        "3",
    )
    assert code == 0, err
    assert "1 at once, not 3: source shop has concurrency = 1" in out.splitlines()[0]
    code, out, err = run_cli(
        "backfill", "daily_orders", "--project", str(project), "--from", "2026-10-25", "--to", "2026-10-31"
    )
    assert "at once" not in out
