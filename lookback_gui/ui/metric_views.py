"""The views of the selected metric — chart, revisions, advisor, definition — and what keeps
them current: the selection, and finished runs of that metric.

A run of another metric changes none of them; a run of this one refreshes the chart in place
(measure, series, as-of run and zoom stay) and marks the revisions and the advisor stale, to
be loaded when their tab is shown.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QPlainTextEdit, QTabWidget

from lookback_gui.core.errors import LookbackError
from lookback_gui.core.project import MetricConfig, ProjectDocument
from lookback_gui.core.timing.windows import add_buckets
from lookback_gui.ui.advisor_tab import AdvisorWidget
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.chart import ChartWidget
from lookback_gui.ui.models import RevisionsModel, RevisionView, fmt_duration_h
from lookback_gui.ui.session import Session
from lookback_gui.ui.slots import weakly

REVISIONS_SHOWN = 2000


def _revision_key(view: RevisionView) -> tuple[object, ...]:
    rev = view.revision
    return (rev.run, rev.bucket, tuple(sorted(rev.dims.items())), rev.measure)


class MetricViews(QObject):
    """Keeps the chart, revisions, advisor and definition on the selected metric.

    Signals:
        changed(str, object): a run (its id, or None) of a metric, any metric, committed new
            values; views of several metrics (the dashboard) follow it.
    """

    changed = Signal(str, object)

    def __init__(
        self,
        bridge: Bridge,
        tabs: QTabWidget,
        chart: ChartWidget,
        advisor: AdvisorWidget,
        revisions: RevisionsModel,
        revisions_view: Any,
        definition: QPlainTextEdit,
        on_project_changed: Any,
        on_error: Any,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.bridge = bridge
        self.tabs = tabs
        self.chart = chart
        self.advisor = advisor
        self.revisions = revisions
        self.revisions_view = revisions_view
        self.definition = definition
        self._on_project_changed = on_project_changed
        self._on_error = on_error
        self.session: Session | None = None
        self.metric: MetricConfig | None = None
        self._stale: set[str] = set()
        self._settling_measured: set[tuple[str, int | None]] = set()
        self._newest_run: dict[str, int] = {}
        self._revisions_of: str | None = None
        tabs.currentChanged.connect(weakly(self._load_visible_tab))
        chart.loaded.connect(self._measure_settling)
        advisor.loaded.connect(self._advice_loaded)

    # -- what is shown --------------------------------------------------------------------

    def show(self, session: Session | None, metric: MetricConfig | None) -> None:
        """Show ``metric`` of ``session`` (a new selection, a new session, an edited metric)."""
        self.session = session
        self.metric = metric
        self.chart.set_metric(session.store if session else None, metric)
        self.definition.setPlainText(self._definition_text(metric))
        self._stale = {"revisions", "advisor"}
        self._load_visible_tab()

    def metric_changed(self, name: str, run_id: int | None = None) -> None:
        """A run of ``name`` committed new values (here or in another process)."""
        if run_id is not None:
            if self._newest_run.get(name, 0) >= run_id:
                return
            self._newest_run[name] = run_id
        self.changed.emit(name, run_id)
        if self.metric is None or name != self.metric.name:
            return
        self.chart.refresh(run_id)
        self._stale = {"revisions", "advisor"}
        self._load_visible_tab()

    def seen(self, name: str, run_id: int) -> bool:
        """Whether the views already follow run ``run_id`` of ``name``."""
        return self._newest_run.get(name, 0) >= run_id

    def forget(self) -> None:
        self._revisions_of = None
        self._newest_run.clear()
        self._settling_measured.clear()

    # -- tabs -----------------------------------------------------------------------------

    def _load_visible_tab(self) -> None:
        """Revisions and the advisor are loaded when their tab is shown, once per change."""
        current = self.tabs.currentWidget()
        if current is self.revisions_view.parentWidget() or current is self.revisions_view:
            if "revisions" in self._stale:
                self._stale.discard("revisions")
                self._load_revisions()
        elif current is self.advisor and "advisor" in self._stale:
            self._stale.discard("advisor")
            session = self.session
            self.advisor.set_metric(
                session.store if session else None,
                self.metric,
                session.project.path if session else None,
                self._on_project_changed,
            )

    def _load_revisions(self) -> None:
        metric, session = self.metric, self.session
        if metric is None or session is None:
            self.revisions.set_records([])
            return
        store = session.store

        def load() -> list[RevisionView]:
            views = []
            for rev in store.revisions(metric.name, newest=REVISIONS_SHOWN):
                closed = add_buckets(rev.bucket, metric.grain, 1)
                lag = (rev.known_at - closed) if rev.known_at else timedelta(0)
                views.append(RevisionView(rev, fmt_duration_h(lag), lag.total_seconds()))
            return views

        same_metric = self._revisions_of == metric.name
        self._revisions_of = metric.name
        self.bridge.submit(
            "revisions",
            load,
            lambda views: self._show_revisions(views, keep=same_metric),
            self._on_error,
            owner=self,
        )

    def _show_revisions(self, views: list[RevisionView], keep: bool) -> None:
        """New revisions of the metric shown; a reload of the same metric keeps the selected
        revision and the scroll position."""
        view = self.revisions_view
        scroll = view.verticalScrollBar().value()
        selected = None
        index = view.currentIndex()
        if keep and index.isValid():
            row = view.model().mapToSource(index).row()
            selected = _revision_key(self.revisions.record(row))
        self.revisions.set_records(views)
        if not keep:
            return
        if selected is not None:
            for row, record in enumerate(views):
                if _revision_key(record) == selected:
                    view.setCurrentIndex(view.model().mapFromSource(self.revisions.index(row, 0)))
                    break
        view.verticalScrollBar().setValue(scroll)

    def _definition_text(self, metric: MetricConfig | None) -> str:
        if metric is None or self.session is None:
            return ""
        path = self.session.project.path
        try:
            import tomlkit

            document = ProjectDocument(path).document
            table = tomlkit.document()
            table.add(tomlkit.comment(f"[metrics.{metric.name}] in {path}"))
            table["metrics"] = {metric.name: document["metrics"][metric.name]}
            return tomlkit.dumps(table)
        except (LookbackError, KeyError):
            return metric.sql

    # -- settling -------------------------------------------------------------------------

    def _measure_settling(self, data: object) -> None:
        """After a chart is drawn, measure (once per new run) how long its buckets take to
        settle, so the shaded provisional region can follow it."""
        metric, session = self.metric, self.session
        if metric is None or session is None:
            return
        key = (metric.name, self._newest_run.get(metric.name))
        if key in self._settling_measured:
            return
        self._settling_measured.add(key)
        # after the window has settled down from what it just showed
        QTimer.singleShot(1500, self, weakly(self._submit_settling, session, metric))

    def _submit_settling(self, session: Session, metric: MetricConfig) -> None:
        from lookback_gui.core.insight.nowcast import chart_settle_age

        if self.session is not session:
            return
        store, name = session.store, metric.name
        self.bridge.submit(
            f"settling-{name}",
            lambda: (name, chart_settle_age(store, metric)),
            self._settle_age_loaded,
            lambda message: None,
        )

    def _advice_loaded(self, advice: object) -> None:
        from lookback_gui.core.insight.advisor import Advice

        if isinstance(advice, Advice) and advice.enough_history:
            self.chart.set_settling(advice.metric, advice.settle_age_buckets)

    def _settle_age_loaded(self, result: object) -> None:
        """The development's settle age of a metric (see :mod:`development`): the chart's
        provisional region follows it, as the nowcast and the advisor do."""
        if isinstance(result, tuple):
            name, settled = result
            self.chart.set_settling(name, settled)
