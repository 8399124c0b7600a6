"""The ``[dashboard]`` table of the project file: validated like every other table, kept by the
editor's round trip, and following a renamed metric."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lookback_gui.core.errors import ProjectError
from lookback_gui.core.project import (
    Dashboard,
    DashboardChart,
    ProjectDocument,
    load_project,
)
from tests.helpers import project_text

DASHBOARD = """
# the charts we look at every morning
[dashboard]
charts = [
  { metric = "daily_orders", measure = "orders" },   # all countries' largest
  { metric = "daily_orders", measure = "revenue", series = { country = "DE" } },
]
columns = 3
"""


def write(tmp_path, extra: str = "") -> object:
    path = tmp_path / "lookback.toml"
    path.write_text(project_text() + extra)
    return path


def test_the_dashboard_is_read_with_its_charts_in_order(tmp_path):
    project = load_project(write(tmp_path, DASHBOARD))
    assert project.dashboard == Dashboard(
        (
            DashboardChart("daily_orders", "orders", None),
            DashboardChart("daily_orders", "revenue", {"country": "DE"}),
        ),
        3,
    )


def test_without_a_dashboard_table_there_are_no_charts_and_two_columns(tmp_path):
    assert load_project(write(tmp_path)).dashboard == Dashboard((), 2)


@pytest.mark.parametrize(
    ("table", "key", "reason"),
    [
        ("[dashboard]\nrows = 2\n", "dashboard.rows", "unknown key 'rows'"),
        (
            '[dashboard]\ncharts = [{ metric = "daily_orders", colour = "red" }]\n',
            "dashboard.charts[0].colour",
            "unknown key 'colour'",
        ),
        (
            '[dashboard]\ncharts = [{ metric = "weekly" }]\n',
            "dashboard.charts[0].metric",
            "unknown metric 'weekly' (metrics: daily_orders)",
        ),
        (
            '[dashboard]\ncharts = [{ measure = "orders" }]\n',
            "dashboard.charts[0]",
            "missing required key 'metric'",
        ),
        ('[dashboard]\ncharts = "daily_orders"\n', "dashboard.charts", "expected a list of charts"),
        ("[dashboard]\ncolumns = 0\n", "dashboard.columns", "must be at least 1"),
        (
            '[dashboard]\ncharts = [{ metric = "daily_orders", series = "DE" }]\n',
            "dashboard.charts[0].series",
            "expected a table of dimension values",
        ),
    ],
)
def test_a_wrong_dashboard_is_refused_naming_the_key(tmp_path, table, key, reason):
    with pytest.raises(ProjectError) as caught:
        load_project(write(tmp_path, "\n" + table))
    assert caught.value.key == key
    assert reason in str(caught.value)


def test_the_editor_keeps_the_dashboard_and_its_comments_when_it_edits_a_metric(tmp_path):
    path = write(tmp_path, DASHBOARD)
    document = ProjectDocument(path)
    document.set_metric("daily_orders", {"lookback": "14d"})
    project = document.save()
    assert len(project.dashboard.charts) == 2
    text = path.read_text()
    assert "# the charts we look at every morning" in text
    assert "# all countries' largest" in text


def test_set_dashboard_writes_charts_that_load_back(tmp_path):
    path = write(tmp_path)
    document = ProjectDocument(path)
    charts = [DashboardChart("daily_orders", "revenue", {"country": "FR"}), DashboardChart("daily_orders")]
    document.set_dashboard(charts, 3)
    assert document.save().dashboard == Dashboard(tuple(charts), 3)
    assert "\n\n[dashboard]\n" in path.read_text()  # set apart from the metric before it


def test_renaming_a_metric_renames_its_dashboard_charts(tmp_path):
    path = write(tmp_path, DASHBOARD)
    document = ProjectDocument(path)
    document.rename_metric("daily_orders", "orders_per_day")
    project = document.save()
    assert [c.metric for c in project.dashboard.charts] == ["orders_per_day"] * 2


def test_check_refuses_an_unknown_dashboard_key_with_exit_2(tmp_path):
    path = write(tmp_path, "\n[dashboard]\nwidth = 3\n")
    result = subprocess.run(
        [sys.executable, "-m", "lookback_gui.cli", "--project", str(path), "check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "unknown key 'width'" in result.stderr
