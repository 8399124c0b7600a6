"""The dark theme: dialogs follow it, the nowcast stays visible on it, and a chart exported for
reports is light whatever the theme."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QFileDialog

import lookback_gui.ui  # noqa: F401
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.chart import ChartWidget
from lookback_gui.ui.dialogs import file_dialog
from lookback_gui.ui.theme import apply_theme, chart_colours


@pytest.fixture
def dark(qapp):
    apply_theme("dark")
    yield
    apply_theme("system")


@pytest.fixture
def chart(qtbot):
    bridge = Bridge()
    widget = ChartWidget(bridge)
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.apply_palette()
    yield widget
    bridge.shutdown()


def over(colour: QColor, background: QColor) -> float:
    """The lightness (0–255) of ``colour`` painted with its alpha over ``background``."""
    a = colour.alphaF()
    mixed = QColor.fromRgbF(
        *(a * c + (1 - a) * b for c, b in zip(colour.getRgbF()[:3], background.getRgbF()[:3], strict=True))
    )
    return mixed.lightness()


def test_the_export_file_dialog_follows_the_dark_theme(dark, qtbot):
    dialog = file_dialog(
        None, "Export chart", "/tmp/chart.png", "PNG (*.png)", QFileDialog.AcceptMode.AcceptSave
    )
    qtbot.addWidget(dialog)
    assert dialog.palette().color(QPalette.ColorRole.Window).lightness() < 80
    assert dialog.palette().color(QPalette.ColorRole.Base).lightness() < 80


def test_the_nowcast_band_and_line_stand_out_on_dark(dark, chart):
    background = QColor(chart_colours()[0])
    band = chart.nowcast_band.brush().color()
    assert over(band, background) - background.lightness() >= 30
    line = chart.nowcast_curve.opts["pen"].color()
    assert line.lightness() - background.lightness() >= 100


def test_a_png_for_reports_is_light_in_the_dark_theme_and_the_chart_stays_dark(dark, chart, tmp_path):
    assert chart.export_light_png.text() == "PNG for reports (light)…"
    path = tmp_path / "chart-light.png"
    assert chart.export_image(str(path), light=True)
    image = QImage(str(path))
    for x, y in ((2, 2), (image.width() // 2, image.height() // 2)):
        assert QColor(image.pixel(x, y)).lightness() > 240, (x, y)
    # the chart on screen is dark again
    assert chart.plot.backgroundBrush().color().lightness() < 60
    dark_path = tmp_path / "chart.png"
    chart.export_image(str(dark_path))
    assert QColor(QImage(str(dark_path)).pixel(2, 2)).lightness() < 60
