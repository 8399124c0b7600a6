"""The tooltips of the chart's buckets: the value and its history, the expected value where a
nowcast is drawn, and the run that stored a plain bucket (read off the GUI thread)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject

from lookback_gui.core.store import Store
from lookback_gui.ui.bridge import Bridge
from lookback_gui.ui.chart_model import ChartData, bucket_detail, describe_point, expected_text


def bucket_tip(data: ChartData, i: int, plain_run: Callable[[int], int]) -> str:
    """The tooltip of the bucket at index ``i`` of ``data``; ``plain_run(i)`` is the run that
    stored it when it was loaded without its run (a plain bucket)."""
    if data.drawing is None:
        return ""
    a = data.arrays
    label = str(a["bucket"][i].astype("datetime64[s]")).replace("T", " ")
    label = label.removesuffix(" 00:00:00").removesuffix(":00")
    first, versions, last_run, removed, partial = bucket_detail(a, i)
    if last_run < 0:  # a plain bucket: loaded without its run
        last_run = plain_run(i)
    text = describe_point(
        label, data.dims, data.measure, float(a["value"][i]), first, versions, last_run, removed, partial
    )
    expected = data.nowcast.get(float(data.drawing.x[i]))
    return text + ("\n" + expected_text(*expected) if expected else "")


class BucketRuns:
    """The runs that stored the plain buckets of the series shown, read as their tooltips
    ask for them: 0 while one is read, its run from the next tooltip on."""

    def __init__(self, bridge: Bridge):
        self._bridge = bridge
        self._known: tuple[ChartData | None, dict[int, int]] = (None, {})

    def run(self, store: Store, data: ChartData, i: int, owner: QObject) -> int:
        """The run that stored the plain bucket ``i`` of ``data``; 0 while it is read (for
        ``owner``, off the GUI thread)."""
        if self._known[0] is not data:
            self._known = (data, {})
        known = self._known[1]
        if i in known:
            return known[i]
        bucket = data.arrays["bucket"][i].astype("datetime64[us]").item()

        def found(run: int) -> None:
            if self._known[0] is data:
                known[i] = run

        self._bridge.submit(
            f"tip-run-{i}",
            lambda: store.bucket_run(data.metric, data.measure, data.dims, bucket) or 0,
            found,
            lambda message: None,
            owner=owner,
        )
        return 0
