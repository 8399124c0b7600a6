"""The Advisor tab: how late the selected metric's data arrives, and the lookback it needs."""

from __future__ import annotations

from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QVBoxLayout, QWidget

from lookback_gui.core.advisor import Advice, advise, format_lookback
from lookback_gui.core.errors import LookbackError
from lookback_gui.core.project import MetricConfig, ProjectDocument
from lookback_gui.core.store import Store
from lookback_gui.ui.bridge import Bridge

COLOURS = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828"]
# curves of several measures often lie on top of each other: each gets its own symbol and dash
SYMBOLS = ["o", "t", "s", "d", "x"]
STYLES = [Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine,
          Qt.PenStyle.DashDotLine, Qt.PenStyle.DashDotDotLine]


def lookback_edge(buckets: int, complete_only: bool) -> float:
    """Where on the age axis a lookback of ``buckets`` ends: between the oldest age it pulls
    again (ages 0 to buckets - 1; 1 to buckets with complete buckets only) and the next."""
    return buckets - 0.5 + (1 if complete_only else 0)


def ask_to_apply(parent: QWidget, question: str) -> bool:
    answer = QMessageBox.question(parent, "Change the lookback", question,
                                  QMessageBox.StandardButton.Apply
                                  | QMessageBox.StandardButton.Cancel,
                                  QMessageBox.StandardButton.Cancel)
    return answer == QMessageBox.StandardButton.Apply


class AdvisorWidget(QWidget):
    """Settling curve, the recommendation in one sentence, and *Apply*.

    Signals:
        loaded(object): an Advice was shown.
        applied(str): the lookback was written to the project file (the new value).

    Attributes:
        confirm: asked (with the question) before *Apply* changes the project file; tests
            replace it.
    """

    loaded = Signal(object)
    applied = Signal(str)

    def __init__(self, bridge: Bridge, parent: QWidget | None = None):
        super().__init__(parent)
        self._bridge = bridge
        self._metric: MetricConfig | None = None
        self._project_path: object = None
        self.advice: Advice | None = None
        self.sentence = QLabel(accessibleName="Recommendation")
        self.sentence.setWordWrap(True)
        self.sentence.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details = QLabel(accessibleName="Advisor details")
        self.details.setWordWrap(True)
        self.apply_button = QPushButton("Apply", accessibleName="Apply the recommended lookback")
        self.apply_button.setEnabled(False)
        self.apply_button.clicked.connect(self.apply)
        self.refresh_button = QPushButton("Measure again", accessibleName="Measure again")
        self.refresh_button.clicked.connect(self.reload)
        self.plot = pg.PlotWidget()
        self.plot.setAccessibleName("Settling curve")
        self.plot.setBackground(None)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("bottom", "age of the bucket (buckets)")
        self.plot.setLabel("left", "share of the final value present (%)")
        self.plot.addLegend(offset=(-10, -10))
        self._store: Store | None = None
        self._on_applied: Callable[[], None] | None = None
        self.confirm: Callable[[str], bool] = lambda question: ask_to_apply(self, question)
        self.recommended_line: pg.InfiniteLine | None = None

        buttons = QHBoxLayout()
        buttons.addWidget(self.sentence, 1)
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.details)
        layout.addWidget(self.plot, 1)

    def apply_palette(self) -> None:
        from lookback_gui.ui.theme import chart_colours

        background, ink, _grid = chart_colours()
        self.plot.setBackground(background)
        for side in ("bottom", "left"):
            axis = self.plot.getAxis(side)
            axis.setPen(pg.mkPen(ink))
            axis.setTextPen(pg.mkPen(ink))

    def set_metric(self, store: Store | None, metric: MetricConfig | None,
                   project_path: object, on_applied: Callable[[], None]) -> None:
        self._store, self._metric = store, metric
        self._project_path = project_path
        self._on_applied = on_applied
        self.reload()

    def reload(self) -> None:
        store, metric = self._store, self._metric
        self.apply_button.setEnabled(False)
        if store is None or metric is None:
            self.sentence.setText("no metric selected")
            self.plot.clear()
            return
        self.sentence.setText("measuring…")
        self._bridge.submit("advisor", lambda: advise(store, metric), self._show,
                            lambda message: self.sentence.setText(message))

    def _show(self, advice: Advice) -> None:
        self.advice = advice
        self.plot.clear()
        if not advice.enough_history:
            self.sentence.setText(advice.message)
            self.details.setText("Pulls with revisions build the history the advisor measures; "
                                 "audit pulls (audit_every) show what arrives later than the "
                                 "lookback.")
            self.loaded.emit(advice)
            return
        self.sentence.setText(advice.message[:1].upper() + advice.message[1:] + ".")
        rec = advice.recommendation or {}
        parts = [f"{advice.revisions_observed} revisions in {advice.runs_observed} pulls"]
        if advice.missed_revisions:
            parts.append(f"{len(advice.missed_revisions)} found by audits beyond the lookback")
        if rec.get("expected_pull_s") is not None:
            parts.append(f"expected pull time {rec['expected_pull_s']:.3g} s "
                         f"(now {rec['current_pull_s']:.3g} s)")
        if rec.get("note"):
            parts.append(str(rec["note"]))
        self.details.setText("; ".join(parts))
        measures = sorted({m for p in advice.settling_curve for m in p["share_present"]})
        for index, measure in enumerate(measures):
            points = [(p["age_buckets"], p["share_present"][measure])
                      for p in advice.settling_curve
                      if p["share_present"].get(measure) is not None]
            if points:
                xs, ys = zip(*points, strict=True)
                colour = COLOURS[index % len(COLOURS)]
                self.plot.plot(list(xs), list(ys), name=measure,
                               symbol=SYMBOLS[index % len(SYMBOLS)], symbolSize=9 - 2 * (index % 3),
                               symbolBrush=colour, symbolPen=colour,
                               pen=pg.mkPen(colour, width=3 if index == 0 else 2,
                                            style=STYLES[index % len(STYLES)]))
        self.recommended_line = None
        if rec and self._metric is not None:
            complete = self._metric.complete_buckets_only
            line = pg.InfiniteLine(pos=lookback_edge(rec["lookback_buckets"], complete), angle=90,
                                   pen=pg.mkPen("#ef6c00", style=Qt.PenStyle.DashLine),
                                   label=f"recommended: {rec['lookback']}",
                                   labelOpts={"position": 0.1, "color": "#ef6c00"})
            self.plot.addItem(line)
            self.recommended_line = line
        self.apply_button.setEnabled(bool(rec) and self._metric is not None
                                     and rec.get("lookback_buckets") != self._metric.buckets)
        self.loaded.emit(advice)

    def apply(self) -> None:
        """Write the recommended lookback into the project file (keeping its comments)."""
        if self.advice is None or self.advice.recommendation is None or self._metric is None:
            return
        value = format_lookback(self.advice.recommendation["lookback_buckets"],
                                self._metric.grain)
        if not self.confirm(f"Change the lookback of {self._metric.name} from "
                            f"{self._metric.lookback} to {value}? This rewrites the project file, "
                            "and every later pull re-reads the new window."):
            return
        try:
            document = ProjectDocument(str(self._project_path))
            document.set_metric(self._metric.name, {"lookback": value})
            document.save()
        except LookbackError as exc:
            self.sentence.setText(f"cannot apply: {exc}")
            return
        self.applied.emit(str(value))
        if self._on_applied:
            self._on_applied()
