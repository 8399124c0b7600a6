"""Python's cycle collector runs on the GUI thread only, while the app has one.

CPython collects reference cycles on whichever thread crosses the allocation threshold: with
pulls, store reads and sessions on worker threads, that is often not the GUI thread. Qt objects
caught in a cycle (pyqtgraph's plots hold their menus, view boxes and widget groups in cycles,
by design) are then destroyed on that worker thread, which Qt forbids: a timer of the freed
object is never unregistered and Qt later delivers its event to freed memory (a crash in
``QTimerInfoList::activateTimers``), and a destructor that waits on Qt's signal-slot lock while
the GUI thread holds it and waits for the interpreter lock hangs both threads.

:func:`collect_on_gui_thread` therefore switches the automatic collection off and runs it from
a timer on the GUI thread instead, as often as the interpreter's own thresholds ask for (the
pattern of pyqtgraph's ``util/garbage_collector.py``). Objects that are not in a cycle are
freed at once, as always; only cycles wait for the next tick. When the application object goes,
the automatic collection comes back.
"""

from __future__ import annotations

import gc

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer

INTERVAL_MS = 250


def collect_if_due() -> int:
    """Collect the generations whose counts passed their thresholds, as the interpreter would;
    return how many objects were unreachable. Call it on the GUI thread."""
    thresholds = gc.get_threshold()
    counts = gc.get_count()
    if thresholds[0] <= 0 or counts[0] <= thresholds[0]:
        return 0
    generation = 0
    while generation < 2 and counts[generation + 1] > thresholds[generation + 1]:
        generation += 1
    return gc.collect(generation)


class GuiCollector(QObject):
    """Collects reference cycles from a timer on the GUI thread, with the automatic collection
    off. A child of the application object; :func:`collect_on_gui_thread` makes it."""

    def __init__(self, app: QCoreApplication):
        super().__init__(app)
        self.setObjectName("lookback-gui-collector")
        gc.disable()
        self._timer = QTimer(self, interval=INTERVAL_MS)
        self._timer.timeout.connect(self.collect)
        self._timer.start()
        # the application object is going (at exit): no GUI thread, so collect as usual again
        self.destroyed.connect(_enable)

    def collect(self) -> int:
        if gc.isenabled():  # something switched it back on: worker threads may collect again
            gc.disable()
        return collect_if_due()


def _enable(*_: object) -> None:
    gc.enable()


def collect_on_gui_thread() -> GuiCollector | None:
    """Make sure reference cycles are collected on the GUI thread only, from now on until the
    application object is deleted; the collector (one per application), or None when there is
    no application yet or this is not its thread."""
    app = QCoreApplication.instance()
    if app is None or QThread.currentThread() != app.thread():
        return None
    existing = app.findChild(GuiCollector, "lookback-gui-collector")
    if isinstance(existing, GuiCollector):
        if gc.isenabled():
            gc.disable()
        return existing
    return GuiCollector(app)


def delete_when_dropped(obj: QObject) -> None:
    """For ``__del__`` of a widget that Python owns: delete its Qt half now, while every Python
    part of it is intact.

    A widget that Python drops while it sits in a reference cycle (a plot item holding one of
    its methods, say) is freed by the cycle collector, which first clears the cycle's objects
    part by part and only then deletes the widget: Qt, tearing the widget down, calls into
    those cleared parts (pyqtgraph's overrides) or into items half torn down already, and the
    process dies (``__cxa_pure_virtual`` in ``QWidget::destroy``). The collector calls
    ``__del__`` of every object of a cycle before it clears any of them, so a widget deleted
    from there goes whole. Off the GUI thread, or without an application, nothing is done."""
    app = QCoreApplication.instance()
    if app is None or QThread.currentThread() != app.thread():
        return
    if shiboken6.isValid(obj):
        shiboken6.delete(obj)
