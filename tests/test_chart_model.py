"""The chart's data model stands apart from its views: it loads and prepares what the chart,
the comparison chart and the dashboard draw, and holds no widgets."""

from __future__ import annotations

import subprocess
import sys


def test_the_chart_model_imports_no_widgets_and_no_plotting():
    code = (
        "import sys, lookback_gui.ui.chart_model;"
        "print(sorted(m for m in sys.modules if m.startswith(('PySide6.QtWidgets', "
        "'pyqtgraph'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_threshold_mark_judges_the_newest_complete_bucket_among_unmarked_ones(tmp_path):
    """Buckets of one version, neither partial nor removed, carry no details in the chart's
    arrays: the bucket a rule judges is found among them too."""
    from datetime import datetime, timedelta

    import numpy as np

    from lookback_gui.core.project import load_project
    from lookback_gui.core.store import Store
    from lookback_gui.ui.chart_model import load_chart
    from tests.test_ui_chart_looks import three_days_revised_today

    path = three_days_revised_today(tmp_path)
    with path.open("a") as handle:
        handle.write(
            '\n[[metrics.daily_orders.alerts]]\nkind = "threshold"\nname = "few"\n'
            'measure = "orders"\nbelow = 5\njudge = "expected"\n'
        )
    project = load_project(path)
    with Store(project.store_path) as store:
        data = load_chart(
            store, "daily_orders", "orders", {"country": "DE"}, None, project.metrics["daily_orders"]
        )
    assert len(data.arrays["marked"]) < len(data.arrays["value"])  # some buckets unmarked
    yesterday = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    [mark] = data.thresholds
    assert mark.x == float(np.datetime64(yesterday, "s").astype("int64"))
    assert mark.expected is None and mark.firing  # settled at 1, below 5
    assert "settled at 1" in mark.text
