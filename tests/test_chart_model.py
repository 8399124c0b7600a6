"""The chart's data model stands apart from its views: it loads and prepares what the chart,
the comparison chart and the dashboard draw, and holds no widgets."""

from __future__ import annotations

import subprocess
import sys


def test_the_chart_model_imports_no_widgets_and_no_plotting():
    code = ("import sys, lookback_gui.ui.chart_model;"
            "print(sorted(m for m in sys.modules if m.startswith(('PySide6.QtWidgets', "
            "'pyqtgraph'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"
