"""The store: one DuckDB file with every run, its log, and every version of every value.

:class:`Store` is the store of one project: a few parts over one connection, each in the file
named after it.

- ``database``: the connection, taking turns with other processes, read and write transactions;
- ``schema``: the tables, and the migrations that upgrade an older store file;
- ``runs``: the run log;
- ``versions``: the versions with their diff and commit (the bitemporal model is described
  there);
- ``reads``: current values, time travel, revisions and the columns a chart loads;
- ``alert_states``: the state of every alert rule that fired;
- ``records``: the frozen records all of them hand out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from lookback_gui.core.errors import StoreError
from lookback_gui.core.storage.store_config import StoreConfig
from lookback_gui.core.store.alert_states import AlertStates
from lookback_gui.core.store.chart_reads import ChartReads
from lookback_gui.core.store.database import Database
from lookback_gui.core.store.lock import WAIT_S, Lease, Waiting
from lookback_gui.core.store.reads import Reads
from lookback_gui.core.store.records import (
    DEFAULT_TOLERANCE,
    AlertState,
    CatchUpFacts,
    HistoryRow,
    LogLine,
    Number,
    RevisionRow,
    RunRecord,
)
from lookback_gui.core.store.runs import RUN_STATUSES, NewRun, RunLog
from lookback_gui.core.store.schema import SCHEMA_VERSION, prepare, uses_as_of
from lookback_gui.core.store.team import Compacted, TeamDatabase
from lookback_gui.core.store.versions import (
    Commit,
    CommitRequest,
    DiffSummary,
    StagedValues,
    Versions,
)

if TYPE_CHECKING:  # numpy is loaded by the chart reads only
    import numpy as np

__all__ = [
    "DEFAULT_TOLERANCE",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "AlertState",
    "CatchUpFacts",
    "Commit",
    "CommitRequest",
    "DiffSummary",
    "HistoryRow",
    "LogLine",
    "NewRun",
    "Number",
    "RevisionRow",
    "RunRecord",
    "StagedValues",
    "Store",
    "open_store",
    "uses_as_of",
]


def open_store(
    config: StoreConfig, *, read_only: bool = False, waiting: Waiting | None = None, wait_s: float = WAIT_S
) -> Store:
    """The store a project's ``[store]`` table names: its local file, or the team store."""
    if config.team:
        return Store(TeamDatabase(config, read_only=read_only, waiting=waiting, wait_s=wait_s))
    assert config.path is not None
    return Store(config.path, read_only=read_only, waiting=waiting, wait_s=wait_s)


