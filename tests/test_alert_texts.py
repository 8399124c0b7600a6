"""Alert texts use the app's one number format: thousands separators, no float noise."""

from __future__ import annotations

import duckdb

from lookback_gui.core.numbers import fmt_number
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store
from tests.helpers import make_orders, project_text, ts

NOW = ts("2026-10-30T12:00")


def test_numbers_read_the_same_everywhere():
    assert fmt_number(1e9) == "1,000,000,000"
    assert fmt_number(562.0) == "562"
    assert fmt_number(4585.240000000002) == "4,585.24"
    assert fmt_number(9223372036854775806) == "9,223,372,036,854,775,806"
    assert fmt_number(-0.0123) == "-0.012"
    assert fmt_number(None) == "–"


def test_alert_messages_use_the_number_format(write_project, tmp_path):
    make_orders(tmp_path / "shop.duckdb", [(1, ts("2026-10-25T10:00"), "DE", 1e9)])
    alerts = (
        '[[metrics.daily_orders.alerts]]\nkind = "threshold"\nmeasure = "revenue"\n'
        'above = 1000000\n\n[[metrics.daily_orders.alerts]]\nkind = "restatement"\n'
        'measure = "revenue"\nolder_than = 2\nchange_pct = 5\n'
    )
    project = load_project(write_project(project_text(lookback='"7d"') + alerts))
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store, as_of=NOW, clock=lambda: NOW)
        con = duckdb.connect(str(tmp_path / "shop.duckdb"))
        con.execute("UPDATE orders SET amount = 562.5")
        con.close()
        run_pull(project, "daily_orders", store, as_of=NOW, clock=lambda: NOW)
        messages = {s.kind: s.message for s in store.alert_states()}
    assert messages["threshold"] == (
        "resolved: revenue at 2026-10-25 00:00:00: country=DE: 1,000,000,000 > 1,000,000"
    )
    assert "country=DE revenue 1,000,000,000 → 562.50 (-100.0%)" in messages["restatement"]
