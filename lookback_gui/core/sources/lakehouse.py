"""Sources in object storage and lakehouse tables: Parquet/CSV at a URL or glob, and Iceberg and
Delta tables (a folder or URL), each shown to the metric's SQL as a view named after the source.

What a metric may reach is fixed before its SQL runs: the exact objects of a Parquet/CSV
source (listed now, so a file that appeared since the last pull is read and one that vanished
is an error naming the URL), or the table's own folder for Iceberg and Delta. The connection
then refuses every other path (:func:`lookback_gui.core.sources.connect_source` locks it), and
:func:`reach_problem` refuses SQL that would open files by itself.

Time travel: with ``snapshot_as_of = true`` the view reads the snapshot (Iceberg) or version
(Delta) that the table had at the pull's as-of, so a replay sees late rows arrive commit by
commit without an ``arrived_at`` column.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from lookback_gui.core.duck import load_named_extension, quote_identifier, quote_literal
from lookback_gui.core.errors import PullError, QueryError, TransientSourceError
from lookback_gui.core.failures import is_transient
from lookback_gui.core.project import SourceConfig
from lookback_gui.core.storage.objectstore import create_secret, list_objects
from lookback_gui.core.storage.urls import is_url

TABLE_TYPES = ("iceberg", "delta")
SECRET = "lookback_source"
# table functions that open files or tables by path; a lake source's SQL reads its view instead
_FILE_READERS = re.compile(
    r"^(read_\w+|\w+_scan|parquet_\w+|iceberg_\w+|delta_\w+|glob|sniff_csv)$", re.IGNORECASE
)
_DELTA_COMMIT = re.compile(r"(\d{20})\.json$")
_ICEBERG_METADATA = re.compile(r"(?:^|/)v?(\d+)(?:[-.][^/]*)?\.metadata\.json$")


def is_lake(source: SourceConfig) -> bool:
    """Whether ``source`` is read through this module (object storage or a lakehouse table)."""
    return source.type in TABLE_TYPES or (source.type in ("parquet", "csv") and is_url(source.path))


def location(source: SourceConfig) -> str:
    """Where the source lies: its URL, or its local path made absolute."""
    if is_url(source.path):
        return str(source.path)
    return os.path.abspath(source.resolved_path or source.path or "")


@dataclass(frozen=True)
class Reach:
    """What a lake source's connection may open once it is locked.

    Attributes:
        paths: exact objects (a Parquet/CSV source's listed files).
        directories: folders or URL prefixes (a table's folder), each ending in '/'.
    """

    paths: tuple[str, ...] = ()
    directories: tuple[str, ...] = ()


def reach_problem(node: Mapping[str, Any], source: SourceConfig | None) -> str | None:
    """Why the syntax-tree ``node`` of a lake source's SQL reaches past its view; else None."""
    if source is None or not is_lake(source):
        return None
    if node.get("type") == "TABLE_FUNCTION":
        name = str((node.get("function") or {}).get("function_name", ""))
        if _FILE_READERS.match(name):
            return (
                f"the SQL calls {name}(), which opens files by itself; a metric reads its "
                f"source through the view {source.name}"
            )
    elif node.get("type") == "BASE_TABLE":
        table = str(node.get("table_name") or "")
        if "/" in table or ":" in table or "\\" in table:
            return (
                f"the SQL reads '{table}' by its path; a metric reads its source through "
                f"the view {source.name}"
            )
    return None


def expose(
    con: duckdb.DuckDBPyConnection,
    source: SourceConfig,
    *,
    as_of: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> Reach:
    """Make ``source`` the view named after it in ``con`` and say what the view may open.

    Raises TransientSourceError when nothing is there (yet) and PullError for what retrying
    cannot fix.
    """
    where = location(source)
    owner = f"source {source.name}"
    if is_url(where):
        create_secret(con, SECRET, where, source.storage, owner, environ)
    alias = quote_identifier(source.name)
    if source.type in ("parquet", "csv"):
        files = _list(con, source, where)
        if not files:
            what = "no object matches" if any(c in where for c in "*?[{") else ("object not found:")
            raise TransientSourceError(f"{owner}: {what} {where}")
        reader = "read_parquet" if source.type == "parquet" else "read_csv"
        listed = ", ".join(quote_literal(f) for f in files)
        # the columns come from the first object: matching the others' by name would open
        # every object of the glob at each pull, however few the window needs
        con.execute(f"CREATE VIEW {alias} AS SELECT * FROM {reader}([{listed}])")
        return Reach(paths=tuple(files))
    folder = where.rstrip("/")
    if not is_url(folder) and not os.path.isdir(folder):
        raise TransientSourceError(f"{owner}: folder not found: {source.path} ({folder})")
    if source.type == "delta":
        scan = _delta_scan(con, source, folder, as_of if source.snapshot_as_of else None)
    else:
        scan = _iceberg_scan(con, source, folder, as_of if source.snapshot_as_of else None)
    con.execute(f"CREATE VIEW {alias} AS SELECT * FROM {scan}")
    return Reach(directories=(folder + "/",))


def _list(con: duckdb.DuckDBPyConnection, source: SourceConfig, url: str) -> list[str]:
    """The objects ``url`` names (see list_objects); a storage that cannot be reached (an
    unknown host, a refused connection, a wrong key) is said in one line naming the URL."""
    try:
        return list_objects(con, url)
    except duckdb.Error as exc:
        reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        message = f"source {source.name}: {url} cannot be listed: {reason}"
        if is_transient(exc):
            raise TransientSourceError(message) from None
        raise PullError(message) from None


def _load(con: duckdb.DuckDBPyConnection, source: SourceConfig, *names: str) -> None:
    try:
        for name in names:
            load_named_extension(con, name)
    except (duckdb.Error, ImportError) as exc:
        raise PullError(
            f"source {source.name}: DuckDB's {names[-1]} extension cannot be loaded "
            f"({str(exc).splitlines()[0]}); install the pip package "
            f"duckdb-extension-{names[-1]}"
        ) from None


def _utc_ms(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def _delta_scan(
    con: duckdb.DuckDBPyConnection, source: SourceConfig, folder: str, as_of: datetime | None
) -> str:
    _load(con, source, "delta")
    commits = [f for f in _list(con, source, f"{folder}/_delta_log/*.json") if _DELTA_COMMIT.search(f)]
    if not commits:
        raise TransientSourceError(
            f"source {source.name}: {source.path} is not a Delta table (it has no _delta_log/ commits)"
        )
    path = quote_literal(folder)
    if as_of is None:
        return f"delta_scan({path})"
    versions = _delta_commit_times(con, commits)
    limit = _utc_ms(as_of)
    known = [version for version, ms in versions if ms <= limit]
    if not known:
        first = datetime.fromtimestamp(min(ms for _, ms in versions) / 1000, UTC)
        raise PullError(
            f"source {source.name}: the Delta table had no version as of "
            f"{as_of.isoformat()} (its first commit is at {first.isoformat()})"
        )
    return f"delta_scan({path}, version => {max(known)})"


def _delta_commit_times(con: duckdb.DuckDBPyConnection, commits: list[str]) -> list[tuple[int, int]]:
    """(version, commit time in ms since the epoch) of each commit file: the in-commit
    timestamp where the writer keeps one, else the commit's own timestamp."""
    rows = con.execute("SELECT filename, content FROM read_text(?)", [commits]).fetchall()
    out = []
    for filename, content in rows:
        match = _DELTA_COMMIT.search(str(filename))
        if not match:
            continue
        for line in str(content).splitlines():
            if '"commitInfo"' not in line:
                continue
            info = json.loads(line).get("commitInfo") or {}
            stamp = info.get("inCommitTimestamp", info.get("timestamp"))
            if stamp is not None:
                out.append((int(match.group(1)), int(stamp)))
            break
    return out


def _iceberg_scan(
    con: duckdb.DuckDBPyConnection, source: SourceConfig, folder: str, as_of: datetime | None
) -> str:
    _load(con, source, "avro", "iceberg")
    found = []
    for name in _list(con, source, f"{folder}/metadata/*.metadata.json"):
        match = _ICEBERG_METADATA.search(name)
        if match:
            found.append((int(match.group(1)), name))
    if not found:
        raise TransientSourceError(
            f"source {source.name}: {source.path} is not an Iceberg "
            "table (it has no metadata/*.metadata.json)"
        )
    metadata = quote_literal(max(found)[1])
    if as_of is None:
        return f"iceberg_scan({metadata})"
    aware = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    moment = aware.astimezone(UTC).replace(tzinfo=None)
    try:
        row = con.execute(f"SELECT min(timestamp_ms) FROM iceberg_snapshots({metadata})").fetchone()
    except duckdb.Error as exc:
        raise PullError(f"source {source.name}: {str(exc).splitlines()[0]}") from None
    if row is None or row[0] is None or row[0] > moment:
        first = f" (its first snapshot is at {row[0]:%Y-%m-%d %H:%M:%S} UTC)" if row and row[0] else ""
        raise PullError(
            f"source {source.name}: the Iceberg table had no snapshot as of {as_of.isoformat()}{first}"
        )
    return f"iceberg_scan({metadata}, snapshot_from_timestamp => TIMESTAMP '{moment:%Y-%m-%d %H:%M:%S.%f}')"


def refuse_reach(node: Mapping[str, Any], source: SourceConfig | None) -> None:
    """Raise QueryError when ``node`` reaches past a lake source's view (see reach_problem)."""
    problem = reach_problem(node, source)
    if problem:
        raise QueryError(problem)
