"""Backfills: every bucket of a range pulled in window-sized chunks, each chunk one run."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Unpack

from lookback_gui.core.project import MetricConfig, Project
from lookback_gui.core.pull.control import PullControl
from lookback_gui.core.pull.run import PullOptions, run_pull
from lookback_gui.core.store import (
    RunRecord,
    Store,
)
from lookback_gui.core.timing.windows import (
    Window,
    add_buckets,
    bucket_start,
    buckets_between,
    local_now,
)


def backfill_windows(
    config: MetricConfig,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
    *,
    as_known_then: bool = False,
) -> list[Window]:
    """Window-sized chunks covering every bucket in [start, end), oldest first.

    Each chunk is pulled with what is known now (its ``$as_of`` is ``now``, default: now in the
    metric's time zone, and so is its known time): a backfill loads the past as the source
    holds it today. With ``as_known_then`` each chunk is pulled as of its own end instead. Never
    as of the future: the chunk that holds ``now`` is pulled as of ``now``, with its bucket
    partial, and no chunk starts after it.
    """
    now = now or local_now(config.zone)
    first = bucket_start(start, config.grain)
    if end > now:  # up to the bucket that holds now
        last = add_buckets(bucket_start(now, config.grain), config.grain, 1)
    else:
        last = bucket_start(end, config.grain)
        if last < end:
            last = add_buckets(last, config.grain, 1)
    if last <= first:
        return []
    windows = []
    cursor = first
    while cursor < last:
        chunk_end = min(add_buckets(cursor, config.grain, config.buckets), last)
        if chunk_end <= now:
            windows.append(
                Window(
                    start=cursor, end=chunk_end, as_of=chunk_end if as_known_then else now, partial_start=None
                )
            )
        else:
            windows.append(
                Window(start=cursor, end=chunk_end, as_of=now, partial_start=bucket_start(now, config.grain))
            )
        cursor = chunk_end
    return windows


MAX_BACKFILL_CHUNKS = 1000  # more pulls than this in one backfill need a confirmation


def backfill_chunk_count(config: MetricConfig, start: datetime, end: datetime) -> int:
    """How many pulls a backfill of [start, end) makes, without listing them."""
    first = bucket_start(start, config.grain)
    last = bucket_start(end, config.grain)
    if last < end:
        last = add_buckets(last, config.grain, 1)
    if last <= first:
        return 0
    return -(-buckets_between(first, last, config.grain) // config.buckets)


def _uncovered_ok_empty(
    config: MetricConfig, store: Store, plans: list[tuple[str, Window]]
) -> Callable[[str, Window], MetricConfig]:
    """The config to pull a planned window with: a back-fill chunk that no successful pull
    covered any bucket of may come back empty (nothing is stored there that an outage could
    wrongly remove, e.g. before the data starts): it succeeds with a warning, not a failure."""
    if config.allow_empty or not any(trigger == "backfill" for trigger, _ in plans):
        return lambda trigger, window: config
    spans = [
        (r.window_start, r.window_end)
        for r in store.runs(metric=config.name, status="succeeded")
        if r.window_start is not None and r.window_end is not None
    ]
    relaxed = dataclasses.replace(config, allow_empty=True)

    def pick(trigger: str, window: Window) -> MetricConfig:
        if trigger != "backfill" or any(s < window.end and window.start < e for s, e in spans):
            return config
        return relaxed

    return pick


def run_windows(
    project: Project,
    config: MetricConfig,
    store: Store,
    plans: list[tuple[str, Window]],
    *,
    workers: int = 1,
    on_run: Callable[[int, int, RunRecord], None] | None = None,
    gate: threading.Semaphore | None = None,
    **options: Unpack[PullOptions],
) -> list[RunRecord]:
    """Pull each (trigger, window) of ``plans``, up to ``workers`` at once.

    ``gate`` (the source's concurrency limit) is held around each pull. A failed pull does not
    stop the others; the runs come back in plan order. ``options`` go to each pull (see
    :class:`PullOptions`); its ``control`` cancels them all, each pull having a child of it.
    """
    from concurrent.futures import ThreadPoolExecutor

    control = options.get("control") or PullControl()
    config_for = _uncovered_ok_empty(config, store, plans)
    results: list[RunRecord | None] = [None] * len(plans)
    done = [0]
    lock = threading.Lock()

    def one(index: int) -> None:
        if control.cancelled:
            return
        trigger, window = plans[index]
        child = control.child()
        if gate is not None:
            while not gate.acquire(timeout=0.2):
                if child.cancelled:
                    return
        try:
            each: PullOptions = {**options, "control": child}
            run = run_pull(
                project, config_for(trigger, window), store, trigger=trigger, window=window, **each
            )
        finally:
            if gate is not None:
                gate.release()
        results[index] = run
        with lock:
            done[0] += 1
            if on_run:
                on_run(done[0], len(plans), run)

    if workers <= 1 or len(plans) <= 1:
        for index in range(len(plans)):
            one(index)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill") as pool:
            for future in [pool.submit(one, i) for i in range(len(plans))]:
                future.result()
    return [r for r in results if r is not None]


def backfill(
    project: Project,
    metric: MetricConfig | str,
    store: Store,
    start: datetime,
    end: datetime,
    *,
    on_chunk: Callable[[int, int, RunRecord], None] | None = None,
    trigger: str = "backfill",
    workers: int = 1,
    as_known_then: bool = False,
    **options: Unpack[PullOptions],
) -> list[RunRecord]:
    """Pull every bucket in [start, end) chunk by chunk, up to ``workers`` chunks at once
    (never more than the source's ``concurrency``); a failed chunk does not stop the rest.

    Every chunk is pulled with what is known now, unless ``as_known_then`` (each as of its
    own end: see :func:`backfill_windows`). ``options`` go to each pull (see
    :class:`PullOptions`)."""
    config = project.metric(metric) if isinstance(metric, str) else metric
    source = project.sources[config.source]
    clock = options.get("clock")
    plans = [
        (trigger, w)
        for w in backfill_windows(config, start, end, clock() if clock else None, as_known_then=as_known_then)
    ]
    workers = max(1, min(workers, source.concurrency))
    return run_windows(project, config, store, plans, workers=workers, on_run=on_chunk, **options)
