"""Iceberg and Delta tables as sources, in a local folder and in the local S3 server, written by
their own libraries (pyiceberg with an SQLite catalog, deltalake), late rows added as new
snapshots / commits."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from lookback_gui.core.project import load_project
from lookback_gui.core.pull import run_pull
from lookback_gui.core.store import open_store
from tests.helpers import DAILY_SQL, project_text, run_cli


def _orders(rows: list[tuple[int, datetime, str, float]]) -> pa.Table:
    return pa.table(
        {
            "order_id": pa.array([r[0] for r in rows], pa.int64()),
            "ordered_at": pa.array([r[1] for r in rows], pa.timestamp("us")),
            "country": pa.array([r[2] for r in rows], pa.string()),
            "amount": pa.array([r[3] for r in rows], pa.float64()),
        }
    )


class Table:
    """An Iceberg or Delta table of orders, local or in the S3 server, that grows by commits."""

    def __init__(self, kind: str, where: str, tmp_path: Path, s3_server=None):
        self.kind = kind
        self.s3 = s3_server
        if where == "s3":
            bucket = s3_server.bucket(kind)
            self.location = f"s3://{bucket}/lake/orders"
        else:
            self.location = str(tmp_path / "lake" / "orders")
        self._iceberg = None
        if kind == "iceberg":
            from pyiceberg.catalog.sql import SqlCatalog

            props = {
                "uri": f"sqlite:///{tmp_path}/catalog.db",
                "warehouse": self.location if where == "s3" else f"file://{tmp_path}/wh",
            }
            if where == "s3":
                props.update(s3_server.pyiceberg_properties())
            catalog = SqlCatalog("lookback", **props)
            catalog.create_namespace("shop")
            self._iceberg = catalog.create_table(
                "shop.orders",
                schema=_orders([]).schema,
                location=self.location if where == "s3" else f"file://{self.location}",
            )

    def append(self, rows: list[tuple[int, datetime, str, float]]) -> None:
        data = _orders(rows)
        if self._iceberg is not None:
            self._iceberg.append(data)
            return
        from deltalake import write_deltalake

        options = self.s3.storage_options() if self.location.startswith("s3://") else None
        write_deltalake(self.location, data, mode="append", storage_options=options)

    def source(self, extra: str = "") -> str:
        keys = self.s3.source_keys() if self.location.startswith("s3://") else ""
        return f'type = "{self.kind}"\npath = "{self.location}"\n{keys}{extra}'


def _wait_for_clock(moment: datetime) -> None:
    """Sleep until the clock is past ``moment`` (commit times are the writer's clock): the time
    that is left, at once; a sleep ends no earlier than asked, so this loops only when the clock
    itself was stepped back meanwhile."""
    while (left := (moment - _now()).total_seconds()) >= 0:
        time.sleep(left + 0.001)


def _whole_second(moment: datetime) -> datetime:
    """The next whole second at or after ``moment``."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


KINDS = [("delta", "local"), ("iceberg", "local"), ("delta", "s3"), ("iceberg", "s3")]


@pytest.fixture
def table(request, tmp_path, s3_secret):
    kind, where = request.param
    server = request.getfixturevalue("s3_server") if where == "s3" else None
    return Table(kind, where, tmp_path, server)


@pytest.mark.parametrize("table", KINDS, indirect=True, ids=["-".join(k) for k in KINDS])
def test_a_table_is_read_as_a_view_named_after_the_source_and_late_rows_revise(table, write_project):
    day = (_now() - timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    table.append([(1, day, "DE", 10.0), (2, day, "FR", 4.0)])
    path = write_project(project_text(source=table.source(), source_name="orders"))
    project = load_project(path)
    with open_store(project.store) as store:
        first = run_pull(project, "daily_orders", store)
        table.append([(3, day + timedelta(hours=5), "DE", 1.0)])  # a late row, a new commit
        second = run_pull(project, "daily_orders", store)
        values = {(r.dims["country"], r.measure): r.value for r in store.history("daily_orders")}
    assert first.status == "succeeded", first.error
    assert second.status == "succeeded", second.error
    assert (first.new, second.revised) == (4, 2)
    assert values[("DE", "orders")] == 2 and values[("DE", "revenue")] == 11.0
    code, out, err = run_cli("--project", str(path), "check")
    assert code == 0, err


@pytest.mark.parametrize("table", KINDS[:2], indirect=True, ids=["-".join(k) for k in KINDS[:2]])
def test_snapshot_as_of_replays_the_late_rows_arriving(table, write_project):
    """With snapshot_as_of = true, a pull as of T reads the table as it was at T: a replay
    over the past sees the late commit arrive, and its versions are known at each pull's T."""
    day = (_now() - timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    table.append([(1, day, "DE", 10.0)])
    start = _whole_second(_now())  # the replay's times are whole seconds from here
    _wait_for_clock(start + timedelta(seconds=1.5))
    before = _now()
    table.append([(2, day, "DE", 5.0)])  # late: arrives between two scheduled pulls
    late = _now()  # the commit's time lies in [before, late], however long it took
    end = _whole_second(late) + timedelta(seconds=2)
    _wait_for_clock(end)
    path = write_project(
        project_text(
            source=table.source("snapshot_as_of = true\n"),
            source_name="orders",
            sql=DAILY_SQL,
            extra='every = "1s"\n',
        )
    )
    code, out, err = run_cli(
        "--project", str(path), "replay", "daily_orders", "--from", start.isoformat(), "--to", end.isoformat()
    )
    assert code == 0, err
    code, out, err = run_cli("--project", str(path), "revisions", "daily_orders", "--json")
    import json

    revisions = json.loads(out)
    revenue = [r for r in revisions if r["measure"] == "revenue"]
    assert [(r["old_value"], r["new_value"]) for r in revenue] == [(10.0, 15.0)]
    known = datetime.fromisoformat(revenue[0]["known_at"]).astimezone(UTC).replace(tzinfo=None)
    # the first pull as of at or after the commit (the pulls are as of whole seconds)
    assert before <= known <= _whole_second(late)
    # a pull as of before the table existed says so
    project = load_project(path)
    with open_store(project.store) as store:
        run = run_pull(project, "daily_orders", store, as_of=start - timedelta(minutes=5))
    assert run.status == "failed" and "as of" in (run.error or "")


def test_a_table_that_is_not_there_is_an_error_naming_it(write_project, tmp_path):
    (tmp_path / "empty").mkdir()
    for kind, what in (("delta", "is not a Delta table"), ("iceberg", "is not an Iceberg table")):
        path = write_project(project_text(source=f'type = "{kind}"\npath = "empty"', source_name="orders"))
        code, out, err = run_cli("--project", str(path), "pull", "daily_orders")
        assert code == 1
        assert f"source orders: empty {what}" in err, err
    path = write_project(project_text(source='type = "delta"\npath = "nowhere"', source_name="orders"))
    code, out, err = run_cli("--project", str(path), "pull", "daily_orders")
    assert code == 1 and "folder not found: nowhere" in err


def test_a_table_source_reads_nothing_outside_its_folder(write_project, tmp_path):
    table = Table("delta", "local", tmp_path)
    day = (_now() - timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    table.append([(1, day, "DE", 10.0)])
    other = Table("delta", "local", tmp_path / "o")
    (tmp_path / "o").mkdir(exist_ok=True)
    other.append([(9, day, "XX", 1.0)])
    for sql in (
        f"SELECT * FROM delta_scan('{other.location}')",
        f"SELECT * FROM '{tmp_path}/o/lake/orders/*.parquet'",
    ):
        path = write_project(
            project_text(
                source=table.source(),
                source_name="orders",
                sql=f"SELECT DATE '2026-01-01' AS bucket, count(*) AS n FROM ({sql})",
            )
        )
        code, out, err = run_cli("--project", str(path), "pull", "daily_orders")
        assert code == 1 and "through the view orders" in err, err
