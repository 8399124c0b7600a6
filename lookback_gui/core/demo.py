"""The demo project: a shop whose orders arrive late, and two metrics over it.

The sample source records when each order arrived (``arrived_at``) and the metrics only count
what had arrived by ``$as_of``, so pulls replay what the warehouse knew at any moment and the
charts show realistic revisions from the first start. Orders run from 60 days before the demo was
written to 30 days after it, so a demo keeps receiving late data for a month.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import platformdirs

from lookback_gui.core.errors import LookbackError, UsageError

if TYPE_CHECKING:
    from lookback_gui.core.project import MetricConfig, Project
    from lookback_gui.core.pull.seeding import PlannedPull

PROJECT_TEXT = '''\
# Lookback GUI demo project: a shop whose orders arrive late.
# Every pull re-counts the lookback window; only orders that had arrived by $as_of are seen,
# so each pull shows what the warehouse knew at that moment.

[store]
path = "lookback.duckdb"

[sources.shop]
type = "duckdb"
path = "shop.duckdb"

[metrics.daily_orders]
description = "Orders and revenue per day and country"
source = "shop"
grain = "day"
lookback = "7d"
schedule = "*/5 * * * *"   # every five minutes
timezone = "UTC"
audit_every = "1d"         # a deep pull over 4 x the lookback: what arrives later than 7 days
sql = """
SELECT date_trunc('day', ordered_at) AS bucket, country,
       count(*) AS orders, sum(amount) AS revenue
FROM orders
WHERE ordered_at >= $window_start AND ordered_at < $window_end
  AND arrived_at <= $as_of
GROUP BY ALL
"""

[metrics.daily_orders.checks]
orders_not_negative = { measure = "orders", min = 0 }
big_revision = { revision_pct = 50, severity = "warn" }

[[metrics.daily_orders.alerts]]
kind = "restatement"
name = "old days restated"
older_than = 3
change_pct = 5

[metrics.hourly_revenue]
description = "Revenue per hour, all countries"
source = "shop"
grain = "hour"
lookback = "48h"
every = "1m"
timezone = "UTC"
sql = """
SELECT date_trunc('hour', ordered_at) AS bucket, sum(amount) AS revenue
FROM orders
WHERE ordered_at >= $window_start AND ordered_at < $window_end
  AND arrived_at <= $as_of
GROUP BY ALL
"""
'''

_ORDERS_SQL = """
CREATE TABLE orders AS
WITH base AS (
    SELECT range AS order_id,
           $start + to_seconds(range * 60 + CAST(floor(random() * 60) AS BIGINT)) AS ordered_at,
           random() AS r_country, random() AS r_late, random() AS r_lag, random() AS r_amount
    FROM range(CAST($minutes AS BIGINT))
)
SELECT order_id, ordered_at,
       ordered_at + to_seconds(CAST(CASE
           WHEN r_late < 0.60 THEN r_lag * 3600
           WHEN r_late < 0.85 THEN 3600 + r_lag * 2 * 86400
           WHEN r_late < 0.97 THEN 2 * 86400 + r_lag * 3 * 86400
           ELSE 5 * 86400 + r_lag * 7 * 86400
       END AS BIGINT)) AS arrived_at,
       CASE WHEN r_country < 0.40 THEN 'DE' WHEN r_country < 0.65 THEN 'FR'
            WHEN r_country < 0.90 THEN 'US' ELSE 'GB' END AS country,
       CAST(round(5 + r_amount * r_amount * 195, 2) AS DECIMAL(10, 2)) AS amount
FROM base
ORDER BY ordered_at
"""


def write_sample_source(
    path: Path, anchor: datetime, days_before: int = 60, days_after: int = 30, seed: float = 0.42
) -> None:
    """Write the shop's orders (about one a minute) around ``anchor`` (naive UTC)."""
    from datetime import timedelta

    # from a midnight on, so the first day (and hour) of the data is whole: a first bucket that
    # holds only part of a day would read as a dip that never recovers
    start = (anchor - timedelta(days=days_before)).replace(hour=0, minute=0, second=0, microsecond=0)
    minutes = (days_before + 1 + days_after) * 24 * 60
    temp = path.with_name(path.name + ".tmp")
    temp.unlink(missing_ok=True)
    con = duckdb.connect(str(temp))
    try:
        con.execute("SELECT setseed(?)", [seed])
        con.execute(_ORDERS_SQL, {"start": start, "minutes": minutes})
    finally:
        con.close()
    temp.replace(path)


def write_demo(directory: str | Path, now: datetime | None = None) -> Path:
    """Write the demo project into ``directory``; return the project file's path."""
    folder = Path(directory).expanduser().absolute()
    project = folder / "lookback.toml"
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file, not a folder; choose a new or empty folder for the demo")
    for name in ("lookback.toml", "shop.duckdb", "lookback.duckdb"):
        if (folder / name).exists():
            raise UsageError(f"{folder / name} already exists; choose a new or empty folder for the demo")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        anchor = now or datetime.now(UTC).replace(tzinfo=None)
        write_sample_source(folder / "shop.duckdb", anchor)
        project.write_text(PROJECT_TEXT, encoding="utf-8")
    except OSError as exc:
        raise LookbackError(f"cannot write the demo into {folder}: {exc.strerror}") from None
    return project


