"""Long-haul housekeeping of a local store: what it holds (``lookback store stats``) and
compaction (``lookback store compact``).

A store keeps every run and every version forever; nothing here deletes any of them. What a store
loses over time is the space of rows it rewrote (the ``current`` values a pull updates, run rows
finished after they started): DuckDB reuses such blocks but never gives them back to the file
system. Compaction copies every table, sequence and row into a fresh file beside the store
(``STORE.compact``), the current values in metric order again (a pull adds the values of its new
buckets after all others), and puts it in place with one atomic rename, holding the store
exclusively all the while: a compaction killed at any moment leaves the store as it was (and a
stale ``STORE.compact``, which the next compaction removes).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from lookback_gui.core.duck import quote_identifier, quote_literal
from lookback_gui.core.errors import StoreError
from lookback_gui.core.store import Store
from lookback_gui.core.store.lock import WAIT_S, StoreLock, Waiting, disk_full, is_disk_full
from lookback_gui.core.store.schema import CURRENT_ORDER

# the tables whose rows a compaction must carry over, every one of them
TABLES = ("meta", "runs", "run_log", "versions", "current", "arrivals", "arrival_sums", "probes", "alerts")


@dataclass(frozen=True)
class MetricStats:
    """One metric's share of the store.

    Attributes:
        bytes: an estimate: the file's size shared out by the metric's rows (versions and
            current values).
    """

    metric: str
    runs: int
    failed_runs: int
    versions: int
    values: int
    revised_values: int
    first_bucket: datetime | None
    last_bucket: datetime | None
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "runs": self.runs,
            "failed_runs": self.failed_runs,
            "versions": self.versions,
            "values": self.values,
            "revised_values": self.revised_values,
            "first_bucket": _iso(self.first_bucket),
            "last_bucket": _iso(self.last_bucket),
            "bytes": self.bytes,
        }


@dataclass(frozen=True)
class StoreStats:
    """The whole store: its file, what is free in it, and every metric's part.

    Attributes:
        path: the store file, or a team store's catalog and data folder.
        bytes: the store file's size (with its write-ahead log, if any); a team store's data
            files.
        free_bytes: blocks of the file that hold nothing now (what compaction gives back);
            0 for a team store.
    """

    path: Path | str
    bytes: int
    free_bytes: int
    runs: int
    versions: int
    values: int
    metrics: tuple[MetricStats, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "bytes": self.bytes,
            "free_bytes": self.free_bytes,
            "runs": self.runs,
            "versions": self.versions,
            "values": self.values,
            "metrics": [m.to_json() for m in self.metrics],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _file_bytes(path: Path) -> int:
    wal = path.with_name(path.name + ".wal")
    return sum(p.stat().st_size for p in (path, wal) if p.exists())


def store_stats(store: Store) -> StoreStats:
    """Runs, versions, values and size of ``store``, by metric (set-based: one pass a table)."""
    with store.reading() as cur:
        cur.execute("BEGIN TRANSACTION")  # one snapshot
        size = (
            None
            if store.team
            else cur.execute(
                "SELECT block_size, free_blocks FROM pragma_database_size()"
                " WHERE database_name = current_database()"
            ).fetchone()
        )
        rows = cur.execute("""
            WITH r AS (SELECT metric, count(*) AS runs,
                              count(*) FILTER (WHERE status = 'failed') AS failed
                       FROM runs GROUP BY metric),
            v AS (SELECT metric, count(*) AS versions FROM versions GROUP BY metric),
            c AS (SELECT metric, count(*) AS n, count(*) FILTER (WHERE versions > 1) AS revised,
                         min(bucket) AS first, max(bucket) AS last
                  FROM current GROUP BY metric)
            SELECT metric, coalesce(r.runs, 0), coalesce(r.failed, 0), coalesce(v.versions, 0),
                   coalesce(c.n, 0), coalesce(c.revised, 0), c.first, c.last
            FROM r FULL JOIN v USING (metric) FULL JOIN c USING (metric)
            ORDER BY metric
        """).fetchall()
        cur.execute("COMMIT")
    total = store.data_bytes() if store.team else _file_bytes(store.path)
    free = int(size[0]) * int(size[1]) if size else 0
    shares = sum(int(r[3]) + int(r[4]) for r in rows) or 1
    metrics = tuple(
        MetricStats(
            metric=m,
            runs=int(runs),
            failed_runs=int(failed),
            versions=int(versions),
            values=int(values),
            revised_values=int(revised),
            first_bucket=first,
            last_bucket=last,
            bytes=round((total - free) * (int(versions) + int(values)) / shares),
        )
        for m, runs, failed, versions, values, revised, first, last in rows
    )
    return StoreStats(
        path=store.name if store.team else store.path,
        bytes=total,
        free_bytes=free,
        runs=sum(m.runs for m in metrics),
        versions=sum(m.versions for m in metrics),
        values=sum(m.values for m in metrics),
        metrics=metrics,
    )


@dataclass(frozen=True)
class Compaction:
    """What a compaction did: the store's size before and after, and the rows it carried
    over (the same before and after, table by table)."""

    before_bytes: int
    after_bytes: int
    rows: dict[str, int]


def _counts(con: duckdb.DuckDBPyConnection, database: str) -> dict[str, int]:
    counts = {}
    for table in TABLES:
        row = con.execute(f"SELECT count(*) FROM {quote_identifier(database)}.main.{table}").fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts


def compact_store(path: Path, *, waiting: Waiting | None = None, wait_s: float = WAIT_S) -> Compaction:
    """Rewrite the store at ``path`` into a fresh file holding exactly the same rows, and put
    it in place. The store is held exclusively from start to end: other processes wait (and
    give up after their own wait, naming this process)."""
    if not path.exists():
        raise StoreError(f"store {path} does not exist")
    with Store(path, waiting=waiting, wait_s=wait_s) as store:  # upgraded, runs of dead
        if store.read_only:  # processes marked
            raise StoreError(f"store {path} cannot be written: it cannot be compacted")
    fresh = path.with_name(path.name + ".compact")
    fresh_wal = fresh.with_name(fresh.name + ".wal")
    wal = path.with_name(path.name + ".wal")
    lock = StoreLock(path, wait_s=wait_s, waiting=waiting)
    try:
        lock.acquire(exclusive=True)
        for leftover in (fresh, fresh_wal):  # of a compaction that was stopped
            leftover.unlink(missing_ok=True)
        before = _file_bytes(path)
        rows = _copy_rows(path, fresh)
        if wal.exists() or fresh_wal.exists():
            raise StoreError(
                f"store {path}: a write-ahead log was left after closing; the store is unchanged"
            )
        _sync(fresh)
        os.replace(fresh, path)  # atomic: the old store or the new one, never half of one
        _sync(path.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            fresh.unlink(missing_ok=True)
            fresh_wal.unlink(missing_ok=True)
        if isinstance(exc, duckdb.Error | OSError) and is_disk_full(exc):
            raise disk_full(
                path,
                f"the compacted copy, which needs about "
                f"{_file_bytes(path) / 1e6:,.1f} MB beside the store; the store "
                "is unchanged",
            ) from None
        if isinstance(exc, duckdb.Error):
            raise StoreError(
                f"store {path}: the compaction failed, and the store is unchanged: "
                f"{' '.join(str(exc).split())}"
            ) from None
        raise
    finally:
        lock.close()
    return Compaction(before_bytes=before, after_bytes=_file_bytes(path), rows=rows)


def _copy_rows(path: Path, fresh: Path) -> dict[str, int]:
    """Copy every table of the store at ``path`` into the new file ``fresh``, and return the
    rows counted per table; raises when the copy does not hold the same rows."""
    con = duckdb.connect(str(path))
    try:
        con.execute("CHECKPOINT")
        row = con.execute("SELECT current_database()").fetchone()
        assert row is not None
        database = str(row[0])
        alias = "lookback_compacted_store"
        con.execute(f"ATTACH {quote_literal(str(fresh))} AS {alias}")
        try:
            source = quote_identifier(database)
            # the tables and sequences first, then the rows, ``current`` in its order
            # (the values a pull adds come after the others: this gathers them again)
            con.execute(f"COPY FROM DATABASE {source} TO {alias} (SCHEMA)")
            tables = [
                r[0]
                for r in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = ?"
                    " AND schema_name = 'main' ORDER BY table_name",
                    [database],
                ).fetchall()
            ]
            for table in tables:
                order = f" ORDER BY {CURRENT_ORDER}" if table == "current" else ""
                con.execute(
                    f"INSERT INTO {alias}.main.{quote_identifier(table)} SELECT *"
                    f" FROM {source}.main.{quote_identifier(table)}{order}"
                )
            rows = _counts(con, database)
            copied = _counts(con, alias)
            if copied != rows:
                raise StoreError(
                    f"store {path}: the compacted copy does not hold the same "
                    f"rows ({copied} against {rows}); the store is unchanged"
                )
        finally:
            con.execute(f"DETACH {alias}")
    finally:
        con.close()
    return rows


def _sync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk, where the system allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
