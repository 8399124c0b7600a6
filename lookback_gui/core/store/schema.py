"""The store's tables, created in one place, and the migrations that bring an older store file
up to them.

:func:`create_schema` makes the tables of a new store as they are now; each entry of
``MIGRATIONS`` upgrades a store file by one schema version, in the same transaction as the
version number it sets. A store migrated from schema 1 has exactly the tables of a new one (the
tests compare them).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import duckdb

from lookback_gui.core.errors import StoreError
from lookback_gui.core.failures import is_damage
from lookback_gui.core.store.database import Database, damaged

SCHEMA_VERSION = 4

# the order of a value's versions: known time, then run id
VERSION_ORDER = "{'k': known_at, 'r': run_id}"

_RUNS_TABLE = """
CREATE TABLE runs (
    id BIGINT PRIMARY KEY,
    metric VARCHAR NOT NULL,
    trigger VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    timezone VARCHAR,
    grain VARCHAR,
    as_of TIMESTAMP,
    window_start TIMESTAMP,
    window_end TIMESTAMP,
    partial_start TIMESTAMP,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    attempts INTEGER DEFAULT 0,
    rows BIGINT,
    new BIGINT,
    revised BIGINT,
    removed BIGINT,
    unchanged BIGINT,
    error VARCHAR,
    sql VARCHAR,
    params VARCHAR,
    measures VARCHAR,
    schema_change VARCHAR,
    warnings VARCHAR,
    checks VARCHAR,
    duration_s DOUBLE,
    pid INTEGER,
    pid_started DOUBLE,
    known_at TIMESTAMP,
    settled_end TIMESTAMP,
    commit_seq BIGINT,
    definition VARCHAR
)
"""

_OTHER_TABLES = """
CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE SEQUENCE run_ids START 1;
CREATE SEQUENCE commit_seqs START 1;
CREATE TABLE run_log (
    run_id BIGINT NOT NULL,
    seq INTEGER NOT NULL,
    logged_at TIMESTAMP NOT NULL,
    level VARCHAR NOT NULL,
    message VARCHAR NOT NULL
);
CREATE TABLE probes (
    metric VARCHAR NOT NULL,
    bucket TIMESTAMP NOT NULL,
    run_id BIGINT NOT NULL,
    fingerprint VARCHAR NOT NULL
);
CREATE TABLE alerts (
    metric VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    state VARCHAR NOT NULL,
    since TIMESTAMP NOT NULL,
    message VARCHAR NOT NULL
);
"""


def create_schema(cur: duckdb.DuckDBPyConnection, team: bool = False) -> None:
    """Make the tables of a new, empty store (inside the caller's write transaction).

    A team store (DuckLake) has neither keys nor sequences: its ids come from sequences in its
    catalog database, and its writers take turns, so no key is ever written twice.
    """
    for ddl in (
        _OTHER_TABLES,
        _RUNS_TABLE,
        _VERSIONS_TABLE,
        _CURRENT_TABLE,
        _ARRIVALS_TABLE,
        _ARRIVAL_SUMS_TABLE,
    ):
        if team:
            ddl = re.sub(r"CREATE SEQUENCE [^;]*;", "", ddl.replace(" PRIMARY KEY", ""))
        cur.execute(ddl)
    cur.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])


def uses_as_of(sql: str | None) -> bool:
    """Whether a metric's SQL replays its source with ``$as_of``."""
    if not sql:
        return False
    try:
        statements = duckdb.extract_statements(sql)
        return any("as_of" in st.named_parameters for st in statements)
    except duckdb.Error:  # a pushdown query in the server's dialect
        bare = re.sub(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", " ", sql, flags=re.DOTALL)
        return re.search(r"\$as_of\b", bare) is not None


_VERSIONS_TABLE_2 = """
CREATE TABLE versions (
    metric VARCHAR NOT NULL,
    dims VARCHAR NOT NULL,
    measure VARCHAR NOT NULL,
    bucket TIMESTAMP NOT NULL,
    run_id BIGINT NOT NULL,
    value DOUBLE,
    removed BOOLEAN NOT NULL,
    partial BOOLEAN NOT NULL,
    known_at TIMESTAMP NOT NULL,
    exact VARCHAR
)
"""

# redefined: the version changed its value because the metric's definition changed (the first
# pull under a new definition that held its bucket), not because late data arrived
_VERSIONS_TABLE = _VERSIONS_TABLE_2.replace(
    "    exact VARCHAR\n)", "    exact VARCHAR,\n    redefined BOOLEAN\n)"
)

_CURRENT_TABLE = """
CREATE TABLE current (
    metric VARCHAR NOT NULL,
    dims VARCHAR NOT NULL,
    measure VARCHAR NOT NULL,
    bucket TIMESTAMP NOT NULL,
    value DOUBLE,
    removed BOOLEAN NOT NULL,
    partial BOOLEAN NOT NULL,
    run_id BIGINT NOT NULL,
    first_value DOUBLE,
    first_run BIGINT NOT NULL,
    versions INTEGER NOT NULL,
    known_at TIMESTAMP NOT NULL,
    exact VARCHAR,
    first_exact VARCHAR,
    first_known_at TIMESTAMP NOT NULL
)
"""


# every change that late data made to a value (a redefinition is not one), kept by each commit:
# what the advisor, the development and the nowcast read instead of every version. value and
# prev_value are the value after and before the change (a removal, or no value, as 0);
# prev_known_at is the known time of the last successful pull before it whose window held the
# bucket (NULL for none).
_ARRIVALS_TABLE = """
CREATE TABLE arrivals (
    metric VARCHAR NOT NULL,
    dims VARCHAR NOT NULL,
    measure VARCHAR NOT NULL,
    bucket TIMESTAMP NOT NULL,
    run_id BIGINT NOT NULL,
    known_at TIMESTAMP NOT NULL,
    value DOUBLE NOT NULL,
    prev_value DOUBLE NOT NULL,
    prev_known_at TIMESTAMP
)
"""

# the changes summed by what the advisor tells them apart by (their bucket, their known time and
# that of the pull before them, not their series): a few rows per bucket however many series
# a metric has. revisions: how many; magnitude: the sum of |value - prev_value|; signed: the
# sum of value - prev_value.
_ARRIVAL_SUMS_TABLE = """
CREATE TABLE arrival_sums (
    metric VARCHAR NOT NULL,
    measure VARCHAR NOT NULL,
    bucket TIMESTAMP NOT NULL,
    known_at TIMESTAMP NOT NULL,
    prev_known_at TIMESTAMP,
    revisions BIGINT NOT NULL,
    magnitude DOUBLE NOT NULL,
    signed DOUBLE NOT NULL
)
"""

# one number that orders (known time, run id) as the store orders versions
ORDER_KEY = "(epoch_us({known_at})::HUGEINT * 4294967296 + {run_id})"


def fill_arrivals(
    cur: duckdb.DuckDBPyConnection,
    metric: str | None = None,
    buckets: tuple[datetime, datetime] | None = None,
) -> None:
    """Add to ``arrivals`` (and their sums to ``arrival_sums``) the changes that the versions
    hold (of ``metric`` and of the buckets in ``buckets``, [start, end), when given: the caller
    has deleted those rows of both first).

    A change is a version after the first of its value whose value (a removal as 0) differs
    from the one before it in known-time order and that is not a redefinition; the pull before
    it is the successful run known last before it whose window holds its bucket on its grain.
    """
    where, runs_where = ["true"], ["true"]
    params: dict[str, object] = {}
    if metric is not None:
        where.append("metric = $metric")
        runs_where.append("metric = $metric")
        params["metric"] = metric
    if buckets is not None:
        where.append("bucket >= $b0 AND bucket < $b1")
        runs_where.append("window_start < $b1 AND window_end > $b0")
        params.update(b0=buckets[0], b1=buckets[1])
    value = "CASE WHEN removed THEN 0 ELSE coalesce(value, 0) END"
    step = "CAST('1 ' || grain AS INTERVAL)"
    cur.execute(
        f"""
        INSERT INTO arrivals
        WITH ch AS (
            SELECT metric, dims, measure, bucket, run_id, known_at, {value} AS value,
                   lag({value}) OVER w AS prev_value,
                   {ORDER_KEY.format(known_at="known_at", run_id="run_id")} AS key
            FROM versions
            WHERE {" AND ".join(where)}
            WINDOW w AS (PARTITION BY metric, bucket, dims, measure ORDER BY known_at, run_id)
            QUALIFY {value} <> lag({value}) OVER w AND NOT coalesce(redefined, false)
        ), c AS (
            SELECT metric, unnest(generate_series(window_start, window_end - {step}, {step}))
                       AS bucket,
                   known_at, {ORDER_KEY.format(known_at="known_at", run_id="id")} AS key
            FROM runs
            WHERE status = 'succeeded' AND known_at IS NOT NULL AND grain IS NOT NULL
              AND window_start < window_end AND {" AND ".join(runs_where)}
        )
        SELECT ch.metric, ch.dims, ch.measure, ch.bucket, ch.run_id, ch.known_at, ch.value,
               ch.prev_value, c.known_at
        FROM ch ASOF LEFT JOIN c
          ON ch.metric = c.metric AND ch.bucket = c.bucket AND ch.key > c.key
        ORDER BY ch.metric, ch.bucket  -- a read of a metric's latest buckets is a range read
    """,
        params,
    )
    sum_arrivals(cur, " AND ".join(where), params)


def sum_arrivals(
    cur: duckdb.DuckDBPyConnection, where: str, params: dict[str, object] | list[object]
) -> None:
    """Add to ``arrival_sums`` the sums of the ``arrivals`` rows that ``where`` picks."""
    cur.execute(
        f"""
        INSERT INTO arrival_sums
        SELECT metric, measure, bucket, known_at, prev_known_at, count(*),
               sum(abs(value - prev_value)), sum(value - prev_value)
        FROM arrivals WHERE {where}
        GROUP BY ALL
        ORDER BY metric, bucket
    """,
        params,
    )


def rebuild_current(cur: duckdb.DuckDBPyConnection) -> None:
    """``current`` from ``versions`` and the runs' settled spans, in known-time order."""
    cur.execute(f"""
        INSERT INTO current
        WITH v AS (
            SELECT metric, dims, measure, bucket,
                   arg_max({{'v': value, 'x': exact, 'r': removed, 'run': run_id, 'k': known_at}},
                           {VERSION_ORDER}) AS last,
                   arg_min({{'v': value, 'x': exact, 'run': run_id, 'k': known_at}},
                           {VERSION_ORDER}) AS first,
                   count(*) AS n
            FROM versions GROUP BY ALL
        )
        SELECT metric, dims, measure, bucket, CASE WHEN last.r THEN NULL ELSE last.v END,
               last.r, NOT EXISTS (SELECT 1 FROM runs s WHERE s.metric = v.metric
                                   AND s.status = 'succeeded' AND s.window_start <= v.bucket
                                   AND v.bucket < s.settled_end),
               last.run, first.v, first.run, n, last.k,
               CASE WHEN last.r THEN NULL ELSE last.x END, first.x, first.k
        FROM v
    """)


def _migrate_1_to_2(cur: duckdb.DuckDBPyConnection) -> None:
    """Knowledge time and exact values.

    A succeeded run's versions are known at its as-of when its SQL uses ``$as_of`` and at the
    moment it started otherwise; its settled span ends at the start of the bucket that holds
    that known time (or at its window's end). ``current`` is rebuilt in known-time order.
    """
    cur.execute("""
        ALTER TABLE runs ADD COLUMN known_at TIMESTAMP;
        ALTER TABLE runs ADD COLUMN settled_end TIMESTAMP;
        ALTER TABLE runs ADD COLUMN commit_seq BIGINT;
    """)
    texts = [r[0] for r in cur.execute("SELECT DISTINCT sql FROM runs").fetchall()]
    replaying = [t for t in texts if uses_as_of(t)]
    cur.execute(
        """
        UPDATE runs SET known_at = CASE WHEN list_contains($replaying, sql) THEN as_of
                                        ELSE started_at END
        WHERE status = 'succeeded' OR (status <> 'running' AND list_contains($replaying, sql))
        """,
        {"replaying": replaying},
    )
    # the runs committed in the order of their ids; a run settled the buckets of its window
    # that ended by its known time (date_trunc on the metric's wall-clock time is the bucket)
    cur.execute("""
        UPDATE runs SET commit_seq = id,
            settled_end = least(window_end, greatest(window_start, date_trunc(grain, known_at)))
        WHERE status = 'succeeded'
    """)
    row = cur.execute("SELECT coalesce(max(id), 0) + 1 FROM runs").fetchone()
    cur.execute(f"CREATE SEQUENCE commit_seqs START {int(row[0]) if row else 1}")
    cur.execute(_VERSIONS_TABLE_2.replace("TABLE versions", "TABLE versions_2"))
    cur.execute("""
        INSERT INTO versions_2
        SELECT v.metric, v.dims, v.measure, v.bucket, v.run_id, v.value, v.removed, v.partial,
               r.known_at, NULL
        FROM versions v JOIN runs r ON r.id = v.run_id
    """)
    cur.execute("DROP TABLE versions")
    cur.execute("ALTER TABLE versions_2 RENAME TO versions")
    cur.execute("DROP TABLE current")
    cur.execute(_CURRENT_TABLE)
    rebuild_current(cur)


def _migrate_2_to_3(cur: duckdb.DuckDBPyConnection) -> None:
    """Definition versions: each run records the version of its metric's definition, and each
    version whether it is a redefinition. Older runs have none (no value they made is taken
    as a redefinition)."""
    cur.execute("ALTER TABLE runs ADD COLUMN definition VARCHAR")
    cur.execute("ALTER TABLE versions ADD COLUMN redefined BOOLEAN")


# the order in which ``current`` is kept (by a migration and by a compaction): one metric's
# values lie together, so that DuckDB's zone maps make a read of one metric a range read, and
# within a metric by bucket, so that a pull's window is a range too
CURRENT_ORDER = "metric, bucket"


def cluster_current(cur: duckdb.DuckDBPyConnection) -> None:
    """Rewrite ``current`` in :data:`CURRENT_ORDER` (inside the caller's write transaction)."""
    cur.execute(f"CREATE TEMP TABLE current_in_order AS SELECT * FROM current ORDER BY {CURRENT_ORDER}")
    cur.execute("DELETE FROM current")
    cur.execute("INSERT INTO current SELECT * FROM current_in_order")
    cur.execute("DROP TABLE current_in_order")


def _migrate_3_to_4(cur: duckdb.DuckDBPyConnection) -> None:
    """The changes that late data made, kept from now on by each commit, filled from every
    version; ``current`` kept in metric order."""
    cur.execute(_ARRIVALS_TABLE)
    cur.execute(_ARRIVAL_SUMS_TABLE)
    fill_arrivals(cur)
    cluster_current(cur)


# Each entry upgrades the schema from its index + 1 to the next version.
MIGRATIONS: list[Callable[[duckdb.DuckDBPyConnection], None]] = [
    _migrate_1_to_2,
    _migrate_2_to_3,
    _migrate_3_to_4,
]

_TABLES = (
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    " AND table_catalog = current_database()"
)


def prepare(db: Database) -> None:
    """Make a new store's tables, or bring an older store up to this schema; a store opened
    for reading only must have this schema already."""
    try:
        _prepare(db)
    except duckdb.Error as exc:
        if is_damage(exc):
            raise damaged(db.name, str(exc)) from None
        raise


def _prepare(db: Database) -> None:
    if db.read_only:
        tables = {r[0] for r in db.read(_TABLES)}
        if "meta" not in tables:
            raise StoreError(f"{db.label} is not a Lookback store")
        found = db.read("SELECT value FROM meta WHERE key = 'schema_version'")
        if not found or int(found[0][0]) != SCHEMA_VERSION:
            raise StoreError(
                f"{db.label} has schema {found[0][0] if found else '?'}, "
                f"this version reads {SCHEMA_VERSION}; open it once where it "
                "can be written, so that it is upgraded"
            )
        return
    if "meta" in {r[0] for r in db.read(_TABLES)}:  # up to date: nothing to write
        found = db.read("SELECT value FROM meta WHERE key = 'schema_version'")
        if found and found[0][0] == str(SCHEMA_VERSION):
            return
    with db.write() as cur:
        tables = {r[0] for r in cur.execute(_TABLES).fetchall()}
        if not tables:
            create_schema(cur, team=db.team)
            return
        if "meta" not in tables:
            raise StoreError(f"{db.label} is a DuckDB file but not a Lookback store")
        version = _version(cur)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{db.label} was written by a newer Lookback GUI (schema {version}; "
                f"this version knows up to {SCHEMA_VERSION})"
            )
    # one transaction per step: DuckDB commits no transaction that alters a table it has
    # altered and written before
    while version < SCHEMA_VERSION:
        with db.write() as cur:
            version = _version(cur)  # another process may have taken the step meanwhile
            if version >= SCHEMA_VERSION:
                break
            MIGRATIONS[version - 1](cur)
            version += 1
            cur.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version)])


def _version(cur: duckdb.DuckDBPyConnection) -> int:
    row = cur.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0
