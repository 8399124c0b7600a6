"""The chart's data model, apart from any view: what one series of a metric looks like
(current values, first reported values, revisions, removals, partial buckets, the provisional
region and the nowcast), loaded off the GUI thread and prepared for drawing.

The chart, the comparison chart and the dashboard draw what this module loads; it holds no
widgets and draws nothing.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from lookback_gui.core.errors import LookbackError
from lookback_gui.core.project import MetricConfig
from lookback_gui.core.store import RunRecord, Store
from lookback_gui.core.timing.windows import add_buckets
from lookback_gui.ui.models import fmt_number, fmt_series

# More markers of one kind than this in view are thinned to one per square of the screen
# (MARKER_CELL_PX, growing up to a marker's size while there are still too many): they overlap
# there anyway, and every marker costs the GUI thread time.
MAX_MARKERS = 2000
MARKER_CELL_PX = 3
MARKER_SIZE_PX = 12
ENVELOPE_COLUMNS = 2000  # the first frame's envelope, before the view's width is known
AS_OF_RUNS = 300  # the newest successful runs offered under "As known after"
SERIES_OFFERED = 50  # the largest series of each measure that the Series box offers


def in_view(x: np.ndarray, x_range: tuple[float, float]) -> tuple[int, int]:
    """The slice [lo, hi) of ``x`` (ascending) that lies in ``x_range``, both ends included."""
    return (int(np.searchsorted(x, x_range[0], "left")), int(np.searchsorted(x, x_range[1], "right")))


def when_text(as_of_run: int | None, as_known_at: datetime | None) -> str:
    """Which state of the store a chart shows, in words."""
    if as_known_at is not None:
        return f"as known at {as_known_at:%Y-%m-%d %H:%M}"
    return "latest" if as_of_run is None else f"as known after run {as_of_run}"


def write_series_csv(store: Store, data: ChartData, path: str) -> int:
    """Write the series ``data`` shows to ``path`` as CSV, one row per bucket; returns the rows.

    Runs on a worker: a long series takes seconds."""
    a = store.chart_data(data.metric, data.measure, data.dims, data.as_of_run, data.as_known_at)
    series = fmt_series(data.dims)
    try:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                [
                    "bucket",
                    "series",
                    "measure",
                    "value",
                    "first_value",
                    "versions",
                    "last_run",
                    "removed",
                    "partial",
                ]
            )
            for bucket, value, first, versions, run, removed, partial in zip(
                np.datetime_as_string(a["bucket"], unit="s"),
                a["value"].tolist(),
                a["first_value"].tolist(),
                a["versions"].tolist(),
                a["last_run"].tolist(),
                a["removed"].tolist(),
                a["partial"].tolist(),
                strict=True,
            ):
                writer.writerow(
                    [
                        bucket.replace("T", " "),
                        series,
                        data.measure,
                        "" if value != value else value,
                        "" if first != first else first,
                        versions,
                        run,
                        removed,
                        partial,
                    ]
                )
    except OSError as exc:
        raise LookbackError(f"{path}: {exc.strerror}") from None
    return len(a["bucket"])


@dataclass(frozen=True)
class ChartData:
    """What one chart draw needs, loaded off the GUI thread; ``arrays`` as Store.chart_series
    gives them (the details of marked buckets only)."""

    metric: str
    measure: str
    dims: dict[str, Any]
    arrays: dict[str, np.ndarray]
    series: list[tuple[dict[str, Any], str, float]]
    provisional: tuple[float, float] | None = None
    provisional_label: str = "provisional (inside the lookback)"
    schema_changes: list[tuple[float, str]] = field(default_factory=list)
    as_of_run: int | None = None
    drawing: Drawing | None = None
    runs: tuple[tuple[int, str], ...] = ()
    as_known_at: datetime | None = None
    newest_known_at: datetime | None = None  # of the metric's newest successful run
    nowcast: dict[float, tuple[float, float | None, float | None]] = field(default_factory=dict)
    # the moments the metric's definition changed (x, tooltip): values changed then are
    # redefinitions, not late data
    definition_changes: list[tuple[float, str]] = field(default_factory=list)
    thresholds: list[ThresholdMark] = field(default_factory=list)


@dataclass(frozen=True)
class ThresholdMark:
    """A threshold rule judged on the nowcast (``judge = "expected"``), as the chart shows it.

    Attributes:
        rule: the rule's name (or kind and position).
        side: "below" or "above"; bound: its value.
        x: the bucket it judges now (the newest complete one), None without one.
        expected: the expected value, low and high it judges that bucket by while it is
            provisional; None once it is settled (then its value is judged).
        firing: whether that judgment crosses the bound (the whole interval beyond it).
        text: what the rule does and what it judges now, in words.
    """

    rule: str
    side: str
    bound: float
    x: float | None
    expected: tuple[float, float | None, float | None] | None
    firing: bool
    text: str


def series_id(dims: dict[str, Any]) -> str:
    """A series' dimension values as one string, to find it among the chart's choices."""
    return json.dumps(dims, sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class Drawing:
    """What the GUI thread draws of one series, computed on the worker that loaded it.

    Attributes:
        x: bucket times as epoch seconds (ascending).
        marks: per marker kind (revised, partial, removed), the bucket indices it marks and
            their x and y (a removed bucket sits at its first reported value).
        y_range: the lowest and highest value and first value.
        revised: how many buckets are revised; removed: how many are removed.
        envelope: the curve of the whole series for a view ENVELOPE_COLUMNS pixels wide.
    """

    x: np.ndarray
    marks: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    y_range: tuple[float, float]
    revised: int
    removed: int
    envelope: tuple[np.ndarray, np.ndarray]


def prepare_drawing(arrays: dict[str, np.ndarray]) -> Drawing:
    x = epoch_seconds(arrays["bucket"])
    value, marked = arrays["value"], arrays["marked"]
    removed, partial = arrays["removed"], arrays["partial"]
    revised = (arrays["versions"] > 1) & ~removed
    marks = {}
    # a bucket both revised and partial gets both marks: the diamond inside the hollow ring
    for kind, mask in (("revised", revised), ("partial", partial & ~removed), ("removed", removed)):
        where = marked[mask]
        ys = arrays["first_value"][mask] if kind == "removed" else value[where]
        marks[kind] = (where, x[where], np.nan_to_num(ys))
    # the range of every value and first value (a plain bucket's first value is its value)
    low, high = np.nanmin(value, initial=np.inf), np.nanmax(value, initial=-np.inf)
    firsts = np.concatenate([arrays["first_value"], marks["removed"][2]])
    low = min(low, np.nanmin(firsts, initial=np.inf))
    high = max(high, np.nanmax(firsts, initial=-np.inf))
    y_range = (float(low), float(high)) if low <= high else (0.0, 1.0)
    envelope = curve_for_view(x, value, (float(x[0]), float(x[-1])), ENVELOPE_COLUMNS)
    return Drawing(x, marks, y_range, int(revised.sum()), int(removed.sum()), envelope)


def curve_for_view(
    x: np.ndarray, y: np.ndarray, x_range: tuple[float, float], columns: float
) -> tuple[np.ndarray, np.ndarray]:
    """The points to draw of the curve (x ascending) for a view of ``x_range`` that is
    ``columns`` pixels wide: every point in view (and one beyond each side) when there are
    few; else, per run of points, the lowest and highest value, which is all the eye can see of
    a dense curve. A million points become a few thousand, and the GUI thread never has to
    handle more."""
    lo, hi = in_view(x, x_range)
    lo, hi = max(lo - 1, 0), min(hi + 1, len(x))
    width = max(int(columns), 1)
    if hi - lo <= 2 * width:
        return x[lo:hi], y[lo:hi]
    step = (hi - lo) // width
    rows = (hi - lo) // step
    end = lo + rows * step
    block = y[lo:end].reshape(rows, step)
    with np.errstate(invalid="ignore"):  # a run of gaps (NaN) stays a gap
        low, high = np.fmin.reduce(block, axis=1), np.fmax.reduce(block, axis=1)
    xs = np.repeat(x[lo:end:step], 2)
    ys = np.empty(2 * rows)
    ys[0::2], ys[1::2] = low, high
    return np.concatenate([xs, x[end:hi]]), np.concatenate([ys, y[end:hi]])


def bucket_detail(arrays: dict[str, np.ndarray], i: int) -> tuple[float, int, int, bool, bool]:
    """first value, versions, last run (-1: not loaded), removed, partial of bucket ``i``."""
    marked = arrays["marked"]
    j = int(np.searchsorted(marked, i))
    if j < len(marked) and int(marked[j]) == i:
        return (
            float(arrays["first_value"][j]),
            int(arrays["versions"][j]),
            int(arrays["last_run"][j]),
            bool(arrays["removed"][j]),
            bool(arrays["partial"][j]),
        )
    return float(arrays["value"][i]), 1, -1, False, False


def first_values(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The first reported value of every bucket."""
    first = arrays["value"].copy()
    first[arrays["marked"]] = arrays["first_value"]
    return first


