"""The store's one DuckDB connection: opening it, taking turns with other processes, and the
read and write transactions every part of the store goes through.

The file is open only while this process holds it (see :mod:`lookback_gui.core.store.lock`): it
is opened on first use, and closed and let go between two uses when another process waits for
it, so several processes take turns. :func:`open_connection` is the one place that opens it.

All writes go through one lock (one writer) and each is one transaction, so a write conflict can
never silently drop a run.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import duckdb
import psutil

from lookback_gui.core.errors import StoreBusyError, StoreError
from lookback_gui.core.failures import is_damage, store_trouble
from lookback_gui.core.store.lock import (
    WAIT_S,
    Lease,
    SchedulerLease,
    StoreLock,
    Waiting,
    disk_full,
    is_disk_full,
)

_LOCK_PID = re.compile(r"PID (\d+)")
CLOSE_WAIT_S = 30.0  # how long closing waits for a read under way before interrupting it


def process_started(pid: int) -> float | None:
    """When the process ``pid`` started (None: no such process)."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def writable(path: Path) -> bool:
    """Whether the store at ``path`` can be written (the file, or its folder for a new one)."""
    if path.exists():
        return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK)


def damaged(path: Path | str, message: str) -> StoreError:
    """The error for a store file DuckDB finds damaged."""
    return StoreError(
        f"store {path} is damaged ({message.splitlines()[0].strip()}); restore it from "
        "a backup, or move it aside to start an empty store (its runs and versions stay in "
        "the moved file)"
    )


