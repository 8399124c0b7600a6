"""The team store's connection: a DuckLake attached to an in-memory DuckDB, its catalog in
PostgreSQL (see :mod:`lookback_gui.core.store.catalog`).

It stands in for :class:`~lookback_gui.core.store.database.Database`: the parts of the store run
the same SQL on it. What differs is underneath: the connection stays open (DuckLake gives each
transaction a snapshot, so readers never wait), writers take turns through the catalog's
advisory lock, ids come from the catalog's sequences, and what the parts keep in memory is
forgotten whenever another process has committed since. A failure underneath (the catalog's
sessions dropped, a commit that raced another) leaves a block as a one-line
:class:`~lookback_gui.core.errors.StoreError`; a DuckDB that gave up on the store after such a
failure is replaced at the next use.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import duckdb

from lookback_gui.core.errors import StoreError
from lookback_gui.core.storage.store_config import StoreConfig
from lookback_gui.core.store.catalog import LAKE, Catalog, CatalogLease, attach, lake_failure
from lookback_gui.core.store.database import CLOSE_WAIT_S, Database
from lookback_gui.core.store.lock import WAIT_S, Waiting

_SEQUENCES = {"run_ids": "lookback_run_ids", "commit_seqs": "lookback_commit_seqs"}
CHECK_S = 0.5  # how often a reader asks whether another process has committed


def _keep_forever(con: duckdb.DuckDBPyConnection) -> None:
    """Never close or free ``con``: DuckDB aborts the whole process when a connection of a
    database it invalidated after a fatal error is closed with a transaction open. Such a
    connection is rare (the catalog's sessions dropped in the middle of a commit) and small."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(con))


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

    def __init__(
        self,
        config: StoreConfig,
        *,
        read_only: bool = False,
        waiting: Waiting | None = None,
        wait_s: float = WAIT_S,
    ):
        # the base class's file, lock files and watcher are a local store's: none of them here
        self.config = config
        self.path = None  # type: ignore[assignment]
        self.read_only = read_only
        self.write_lock = threading.RLock()
        self._forgetters = []
        self._closed = False
        self._state = threading.Condition()
        self._users = 0  # blocks of reads and writes under way (close waits for them)
        self._inside = threading.local()
        self._watcher = None  # a local store's; a team store learns of commits in its reads
        self._catalog = Catalog(config, wait_s=wait_s, waiting=waiting)
        self._broken = False  # DuckDB gave up on the store: connect again at the next use
        try:
            with self._catalog.creating():
                if not read_only:
                    self._catalog.prepare()
                self._lake = self._connect()
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

    def continue_numbering(self, cur: duckdb.DuckDBPyConnection, sequence: str, used: int) -> None:
        self._catalog.move_past(_SEQUENCES[sequence], used)

    def process_alive(self, pid: int | None, started: float | None) -> bool:
        """Whether the process of a running run still has a session with the catalog (it may
        run on another machine: any session named after its PID counts)."""
        return pid is not None and self._catalog.session_of(pid)

    def scheduler_lease(self) -> CatalogLease:
        return CatalogLease(self.config)

    # -- the connection -------------------------------------------------------------------

    def _connect(self) -> duckdb.DuckDBPyConnection:
        lake = duckdb.connect()
        try:
            attach(lake, self.config, self._catalog.password, read_only=self.read_only)
        except BaseException:
            lake.close()
            raise
        return lake

    def _failed(self, exc: BaseException) -> StoreError | None:
        """What a failure of DuckDB in a block on the store stands for (None: not the store's
        failure); remembers a DuckDB that gave up on the store."""
        if isinstance(exc, duckdb.FatalException | duckdb.InternalException):
            with self._state:
                self._broken = True
        return lake_failure(self.config, exc)

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
        depth = getattr(self._inside, "depth", 0)
        with self._state:
            if self._closed and depth == 0:  # a use under way may finish what it does
                raise StoreError(f"{self.label} is closed")
            if self._broken:
                _keep_forever(self._lake)
                self._lake = self._connect()
                self._broken = False
            lake = self._lake
            cur = lake.cursor()
            self._users += 1
        self._inside.depth = depth + 1
        failed = False
        try:
            cur.execute(f"USE {LAKE}")
            self._others_committed()
            yield cur
        except duckdb.Error as exc:
            failed = True
            said = self._failed(exc)
            if said is None:
                raise
            raise said from None
        except BaseException:
            failed = True
            raise
        finally:
            self._end_block(lake, cur, failed)
            self._inside.depth = depth
            with self._state:
                self._users -= 1
                self._state.notify_all()

    def _end_block(
        self, lake: duckdb.DuckDBPyConnection, cur: duckdb.DuckDBPyConnection, failed: bool
    ) -> None:
        """Close a block's cursor, unless its database was invalidated (by a failure in this
        block or another: DuckDB may say so only to the next statement)."""
        if failed or lake is not self._lake:
            try:
                cur.execute("SELECT 1")
            except duckdb.Error as exc:
                if isinstance(exc, duckdb.FatalException) or "invalidated" in str(exc):
                    with self._state:
                        if lake is self._lake:
                            self._broken = True
                    _keep_forever(cur)
                    return
            if lake is not self._lake:
                _keep_forever(cur)  # the database it belonged to gave up earlier
                return
        with contextlib.suppress(duckdb.Error):
            cur.close()

    def writers_turn(self) -> AbstractContextManager[object]:
        """The catalog's write lock, held from a write's first read to its commit."""
        return self._catalog.writing()

    def check_before_commit(self) -> None:
        """The write lock went with a lost catalog session: roll back."""
        self._catalog.still_writing()

    def commit_failed(self, exc: duckdb.Error) -> StoreError:
        """A lost catalog session or a conflict with another process's commit can be tried
        again; anything else is told as it came."""
        return self._failed(exc) or super().commit_failed(exc)

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Close the team store once the reads and writes under way are done (see
        :meth:`Database.close`)."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            own = getattr(self._inside, "depth", 0)
            deadline = time.monotonic() + wait_s
            while self._users > own:
                left = deadline - time.monotonic()
                if left <= 0:
                    with contextlib.suppress(duckdb.Error):
                        self._lake.interrupt()
                    deadline = time.monotonic() + wait_s
                self._state.wait(max(0.01, min(left, 0.5)))
            if self._broken:
                _keep_forever(self._lake)
            else:
                with contextlib.suppress(duckdb.Error):
                    self._lake.close()
            self._catalog.close()

    # -- housekeeping ---------------------------------------------------------------------

    def data_bytes(self) -> int:
        """The size of the team store's data files (what the catalog holds is not counted)."""
        rows = self.read(
            "SELECT coalesce(sum(file_size_bytes + delete_file_size_bytes), 0) "
            f"FROM ducklake_table_info('{LAKE}')"
        )
        return int(rows[0][0]) if rows else 0

    def _files(self, cur: duckdb.DuckDBPyConnection) -> int:
        row = cur.execute(
            f"SELECT coalesce(sum(file_count + delete_file_count), 0) FROM ducklake_table_info('{LAKE}')"
        ).fetchone()
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
            cur.execute(
                f"SELECT count(*) FROM ducklake_expire_snapshots('{LAKE}', "
                "older_than => now() - INTERVAL 1 HOUR)"
            ).fetchall()
            cur.execute(
                f"SELECT count(*) FROM ducklake_cleanup_old_files('{LAKE}', cleanup_all => true)"
            ).fetchall()
            return Compacted(before=before, after=self._files(cur))
