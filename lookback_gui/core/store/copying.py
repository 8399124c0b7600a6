"""``lookback store copy``: every run, log line, version, probe and alert state of one store
into another, empty one (a local file into a team store, or back).

The rows travel as Parquet files in a private folder: one consistent snapshot of the source is
written out, then read into the target in one write transaction, so the target holds all of it
or, when anything fails, nothing. Run ids, commit order and known times are kept as they are;
the target's own numbering then continues after them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lookback_gui.core.duck import quote_literal
from lookback_gui.core.errors import StoreError, UsageError
from lookback_gui.core.store import Store

# the tables a copy carries, in the order they are written (meta stays: each store has its own)
COPIED = ("runs", "run_log", "versions", "current", "arrivals", "arrival_sums", "probes", "alerts")


@dataclass(frozen=True)
class Copied:
    """What a copy carried, table by table (the same counts in the source and the target)."""

    rows: dict[str, int]

    @property
    def runs(self) -> int:
        return self.rows["runs"]

    @property
    def versions(self) -> int:
        return self.rows["versions"]


def _counts(store: Store) -> dict[str, int]:
    with store.reading() as cur:
        cur.execute("BEGIN TRANSACTION")
        try:
            counts = {}
            for table in COPIED:
                row = cur.execute(f"SELECT count(*) FROM {table}").fetchone()
                counts[table] = int(row[0]) if row else 0
        finally:
            cur.execute("COMMIT")
    return counts


def copy_store(source: Store, target: Store, progress: Callable[[str], None] | None = None) -> Copied:
    """Copy everything ``source`` holds into ``target``, which must hold no run yet.

    Raises UsageError when the target is not empty or when a run is still running in the
    source (its end would be recorded in the source only), StoreError when a store cannot be
    read or written; the target is left as it was.
    """
    if target.read_only:
        raise StoreError(f"{target.label} is open for reading only: nothing can be copied into it")
    if source.name == target.name:
        raise UsageError(f"{source.label}: the source and the target are the same store")
    held = _counts(target)["runs"]
    if held:
        raise UsageError(
            f"{target.label} already holds {held:,} runs; a copy fills an "
            "empty store only (point the other project file at a new store)"
        )
    with tempfile.TemporaryDirectory(prefix="lookback-copy-") as folder:
        files = {table: str(Path(folder) / f"{table}.parquet") for table in COPIED}
        rows: dict[str, int] = {}
        with source.reading() as cur:
            cur.execute("BEGIN TRANSACTION")  # one snapshot of every table
            try:
                running = cur.execute("SELECT min(id) FROM runs WHERE status = 'running'").fetchone()
                if running and running[0] is not None:
                    raise UsageError(
                        f"run {running[0]} is still running in "
                        f"{source.label}; copy the store when it has finished"
                    )
                for table in COPIED:
                    if progress is not None:
                        progress(f"reading {table} from {source.name}")
                    cur.execute(
                        f"COPY (SELECT * FROM {table}) TO {quote_literal(files[table])} (FORMAT parquet)"
                    )
                    row = cur.execute(
                        f"SELECT count(*) FROM read_parquet({quote_literal(files[table])})"
                    ).fetchone()
                    rows[table] = int(row[0]) if row else 0
                top = cur.execute(
                    "SELECT coalesce(max(id), 0), coalesce(max(commit_seq), 0) FROM runs"
                ).fetchone()
            finally:
                cur.execute("COMMIT")
        assert top is not None
        with target.writing() as cur:
            for table in COPIED:
                if progress is not None:
                    progress(f"writing {rows[table]:,} rows of {table} into {target.name}")
                cur.execute(
                    f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet({quote_literal(files[table])})"
                )
            target.continue_numbering(cur, int(top[0]), int(top[1]))
    copied = _counts(target)
    if copied != rows:
        raise StoreError(f"{target.label}: the copy holds {copied} rows where the source held {rows}")
    return Copied(rows=rows)
