"""Editing the project file: renames move a table with its comments; an edit writes only the
keys that changed. No Qt here: the editors are a thin layer over these."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lookback_gui.core.errors import ProjectError
from lookback_gui.core.project import ProjectDocument, load_project

PROJECT = textwrap.dedent('''\
    # the team's metrics
    [store]
    path = "lookback.duckdb"

    [sources.shop]  # the warehouse export
    type = "duckdb"
    path = "shop.duckdb"
    concurrency = 2

    # orders per day
    [metrics.daily_orders]
    # what the dashboard calls it
    description = "Orders per day"  # shown in the tree
    source = "shop"
    grain = "day"
    lookback = "7d"
    retries = 5
    retry_base = "3s"
    measures = ["orders"]
    audit_every = "1d"
    audit_factor = 3
    sql = """
    SELECT date_trunc('day', ordered_at) AS bucket, count(*) AS orders
    FROM orders
    WHERE ordered_at >= $window_start AND ordered_at < $window_end
    GROUP BY ALL
    """

    [metrics.daily_orders.checks]
    not_negative = { measure = "orders", min = 0 }

    [[metrics.daily_orders.alerts]]
    kind = "failure"

    [metrics.other]
    source = "shop"
    grain = "day"
    lookback = 3
    sql = "SELECT ordered_at AS bucket, 1 AS n FROM orders"
    ''')

EDITOR_VALUES = {  # what the metric editor shows of daily_orders, unchanged
    "source": "shop",
    "grain": "day",
    "lookback": "7d",
    "schedule": None,
    "every": None,
    "timezone": "UTC",
    "complete_buckets_only": False,
    "allow_empty": False,
    "sql": "SELECT date_trunc('day', ordered_at) AS bucket, count(*) AS orders\nFROM orders\n"
    "WHERE ordered_at >= $window_start AND ordered_at < $window_end\nGROUP BY ALL",
}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    file = tmp_path / "lookback.toml"
    file.write_text(PROJECT, encoding="utf-8")
    return file


def test_an_edit_that_changes_nothing_leaves_the_file_as_it_was(path):
    document = ProjectDocument(path)
    document.set_metric("daily_orders", EDITOR_VALUES)
    document.save()
    assert path.read_text(encoding="utf-8") == PROJECT


def test_an_edit_writes_only_the_changed_key(path):
    document = ProjectDocument(path)
    document.set_metric("daily_orders", {**EDITOR_VALUES, "lookback": "14d"})
    document.save()
    assert path.read_text(encoding="utf-8") == PROJECT.replace('lookback = "7d"', 'lookback = "14d"')


def test_changed_sql_gains_no_blank_first_line(path):
    document = ProjectDocument(path)
    sql = EDITOR_VALUES["sql"].replace("count(*)", "count(DISTINCT order_id)")
    document.set_metric("daily_orders", {**EDITOR_VALUES, "sql": sql})
    project = document.save()
    assert project.metrics["daily_orders"].sql == sql + "\n"
    text = path.read_text(encoding="utf-8")
    assert 'sql = """\nSELECT date_trunc' in text
    assert load_project(path).metrics["daily_orders"].sql == sql + "\n"


def test_renaming_a_metric_keeps_every_key_and_comment_where_it_stood(path):
    document = ProjectDocument(path)
    document.rename_metric("daily_orders", "orders_per_day")
    document.set_metric("orders_per_day", EDITOR_VALUES)
    project = document.save()
    assert list(project.metrics) == ["orders_per_day", "other"]
    metric = project.metrics["orders_per_day"]
    assert metric.description == "Orders per day"
    assert (metric.retries, metric.retry_base.total_seconds()) == (5, 3.0)
    assert metric.measures == ("orders",)
    assert metric.audit_every is not None and metric.audit_factor == 3
    assert [c.name for c in metric.checks] == ["not_negative"]
    assert [a.kind for a in metric.alerts] == ["failure"]
    expected = (
        PROJECT.replace("[metrics.daily_orders]", "[metrics.orders_per_day]")
        .replace("[metrics.daily_orders.checks]", "[metrics.orders_per_day.checks]")
        .replace("[[metrics.daily_orders.alerts]]", "[[metrics.orders_per_day.alerts]]")
    )
    assert path.read_text(encoding="utf-8") == expected


def test_renaming_a_source_keeps_its_keys_and_moves_its_metrics_along(path):
    document = ProjectDocument(path)
    document.rename_source("shop", "warehouse")
    document.set_source(
        "warehouse", {"type": "duckdb", "path": "shop.duckdb", "dsn": None, "password_env": None}
    )
    project = document.save()
    assert project.sources["warehouse"].concurrency == 2
    assert {m.source for m in project.metrics.values()} == {"warehouse"}
    text = path.read_text(encoding="utf-8")
    assert "[sources.warehouse]  # the warehouse export" in text
    assert 'shop"' not in text.replace('"shop.duckdb"', "")


def test_a_rename_onto_an_existing_name_is_refused(path):
    document = ProjectDocument(path)
    with pytest.raises(ProjectError, match=r"already a \[metrics.other\]"):
        document.rename_metric("daily_orders", "other")


def test_a_quoted_header_is_renamed_too(tmp_path):
    file = tmp_path / "lookback.toml"
    file.write_text(PROJECT.replace("[metrics.other]", '[metrics."other"]'), encoding="utf-8")
    document = ProjectDocument(file)
    document.rename_metric("other", "other 2".replace(" ", "-"))
    assert list(document.save().metrics) == ["daily_orders", "other-2"]


def test_a_new_source_is_set_apart_from_the_table_after_it(tmp_path):
    file = tmp_path / "lookback.toml"
    file.write_text(
        '[sources.shop]\ntype = "duckdb"\npath = "shop.duckdb"\n\n'
        '[metrics.daily_orders]\nsource = "shop"\ngrain = "day"\nlookback = "7d"\n'
        'sql = "SELECT current_date AS bucket, 1 AS n"\n',
        encoding="utf-8",
    )
    document = ProjectDocument(file)
    document.set_source("crm", {"type": "sqlite", "path": "crm.db"})
    text = document.text()
    assert 'path = "crm.db"\n\n[metrics.daily_orders]' in text
    assert text.index("[sources.crm]") < text.index("[metrics.daily_orders]")
