"""Several processes, one store: who may have the store file open, and who runs the scheduler.

DuckDB lets one process open a database file for writing, or several for reading, never both;
and its own lock is a POSIX record lock, which the system drops as soon as the process closes
*any* descriptor of the file (a file dialog that peeks at it is enough). So the processes of a
project agree beforehand, through lock files beside the store that are held with ``flock`` (a
lock of the open file, which no other descriptor can drop):

- ``STORE.lock``: held exclusively by the process that has the store open for writing, shared
  by processes that have it open read-only. The writer notes its PID and program in the file,
  so that a process that waits can say who it waits for.
- ``STORE.want``: a process that waits for ``STORE.lock`` holds this one shared. A holder checks
  it a few times a second and, when someone waits, closes the store at its next idle moment and
  lets go, then opens it again when it needs it. Writers take turns; a reader gets its answer
  while a pull runs (between the pull's writes).
- ``STORE.scheduler``: held exclusively by the one process that runs the project's scheduler.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

import portalocker
import psutil

from lookback_gui.core.errors import StoreBusyError, StoreError

WAIT_S = 60.0  # how long a process waits for the store before it gives up
SAY_AFTER_S = 1.5  # when a wait is worth a message
POLL_S = 0.02

Waiting = Callable[[str], None]


_PROGRAMS = {
    "lookback": "lookback",
    "lookback-gui": "lookback-gui",
    "lookback_gui.cli": "lookback",
    "lookback_gui.ui.app": "lookback-gui",
}


def _program(pid: int) -> str:
    """The program a process runs: lookback, lookback-gui, or its executable's name."""
    with contextlib.suppress(psutil.Error, OSError):
        process = psutil.Process(pid)
        for part in process.cmdline()[:4]:
            name = _PROGRAMS.get(Path(part).name) or _PROGRAMS.get(part)
            if name:
                return name
        return process.name()
    return "another process"


def _holder(handle: IO[str]) -> tuple[int | None, str]:
    """(PID, a few words) of the process that noted itself in a lock file."""
    with contextlib.suppress(OSError, ValueError):
        handle.seek(0)
        text = handle.read().strip()
        if text:
            pid = int(text.split()[0])
            return pid, f"PID {pid}, {_program(pid)}"
    return None, "another process"


def _try(handle: IO[str], flags: portalocker.LockFlags) -> bool:
    try:
        portalocker.lock(handle, flags | portalocker.LockFlags.NON_BLOCKING)
    except portalocker.exceptions.LockException:
        return False
    return True


FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left (or the user's quota is used up)


def disk_full(store: Path, what: str) -> StoreError:
    """The error for a store that cannot be written because its disk is full."""
    return StoreError(
        f"store {store}: the disk holding {store.parent} is full (no space left "
        f"for {what}); free some space there and try again"
    )


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (an OSError, or DuckDB's message for one) says the disk is full."""
    if isinstance(exc, OSError) and exc.errno in FULL:
        return True
    text = str(exc).lower()
    return "no space left on device" in text or "disk quota exceeded" in text


def _open(path: Path) -> IO[str]:
    try:
        return open(path, "a+", encoding="utf-8")  # held as long as its lock
    except OSError as first:
        try:
            return open(path, encoding="utf-8")
        except OSError as exc:
            store = path.with_suffix("")
            if first.errno in FULL:
                raise disk_full(store, f"its lock file {path.name}") from None
            raise StoreError(f"store {store}: cannot open its lock file {path}: {exc.strerror}") from None


def _note_pid(handle: IO[str]) -> None:
    """Write this process's PID into a lock file, unbuffered: on a full disk the note is left
    out (it only names the holder in messages) and nothing is left to flush at close."""
    with contextlib.suppress(OSError):
        os.ftruncate(handle.fileno(), 0)
        os.pwrite(handle.fileno(), f"{os.getpid()}\n".encode(), 0)


def _close(handle: IO[str]) -> None:
    with contextlib.suppress(OSError):
        handle.close()


def wait_until(
    take: Callable[[], bool],
    *,
    wait_s: float,
    poll_s: float,
    busy: Callable[[], StoreBusyError],
    waiting: Waiting | None,
    saying: Callable[[], str],
) -> None:
    """Try ``take`` until it succeeds: after :data:`SAY_AFTER_S` seconds tell ``waiting`` once
    what is awaited (``saying``), and after ``wait_s`` seconds give up with ``busy()``. The one
    loop of every wait for a store: its lock file here, the team store's catalog locks."""
    started = time.monotonic()
    said = False
    while not take():
        waited = time.monotonic() - started
        if waited >= wait_s:
            raise busy()
        if not said and waited >= SAY_AFTER_S and waiting is not None:
            said = True
            waiting(saying())
        time.sleep(poll_s)


class StoreLock:
    """The hold of one process on a store file.

    Attributes:
        path: the store file.
        held: None, "shared" or "exclusive".
    """

    def __init__(self, path: Path, *, wait_s: float = WAIT_S, waiting: Waiting | None = None):
        self.path = path
        self.wait_s = wait_s
        self.waiting = waiting
        self.held: str | None = None
        self._hold = _open(path.with_name(path.name + ".lock"))
        try:
            self._want = _open(path.with_name(path.name + ".want"))
        except StoreError:
            _close(self._hold)
            raise

    def acquire(self, exclusive: bool) -> None:
        """Take the store; wait (saying so after a moment) while another process has it.

        Raises StoreBusyError naming the holder when the wait lasts longer than ``wait_s``.
        """
        flags = portalocker.LockFlags.EXCLUSIVE if exclusive else portalocker.LockFlags.SHARED
        if not _try(self._hold, flags):
            self._wait_for(flags)
        self.held = "exclusive" if exclusive else "shared"
        if exclusive:
            _note_pid(self._hold)

    def _wait_for(self, flags: portalocker.LockFlags) -> None:
        registered = _try(self._want, portalocker.LockFlags.SHARED)

        def take() -> bool:
            nonlocal registered
            if _try(self._hold, flags):
                return True
            if not registered:
                registered = _try(self._want, portalocker.LockFlags.SHARED)
            return False

        def busy() -> StoreBusyError:
            pid, who = _holder(self._hold)
            return StoreBusyError(
                f"store {self.path} is in use by another process ({who}) and was not "
                f"free after {self.wait_s:.0f} s; try again when it has finished",
                pid,
            )

        try:
            wait_until(
                take,
                wait_s=self.wait_s,
                poll_s=POLL_S,
                busy=busy,
                waiting=self.waiting,
                saying=lambda: f"waiting for store {self.path}: in use by {_holder(self._hold)[1]}",
            )
        finally:
            if registered:
                portalocker.unlock(self._want)

    def others_waiting(self) -> bool:
        """Whether another process waits for the store."""
        if not _try(self._want, portalocker.LockFlags.EXCLUSIVE):
            return True
        portalocker.unlock(self._want)
        return False

    def release(self) -> None:
        if self.held is not None:
            portalocker.unlock(self._hold)
            self.held = None

    def close(self) -> None:
        self.release()
        _close(self._hold)
        _close(self._want)


class Lease(Protocol):
    """The right to run a project's scheduler, held by one process at a time."""

    def take(self) -> None:
        """Take it, or raise StoreBusyError naming the process that has it."""

    def give_back(self) -> None: ...


class SchedulerLease:
    """The right to run a project's scheduler: one process at a time."""

    def __init__(self, store: Path):
        self.path = store.with_name(store.name + ".scheduler")
        self._handle: IO[str] | None = None

    def take(self) -> None:
        """Take the lease, or raise StoreBusyError naming the process that has it."""
        handle = _open(self.path)
        if not _try(handle, portalocker.LockFlags.EXCLUSIVE):
            pid, who = _holder(handle)
            handle.close()
            raise StoreBusyError(
                f"the scheduler of {self.path.with_suffix('')} already runs in another process ({who})", pid
            )
        _note_pid(handle)
        self._handle = handle

    def give_back(self) -> None:
        if self._handle is not None:
            portalocker.unlock(self._handle)
            _close(self._handle)
            self._handle = None