def thin_markers(
    x: np.ndarray,
    y: np.ndarray,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    size_px: tuple[float, float],
) -> np.ndarray:
    """Positions (into ``x``, which ascends) of the markers to draw for a view: those in view;
    if there are more than MAX_MARKERS, the first of each square of the screen, the squares
    growing from MARKER_CELL_PX up to the size of a marker until at most MAX_MARKERS remain
    (or the marker-sized squares are reached: markers there would overlap anyway)."""
    chosen = np.arange(*in_view(x, x_range))
    if len(chosen) <= MAX_MARKERS:
        return chosen
    (x0, x1), (y0, y1) = x_range, y_range
    with np.errstate(invalid="ignore"):
        across = (x[chosen] - x0) / max(x1 - x0, 1e-12) * size_px[0]
        down = (y[chosen] - y0) / max(y1 - y0, 1e-12) * size_px[1]
    inside = np.isfinite(down) & (down >= 0) & (down < size_px[1])
    chosen, across, down = chosen[inside], across[inside], down[inside]
    cell_px = MARKER_CELL_PX
    while True:
        columns = max(1, int(size_px[0] / cell_px) + 1)
        rows = max(1, int(size_px[1] / cell_px) + 1)
        cell = np.clip(across // cell_px, 0, columns - 1).astype(np.int64) * rows + (down // cell_px).astype(
            np.int64
        )
        first = np.full(columns * rows, -1, dtype=np.int64)
        first[cell[::-1]] = chosen[::-1]  # the last write wins: the first marker of each cell
        kept = np.sort(first[first >= 0])
        if len(kept) <= MAX_MARKERS or cell_px >= MARKER_SIZE_PX:
            return kept
        cell_px *= 2