class Store:
    """The local store of one project, shared with the project's other processes.

    The store file is open only while this process holds it (see
    :mod:`lookback_gui.core.store.lock`): it is opened on first use, and closed and let go
    between two uses when another process waits for it, so several processes take turns. What
    this process keeps in memory about the store is forgotten whenever it opens the file again.

    Attributes:
        path: the DuckDB file.
        read_only: opened for reading only (asked for, or the file cannot be written).
        interrupted_at_open: runs found ``running`` whose process had died, now marked.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | Database,
        *,
        read_only: bool = False,
        waiting: Waiting | None = None,
        wait_s: float = WAIT_S,
    ):
        self._db = (
            path
            if isinstance(path, Database)
            else Database(path, read_only=read_only, waiting=waiting, wait_s=wait_s)
        )
        self._runs = RunLog(self._db)
        self._reads = Reads(self._db, self._runs)
        self._charts = ChartReads(self._db, self._reads)
        self._versions = Versions(self._db, on_commit=self._committed)
        self._alerts = AlertStates(self._db)
        try:
            prepare(self._db)
            if not self._db.read_only:
                self._runs.interrupted_at_open = self._runs.mark_interrupted()
        except BaseException:
            self._db.close()
            raise
        self._db.start_watching()

    @property
    def path(self) -> Path:
        """The local store file (a team store has none: see :attr:`name`)."""
        return self._db.path

    @property
    def team(self) -> bool:
        """Whether this is a team store (DuckLake) rather than a local file."""
        return self._db.team

    @property
    def name(self) -> str:
        """The store's file, or a team store's catalog and data folder."""
        return self._db.name

    @property
    def label(self) -> str:
        """The store as messages name it: "store FILE" or "team store CATALOG (data in ...)"."""
        return self._db.label

    @property
    def read_only(self) -> bool:
        return self._db.read_only

    @property
    def interrupted_at_open(self) -> list[int]:
        return self._runs.interrupted_at_open

    def _committed(self, record: RunRecord) -> None:
        self._runs.remember_success(record)
        self._reads.forget_metric(record.metric)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the connection -------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of the open store for the calling thread, for the length of the block."""
        with self._db.reading() as cur:
            yield cur

    def writing(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """One write transaction for housekeeping (a copy into this store): all or nothing."""
        return self._db.write()

    def continue_numbering(self, cur: duckdb.DuckDBPyConnection, run_id: int, commit_seq: int) -> None:
        """After rows were copied in (inside the same write ``cur``): new run ids and commit
        numbers come after ``run_id`` and ``commit_seq``."""
        self._db.continue_numbering(cur, "run_ids", run_id)
        self._db.continue_numbering(cur, "commit_seqs", commit_seq)
        self._runs.forget()

    def scheduler_lease(self) -> Lease:
        """The right to run the project's scheduler: a lock file beside a local store, a lease
        in a team store's catalog."""
        return self._db.scheduler_lease()

    def data_bytes(self) -> int:
        """The size of a team store's data files."""
        if not isinstance(self._db, TeamDatabase):
            raise StoreError(f"{self.label} is a file: its size is the file's")
        return self._db.data_bytes()

    def compact(self) -> Compacted:
        """Merge a team store's small data files (``lookback store compact``)."""
        if not isinstance(self._db, TeamDatabase):
            raise StoreError(f"{self.label} is a file: compact it with compact_store")
        return self._db.compact()

    # -- runs -----------------------------------------------------------------------------

    def begin_run(self, start: NewRun) -> int:
        return self._runs.begin_run(start)

    def begun_run(self, start: NewRun) -> int | None:
        return self._runs.begun(start)

    def log(self, run_id: int, level: str, message: str, at: datetime | None = None) -> None:
        self._runs.log(run_id, level, message, at)

    def set_attempts(self, run_id: int, attempts: int) -> None:
        self._runs.set_attempts(run_id, attempts)

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        finished_at: datetime,
        attempts: int,
        error: str | None,
        rows: int | None = None,
        warnings: Sequence[str] = (),
        checks: Sequence[Mapping[str, Any]] = (),
        duration_s: float | None = None,
    ) -> None:
        self._runs.finish_run(
            run_id,
            status=status,
            finished_at=finished_at,
            attempts=attempts,
            error=error,
            rows=rows,
            warnings=warnings,
            checks=checks,
            duration_s=duration_s,
        )

    def run(self, run_id: int) -> RunRecord:
        return self._runs.run(run_id)

    def runs(
        self,
        metric: str | None = None,
        limit: int | None = None,
        status: str | None = None,
        trigger: str | None = None,
        before: int | None = None,
    ) -> list[RunRecord]:
        return self._runs.runs(metric, limit, status, trigger, before)

    def latest_runs(self) -> dict[str, RunRecord]:
        return self._runs.latest_runs()

    def run_log(self, run_id: int) -> list[LogLine]:
        return self._runs.run_log(run_id)

    def coverage(self, metric: str) -> list[tuple[datetime, datetime]]:
        return self._runs.coverage(metric)

    def pull_extent(self, metric: str) -> tuple[datetime | None, datetime | None]:
        return self._runs.pull_extent(metric)

    def uncovered_failures(self, metric: str | None = None) -> list[RunRecord]:
        return self._runs.uncovered_failures(metric)

    def catch_up_facts(self) -> dict[str, CatchUpFacts]:
        return self._runs.catch_up_facts()

    def last_successful_run(self, metric: str) -> RunRecord | None:
        return self._runs.last_successful_run(metric)

    def metric_names(self) -> list[str]:
        return self._runs.metric_names()

    def rename_metric(self, old: str, new: str) -> dict[str, int]:
        """Move everything the store holds of metric ``old`` to ``new`` in one write
        transaction: its runs, versions, current values, the changes late data made,
        change-probe fingerprints and alert states. Returns how many rows of each moved.
        Refused (UsageError) when the store already holds a metric ``new``."""
        from lookback_gui.core.errors import UsageError

        moved: dict[str, int] = {}
        with self._db.write() as cur:
            row = cur.execute("SELECT count(*) FROM runs WHERE metric = ?", [new]).fetchone()
            if row and row[0]:
                raise UsageError(
                    f"{self.label} already holds {row[0]} run(s) of a metric '{new}'; pick another name"
                )
            for table in ("runs", "versions", "current", "arrivals", "arrival_sums", "probes", "alerts"):
                found = cur.execute(f"SELECT count(*) FROM {table} WHERE metric = ?", [old]).fetchone()
                moved[table] = int(found[0]) if found else 0
                if moved[table]:
                    cur.execute(f"UPDATE {table} SET metric = ? WHERE metric = ?", [new, old])
        self._runs.forget()
        self._reads.forget()
        return moved

    def definition_changes(self, metric: str) -> list[tuple[int, datetime, str, str]]:
        return self._runs.definition_changes(metric)

    def schema_changes(self, metric: str) -> list[tuple[int, datetime, Mapping[str, Any]]]:
        return self._runs.schema_changes(metric)

    # -- the commit -----------------------------------------------------------------------

    def batch(self) -> AbstractContextManager[None]:
        """One write transaction for all the runs begun and committed by the calling thread
        inside the block (see :meth:`Database.batch`): for a store being built, which is
        thrown away when the block fails."""
        return self._db.batch()

    def begin_commit(self, run_id: int) -> AbstractContextManager[Commit]:
        """The write transaction of run ``run_id``'s diff and commit (see
        :meth:`Versions.begin_commit`)."""
        return self._versions.begin_commit(run_id)

    def probe_fingerprints(self, metric: str, start: datetime, end: datetime) -> dict[datetime, str]:
        return self._versions.probe_fingerprints(metric, start, end)

    # -- reads ----------------------------------------------------------------------------

    def history_query(
        self,
        metric: str,
        as_of_run: int | None = None,
        as_known_at: datetime | None = None,
        buckets: tuple[datetime, datetime] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        return self._reads.history_query(metric, as_of_run, as_known_at, buckets)

    def history(
        self, metric: str, as_of_run: int | None = None, as_known_at: datetime | None = None
    ) -> list[HistoryRow]:
        return self._reads.history(metric, as_of_run, as_known_at)

    def revisions_query(
        self,
        metric: str,
        newest: int | None = None,
        run: int | None = None,
        known: tuple[datetime, datetime, datetime, datetime] | None = None,
    ) -> tuple[str, list[Any]]:
        return self._reads.revisions_query(metric, newest, run, known)

    def revisions(self, metric: str, newest: int | None = None, run: int | None = None) -> list[RevisionRow]:
        return self._reads.revisions(metric, newest, run)

    def series(
        self,
        metric: str,
        top: int | None = None,
        as_of_run: int | None = None,
        as_known_at: datetime | None = None,
    ) -> list[tuple[dict[str, Any], str, float]]:
        return self._reads.series(metric, top, as_of_run, as_known_at)

    def chart_data(
        self,
        metric: str,
        measure: str,
        dims: Mapping[str, Any],
        as_of_run: int | None = None,
        as_known_at: datetime | None = None,
    ) -> dict[str, np.ndarray]:
        return self._charts.chart_data(metric, measure, dims, as_of_run, as_known_at)

    def chart_series(
        self,
        metric: str,
        measure: str,
        dims: Mapping[str, Any],
        as_of_run: int | None = None,
        as_known_at: datetime | None = None,
    ) -> dict[str, np.ndarray]:
        return self._charts.chart_series(metric, measure, dims, as_of_run, as_known_at)

    def bucket_run(self, metric: str, measure: str, dims: Mapping[str, Any], bucket: datetime) -> int | None:
        return self._charts.bucket_run(metric, measure, dims, bucket)

    def latest_values(
        self, metric: str, measure: str, series: Mapping[str, Any], since: datetime | None = None
    ) -> tuple[datetime | None, list[tuple[dict[str, Any], Number]]]:
        return self._reads.latest_values(metric, measure, series, since)

    # -- alerts ---------------------------------------------------------------------------

    def alert_state(self, metric: str, rule: str) -> AlertState | None:
        return self._alerts.alert_state(metric, rule)

    def set_alert_state(self, state: AlertState) -> None:
        self._alerts.set_alert_state(state)

    def alert_states(self) -> list[AlertState]:
        return self._alerts.alert_states()
