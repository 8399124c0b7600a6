"""``lookback``: the headless command line over the same core as the desktop app.

Exit status: 0 success; 1 a pull or check failed; 2 a usage or project-file error. Errors are one
line on stderr starting ``error:``; ``--verbose`` adds the traceback of unexpected ones.

One module per group of commands (``pulls``, ``reads``, ``insight``, ``project``, ``schedule``,
``store``), each with a ``register`` that adds its commands to the parser; ``common`` and
``output`` hold what they share, and ``program`` makes the parser and runs a command. Each
command imports the core's heavier parts (the store, the scheduler) when it runs, so that
``lookback --help`` stays fast.
"""

from lookback_gui.cli.output import describe_event
from lookback_gui.cli.program import build_parser, entry_point, main

__all__ = ["build_parser", "describe_event", "entry_point", "main"]