def epoch_seconds(buckets: np.ndarray) -> np.ndarray:
    """Naive local bucket times as seconds, drawn as-is by an axis with no UTC offset."""
    return buckets.astype("datetime64[us]", copy=False).view(np.int64) / 1e6


def _provisional(
    store: Store,
    metric: str,
    succeeded: list[RunRecord],
    config: MetricConfig | None,
    settle: int | None,
    as_of_run: int | None,
    as_known_at: datetime | None,
) -> tuple[tuple[float, float] | None, str]:
    """The provisional region (epoch seconds) and its label: the lookback window of the pull
    shown (the newest, the one chosen, or the one known last by ``as_known_at``), or the
    buckets younger than the measured settling age ``settle`` when there is one."""
    if as_known_at is not None:  # the provisional region of the pull known last by then
        runs = [r for r in succeeded if r.known_at is not None and r.known_at <= as_known_at][:1]
    else:
        runs = succeeded[:1] if as_of_run is None else [store.run(as_of_run)]
    provisional = None
    label = "provisional (inside the lookback)"
    if runs and runs[0].window_start and runs[0].window_end and runs[0].metric == metric:
        window_start, window_end = runs[0].window_start, runs[0].window_end
        if settle is not None and config is not None:
            newest = runs[0].partial_start or add_buckets(window_end, config.grain, -1)
            window_start = add_buckets(newest, config.grain, -settle)
            label = f"provisional: settles in {settle} {config.grain.value}s (measured)"
        start, end = (np.datetime64(window_start), np.datetime64(window_end))
        provisional = (float(epoch_seconds(np.array([start]))[0]), float(epoch_seconds(np.array([end]))[0]))
    return provisional, label


def _moments(
    store: Store, metric: str, as_of_run: int | None, as_known_at: datetime | None
) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    """The schema changes and the new definitions known by the moment shown (epoch seconds,
    what changed)."""
    changes = []
    for _run, as_of, change in store.schema_changes(metric):
        if (
            as_of is None
            or (as_of_run is not None and _run > as_of_run)
            or (as_known_at is not None and as_of > as_known_at)
        ):
            continue
        text = "; ".join(f"{k}: {', '.join(v)}" for k, v in change.items())
        changes.append((float(epoch_seconds(np.array([np.datetime64(as_of)]))[0]), text))
    redefined = []
    for _run, known, old, new in store.definition_changes(metric):
        if (
            known is None
            or (as_of_run is not None and _run > as_of_run)
            or (as_known_at is not None and known > as_known_at)
        ):
            continue
        redefined.append(
            (
                float(epoch_seconds(np.array([np.datetime64(known)]))[0]),
                f"new definition {new} (was {old}) from run {_run}, known "
                f"{known:%Y-%m-%d %H:%M}: values it changed are redefinitions, "
                "not late data",
            )
        )
    return changes, redefined


