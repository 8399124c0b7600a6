"""The Advisor tab: how late the selected metric's data arrives, and the lookback it needs.

Its pages: the settling curve; the pull policies tried on the stored history (a table, and the
largest error each would have shown by age); the nowcast tried on the history (its error and the
raw provisional value's by age, and how often its interval held); and the revision triangle
(bucket × age, the share of the value known at that age) as a heatmap.

The policies' table model is in :mod:`policy_model`, the charts in :mod:`advisor_plots` and the
triangle in :mod:`triangle_view`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
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
from lookback_gui.ui.advisor_plots import make_plot, plot_nowcast, plot_policy_errors, plot_settling
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.policy_model import PolicyModel, pct
from lookback_gui.ui.slots import weakly
from lookback_gui.ui.triangle_view import TriangleView

__all__ = ["AdvisorWidget", "PolicyModel", "ask_to_apply", "lookback_edge"]


def lookback_edge(buckets: int, complete_only: bool) -> float:
    """Where on the age axis the line of a lookback of ``buckets`` stands: at its length, so
    that "recommended: 12d" stands at 12 on the axis (it pulls ages 0 to 11 again; 1 to 12 with
    complete buckets only)."""
    return float(buckets)


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
        self.errors_plot = make_plot(
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
        self.nowcast_plot = make_plot(
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
        self.triangle_view = TriangleView()
        self.triangle_label = self.triangle_view.label
        self.triangle_plot = self.triangle_view.plot
        self.triangle_image = self.triangle_view.image
        self.triangle_unknown = self.triangle_view.unknown
        self.triangle_bar = self.triangle_view.bar
        return self.triangle_view

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
        plot_policy_errors(self.errors_plot, picked)

    def _show_nowcast(self, advice: Advice) -> None:
        plot = self.nowcast_plot
        plot.clear()
        backtest = advice.nowcast_backtest
        if not backtest or not backtest["by_age"]:
            self.nowcast_label.setText(
                "The nowcast needs buckets that have settled: it is tried once the history holds some."
            )
            return
        held = pct(backtest["calibrated_coverage"])
        widen = float(backtest.get("widen") or 1.0)
        how = (
            f"Mack's, widened × {widen:.2f} by this history as the nowcast shows it; "
            f"Mack's alone held it {pct(backtest['coverage'])}"
            if widen > 1
            else "Mack's, as the nowcast shows it"
        )
        self.nowcast_label.setText(
            f"Tried on {backtest['values']} provisional values of the stored history, each "
            f"with only what was known then: the {backtest['interval'] * 100:.0f} % interval "
            f"held the settled value {held} of the time ({backtest['intervals']} intervals; "
            f"{how}). Values settle after {backtest['settle_age_buckets']} buckets."
        )
        plot_nowcast(plot, backtest["by_age"])

    def _show_triangle(self, triangle: Triangle) -> None:
        self.triangle_view.show_triangle(triangle)

    def _triangle_hover(self, position: Any) -> None:
        self.triangle_view.hover(position)

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
        self.details.setText(details_text(advice))
        plot_settling(self.plot, advice.settling_curve)
        self._show_recommended(rec)
        self.loaded.emit(advice)

    def _show_recommended(self, rec: dict[str, Any]) -> None:
        """The recommended lookback as a line on the settling curve; *Apply* while it would
        change the metric."""
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


def details_text(advice: Advice) -> str:
    """What the advice was measured on, the pull time it expects, and its note."""
    rec = advice.recommendation or {}
    parts = [f"{advice.revisions_observed} revisions in {advice.runs_observed} pulls"]
    if advice.missed_revisions:
        parts.append(f"{len(advice.missed_revisions)} found by audits beyond the lookback")
    if rec.get("expected_pull_s") is not None:
        parts.append(f"expected pull time {rec['expected_pull_s']:.3g} s (now {rec['current_pull_s']:.3g} s)")
    if rec.get("note"):
        parts.append(str(rec["note"]))
    return "; ".join(parts)
