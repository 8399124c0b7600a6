"""The ``lookback`` program's entry point: Ctrl+C is one line and exit status 130 from the
program's first moment to its last.

Python turns Ctrl+C into a KeyboardInterrupt wherever the program happens to be, and while its
modules load (the first half second or so) that would be a traceback. So this module, which
imports nothing of the program, stops the process at once on Ctrl+C until the command line has
loaded, hands Ctrl+C to the command while it runs (a pull is then cancelled and recorded), and
stops at once again when the command has finished.
"""

from __future__ import annotations

import _signal  # loaded with the interpreter, unlike signal: no wait before the handler is set
import os

EXIT_CANCELLED = 130


def _interrupted(signum: int, frame: object) -> None:
    """Ctrl+C while nothing can be cancelled or recorded: one line, and stop."""
    os.write(2, b"error: interrupted by Ctrl+C\n")
    os._exit(EXIT_CANCELLED)


def start() -> None:
    """Run ``lookback`` with the process's arguments and exit with its status."""
    _signal.signal(_signal.SIGINT, _interrupted)  # first: the modules below take a while
    import signal
    import sys

    from lookback_gui.core.runtime import leave_pandas_unloaded

    leave_pandas_unloaded()
    from lookback_gui.cli import main  # the program's modules, Ctrl+C stopping at once

    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = main()
    except KeyboardInterrupt:  # between two statements of main's own
        os.write(2, b"error: interrupted by Ctrl+C\n")
        code = EXIT_CANCELLED
    signal.signal(signal.SIGINT, _interrupted)  # from here on nothing is left to cancel
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    start()
