"""Renaming carries the history (DESIGN, *The command line*: ``rename``): the project file
(comments kept) and the store (runs, versions, current values, alert states) in one step."""

from __future__ import annotations

import json

import pytest

from lookback_gui.core.project import load_project
from tests.helpers import project_text, run_cli
from tests.test_team_store import catalog, team  # noqa: F401 -- fixtures

ALERT = (
    '\n[[metrics.daily_orders.alerts]]\nkind = "threshold"\nmeasure = "orders"\nabove = 0\njudge = "latest"\n'
)


@pytest.fixture
def pulled(project, monkeypatch):
    text = project.read_text().replace(
        "[metrics.daily_orders]", "# the orders, by day\n[metrics.daily_orders]"
    )
    project.write_text(text + ALERT)
    monkeypatch.chdir(project.parent)
    for as_of in ("2026-10-30T12:00", "2026-10-31T12:00"):
        assert run_cli("pull", "daily_orders", "--as-of", as_of)[0] == 0
    return project


def test_rename_moves_the_metric_and_its_history(pulled):
    before = {cmd: json.loads(run_cli(cmd, "daily_orders", "--json")[1]) for cmd in ("history", "revisions")}
    code, out, err = run_cli("rename", "daily_orders", "orders_by_day")
    assert code == 0, err
    assert out.startswith("renamed daily_orders to orders_by_day in ")
    assert "2 run(s), 4 version(s), 4 current value(s) and 1 alert state(s)" in out
    text = pulled.read_text()
    assert "# the orders, by day\n[metrics.orders_by_day]" in text
    assert "[[metrics.orders_by_day.alerts]]" in text and "daily_orders" not in text
    assert list(load_project(pulled).metrics) == ["orders_by_day"]
    runs = json.loads(run_cli("runs", "--json")[1])
    assert {r["metric"] for r in runs} == {"orders_by_day"} and len(runs) == 2
    for cmd in ("history", "revisions"):
        assert json.loads(run_cli(cmd, "orders_by_day", "--json")[1]) == before[cmd]
    states = json.loads(run_cli("alerts", "--json")[1])
    assert [(s["metric"], s["state"]) for s in states] == [("orders_by_day", "firing")]
    # the next pull goes on where the history left off
    code, out, err = run_cli("pull", "orders_by_day", "--as-of", "2026-10-31T13:00")
    assert code == 0 and "run 3 orders_by_day succeeded" in out and "0 new" in out


def test_rename_refuses_a_taken_or_unknown_name_and_changes_nothing(pulled):
    text = pulled.read_text()
    pulled.write_text(
        text
        + project_text(metric="other").split("[metrics.other]", 1)[0][:0]
        + '\n[metrics.other]\nsource = "shop"\ngrain = "day"\nlookback = "7d"\n'
        'sql = "SELECT 1"\n'
    )
    saved = pulled.read_text()
    code, out, err = run_cli("rename", "daily_orders", "other")
    assert code == 2 and err.startswith("error: there is already a metric 'other'")
    code, out, err = run_cli("rename", "nope", "x")
    assert code == 2 and "nope" in err
    code, out, err = run_cli("rename", "daily_orders", "bad name!")
    assert code == 2 and err.startswith("error: ")
    assert pulled.read_text() == saved
    assert {r["metric"] for r in json.loads(run_cli("runs", "--json")[1])} == {"daily_orders"}


@pytest.mark.qt_log_ignore("propagateSizeHints")
def test_the_app_renames_file_and_store_after_saying_so(qtbot, pulled):
    pytest.importorskip("PySide6.QtWidgets")
    import lookback_gui.ui  # noqa: F401
    from lookback_gui.core.store import Store
    from lookback_gui.ui.bridge import Bridge
    from lookback_gui.ui.editors import MetricEditor

    project = load_project(pulled)
    bridge = Bridge()
    asked: list[tuple[str, str]] = []
    try:
        with Store(project.store_path) as store:
            editor = MetricEditor(project, bridge, project.metrics["daily_orders"], store=store)
            qtbot.addWidget(editor)
            editor.name.setText("orders_by_day")
            editor.confirm_rename = lambda old, new: asked.append((old, new)) or False
            editor.save()  # answered no: nothing changes
            assert asked == [("daily_orders", "orders_by_day")]
            assert editor.result() != editor.DialogCode.Accepted
            assert "[metrics.daily_orders]" in pulled.read_text()
            assert {r.metric for r in store.runs()} == {"daily_orders"}
            editor.confirm_rename = lambda old, new: True
            editor.save()
            assert editor.result() == editor.DialogCode.Accepted
            assert "[metrics.orders_by_day]" in pulled.read_text()
            assert {r.metric for r in store.runs()} == {"orders_by_day"}
            assert len(store.history("orders_by_day")) == 4
            assert [s.metric for s in store.alert_states()] == ["orders_by_day"]
    finally:
        bridge.shutdown()


@pytest.mark.postgres
def test_rename_carries_the_history_in_a_team_store(team, monkeypatch):  # noqa: F811
    monkeypatch.chdir(team.parent)
    assert run_cli("pull", "daily_orders", "--as-of", "2026-11-26T12:00")[0] == 0
    before = json.loads(run_cli("history", "daily_orders", "--json")[1])
    code, out, err = run_cli("rename", "daily_orders", "orders_by_day")
    assert code == 0, err
    assert "team store" in out
    assert json.loads(run_cli("history", "orders_by_day", "--json")[1]) == before
    assert {r["metric"] for r in json.loads(run_cli("runs", "--json")[1])} == {"orders_by_day"}