HISTORY_DAYS = 42


def seed_history(
    project_path: Path, now: datetime | None = None, progress: Callable[[int, int], None] | None = None
) -> int:
    """Seed the pulls a schedule would have made over the last weeks; return how many.

    Each pull is as of a past moment, so it sees only the orders that had arrived by then and
    the store fills with the revisions late data caused. Six weeks of daily pulls, with an audit
    every other day, are enough for the Advisor tab to show everything on the first start: the
    policies tried on the history, a nowcast with settled buckets to try it on, the triangle.
    The pulls are written in one pass (:mod:`lookback_gui.core.pull.seeding`): the store holds what
    the same pulls made one by one would have left. ``progress(done, total)`` follows it.
    """
    from lookback_gui.core.project import load_project
    from lookback_gui.core.pull.seeding import seed
    from lookback_gui.core.store import open_store

    project = load_project(project_path)
    plan = history_plan(project, now)
    with open_store(project.store) as store:
        seed(project, store, plan, progress=progress)
    return len(plan)


def history_plan(
    project: Project, now: datetime | None = None, days: int = HISTORY_DAYS
) -> list[PlannedPull]:
    """The demo's past pulls, in the order of their known times per metric: a daily pull at
    the time of day of the last one for ``days`` days (six weeks) (the nowcast learns how much of a day is
    known at that point of it), an audit every other day, a pull of the hourly metric every
    hour for the last three days (at least once a bucket, as its schedule pulls it: pulls
    further apart than a bucket leave the development unable to tell when the values of the
    youngest buckets arrive, and their nowcast far too high), and one of each metric now."""
    from datetime import timedelta

    from lookback_gui.core.insight.advisor import audit_window
    from lookback_gui.core.pull.seeding import PlannedPull
    from lookback_gui.core.timing.windows import compute_window

    moment = (now or datetime.now(UTC).replace(tzinfo=None)).replace(second=0, microsecond=0)
    daily, hourly = project.metrics["daily_orders"], project.metrics["hourly_revenue"]

    def pull(config: MetricConfig, as_of: datetime) -> PlannedPull:
        return PlannedPull(
            config.name,
            "schedule",
            compute_window(as_of, config.grain, config.buckets, config.complete_buckets_only),
        )

    plan = []
    for days_ago in range(days, 0, -1):
        as_of = moment - timedelta(days=days_ago)
        plan.append(pull(daily, as_of))
        if days_ago % 2 == 0:
            plan.append(PlannedPull(daily.name, "audit", audit_window(daily, as_of + timedelta(minutes=5))))
    plan += [pull(hourly, moment - timedelta(hours=hours_ago)) for hours_ago in range(72, 0, -1)]
    plan += [pull(daily, moment), pull(hourly, moment)]
    return plan


APP_NAME = "lookback-gui"


def data_dir() -> Path:
    """The user's data folder of the app (the demo projects live there)."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


Progress = Callable[[int, int], None]


def ensure_demo(folder: Path | None = None, progress: Progress | None = None) -> Path:
    """The demo project in the user data folder, created with a history of pulls on first use
    (``progress(done, total)`` follows its seeding)."""
    folder = folder or data_dir() / "demo"
    project = folder / "lookback.toml"
    if not project.exists():
        build_demo(folder, write_demo, lambda path: seed_history(path, progress=progress))
    return project


def build_demo(folder: Path, write: Any, seed: Any) -> None:
    """Write and seed a demo project beside ``folder`` and move it into place when complete,
    so a demo whose building was stopped (the app closed or killed meanwhile) is never
    reopened half-built: the next start builds it again."""
    for stale in folder.parent.glob(f".{folder.name}.building-*"):
        shutil.rmtree(stale, ignore_errors=True)
    building = folder.with_name(f".{folder.name}.building-{os.getpid()}")
    try:
        write(building)
        seed(building / "lookback.toml")
        building.rename(folder)
    finally:
        shutil.rmtree(building, ignore_errors=True)


def fresh_demo(root: Path | None = None, progress: Progress | None = None) -> Path:
    """A new demo project in a folder of its own (the older demos stay as they are)."""
    from datetime import datetime

    base = root or data_dir() / "demos"
    folder = base / datetime.now().strftime("demo-%Y%m%d-%H%M%S")
    number = 1
    while folder.exists():
        number += 1
        folder = base / datetime.now().strftime(f"demo-%Y%m%d-%H%M%S-{number}")
    build_demo(folder, write_demo, lambda path: seed_history(path, progress=progress))
    return folder / "lookback.toml"