def load_chart(
    store: Store,
    metric: str,
    measure: str | None,
    dims: dict[str, Any] | None,
    as_of_run: int | None,
    config: MetricConfig | None = None,
    settle: int | None = None,
    as_known_at: datetime | None = None,
    with_nowcast: bool = True,
) -> ChartData:
    """One series and what to draw around it: current, as known after run ``as_of_run`` or
    as known at ``as_known_at``; ``settle`` is the measured settling age (in buckets) when
    the advisor has one. ``with_nowcast=False`` leaves the nowcast out (the comparison chart
    draws none, and it costs a pass over the metric's history per series)."""
    series = store.series(metric, top=SERIES_OFFERED, as_of_run=as_of_run, as_known_at=as_known_at)
    succeeded = store.runs(metric=metric, status="succeeded", limit=AS_OF_RUNS)
    choices = tuple(
        (r.id, f"run {r.id} (known {(r.known_at or r.as_of):%Y-%m-%d %H:%M})")
        for r in succeeded
        if (r.known_at or r.as_of) is not None
    )
    if not series:
        return ChartData(
            metric,
            measure or "",
            dims or {},
            {},
            [],
            as_of_run=as_of_run,
            runs=choices,
            as_known_at=as_known_at,
            newest_known_at=succeeded[0].known_at if succeeded else None,
        )
    if dims is None or measure is None or (dims, measure) not in [(d, m) for d, m, _ in series]:
        of_measure = [s for s in series if s[1] == measure] or series
        dims, measure, _ = of_measure[0]
    arrays = store.chart_series(metric, measure, dims, as_of_run=as_of_run, as_known_at=as_known_at)
    provisional, label = _provisional(store, metric, succeeded, config, settle, as_of_run, as_known_at)
    changes, redefined = _moments(store, metric, as_of_run, as_known_at)
    drawing = prepare_drawing(arrays) if len(arrays.get("bucket", ())) else None
    expected: dict[float, tuple[float, float | None, float | None]] = {}
    if (
        with_nowcast
        and as_of_run is None
        and as_known_at is None
        and settle is not None
        and config is not None
        and drawing is not None
    ):
        expected = series_nowcast(store, config, measure, dims)
    latest = as_of_run is None and as_known_at is None  # a rule judges the present
    marks = (
        threshold_marks(config, measure, dims, arrays, drawing.x, expected)
        if config is not None and drawing is not None and latest
        else []
    )
    return ChartData(
        metric,
        measure,
        dims,
        arrays,
        series,
        provisional,
        label,
        changes,
        as_of_run,
        drawing,
        choices,
        as_known_at,
        succeeded[0].known_at if succeeded else None,
        expected,
        redefined,
        marks,
    )


