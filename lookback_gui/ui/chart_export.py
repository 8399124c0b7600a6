"""The chart's exports: the file name of what is on show, the chart as an image with its title
and legend (as a PNG, also in the light theme's colours for reports) and the series as CSV."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from PySide6.QtGui import QColor, QImage, QPainter

from lookback_gui.core.store import Store
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.chart_model import ChartData, when_text, write_series_csv
from lookback_gui.ui.dialogs import save_file_name
from lookback_gui.ui.models import fmt_series
from lookback_gui.ui.theme import chart_colours, is_dark

if TYPE_CHECKING:
    from lookback_gui.ui.chart import ChartWidget


def export_name(data: ChartData | None, suffix: str) -> str:
    """A file name for what is on show: metric, measure, series and the time chosen, so a
    second export of another series does not overwrite the first."""
    if data is None:
        return f"chart{suffix}"
    parts = [data.metric, data.measure, *(f"{k}={v}" for k, v in sorted(data.dims.items()))]
    if data.as_of_run is not None:
        parts.append(f"run{data.as_of_run}")
    elif data.as_known_at is not None:
        parts.append(f"known{data.as_known_at:%Y%m%dT%H%M}")
    name = "-".join(str(part) for part in parts)
    return re.sub(r'[\\/:*?"<>|\s]+', "_", name)[:180] + suffix


def title_text(data: ChartData | None) -> str:
    """The title of an exported chart: metric, measure, series and the time chosen."""
    if data is None:
        return ""
    when = when_text(data.as_of_run, data.as_known_at)
    return f"{data.metric} — {data.measure} — {fmt_series(data.dims)} ({when})"


def chart_image(chart: ChartWidget, light: bool = False) -> QImage:
    """The chart as an image; ``light``: in the light theme's colours."""
    if light and is_dark():
        chart.apply_palette(dark=False)
        try:
            return compose(chart, dark=False)
        finally:
            chart.apply_palette()
    return compose(chart, is_dark())


def compose(chart: ChartWidget, dark: bool) -> QImage:
    """The plot as shown, under its title and over the legend of its marks."""
    plot = chart.plot.grab()
    title = chart.title_text()
    legend = chart.status.text().removesuffix(" hover a point for its history.").rstrip(";")
    margin, line = 12, chart.fontMetrics().height()
    image = QImage(plot.width(), plot.height() + 2 * line + 3 * margin, QImage.Format.Format_ARGB32)
    background, ink, _grid = chart_colours(dark)
    image.fill(QColor(background))
    painter = QPainter(image)
    painter.setPen(QColor(ink))
    font = painter.font()
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(margin, margin + line, title)
    font.setBold(False)
    painter.setFont(font)
    painter.drawPixmap(0, line + 2 * margin, plot)
    painter.drawText(margin, plot.height() + 2 * line + 2 * margin, legend)
    painter.end()
    return image


def export_png(chart: ChartWidget, light: bool = False) -> None:
    """Ask for a file name and save the chart there (``light``: for reports)."""
    folder = chart.export_folder()
    name = chart.export_name("-light.png" if light else ".png")
    path = save_file_name(
        chart,
        "Export chart for reports (light)" if light else "Export chart",
        str(folder / name),
        "PNG (*.png)",
    )
    if path:
        chart.export_image(path, light=light)


def export_csv(chart: ChartWidget, store: Store | None, data: ChartData | None, bridge: Bridge) -> None:
    """Ask for a file name and write the series ``data`` of ``store`` there, off the GUI
    thread; the chart's status tells how it went."""
    if data is None or data.drawing is None:
        return
    name = chart.export_name(".csv")
    path = save_file_name(chart, "Export series", str(chart.export_folder() / name), "CSV (*.csv)")
    if path and store is not None:
        status = chart.status
        status.setText(f"exporting to {path}…")
        bridge.submit(
            "export",
            lambda: write_series_csv(store, data, path),
            lambda rows: status.setText(f"exported {rows} buckets to {path}"),
            lambda message: status.setText(f"cannot export to {path}: {message}"),
            owner=chart,
        )
