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

import duckdb

from lookback_gui.core.errors import StoreError
from lookback_gui.core.failures import is_damage
from lookback_gui.core.store.database import Database, damaged

SCHEMA_VERSION = 3

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
    for ddl in (_OTHER_TABLES, _RUNS_TABLE, _VERSIONS_TABLE, _CURRENT_TABLE):
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
_VERSIONS_TABLE = _VERSIONS_TABLE_2.replace("    exact VARCHAR\n)",
                                            "    exact VARCHAR,\n    redefined BOOLEAN\n)")

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
        """, {"replaying": replaying})
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


# Each entry upgrades the schema from its index + 1 to the next version.
MIGRATIONS: list[Callable[[duckdb.DuckDBPyConnection], None]] = [_migrate_1_to_2,
                                                                  _migrate_2_to_3]

_TABLES = ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
           " AND table_catalog = current_database()")


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
            raise StoreError(f"{db.label} has schema {found[0][0] if found else '?'}, "
                             f"this version reads {SCHEMA_VERSION}; open it once where it "
                             "can be written, so that it is upgraded")
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
