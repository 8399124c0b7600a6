"""How far the demo project is built, on the window's status bar, until it opens.

Signals:
    step(int, int): done and total steps of the seeding (emitted on the building thread).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMainWindow, QProgressBar


class DemoProgress(QObject):
    """A progress bar and a message on ``window``'s status bar while the demo is built.

    Attributes:
        bar: the progress bar (0-100 %, busy while the shop's orders are written).
    """

    step = Signal(int, int)

    def __init__(self, window: QMainWindow):
        super().__init__(window)
        self._window = window
        self.bar = QProgressBar(accessibleName="Demo project progress")
        self.bar.setMaximumWidth(220)
        self.bar.setRange(0, 0)  # busy: the shop's orders are written first
        window.statusBar().addPermanentWidget(self.bar)
        window.statusBar().showMessage("preparing the demo project: writing the shop's orders…")
        self.step.connect(self._show)

    def _show(self, done: int, total: int) -> None:
        if self.bar.parent() is None or total <= 0:
            return  # finished meanwhile
        self.bar.setRange(0, total)
        self.bar.setValue(done)
        self._window.statusBar().showMessage(
            f"preparing the demo project: six weeks of pulls, {100 * done // total} %…"
        )

    def finish(self) -> None:
        """The demo is built (or could not be): the bar goes."""
        self._window.statusBar().removeWidget(self.bar)
        self.bar.setParent(None)
        self._window.statusBar().clearMessage()
