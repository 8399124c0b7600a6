"""The Advisor tab: how late the selected metric's data arrives, and the lookback it needs.

Its pages: the settling curve; the pull policies tried on the stored history (a table, and the
largest error each would have shown by age); the nowcast tried on the history (its error and the
raw provisional value's by age, and how often its interval held); and the revision triangle
(bucket × age, the share of the value known at that age) as a heatmap.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from lookback_gui.core.errors import LookbackError
from lookback_gui.core.insight.advisor import Advice, advise
from lookback_gui.core.insight.nowcast import Triangle, revision_triangle
from lookback_gui.core.project import MetricConfig, ProjectDocument
from lookback_gui.core.store import Store
from lookback_gui.core.timing.windows import format_lookback
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.slots import weakly

COLOURS = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828"]
# curves of several measures often lie on top of each other: each gets its own symbol and dash
SYMBOLS = ["o", "t", "s", "d", "x"]
STYLES = [
    Qt.PenStyle.SolidLine,
    Qt.PenStyle.DashLine,
    Qt.PenStyle.DotLine,
    Qt.PenStyle.DashDotLine,
    Qt.PenStyle.DashDotDotLine,
]


def lookback_edge(buckets: int, complete_only: bool) -> float:
    """Where on the age axis the line of a lookback of ``buckets`` stands: at its length, so
    that "recommended: 12d" stands at 12 on the axis (it pulls ages 0 to 11 again; 1 to 12 with
    complete buckets only)."""
    return float(buckets)


# a curve that lies within this many percentage points of an earlier one is drawn hollow
# around it and named so, or it would hide under it
SAME_CURVE_PP = 0.5
UNKNOWN_GREY = (150, 150, 150, 170)  # triangle cells of buckets not settled yet


Index = QModelIndex | QPersistentModelIndex


def _pct(share: float | None) -> str:
    """A share as a percentage, always with two decimals (99.99 % beside 99.60 %)."""
    return "–" if share is None else f"{share * 100:.2f} %"


class PolicyModel(QAbstractTableModel):
    """The candidate policies of an Advice, one per row; the recommended one in bold.

    Attributes:
        recommended: the ``policy`` text of the recommended policy.
    """

    HEADERS = (
        "Policy",
        "Revised magnitude caught",
        "Revisions caught",
        "Caught by the lookback",
        "Pulls",
        "Rows read",
        "Largest error by age (0, 1, 2, …)",
    )
    RIGHT = frozenset({1, 2, 3, 4, 5})

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []
        self.recommended: str | None = None

    def set_candidates(self, rows: list[dict[str, Any]], recommended: str | None) -> None:
        self.beginResetModel()
        self.rows, self.recommended = list(rows), recommended
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(self.HEADERS)
        ):
            return self.HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        row, column = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            horizontal = Qt.AlignmentFlag.AlignRight if column in self.RIGHT else Qt.AlignmentFlag.AlignLeft
            return int(horizontal | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and row["policy"] == self.recommended:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            notes = []
            if row["policy"] == self.recommended:
                notes.append("the recommended policy")
            if row.get("current"):
                notes.append("the metric's current policy")
            return "; ".join(notes) or None
        return None

    @staticmethod
    def _text(row: dict[str, Any], column: int) -> str:
        if column == 0:
            return row["policy"] + (" (current)" if row.get("current") else "")
        if column == 1:
            return _pct(row["magnitude_share"])
        if column == 2:
            return _pct(row["revisions_share"])
        if column == 3:
            return _pct(row["lookback_magnitude_share"])
        if column == 6:
            parts = []
            for entry in row["max_error_by_age"]:
                value = entry["max_error_pct"]
                parts.append("–" if value is None else f"{value:.3g} %")
                if value == 0 or len(parts) == 8:
                    break
            return ", ".join(parts)
        if column == 4:
            return f"{row['pulls']:,}"
        rows = row["rows_read"] if row["rows_read"] is not None else row["buckets_read"]
        return f"{rows:,}"


def ask_to_apply(parent: QWidget, question: str) -> bool:
    answer = QMessageBox.question(
        parent,
        "Change the lookback",
        question,
        QMessageBox.StandardButton.Apply | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Cancel,
    )
    return answer == QMessageBox.StandardButton.Apply


class AdvisorWidget(QWidget):
    """Settling curve, the recommendation in one sentence, and *Apply*.

    Signals:
        loaded(object): an Advice was shown.
        applied(str): the lookback was written to the project file (the new value).

    Its ``confirm`` is asked (with the question) before *Apply* changes the project file;
    tests replace it.
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
        self.recommended_line: pg.InfiniteLine | None = None
        self.triangle: Triangle | None = None

        policies = self._policies_page()
        nowcast = self._nowcast_page()
        triangle = self._triangle_page()

        self.pages = QTabWidget(accessibleName="Advisor views")
        self.pages.setDocumentMode(True)
        self.pages.addTab(self.plot, "Settling")
        self.pages.addTab(policies, "Policies")
        self.pages.addTab(nowcast, "Nowcast")
        self.pages.addTab(triangle, "Triangle")

        buttons = QHBoxLayout()
        buttons.addWidget(self.sentence, 1)
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.details)
        layout.addWidget(self.pages, 1)

    def confirm(self, question: str) -> bool:
        """Whether the user agrees to ``question`` (applying a policy); tests replace it."""
        return ask_to_apply(self, question)

    def _policies_page(self) -> QWidget:
        """The policies tried on the history, and the errors of the chosen one by age."""
        self.policy_model = PolicyModel(self)
        self.policy_view = QTableView(accessibleName="Policies tried on the history")
        self.policy_view.setModel(self.policy_model)
        self.policy_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.policy_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.policy_view.verticalHeader().hide()
        self.policy_view.setWordWrap(False)
        self.policy_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # every column as wide as its header and its cells (a scroll bar where they do not
        # fit): a stretched last section is cut to what is left of the view
        self.policy_view.horizontalHeader().setStretchLastSection(False)
        self.policy_view.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.policy_view.selectionModel().currentRowChanged.connect(weakly(self._plot_errors))
        self.errors_plot = self._make_plot(
            "Largest error by age", "age of the bucket (buckets)", "largest error shown (% of settled value)"
        )
        policies = QSplitter(Qt.Orientation.Vertical)
        policies.addWidget(self.policy_view)
        policies.addWidget(self.errors_plot)
        policies.setSizes([300, 300])
        return policies

    def _nowcast_page(self) -> QWidget:
        """How far the nowcast was off, by the age of the bucket."""
        self.nowcast_label = QLabel(accessibleName="Nowcast backtest")
        self.nowcast_label.setWordWrap(True)
        self.nowcast_plot = self._make_plot(
            "Nowcast error by age", "age of the bucket (buckets)", "mean error (% of settled value)"
        )
        nowcast = QWidget()
        nowcast_layout = QVBoxLayout(nowcast)
        nowcast_layout.setContentsMargins(0, 0, 0, 0)
        nowcast_layout.addWidget(self.nowcast_label)
        nowcast_layout.addWidget(self.nowcast_plot, 1)
        return nowcast

    def _triangle_page(self) -> QWidget:
        """The revision triangle: the share of each bucket's value known at each age."""
        self.triangle_label = QLabel(accessibleName="Revision triangle")
        self.triangle_label.setWordWrap(True)
        self.triangle_plot = self._make_plot("Revision triangle", "age (buckets)", "bucket")
        self.triangle_plot.showGrid(x=False, y=False)
        self.triangle_image = pg.ImageItem(axisOrder="row-major")
        self.triangle_plot.addItem(self.triangle_image)
        # buckets not settled yet: their final value is unknown, so is the share known of it
        self.triangle_unknown = pg.ImageItem(axisOrder="row-major")
        self.triangle_plot.addItem(self.triangle_unknown)
        self.triangle_plot.invertY(True)
        self.triangle_bar = pg.ColorBarItem(
            values=(0, 100),
            colorMap=pg.colormap.get("viridis"),
            label="% of the value known",
            interactive=False,
        )
        self.triangle_bar.setImageItem(self.triangle_image, insert_in=self.triangle_plot.getPlotItem())
        self.triangle_image.setToolTip("")
        self.triangle_plot.scene().sigMouseMoved.connect(self._triangle_hover)
        triangle = QWidget()
        triangle_layout = QVBoxLayout(triangle)
        triangle_layout.setContentsMargins(0, 0, 0, 0)
        triangle_layout.addWidget(self.triangle_label)
        triangle_layout.addWidget(self.triangle_plot, 1)
        return triangle

    @staticmethod
    def _make_plot(name: str, bottom: str, left: str) -> pg.PlotWidget:
        plot = pg.PlotWidget()
        plot.setAccessibleName(name)
        plot.setBackground(None)
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setLabel("bottom", bottom)
        plot.setLabel("left", left)
        return plot

    def apply_palette(self) -> None:
        from lookback_gui.ui.theme import chart_colours

        background, ink, _grid = chart_colours()
        self.plot.setBackground(background)
        for plot in (self.plot, self.errors_plot, self.nowcast_plot, self.triangle_plot):
            plot.setBackground(background)
            for side in ("bottom", "left"):
                axis = plot.getAxis(side)
                axis.setPen(pg.mkPen(ink))
                axis.setTextPen(pg.mkPen(ink))

    def set_metric(
        self,
        store: Store | None,
        metric: MetricConfig | None,
        project_path: object,
        on_applied: Callable[[], None],
    ) -> None:
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
            self.policy_model.set_candidates([], None)
            return
        self.sentence.setText("measuring…")
        self._bridge.submit(
            "advisor",
            lambda: (advise(store, metric), revision_triangle(store, metric)),
            self._show_all,
            lambda message: self.sentence.setText(message),
        )

    def _show_all(self, result: tuple[Advice, Triangle]) -> None:
        advice, triangle = result
        self.triangle = triangle
        rec = advice.recommendation or {}
        self.policy_model.set_candidates(advice.candidates, rec.get("policy"))
        self._select_recommended()
        self._plot_errors()
        self._show_nowcast(advice)
        self._show_triangle(triangle)
        self._show(advice)

    def _select_recommended(self) -> None:
        for row, entry in enumerate(self.policy_model.rows):
            if entry["policy"] == self.policy_model.recommended:
                self.policy_view.selectRow(row)
                self.policy_view.scrollTo(self.policy_model.index(row, 0))
                return

    def _plot_errors(self) -> None:
        """The largest error by age of the current policy, the recommended one and the
        selected one."""
        plot = self.errors_plot
        plot.clear()
        legend = plot.getPlotItem().legend or plot.addLegend(offset=(-10, 10))
        legend.clear()
        rows = self.policy_model.rows
        picked: list[tuple[dict[str, Any], str, str]] = []
        current = next((r for r in rows if r.get("current")), None)
        recommended = next((r for r in rows if r["policy"] == self.policy_model.recommended), None)
        selected_index = self.policy_view.currentIndex()
        selected = (
            rows[selected_index.row()]
            if selected_index.isValid() and selected_index.row() < len(rows)
            else None
        )
        if current is not None:
            picked.append((current, "current: " + current["policy"], "#c62828"))
        if recommended is not None and recommended is not current:
            picked.append((recommended, "recommended: " + recommended["policy"], "#2e7d32"))
        if selected is not None and all(selected is not p[0] for p in picked):
            picked.append((selected, "selected: " + selected["policy"], "#1565c0"))
        for index, (row, name, colour) in enumerate(picked):
            points = [
                (e["age_buckets"], e["max_error_pct"])
                for e in row["max_error_by_age"]
                if e["max_error_pct"] is not None
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                plot.plot(
                    list(xs),
                    list(ys),
                    name=name,
                    stepMode=None,
                    pen=pg.mkPen(colour, width=2, style=STYLES[index % len(STYLES)]),
                    symbol=SYMBOLS[index % len(SYMBOLS)],
                    symbolSize=6,
                    symbolBrush=colour,
                    symbolPen=colour,
                )

    def _show_nowcast(self, advice: Advice) -> None:
        plot = self.nowcast_plot
        plot.clear()
        backtest = advice.nowcast_backtest
        if not backtest or not backtest["by_age"]:
            self.nowcast_label.setText(
                "The nowcast needs buckets that have settled: it is tried once the history holds some."
            )
            return
        held = _pct(backtest["calibrated_coverage"])
        widen = float(backtest.get("widen") or 1.0)
        how = (
            f"Mack's, widened × {widen:.2f} by this history as the nowcast shows it; "
            f"Mack's alone held it {_pct(backtest['coverage'])}"
            if widen > 1
            else "Mack's, as the nowcast shows it"
        )
        self.nowcast_label.setText(
            f"Tried on {backtest['values']} provisional values of the stored history, each "
            f"with only what was known then: the {backtest['interval'] * 100:.0f} % interval "
            f"held the settled value {held} of the time ({backtest['intervals']} intervals; "
            f"{how}). Values settle after {backtest['settle_age_buckets']} buckets."
        )
        legend = plot.getPlotItem().legend or plot.addLegend(offset=(-10, 10))
        legend.clear()
        ages = [b["age_buckets"] for b in backtest["by_age"]]
        plot.plot(
            ages,
            [b["raw_error_pct"] for b in backtest["by_age"]],
            name="current value (raw)",
            pen=pg.mkPen("#c62828", width=2, style=Qt.PenStyle.DashLine),
            symbol="t",
            symbolSize=7,
            symbolBrush="#c62828",
            symbolPen="#c62828",
        )
        plot.plot(
            ages,
            [b["nowcast_error_pct"] for b in backtest["by_age"]],
            name="nowcast",
            pen=pg.mkPen("#1565c0", width=3),
            symbol="o",
            symbolSize=7,
            symbolBrush="#1565c0",
            symbolPen="#1565c0",
        )

    def _show_triangle(self, triangle: Triangle) -> None:
        share = triangle.share
        if share.size == 0:
            self.triangle_image.clear()
            self.triangle_unknown.clear()
            self.triangle_label.setText("No bucket watched from its start yet.")
            return
        unsettled = ~np.asarray(triangle.settled, dtype=bool)[:, None] & ~np.isnan(share)
        self.triangle_image.setImage(
            np.where(unsettled, np.nan, share * 100), levels=(0, 100), autoLevels=False
        )
        self.triangle_image.setRect(-0.5, -0.5, share.shape[1], share.shape[0])
        grey = np.zeros((*share.shape, 4), dtype=np.ubyte)
        grey[unsettled] = UNKNOWN_GREY
        self.triangle_unknown.setImage(grey, autoLevels=False, levels=(0, 255))
        self.triangle_unknown.setRect(-0.5, -0.5, share.shape[1], share.shape[0])
        first, last = triangle.buckets[0], triangle.buckets[-1]
        step = max(1, len(triangle.buckets) // 8)
        ticks = [
            (i, f"{b:%Y-%m-%d}" if b.hour == 0 and b.minute == 0 else f"{b:%m-%d %H:%M}")
            for i, b in list(enumerate(triangle.buckets))[::step]
        ]
        self.triangle_plot.getAxis("left").setTicks([ticks])
        self.triangle_plot.setLimits(xMin=-1, xMax=share.shape[1] + 1, yMin=-1, yMax=share.shape[0] + 1)
        self.triangle_plot.autoRange()
        self.triangle_label.setText(
            f"{triangle.measure} (all series): the share of each bucket's current value that "
            f"was known at each age, {first:%Y-%m-%d} to {last:%Y-%m-%d}. Grey rows: buckets "
            f"younger than {triangle.settle_age} buckets, not settled yet — their final value, "
            "and so the share known of it, is unknown; blank cells lie in the future."
        )

    def _triangle_hover(self, position: Any) -> None:
        triangle = self.triangle
        if triangle is None or triangle.share.size == 0:
            return
        point = self.triangle_plot.getPlotItem().vb.mapSceneToView(position)
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
            self.triangle_plot.setToolTip(f"{triangle.buckets[row]:%Y-%m-%d %H:%M} at age {age}: {known}")
        else:
            self.triangle_plot.setToolTip("")

    def _show(self, advice: Advice) -> None:
        self.advice = advice
        self.plot.clear()
        if not advice.enough_history:
            self.sentence.setText(advice.message)
            self.details.setText(
                "Pulls with revisions build the history the advisor measures; "
                "audit pulls (audit_every) show what arrives later than the "
                "lookback."
            )
            self.loaded.emit(advice)
            return
        self.sentence.setText(advice.message[:1].upper() + advice.message[1:] + ".")
        rec = advice.recommendation or {}
        parts = [f"{advice.revisions_observed} revisions in {advice.runs_observed} pulls"]
        if advice.missed_revisions:
            parts.append(f"{len(advice.missed_revisions)} found by audits beyond the lookback")
        if rec.get("expected_pull_s") is not None:
            parts.append(
                f"expected pull time {rec['expected_pull_s']:.3g} s (now {rec['current_pull_s']:.3g} s)"
            )
        if rec.get("note"):
            parts.append(str(rec["note"]))
        self.details.setText("; ".join(parts))
        measures = sorted({m for p in advice.settling_curve for m in p["share_present"]})
        drawn: list[tuple[str, dict[int, float]]] = []
        for index, measure in enumerate(measures):
            points = {
                p["age_buckets"]: p["share_present"][measure]
                for p in advice.settling_curve
                if p["share_present"].get(measure) is not None
            }
            if not points:
                continue
            same = next(
                (
                    name
                    for name, other in drawn
                    if other.keys() == points.keys()
                    and all(abs(other[a] - v) <= SAME_CURVE_PP for a, v in points.items())
                ),
                None,
            )
            colour = COLOURS[index % len(COLOURS)]
            style = STYLES[index % len(STYLES)]
            if same is None:  # its own curve: filled symbols
                self.plot.plot(
                    list(points),
                    list(points.values()),
                    name=measure,
                    symbol=SYMBOLS[index % len(SYMBOLS)],
                    symbolSize=8,
                    symbolBrush=colour,
                    symbolPen=colour,
                    pen=pg.mkPen(colour, width=2, style=style),
                )
            else:  # on an earlier curve: hollow rings around its points, and said so
                self.plot.plot(
                    list(points),
                    list(points.values()),
                    name=f"{measure} (on the curve of {same})",
                    symbol="o",
                    symbolSize=15,
                    symbolBrush=None,
                    symbolPen=pg.mkPen(colour, width=2),
                    pen=pg.mkPen(colour, width=2, style=style),
                )
            drawn.append((measure, points))
        self.recommended_line = None
        if rec and self._metric is not None:
            complete = self._metric.complete_buckets_only
            line = pg.InfiniteLine(
                pos=lookback_edge(rec["lookback_buckets"], complete),
                angle=90,
                pen=pg.mkPen("#ef6c00", style=Qt.PenStyle.DashLine),
                label=f"recommended: {rec['lookback']}",
                labelOpts={"position": 0.5, "color": "#ef6c00"},
            )
            self.plot.addItem(line)
            self.recommended_line = line
        self.apply_button.setEnabled(
            bool(rec)
            and self._metric is not None
            and (
                rec.get("lookback_buckets") != self._metric.buckets
                or (rec.get("tail") is not None and rec["tail"]["action"] != "keep")
            )
        )
        self.loaded.emit(advice)

    def apply(self) -> None:
        """Write the recommended lookback into the project file (keeping its comments)."""
        if self.advice is None or self.advice.recommendation is None or self._metric is None:
            return
        rec = self.advice.recommendation
        value = format_lookback(rec["lookback_buckets"], self._metric.grain)
        changes: dict[str, Any] = {"lookback": value}
        audit = ""
        if rec.get("audit_every") and rec.get("tail"):
            changes.update(audit_every=rec["audit_every"], audit_factor=rec["audit_factor"])
            audit = (
                f" Audit every {rec['audit_every']} over {rec['audit_factor']} times the "
                "lookback, to catch the late tail?"
            )
        if not self.confirm(
            f"Change the lookback of {self._metric.name} from "
            f"{self._metric.lookback} to {value}?{audit} This rewrites the "
            "project file, and every later pull re-reads the new window."
        ):
            return
        try:
            document = ProjectDocument(str(self._project_path))
            document.set_metric(self._metric.name, changes)
            document.save()
        except LookbackError as exc:
            self.sentence.setText(f"cannot apply: {exc}")
            return
        self.applied.emit(str(value))
        if self._on_applied:
            self._on_applied()
