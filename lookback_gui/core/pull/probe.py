"""The change probe: a cheap query's fingerprint of each bucket of the window, and the earliest
bucket whose fingerprint changed since the last pull, so that the metric's own query runs only
from there."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import duckdb

from lookback_gui.core.errors import PullError, QueryError, TransientSourceError
from lookback_gui.core.failures import is_transient
from lookback_gui.core.project import MetricConfig, SourceConfig
from lookback_gui.core.pull.staging import query_parameters
from lookback_gui.core.sources import check_query, clean_duckdb_message, quote_identifier
from lookback_gui.core.timing.windows import Window


def duckdb_failure(metric: MetricConfig, exc: duckdb.Error) -> PullError:
    """The failure of a metric's query (or probe) as the pull reports it: transient when
    trying again may work."""
    message = clean_duckdb_message(str(exc))
    if is_transient(exc):
        return TransientSourceError(f"metric {metric.name}: source {metric.source}: {message}")
    return QueryError(f"metric {metric.name}: {message}")


def run_probe(
    con: duckdb.DuckDBPyConnection, config: MetricConfig, window: Window, source: SourceConfig | None = None
) -> tuple[tuple[datetime, str], ...]:
    """The change probe's fingerprint of each bucket of the window."""
    assert config.change_probe is not None
    probe = check_query(config.change_probe, source)
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE __lookback_probe AS SELECT * FROM (\n{probe.text}\n)",
            query_parameters(probe, window),
        )
    except duckdb.Error as exc:
        raise duckdb_failure(config, exc) from None
    columns = [r[0] for r in con.execute("DESCRIBE __lookback_probe").fetchall()]
    bucket = next((c for c in columns if c.lower() == "bucket"), None)
    if bucket is None:
        raise QueryError(f"metric {config.name}: change_probe returns no 'bucket' column")
    others = [c for c in columns if c != bucket] or [bucket]
    fingerprint = " || '|' || ".join(f"coalesce(CAST({quote_identifier(c)} AS VARCHAR), '∅')" for c in others)
    rows = con.execute(
        f"SELECT CAST({quote_identifier(bucket)} AS TIMESTAMP) AS b, {fingerprint} "
        f"FROM __lookback_probe WHERE b >= $ws AND b < $we ORDER BY b",
        {"ws": window.start, "we": window.end},
    ).fetchall()
    return tuple((b, fp) for b, fp in rows)


def first_changed_bucket(
    probes: tuple[tuple[datetime, str], ...], stored: Mapping[datetime, str], window: Window
) -> datetime | None:
    """The earliest bucket whose fingerprint is new, changed or gone; None when none is.

    The partial bucket is always taken as changed: it is still filling.
    """
    now = dict(probes)
    changed = [b for b in set(now) | set(stored) if now.get(b) != stored.get(b)]
    if window.partial_start is not None and window.partial_start < window.end:
        changed.append(window.partial_start)
    return min(changed) if changed else None
