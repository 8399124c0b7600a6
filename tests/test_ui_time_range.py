"""The chart's time range: quick ranges, the lookback, a typed from/to, remembered per metric
of each project."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QDateTime, QSettings, QTimeZone

import lookback_gui.ui  # noqa: F401
from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store
from lookback_gui.ui.main_window import MainWindow
from tests.helpers import make_orders, project_text, ts

DAY = 86400.0


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    start = ts("2026-08-01T10:00")
    make_orders(
        tmp_path / "shop.duckdb", [(i, start + timedelta(days=i), "DE", float(i)) for i in range(90)]
    )  # to 2026-10-29
    path = tmp_path / "lookback.toml"
    path.write_text(project_text(lookback='"100d"'))
    project = load_project(path)
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store, as_of=ts("2026-10-30T12:00"))
    return path


def shown(qtbot, settings: QSettings, path: Path):
    window = MainWindow(settings)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.opened, timeout=20000):
        window.open_project(path, start_scheduler=False)
    window.select_metric("daily_orders")
    chart = window.chart
    qtbot.waitUntil(lambda: chart._data is not None and chart._data.drawing is not None, timeout=20000)
    return window, chart


def x_range(chart) -> tuple[float, float]:
    return tuple(chart.plot.getViewBox().targetRange()[0])


def epoch(text: str) -> float:
    """A naive bucket time as the chart's x (its wall clock counted as UTC)."""
    return (ts(text) - ts("1970-01-01T00:00")).total_seconds()


def test_quick_ranges_the_lookback_and_a_typed_range_remembered_per_metric(qtbot, tmp_path, shop):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window, chart = shown(qtbot, settings, shop)
    picker = chart.range_picker
    end = epoch("2026-10-30T00:00")  # the end of the newest bucket
    assert picker.choice() == "all"

    picker.box.setCurrentText("last 7 d")
    assert x_range(chart) == pytest.approx((end - 7 * DAY, end), abs=DAY * 0.2)
    low, high = chart.plot.getViewBox().targetRange()[1]
    assert low >= 80  # the height follows the values in range (83 to 89), not all of them
    picker.box.setCurrentText("last 30 d")
    assert x_range(chart) == pytest.approx((end - 30 * DAY, end), abs=DAY * 0.2)

    picker.box.setCurrentText("the lookback")
    assert x_range(chart) == pytest.approx(chart._data.provisional, abs=DAY * 0.2)

    picker.box.setCurrentText("from … to …")
    assert not picker.start.isHidden()
    for edit, text in ((picker.start, "2026-09-01T00:00"), (picker.end, "2026-09-15T00:00")):
        edit.setDateTime(_utc(text))
        edit.editingFinished.emit()
    assert x_range(chart) == pytest.approx(
        (epoch("2026-09-01T00:00"), epoch("2026-09-15T00:00")), abs=DAY * 0.2
    )
    window.close_session(wait=True)
    window.close()

    # opened again: the same metric shows the same range
    again, chart = shown(qtbot, settings, shop)
    assert chart.range_picker.choice() == "from … to …"
    qtbot.waitUntil(
        lambda: (
            x_range(chart)
            == pytest.approx((epoch("2026-09-01T00:00"), epoch("2026-09-15T00:00")), abs=DAY * 0.2)
        ),
        timeout=10000,
    )
    again.close_session(wait=True)

    # another project's metric of the same name keeps its own (all of it)
    other = tmp_path / "other"
    other.mkdir()
    (other / "shop.duckdb").write_bytes((tmp_path / "shop.duckdb").read_bytes())
    (other / "lookback.toml").write_text(shop.read_text())
    (other / "lookback.duckdb").write_bytes((tmp_path / "lookback.duckdb").read_bytes())
    third, chart = shown(qtbot, settings, other / "lookback.toml")
    assert chart.range_picker.choice() == "all"
    third.close_session(wait=True)


def _utc(text: str) -> QDateTime:
    moment = QDateTime.fromString(text, "yyyy-MM-ddTHH:mm")
    moment.setTimeZone(QTimeZone.utc())
    return moment