def threshold_marks(
    config: MetricConfig,
    measure: str,
    dims: dict[str, Any],
    arrays: dict[str, np.ndarray],
    x: np.ndarray,
    expected: dict[float, tuple[float, float | None, float | None]],
) -> list[ThresholdMark]:
    """The threshold rules of ``config`` judged on the nowcast that apply to the series shown
    (their measure, and a series that matches), each with the bucket it judges: the newest
    complete one of the series (the newest one at all while none is complete), by its expected
    value and interval while it is provisional, else by its value."""
    rules = [
        r
        for r in config.alerts
        if r.kind == "threshold"
        and r.judge == "expected"
        and r.measure == measure
        and all(str(dims.get(k)) == str(v) for k, v in r.series.items())
    ]
    if not rules:
        return []
    value = arrays["value"]
    # removed and partial are given for the marked buckets only (see Store.chart_series)
    removed, partial = np.zeros(len(value), bool), np.zeros(len(value), bool)
    removed[arrays["marked"]] = arrays["removed"]
    partial[arrays["marked"]] = arrays["partial"]
    has_value = np.isfinite(value) & ~removed
    complete = np.flatnonzero(has_value & ~partial)
    candidates = complete if len(complete) else np.flatnonzero(has_value)
    index = int(candidates[-1]) if len(candidates) else None
    at = float(x[index]) if index is not None else None
    judged = expected.get(at) if at is not None else None
    bucket = (
        ""
        if index is None
        else str(np.datetime_as_string(arrays["bucket"][index], unit="m")).replace("T", " ")
    )
    marks = []
    for rule in rules:
        for side, bound in (("below", rule.below), ("above", rule.above)):
            if bound is None:
                continue
            if judged is not None:
                e, low, high = judged
                edge = high if side == "below" else low
                firing = edge is not None and _beyond(edge, side, bound)
                now = (
                    f"judged now: {bucket}, {expected_text(e, low, high)}"
                    if low is not None and high is not None
                    else f"judged now: {bucket}, expected {fmt_number(e)} (no interval yet: not judged)"
                )
            elif index is not None:
                firing = _beyond(float(value[index]), side, bound)
                now = f"judged now: {bucket}, settled at {fmt_number(float(value[index]))}"
            else:
                firing, now = False, "nothing to judge yet"
            marks.append(
                ThresholdMark(
                    rule.label,
                    side,
                    float(bound),
                    at,
                    judged,
                    firing,
                    f"alert {rule.label}: fires when the newest complete bucket is expected to "
                    f"settle {side} {fmt_number(bound)} (its whole 80 % interval); {now}"
                    + (" — firing" if firing else ""),
                )
            )
    return marks


def _beyond(value: float, side: str, bound: float) -> bool:
    return value < bound if side == "below" else value > bound


def series_nowcast(
    store: Store, config: MetricConfig, measure: str, dims: dict[str, Any]
) -> dict[float, tuple[float, float | None, float | None]]:
    """The nowcast of one series' provisional buckets: x (epoch seconds) → (expected, low,
    high)."""
    return measure_nowcast(store, config, measure).get(series_id(dims), {})


def measure_nowcast(
    store: Store, config: MetricConfig, measure: str
) -> dict[str, dict[float, tuple[float, float | None, float | None]]]:
    """The nowcast of the provisional buckets of every series of ``measure``, from one pass
    over the metric's history: series_id → x (epoch seconds) → (expected, low, high)."""
    from lookback_gui.core.insight.nowcast import nowcast

    try:
        result = nowcast(store, config)
    except LookbackError:
        return {}
    out: dict[str, dict[float, tuple[float, float | None, float | None]]] = {}
    for row in result.rows:
        if row.measure == measure and row.expected is not None:
            x = float(epoch_seconds(np.array([np.datetime64(row.bucket, "us")]))[0])
            out.setdefault(series_id(dict(row.dims)), {})[x] = (row.expected, row.low, row.high)
    return out


def expected_text(expected: float, low: float | None, high: float | None) -> str:
    """ "expected to settle at 41,200 (39,800–42,900)": three significant digits, no more than
    an estimate has."""
    text = f"expected to settle at {fmt_number(_significant(expected))}"
    if low is not None and high is not None:
        text += f" ({fmt_number(_significant(low))}–{fmt_number(_significant(high))})"
    return text


def _significant(value: float, digits: int = 3) -> float:
    if value == 0 or not np.isfinite(value):
        return value
    return round(value, digits - 1 - int(np.floor(np.log10(abs(value)))))


def describe_point(
    bucket: str,
    dims: dict[str, Any],
    measure: str,
    value: float,
    first: float,
    versions: int,
    last_run: int,
    removed: bool,
    partial: bool,
) -> str:
    lines = [f"{bucket}  ({fmt_series(dims)}, {measure})"]
    if removed:
        lines.append(f"removed by run {last_run} (first reported {fmt_number(first)})")
    else:
        lines.append(f"value: {fmt_number(value)}")
        lines.append(f"first reported: {fmt_number(first)}")
        if versions > 1 and np.isfinite(first):
            delta = value - first
            pct = f" ({delta / abs(first) * 100:+.1f}%)" if first else ""
            lines.append(f"change: {fmt_number(delta, signed=True)}{pct}")
        run = f", run {last_run}" if last_run > 0 else ""  # 0: not known yet
        lines.append(f"versions: {versions}" + (f", last revised by run {last_run}" if versions > 1 else run))
    if partial:
        lines.append("partial: the bucket was still incomplete when pulled")
    return "\n".join(lines)
