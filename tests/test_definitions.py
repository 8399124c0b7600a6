"""Definitions have versions (DESIGN, *Definitions change*): each run records the version of its
metric's definition; values that change at the first pull under a new definition are
redefinitions, kept apart from late data."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
import pytest

from lookback_gui.core.insight.settling import load_revisions
from lookback_gui.core.project import load_project
from lookback_gui.core.project.definitions import definition_version, normalise_sql
from lookback_gui.core.pull import backfill, run_pull
from lookback_gui.core.store import Store
from tests.helpers import DAILY_SQL, make_orders, project_text, run_cli, ts

NEW_SQL = DAILY_SQL.replace("GROUP BY ALL", "  AND amount >= 6\nGROUP BY ALL")
CHECK = (
    "\n[metrics.daily_orders.checks]\n"
    'big_revision = { revision_pct = 5, severity = "warn" }\n'
    '\n[[metrics.daily_orders.alerts]]\nkind = "restatement"\nolder_than = 1\n'
    "change_pct = 1\n"
)


def test_the_version_ignores_layout_and_comments_but_not_meaning(write_project, tmp_path):
    config = load_project(write_project()).metrics["daily_orders"]
    import dataclasses

    spaced = dataclasses.replace(config, sql="  -- orders by day\n" + config.sql.replace(" ", "   ") + ";\n")
    assert normalise_sql(spaced.sql) == normalise_sql(config.sql)
    assert definition_version(spaced) == definition_version(config)
    for change in (
        {"sql": NEW_SQL},
        {"timezone": "Europe/Berlin"},
        {"source": "other"},
        {"measures": ("orders",)},
        {"dimensions": ("country",)},
    ):
        assert definition_version(dataclasses.replace(config, **change)) != (definition_version(config))
    quoted = dataclasses.replace(config, sql=config.sql.replace("date_trunc('day'", "date_trunc('day'  "))
    assert definition_version(quoted) != definition_version(config)  # a literal is kept


@pytest.fixture
def shop(tmp_path):
    return make_orders(
        tmp_path / "shop.duckdb",
        [
            (1, ts("2026-10-20T10:00"), "DE", 3.0),
            (2, ts("2026-10-20T11:00"), "DE", 8.0),
            (3, ts("2026-10-25T10:00"), "DE", 10.0),
            (4, ts("2026-10-29T11:00"), "FR", 5.0),
            (5, ts("2026-10-29T12:00"), "FR", 20.0),
        ],
    )


def pull(path, as_of: str):
    project = load_project(path)
    moment = ts(as_of)
    with Store(project.store_path) as store:
        run = run_pull(project, "daily_orders", store, as_of=moment, clock=lambda: moment)
    assert run.status == "succeeded", run.error
    return run


def test_a_changed_definition_gives_redefinitions_not_revisions(write_project, shop, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_project(project_text() + CHECK)
    first = pull(path, "2026-10-22T12:00")
    old = pull(path, "2026-10-30T12:00")
    assert first.definition == old.definition
    path.write_text(project_text(sql=NEW_SQL) + CHECK)
    new = pull(path, "2026-10-30T13:00")
    assert not any("big_revision" in w for w in new.warnings)  # a new definition is no revision
    assert new.definition != old.definition and new.revised == 2 and new.removed == 0
    [said] = [w for w in new.warnings if w.startswith("definition changed")]
    assert (
        f"({old.definition} → {new.definition}): 2 value(s) changed with it" in said
        and "'lookback backfill daily_orders --from 2026-10-20T00:00:00 --to 2026-10-24T00:00:00'" in said
    )
    code, out, err = run_cli("pull", "daily_orders", "--as-of", "2026-10-30T14:00")
    assert code == 0 and "definition changed" not in err  # only the first pull says it

    revisions = json.loads(run_cli("revisions", "daily_orders", "--json")[1])
    assert [(r["bucket"][:10], r["measure"], r["kind"]) for r in revisions] == [
        ("2026-10-29", "orders", "redefinition"),
        ("2026-10-29", "revenue", "redefinition"),
    ]
    runs = {r["id"]: r["definition"] for r in json.loads(run_cli("runs", "--json")[1])}
    assert runs == {
        first.id: old.definition,
        old.id: old.definition,
        new.id: new.definition,
        new.id + 1: new.definition,
    }
    assert f"definition  {new.definition}" in run_cli("show", str(new.id))[1]
    states = json.loads(run_cli("alerts", "--json")[1])
    assert states == []  # a redefinition is no restatement

    # late data under the new definition is a revision again, and feeds the development
    con = duckdb.connect(str(shop))
    con.execute("INSERT INTO orders VALUES (6, '2026-10-29 13:00', 'FR', 30.0)")
    con.close()
    late = pull(path, "2026-10-30T15:00")
    assert any("big_revision" in w for w in late.warnings)
    # the older values are loaded under the new definition by the backfill the warning named
    project = load_project(path)
    with Store(project.store_path) as store:
        runs = backfill(project, "daily_orders", store, ts("2026-10-20"), ts("2026-10-24"))
        assert [r.status for r in runs] == ["succeeded"]
        kinds = [(r.bucket.day, r.measure, r.kind) for r in store.revisions("daily_orders")]
        assert kinds == [
            (29, "orders", "redefinition"),
            (29, "revenue", "redefinition"),
            (29, "orders", "revision"),
            (29, "revenue", "revision"),
            (20, "orders", "redefinition"),
            (20, "revenue", "redefinition"),
        ]
        late = load_revisions(store, project.metrics["daily_orders"])
        assert sorted(zip(late["bucket"].tolist(), late["measure"].tolist(), strict=True)) == [
            (ts("2026-10-29"), "orders"),
            (ts("2026-10-29"), "revenue"),
        ]
        assert [(r, a, b) for r, _, a, b in store.definition_changes("daily_orders")] == [
            (new.id, old.definition, new.definition)
        ]


def test_a_migrated_store_knows_no_definition_of_its_old_runs(tmp_path):
    from lookback_gui.core.store import SCHEMA_VERSION
    from tests.test_store_migration import old_store

    with Store(old_store(tmp_path)) as store:
        assert SCHEMA_VERSION >= 3  # definitions came with schema 3
        assert {r.definition for r in store.runs()} == {None}
        kinds = {r.kind for metric in ("replayed", "plain") for r in store.revisions(metric)}
        assert kinds <= {"revision", "removal"} and kinds
        assert store.definition_changes("replayed") == []


def test_the_chart_marks_the_moment_the_definition_changed(write_project, shop, tmp_path):
    pytest.importorskip("PySide6.QtWidgets")
    import lookback_gui.ui  # noqa: F401
    from lookback_gui.ui.chart import load_chart

    path = write_project(project_text())
    old = pull(path, "2026-10-30T12:00")
    path.write_text(project_text(sql=NEW_SQL))
    new = pull(path, "2026-10-30T13:00")
    project = load_project(path)
    with Store(project.store_path) as store:
        data = load_chart(store, "daily_orders", "orders", {"country": "FR"}, None)
    [(at, tip)] = data.definition_changes
    assert at == datetime(2026, 10, 30, 13, tzinfo=UTC).timestamp()  # its known time
    assert f"new definition {new.definition} (was {old.definition}) from run {new.id}" in tip