def open_connection(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """The DuckDB connection of the store at ``path``; its failures as one clear StoreError."""
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        message = str(exc)
        trouble = store_trouble(exc)
        if trouble == "damaged":
            raise damaged(path, message) from None
        if trouble == "locked":
            match = _LOCK_PID.search(message)
            pid = int(match.group(1)) if match else None
            holder = f"PID {pid}" if pid else "another process"
            if pid:
                with contextlib.suppress(psutil.Error, OSError):
                    holder += f", {psutil.Process(pid).name()}"
            raise StoreBusyError(
                f"store {path} is in use by another process ({holder}); "
                "close it there or wait until it finishes",
                pid,
            ) from None
        if trouble == "not a database":
            raise StoreError(
                f"store {path} is not a DuckDB database file (damaged, or "
                "another kind of file); restore it from a backup, or move it "
                "aside to start an empty store"
            ) from None
        raise StoreError(f"store {path} cannot be opened: {message}") from None


class Database:
    """The store file of one project, shared with the project's other processes.

    What the parts of the store keep in memory about it is forgotten whenever it is opened
    again (another process may have written in between): each part registers a function for
    that with :meth:`on_reopen`.

    Attributes:
        path: the DuckDB file.
        read_only: opened for reading only (asked for, or the file cannot be written).
    """

    # the thread and cursor of a batch under way (see batch()); a team store has them too
    _batch: tuple[int, duckdb.DuckDBPyConnection] | None = None

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        waiting: Waiting | None = None,
        wait_s: float = WAIT_S,
    ):
        self.path = Path(path)
        self.read_only = read_only or not writable(self.path)
        self.write_lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._state = threading.Condition()
        self._users = 0
        self._inside = threading.local()
        self._let_go = False  # another process waits: close at the next idle moment
        self._closed = False
        self._forgetters: list[Callable[[], None]] = []
        self._watcher: threading.Thread | None = None
        if not self.read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"store {self.path}: cannot create its folder: {exc.strerror}") from None
        self._lock: StoreLock | None = None
        try:
            self._lock = StoreLock(self.path, wait_s=wait_s, waiting=waiting)
        except StoreError:
            if not self.read_only:
                raise

    team = False  # a local file (a team store is a TeamDatabase)

    @property
    def name(self) -> str:
        """The store's file, or a team store's catalog and data folder."""
        return str(self.path)

    @property
    def label(self) -> str:
        """The store as messages name it: "store FILE" or "team store CATALOG (data in ...)"."""
        return f"store {self.path}"

    def next_id(self, cur: duckdb.DuckDBPyConnection, sequence: str) -> int:
        """The next number of ``sequence`` (run_ids, commit_seqs), inside the write transaction
        ``cur``."""
        row = cur.execute(f"SELECT nextval('{sequence}')").fetchone()
        assert row is not None
        return int(row[0])

    def continue_numbering(self, cur: duckdb.DuckDBPyConnection, sequence: str, used: int) -> None:
        """Make ``sequence`` hand out only numbers above ``used`` (after rows were copied in);
        DuckDB cannot move a sequence, so it is made again."""
        row = cur.execute(
            "SELECT last_value FROM duckdb_sequences() WHERE sequence_name = ? "
            "AND database_name = current_database()",
            [sequence],
        ).fetchone()
        last = int(row[0]) if row and row[0] is not None else 0
        if used > last:
            cur.execute(f"DROP SEQUENCE {sequence}")
            cur.execute(f"CREATE SEQUENCE {sequence} START {used + 1}")

    def process_alive(self, pid: int | None, started: float | None) -> bool:
        """Whether the process that started a run (its PID and start time) still runs."""
        alive = process_started(pid) if pid else None
        return alive is not None and started is not None and abs(alive - started) < 1e-3

    def scheduler_lease(self) -> Lease:
        """The right to run the project's scheduler (one process at a time)."""
        return SchedulerLease(self.path)

    def on_reopen(self, forget: Callable[[], None]) -> None:
        """Call ``forget`` whenever the file is opened again."""
        self._forgetters.append(forget)

    def start_watching(self) -> None:
        """Make way for another process that waits for the store, from now on."""
        self._watcher = threading.Thread(target=self._watch, name="store-watch", daemon=True)
        self._watcher.start()

    # -- taking turns -------------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The open store for one use by the calling thread (uses may nest)."""
        depth = getattr(self._inside, "depth", 0)
        with self._state:
            while self._let_go and depth == 0 and not self._closed:  # let the waiting process have its turn
                self._state.wait(0.05)
                if self._users == 0:
                    self._hand_over()
            if self._closed and depth == 0:  # a use under way may finish what it does
                raise StoreError(f"store {self.path} is closed")
            if self._con is None:
                if self._lock is not None:
                    self._lock.acquire(exclusive=not self.read_only)
                try:
                    self._con = open_connection(self.path, self.read_only)
                except BaseException:
                    if self._lock is not None:
                        self._lock.release()
                    raise
                for forget in self._forgetters:
                    forget()
            self._users += 1
            con = self._con
        self._inside.depth = depth + 1
        try:
            yield con
        finally:
            self._inside.depth = depth
            with self._state:
                self._users -= 1
                if self._users == 0 and self._let_go:
                    self._hand_over()
                self._state.notify_all()

    def _hand_over(self) -> None:
        """Close the store and let go of it (with ``_state`` held, no use running)."""
        if self._con is not None:
            with contextlib.suppress(duckdb.Error):
                self._con.close()
            self._con = None
        if self._lock is not None:
            self._lock.release()
        self._let_go = False
        self._state.notify_all()

    def _watch(self) -> None:
        """Notice another process waiting for the store, and make way for it."""
        while True:
            time.sleep(0.1)
            with self._state:
                if self._closed:
                    return
                if self._con is None or self._lock is None or self._let_go:
                    continue
            if not self._lock.others_waiting():
                continue
            with self._state:
                if self._con is None or self._closed:
                    continue
                if self._users == 0:
                    self._hand_over()
                else:
                    self._let_go = True

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Close the store once the reads and writes under way in other threads are done.

        From now on a new read or write fails with "store ... is closed"; one under way runs
        to its end (for at most ``wait_s`` seconds, then it is interrupted and fails with that
        error too). The watcher thread has ended when this returns."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            self._state.notify_all()
        with self._state:  # a write under way is a use too: it commits (or rolls back) first
            own = getattr(self._inside, "depth", 0)  # uses of the calling thread itself
            deadline = time.monotonic() + wait_s
            while self._users > own:
                left = deadline - time.monotonic()
                if left <= 0 and self._con is not None:
                    with contextlib.suppress(duckdb.Error):
                        self._con.interrupt()
                    deadline = time.monotonic() + wait_s
                self._state.wait(max(0.01, min(left, 0.5)))
            if self._con is not None:
                with contextlib.suppress(duckdb.Error):
                    self._con.close()
                self._con = None
            if self._lock is not None:
                self._lock.close()
            self._state.notify_all()
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join()

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of the open store for the calling thread, for the length of the block."""
        batch = self._batch
        if batch is not None and batch[0] == threading.get_ident():
            yield batch[1]  # inside a batch, a read sees what the batch wrote
            return
        with self._connection() as con:
            cur = con.cursor()
            try:
                yield cur
            except duckdb.Error as exc:
                if is_damage(exc) and not self.team:  # said as what it is, wherever it shows
                    raise damaged(self.path, str(exc)) from None
                raise
            finally:
                cur.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One write transaction for every write and read of the calling thread inside the
        block: what they wrote commits at its end, all of it, or none of it on an exception.
        For a store being built (a demo seeded), where a transaction per write would cost
        most of the time."""
        with self.write() as cur:
            self._batch = (threading.get_ident(), cur)
            try:
                yield
            finally:
                self._batch = None

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction, the only way anything is written (inside :meth:`batch`,
        a part of the batch's)."""
        batch = self._batch
        if batch is not None and batch[0] == threading.get_ident():
            yield batch[1]
            return
        if self.read_only:
            raise StoreError(f"{self.label} is open for reading only")
        with self.write_lock, self.writers_turn(), self.reading() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
                self.check_before_commit()
            except BaseException as exc:
                with contextlib.suppress(duckdb.Error):  # the first error is the one to tell
                    cur.execute("ROLLBACK")
                if isinstance(exc, duckdb.Error | OSError) and is_disk_full(exc) and not self.team:
                    raise disk_full(self.path, "a write; nothing was written") from None
                if isinstance(exc, duckdb.IOException):  # data files out of reach: not a bug
                    raise StoreError(f"{self.label}: a write failed: {' '.join(str(exc).split())}") from None
                raise
            try:
                cur.execute("COMMIT")
            except duckdb.Error as exc:
                if is_disk_full(exc) and not self.team:
                    raise disk_full(self.path, "a write; nothing was written") from None
                if is_damage(exc) and not self.team:
                    raise damaged(self.path, str(exc)) from None
                raise self.commit_failed(exc) from None

    def writers_turn(self) -> AbstractContextManager[object]:
        """Held for a whole write: other processes' writers wait meanwhile. A local store's
        file is already held by this process alone while it is open for writing."""
        return contextlib.nullcontext()

    def check_before_commit(self) -> None:
        """Raise to roll a write back instead of committing it (a local store never does)."""

    def commit_failed(self, exc: duckdb.Error) -> StoreError:
        """The error of a COMMIT that failed."""
        return StoreError(f"{self.label}: a write failed: {' '.join(str(exc).split())}")

    def read(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """All rows of one query."""
        with self.reading() as cur:
            try:
                return cur.execute(sql, params).fetchall()
            except duckdb.Error as exc:
                if is_damage(exc):
                    raise damaged(self.path, str(exc)) from None
                raise
