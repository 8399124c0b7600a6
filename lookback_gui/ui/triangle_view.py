"""The revision triangle as a heatmap: bucket × age, the share of each bucket's value that was
known at that age, with the buckets not settled yet in grey and a tooltip for the cell under the
mouse."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from lookback_gui.core.insight.nowcast import Triangle
from lookback_gui.ui.advisor_plots import make_plot

UNKNOWN_GREY = (150, 150, 150, 170)  # triangle cells of buckets not settled yet


class TriangleView(QWidget):
    """The triangle's heatmap under a sentence that says what it shows.

    Attributes:
        triangle: the triangle shown, or None before one is.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.triangle: Triangle | None = None
        self.label = QLabel(accessibleName="Revision triangle")
        self.label.setWordWrap(True)
        self.plot = make_plot("Revision triangle", "age (buckets)", "bucket")
        self.plot.showGrid(x=False, y=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        # buckets not settled yet: their final value is unknown, so is the share known of it
        self.unknown = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.unknown)
        self.plot.invertY(True)
        self.bar = pg.ColorBarItem(
            values=(0, 100),
            colorMap=pg.colormap.get("viridis"),
            label="% of the value known",
            interactive=False,
        )
        self.bar.setImageItem(self.image, insert_in=self.plot.getPlotItem())
        self.image.setToolTip("")
        self.plot.scene().sigMouseMoved.connect(self.hover)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.plot, 1)

    def show_triangle(self, triangle: Triangle) -> None:
        self.triangle = triangle
        share = triangle.share
        if share.size == 0:
            self.image.clear()
            self.unknown.clear()
            self.label.setText("No bucket watched from its start yet.")
            return
        unsettled = ~np.asarray(triangle.settled, dtype=bool)[:, None] & ~np.isnan(share)
        self.image.setImage(np.where(unsettled, np.nan, share * 100), levels=(0, 100), autoLevels=False)
        self.image.setRect(-0.5, -0.5, share.shape[1], share.shape[0])
        grey = np.zeros((*share.shape, 4), dtype=np.ubyte)
        grey[unsettled] = UNKNOWN_GREY
        self.unknown.setImage(grey, autoLevels=False, levels=(0, 255))
        self.unknown.setRect(-0.5, -0.5, share.shape[1], share.shape[0])
        first, last = triangle.buckets[0], triangle.buckets[-1]
        step = max(1, len(triangle.buckets) // 8)
        ticks = [
            (i, f"{b:%Y-%m-%d}" if b.hour == 0 and b.minute == 0 else f"{b:%m-%d %H:%M}")
            for i, b in list(enumerate(triangle.buckets))[::step]
        ]
        self.plot.getAxis("left").setTicks([ticks])
        self.plot.setLimits(xMin=-1, xMax=share.shape[1] + 1, yMin=-1, yMax=share.shape[0] + 1)
        self.plot.autoRange()
        self.label.setText(
            f"{triangle.measure} (all series): the share of each bucket's current value that "
            f"was known at each age, {first:%Y-%m-%d} to {last:%Y-%m-%d}. Grey rows: buckets "
            f"younger than {triangle.settle_age} buckets, not settled yet — their final value, "
            "and so the share known of it, is unknown; blank cells lie in the future."
        )

    def hover(self, position: Any) -> None:
        triangle = self.triangle
        if triangle is None or triangle.share.size == 0:
            return
        point = self.plot.getPlotItem().vb.mapSceneToView(position)
        row, age = round(point.y()), round(point.x())
        if 0 <= row < triangle.share.shape[0] and 0 <= age < triangle.share.shape[1]:
            value = triangle.share[row, age]
            known = (
                "not reached yet"
                if math.isnan(value)
                else "not settled yet: its final value, and so the share known, is unknown"
                if not triangle.settled[row]
                else f"{value * 100:.1f} % known"
            )
            self.plot.setToolTip(f"{triangle.buckets[row]:%Y-%m-%d %H:%M} at age {age}: {known}")
        else:
            self.plot.setToolTip("")
