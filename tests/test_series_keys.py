"""Series whose dimension values are not ASCII are found by every look-up of the store."""

from __future__ import annotations

from pathlib import Path

from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import Store
from tests.helpers import make_orders, project_text, ts


def munich_project(tmp_path: Path) -> Path:
    make_orders(
        tmp_path / "shop.duckdb",
        [
            (1, ts("2026-10-25T10:00"), "München", 10.0),
            (2, ts("2026-10-26T10:00"), "München", 4.0),
            (3, ts("2026-10-26T11:00"), "Zürich", 2.5),
        ],
    )
    path = tmp_path / "lookback.toml"
    path.write_text(project_text(), encoding="utf-8")
    project = load_project(path)
    with Store(project.store_path) as store:
        run_pull(project, "daily_orders", store, as_of=ts("2026-10-30T12:00"))
    return path


def test_a_non_ascii_series_has_its_buckets(tmp_path):
    project = load_project(munich_project(tmp_path))
    with Store(project.store_path) as store:
        assert {"country": "München"} in [d for d, _m, _s in store.series("daily_orders")]
        data = store.chart_data("daily_orders", "orders", {"country": "München"})
        assert data["value"].tolist() == [1.0, 1.0]
        arrays = store.chart_series("daily_orders", "orders", {"country": "München"})
        assert len(arrays["bucket"]) == 2
        assert store.bucket_run("daily_orders", "orders", {"country": "Zürich"}, ts("2026-10-26")) == 1


def test_the_chart_tooltip_and_csv_of_a_non_ascii_series(qtbot, tmp_path):
    import csv

    from PySide6.QtCore import QSettings

    from lookback_gui.ui.chart import write_series_csv
    from lookback_gui.ui.main_window import MainWindow
    from tests.test_ui import open_and_wait

    path = munich_project(tmp_path)
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    try:
        open_and_wait(qtbot, window, path, start_scheduler=False)
        chart = window.chart
        qtbot.waitUntil(lambda: chart._data is not None and chart._data.drawing is not None, timeout=10000)
        index = chart.series_box.findText(
            "country=München", flags=__import__("PySide6.QtCore").QtCore.Qt.MatchFlag.MatchStartsWith
        )
        assert index >= 0
        qtbot.waitUntil(lambda: window.bridge.pending == 0, timeout=10000)
        if chart._data.dims != {"country": "München"}:
            with qtbot.waitSignal(
                chart.loaded, timeout=10000, check_params_cb=lambda d: d.dims == {"country": "München"}
            ):
                chart.series_box.setCurrentIndex(index)
        data = chart._data
        assert len(data.arrays["bucket"]) == 2
        qtbot.waitUntil(lambda: "run 1" in chart._tip(0, 0, 0), timeout=10000)  # read off the GUI thread
        out = tmp_path / "münchen.csv"
        done: list[object] = []
        window.bridge.submit(
            "export", lambda: write_series_csv(window.store, data, str(out)), done.append, done.append
        )
        qtbot.waitUntil(lambda: bool(done), timeout=10000)
        assert done == [2]
        with out.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert [r["series"] for r in rows] == ["country=München"] * 2
    finally:
        window.close_session(wait=True)
