"""The team store's connection: a DuckLake attached to an in-memory DuckDB, its catalog in
PostgreSQL (see :mod:`lookback_gui.core.teamstore`).

It stands in for :class:`~lookback_gui.core.store.database.Database`: the parts of the store run
the same SQL on it. What differs is underneath: the connection stays open (DuckLake gives each
transaction a snapshot, so readers never wait), writers take turns through the catalog's
advisory lock, ids come from the catalog's sequences, and what the parts keep in memory is
forgotten whenever another process has committed since.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import duckdb

from lookback_gui.core.errors import StoreError
from lookback_gui.core.store.database import Database
from lookback_gui.core.storeconfig import StoreConfig
from lookback_gui.core.storelock import WAIT_S, Waiting
from lookback_gui.core.teamstore import LAKE, Catalog, CatalogLease, attach

_SEQUENCES = {"run_ids": "lookback_run_ids", "commit_seqs": "lookback_commit_seqs"}
CHECK_S = 0.5  # how often a reader asks whether another process has committed


@dataclass(frozen=True)
class Compacted:
    """The team store's data files before and after a compaction."""

    before: int
    after: int


class TeamDatabase(Database):
    """A team store shared with every member's processes.

    Attributes:
        config: the ``[store]`` table it was opened from.
        read_only: opened for reading only.
    """

    team = True

    def __init__(self, config: StoreConfig, *, read_only: bool = False,
                 waiting: Waiting | None = None, wait_s: float = WAIT_S):
        # the base class's file, lock files and watcher are a local store's: none of them here
        self.config = config
        self.path = None  # type: ignore[assignment]
        self.read_only = read_only
        self.write_lock = threading.RLock()
        self._forgetters = []
        self._closed = False
        self._state = threading.Condition()
        self._catalog = Catalog(config, wait_s=wait_s, waiting=waiting)
        try:
            self._lake = duckdb.connect()
            with self._catalog.creating():
                if not read_only:
                    self._catalog.prepare()
                attach(self._lake, config, self._catalog.password, read_only=read_only)
        except BaseException:
            self._catalog.close()
            raise
        self._snapshot = self._catalog.snapshot()
        self._checked = time.monotonic()

    @property
    def name(self) -> str:
        return f"{self.config.catalog} (data in {self.config.data_path})"

    @property
    def label(self) -> str:
        return self.config.describe()

    def start_watching(self) -> None:
        """Nothing to watch: readers never hold the team store."""

    def next_id(self, cur: duckdb.DuckDBPyConnection, sequence: str) -> int:
        return self._catalog.next_id(_SEQUENCES[sequence])

    def continue_numbering(self, cur: duckdb.DuckDBPyConnection, sequence: str,
                           used: int) -> None:
        self._catalog.move_past(_SEQUENCES[sequence], used)

    def process_alive(self, pid: int | None, started: float | None) -> bool:
        """Whether the process of a running run still has a session with the catalog (it may
        run on another machine: any session named after its PID counts)."""
        return pid is not None and self._catalog.session_of(pid)

    def scheduler_lease(self) -> CatalogLease:
        return CatalogLease(self.config)

    # -- the connection -------------------------------------------------------------------

    def _others_committed(self) -> None:
        """Forget what the parts keep in memory when another process has committed."""
        now = time.monotonic()
        if now - self._checked < CHECK_S:
            return
        self._checked = now
        snapshot = self._catalog.snapshot()
        if snapshot != self._snapshot:
            self._snapshot = snapshot
            for forget in self._forgetters:
                forget()

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of the team store for the calling thread, for the length of the block."""
        with self._state:
            if self._closed:
                raise StoreError(f"{self.label} is closed")
            cur = self._lake.cursor()
        try:
            cur.execute(f"USE {LAKE}")
            self._others_committed()
            yield cur
        finally:
            cur.close()

    def writers_turn(self) -> AbstractContextManager[object]:
        """The catalog's write lock, held from a write's first read to its commit."""
        return self._catalog.writing()

    def check_before_commit(self) -> None:
        """The write lock went with a lost catalog session: roll back."""
        self._catalog.still_writing()

    def close(self) -> None:
        with self.write_lock, self._state:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(duckdb.Error):
                self._lake.close()
            self._catalog.close()

    # -- housekeeping ---------------------------------------------------------------------

    def data_bytes(self) -> int:
        """The size of the team store's data files (what the catalog holds is not counted)."""
        rows = self.read("SELECT coalesce(sum(file_size_bytes + delete_file_size_bytes), 0) "
                         f"FROM ducklake_table_info('{LAKE}')")
        return int(rows[0][0]) if rows else 0

    def _files(self, cur: duckdb.DuckDBPyConnection) -> int:
        row = cur.execute("SELECT coalesce(sum(file_count + delete_file_count), 0) "
                          f"FROM ducklake_table_info('{LAKE}')").fetchone()
        return int(row[0]) if row else 0

    def compact(self) -> Compacted:
        """Merge the small data files that many commits leave into few (with the rows that
        later commits deleted left out), and delete the files no snapshot of the last hour
        needs. Every run and version stays."""
        if self.read_only:
            raise StoreError(f"{self.label} is open for reading only")
        with self.write_lock, self._catalog.writing(), self.reading() as cur:
            # rows small commits kept in the catalog go to data files first, so that both
            # counts are of the same rows
            cur.execute(f"CALL ducklake_flush_inlined_data('{LAKE}')")
            before = self._files(cur)
            cur.execute(f"CALL ducklake_rewrite_data_files('{LAKE}', delete_threshold => 0.0)")
            cur.execute(f"CALL ducklake_merge_adjacent_files('{LAKE}')")
            cur.execute(f"SELECT count(*) FROM ducklake_expire_snapshots('{LAKE}', "
                        "older_than => now() - INTERVAL 1 HOUR)").fetchall()
            cur.execute(f"SELECT count(*) FROM ducklake_cleanup_old_files('{LAKE}', "
                        "cleanup_all => true)").fetchall()
            return Compacted(before=before, after=self._files(cur))
