"""Pulls: a metric's query for one window, and what changed committed as one run.

:func:`run_pull` is a plain synchronous call. The command line, backfills, the scheduler's worker
threads and the tests all call it; only the scheduler runs it off the calling thread.

The package's parts, each in the file named after it:

- ``run``: one pull (:class:`PullContext` through query, checks and commit, with retries);
- ``staging``: the query run for a window and its result staged as Parquet, exact;
- ``checks``: the checks of a result (built in, the metric's own, the largest revision) and
  its schema change; ``probe``: the change probe, which narrows the window to what changed;
  ``shape``: which result columns are the bucket, the dimensions and the measures;
- ``control``: cancelling a running pull and reading its progress;
- ``backfill``: a range pulled in window-sized chunks; ``replay``: the schedule replayed over
  the past; ``seeding``: a history of pulls committed in one pass (the demo);
- ``preview``: a metric tried without storing anything (``lookback check``, the editor).

Imports the project, sources, store and insight packages; the scheduler imports it.
"""

from lookback_gui.core.pull.backfill import (
    MAX_BACKFILL_CHUNKS,
    backfill,
    backfill_chunk_count,
    backfill_windows,
    run_windows,
)
from lookback_gui.core.pull.control import Clock, PullControl
from lookback_gui.core.pull.preview import Preview, check_metric, preview_metric
from lookback_gui.core.pull.probe import run_probe
from lookback_gui.core.pull.run import PullContext, run_pull, settled_end
from lookback_gui.core.pull.staging import (
    STAGING_PREFIX,
    StagedResult,
    execute_metric_query,
    metric_query,
    remove_stale_staging,
    stage_result,
    staging_folder,
)

__all__ = [
    "MAX_BACKFILL_CHUNKS",
    "STAGING_PREFIX",
    "Clock",
    "Preview",
    "PullContext",
    "PullControl",
    "StagedResult",
    "backfill",
    "backfill_chunk_count",
    "backfill_windows",
    "check_metric",
    "execute_metric_query",
    "metric_query",
    "preview_metric",
    "remove_stale_staging",
    "run_probe",
    "run_pull",
    "run_windows",
    "settled_end",
    "stage_result",
    "staging_folder",
]
