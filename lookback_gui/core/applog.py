"""The log file: a record of every unexpected error, from every thread, and of native crashes.

The desktop app and ``lookback schedule`` call :func:`enable_logging` once at their entry point
(never on import). From then on the process writes to a rotating log file in the platform's log
folder (``platformdirs.user_log_dir``; on Linux ``$XDG_STATE_HOME/lookback-gui/log``):

- every record of level INFO and above from the ``lookback_gui`` loggers, and WARNING and above
  from the libraries (APScheduler logs a job that raised with its traceback);
- every exception nobody caught, on the main thread (``sys.excepthook``) and on any other
  (``threading.excepthook``), with its traceback;
- the Python stacks of every thread when the process dies of a fatal signal (``faulthandler``
  writes them into the same file, also after the file was rotated).

Code that catches an error it did not expect logs it with :func:`log_unexpected`, which gives
back the one line a user sees, naming the log file where the traceback is.
"""

from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import platformdirs

APP_NAME = "lookback-gui"
LOG_FILE = "lookback-gui.log"
MAX_BYTES = 2_000_000
BACKUPS = 4
FORMAT = "%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"

log = logging.getLogger("lookback_gui")

_lock = threading.Lock()
_handler: _RotatingLog | None = None
_faulthandler_before = False


def log_dir() -> Path:
    """The folder the log file is in (the platform's log folder for this app)."""
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def log_file() -> Path | None:
    """The log file this process writes, or None before :func:`enable_logging`."""
    handler = _handler
    return Path(handler.baseFilename) if handler is not None else None


class _RotatingLog(logging.handlers.RotatingFileHandler):
    """A rotating log file that faulthandler writes into too, also after a rotation."""

    def doRollover(self) -> None:
        super().doRollover()
        if self.stream is not None:
            faulthandler.enable(file=self.stream, all_threads=True)

    def shouldRollover(self, record: logging.LogRecord) -> int:
        try:
            return super().shouldRollover(record)
        except (OSError, ValueError):  # the file went away: the next emit opens it again
            return 0


def enable_logging(folder: Path | None = None) -> Path:
    """Write the process's log into ``folder`` (default :func:`log_dir`) from now on; install
    the exception hooks and faulthandler. Calling it again changes nothing. Returns the log
    file's path."""
    global _handler, _faulthandler_before
    with _lock:
        if _handler is not None:
            return Path(_handler.baseFilename)
        target = folder or log_dir()
        target.mkdir(parents=True, exist_ok=True)
        handler = _RotatingLog(target / LOG_FILE, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.setLevel(logging.INFO)
        root = logging.getLogger()
        root.addHandler(handler)
        if root.level > logging.WARNING or root.level == logging.NOTSET:
            root.setLevel(logging.WARNING)
        if log.level == logging.NOTSET or log.level > logging.INFO:
            log.setLevel(logging.INFO)
        assert handler.stream is not None
        _faulthandler_before = faulthandler.is_enabled()
        faulthandler.enable(file=handler.stream, all_threads=True)
        _install_hooks()
        _handler = handler
        log.info("log opened by %s (Python %s)", " ".join(sys.argv[:1]) or "python", sys.version.split()[0])
        return Path(handler.baseFilename)


def disable_logging() -> None:
    """Stop writing the log file (the hooks stay but log nothing more); faulthandler goes
    back to stderr if it wrote there before."""
    global _handler
    with _lock:
        handler, _handler = _handler, None
        if handler is None:
            return
        faulthandler.disable()
        if _faulthandler_before:  # as it was: onto stderr
            faulthandler.enable(all_threads=True)
        logging.getLogger().removeHandler(handler)
        handler.close()


def _install_hooks() -> None:
    """Log what nobody caught, then let the hooks that were there before say it as usual."""
    global _previous_sys, _previous_thread
    if sys.excepthook is not _sys_hook:
        _previous_sys, sys.excepthook = sys.excepthook, _sys_hook
    if threading.excepthook is not _thread_hook:
        _previous_thread, threading.excepthook = threading.excepthook, _thread_hook


def _sys_hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    if _handler is not None and not issubclass(kind, KeyboardInterrupt):
        log.critical("uncaught %s on the main thread", kind.__name__, exc_info=(kind, value, tb))
    _previous_sys(kind, value, tb)


def _thread_hook(args: Any) -> None:
    if _handler is not None and args.exc_type is not SystemExit:
        name = args.thread.name if args.thread is not None else "a thread"
        log.critical(
            "uncaught %s in thread %s",
            args.exc_type.__name__,
            name,
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )
    _previous_thread(args)


_previous_sys = sys.excepthook
_previous_thread = threading.excepthook


def where_details_are() -> str:
    """Where the traceback of an unexpected error can be read, for the line a user sees."""
    path = log_file()
    return f"details in {path}" if path is not None else "no log file is kept by this process"


def log_unexpected(what: str, exc: BaseException) -> str:
    """Log ``exc`` (an error no code expected) with its traceback; return the one line a user
    sees: what failed, the error, and where the details are."""
    log.error("%s: unexpected %s", what, type(exc).__name__, exc_info=exc)
    return f"unexpected {type(exc).__name__}: {exc} ({where_details_are()})"
