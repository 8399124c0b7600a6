"""The project as loaded: frozen records of its store, sources, metrics, checks, alerts and
dashboard, and the constants of the project file's vocabulary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lookback_gui.core.storage.store_config import StoreConfig
from lookback_gui.core.storage.urls import StorageConfig
from lookback_gui.core.timing.windows import Grain

SOURCE_TYPES = ("duckdb", "sqlite", "postgres", "mysql", "parquet", "csv", "iceberg", "delta")
FILE_SOURCE_TYPES = ("duckdb", "sqlite", "parquet", "csv", "iceberg", "delta")
SERVER_SOURCE_TYPES = ("postgres", "mysql")
ALERT_KINDS = ("threshold", "restatement", "freshness", "failure")
SEVERITIES = ("error", "warn")
DEFAULT_STORE = "lookback.duckdb"
DEFAULT_PROJECT = "lookback.toml"
# the most a project file may ask for: more is a typo, and would tie up the machine or the source
MAX_RETRIES = 20
MAX_CONCURRENCY = 64

DASHBOARD_COLUMNS = 2  # the dashboard's columns when the file does not say
# what a threshold rule judges: a provisional bucket by its nowcast (expected), the newest
# settled bucket (settled), or the newest complete bucket as it stands (latest)
JUDGES = ("expected", "settled", "latest")


@dataclass(frozen=True)
class SourceConfig:
    """One source as the project file defines it.

    Attributes:
        name: the source's name (its table key).
        type: one of SOURCE_TYPES.
        path: for file sources, the path or glob as written.
        resolved_path: that path made absolute against the project's folder.
        dsn: for server sources, the connection string without a password.
        password_env: the environment variable that holds the password, if any.
        pushdown: for server sources, run the whole metric SQL on the server.
        trust_role: accept a pushdown source whose role can read more than its own database
            (the check then warns every time).
        concurrency: how many pulls may read this source at once (default 1).
        storage: how to reach a path in object storage (None for a local path).
        snapshot_as_of: for an Iceberg or Delta table, read the snapshot it had at the pull's
            as-of (a replay of what a pull then would have seen).
    """

    name: str
    type: str
    path: str | None = None
    resolved_path: str | None = None
    dsn: str | None = None
    password_env: str | None = None
    pushdown: bool = False
    concurrency: int = 1
    trust_role: bool = False
    storage: StorageConfig | None = None
    snapshot_as_of: bool = False

    @property
    def is_file(self) -> bool:
        return self.type in FILE_SOURCE_TYPES


@dataclass(frozen=True)
class CheckConfig:
    """One named quality check of a metric."""

    name: str
    severity: str = "error"
    measure: str | None = None
    min: float | None = None
    max: float | None = None
    row_change_pct: float | None = None
    revision_pct: float | None = None


@dataclass(frozen=True)
class AlertRule:
    """One alert rule of a metric; ``position`` is its 1-based place among the metric's rules."""

    kind: str
    position: int
    name: str | None = None
    measure: str | None = None
    above: float | None = None
    below: float | None = None
    series: Mapping[str, Any] = field(default_factory=dict)
    older_than: int | None = None
    change_pct: float | None = None
    max_age: timedelta | None = None
    command: str | None = None
    judge: str = "expected"

    @property
    def label(self) -> str:
        """The rule's name, or its kind and position."""
        return self.name or self.reference

    @property
    def reference(self) -> str:
        """Its kind and position, like ``threshold#1``: a name for it whether it has one or not."""
        return f"{self.kind}#{self.position}"


@dataclass(frozen=True)
class MetricConfig:
    """One metric: what to pull, from where, how often and over which window."""

    name: str
    source: str
    grain: Grain
    lookback: int | str
    buckets: int
    sql: str
    timezone: str = "UTC"
    schedule: str | None = None
    every: timedelta | None = None
    complete_buckets_only: bool = False
    allow_empty: bool = False
    measures: tuple[str, ...] | None = None
    dimensions: tuple[str, ...] | None = None
    retries: int = 3
    retry_base: timedelta = timedelta(seconds=2)
    retry_max: timedelta = timedelta(minutes=5)
    checks: tuple[CheckConfig, ...] = ()
    alerts: tuple[AlertRule, ...] = ()
    description: str | None = None
    audit_every: timedelta | None = None
    audit_factor: int = 4
    change_probe: str | None = None
    settle_share: float = 0.99

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def scheduled(self) -> bool:
        return self.schedule is not None or self.every is not None


@dataclass(frozen=True)
class DashboardChart:
    """One small chart of the dashboard: a metric, and optionally its measure and one series
    (None: the measure and series the chart would pick, the largest)."""

    metric: str
    measure: str | None = None
    series: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Dashboard:
    """The ``[dashboard]`` table: its charts in order and how many columns they fill; no
    charts means one chart per metric."""

    charts: tuple[DashboardChart, ...] = ()
    columns: int = DASHBOARD_COLUMNS


@dataclass(frozen=True)
class Project:
    """A loaded, validated project.

    Attributes:
        path: the project file (absolute).
        store: where runs and versions are kept (a local file or the team store).
        sources: the sources by name, in file order.
        metrics: the metrics by name, in file order.
        dashboard: the charts of the dashboard (``[dashboard]``).
    """

    path: Path
    store: StoreConfig
    sources: Mapping[str, SourceConfig]
    metrics: Mapping[str, MetricConfig]
    dashboard: Dashboard = field(default_factory=Dashboard)

    @property
    def store_path(self) -> Path:
        """The local store file; a team store has none (its lock files live nowhere)."""
        if self.store.path is None:
            raise ValueError(f"{self.path}: the store is a team store, not a file")
        return self.store.path

    @property
    def directory(self) -> Path:
        return self.path.parent

    def metric(self, name: str) -> MetricConfig:
        """The metric ``name``; raise UsageError listing the known ones otherwise."""
        from lookback_gui.core.errors import UsageError

        try:
            return self.metrics[name]
        except KeyError:
            known = ", ".join(self.metrics) or "none"
            raise UsageError(f"no metric named '{name}' in {self.path} (its metrics: {known})") from None
