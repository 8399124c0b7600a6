"""Every key the project file takes: the one table that the validator, the manual
(``docs/project-file.md``), ``lookback check``'s "did you mean" and the editors' tooltips use.

A key is accepted where this table lists it and nowhere else, so the manual cannot promise a
key the program refuses, nor the program take one the manual never mentions.

    python -m lookback_gui.core.project.keys > docs/project-file.md
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    """One key of one kind of table.

    Attributes:
        table: which table takes it (a name of TABLES).
        name: the key as written in the file.
        kind: what its value is, in words ("string", "duration", ...).
        default: what holds when it is left out ("" when it is required or has none).
        meaning: one line saying what it does.
        only: the source types or alert kinds it belongs to (empty: all of them).
        required: whether the table needs it.
    """

    table: str
    name: str
    kind: str
    default: str
    meaning: str
    only: tuple[str, ...] = ()
    required: bool = False


# the tables, in the order the manual lists them, with how each is written
TABLES = {
    "project": "the top level",
    "store": "[store]",
    "source": "[sources.NAME]",
    "metric": "[metrics.NAME]",
    "check": "[metrics.NAME.checks] — NAME = { ... }",
    "alert": "[[metrics.NAME.alerts]]",
    "dashboard": "[dashboard]",
    "dashboard chart": "[dashboard] charts = [{ ... }, ...]",
}

_SERVERS = ("postgres", "mysql")
_FILES = ("duckdb", "sqlite", "parquet", "csv", "iceberg", "delta")

# how a path or data_path in object storage is reached (core/storage/urls.py)
_STORAGE = (
    ("access_key_id", "string", "", "the access key's id (S3, GCS HMAC or an Azure account name)"),
    (
        "secret_env",
        "variable name",
        "the keyring (user s3:ID, gcs:ID or azure:ID)",
        "the environment variable holding the key's secret",
    ),
    (
        "endpoint",
        "host[:port]",
        "the provider's",
        "an S3-compatible store's address, or GCS's at an endpoint of one's own (not az://)",
    ),
    ("region", "string", "us-east-1", "the S3 region (s3:// only)"),
    ("url_style", "path | vhost", "vhost", "how bucket names go into S3 (and gs://) requests"),
    ("use_ssl", "boolean", "true", "https to the endpoint"),
    (
        "credential_chain",
        "boolean",
        "false",
        "use the environment's credentials (AWS profile, instance role, ...) instead of a key",
    ),
)

KEYS: tuple[Key, ...] = (
    Key("project", "store", "table", "a local store", "where runs and versions are kept"),
    Key("project", "sources", "tables", "", "the named connections metrics read"),
    Key("project", "metrics", "tables", "", "the pull definitions"),
    Key(
        "project",
        "dashboard",
        "table",
        "one chart per metric",
        "the charts of the app's Dashboard tab (the app writes it)",
    ),
    Key(
        "store",
        "type",
        "duckdb | ducklake",
        "duckdb",
        "a local DuckDB file, or a team store (DuckLake, catalog in PostgreSQL)",
    ),
    Key(
        "store",
        "path",
        "path",
        "lookback.duckdb",
        "the local store's file, relative to the project file",
        only=("duckdb",),
    ),
    Key(
        "store",
        "catalog",
        "PostgreSQL DSN",
        "",
        "the team store's catalog database, without a password",
        only=("ducklake",),
    ),
    Key(
        "store",
        "password_env",
        "variable name",
        "the keyring (user ducklake:CATALOG)",
        "the environment variable holding the catalog's password",
        only=("ducklake",),
    ),
    Key(
        "store",
        "data_path",
        "folder or URL",
        "",
        "where the team store's Parquet files go: a folder every member reaches, or object storage",
        only=("ducklake",),
    ),
    Key(
        "source",
        "type",
        "duckdb | sqlite | postgres | mysql | parquet | csv | iceberg | delta",
        "",
        "what kind of source it is",
        required=True,
    ),
    Key(
        "source",
        "path",
        "path, glob or URL",
        "",
        "the file(s), relative to the project file, or an s3://, gs://, az:// or https:// URL; "
        "a glob reads every match; for iceberg and delta the table's folder",
        only=_FILES,
    ),
    Key(
        "source",
        "snapshot_as_of",
        "boolean",
        "false",
        "read the table as it was at the pull's as-of (its versions known then: replay works "
        "without an arrival column)",
        only=("iceberg", "delta"),
    ),
    Key(
        "source",
        "dsn",
        "connection string",
        "",
        "key=value or URI; no password (a MySQL DSN names its database)",
        only=_SERVERS,
    ),
    Key(
        "source",
        "password_env",
        "variable name",
        "the keyring (user TYPE:DSN)",
        "the environment variable holding the password",
        only=_SERVERS,
    ),
    Key(
        "source",
        "pushdown",
        "boolean",
        "false",
        "run the metric's SQL on the server itself, in its dialect, as a verified read-only role",
        only=_SERVERS,
    ),
    Key(
        "source",
        "trust_role",
        "boolean",
        "false",
        "accept a pushdown role that can do more than read its own database (check warns)",
        only=_SERVERS,
    ),
    Key(
        "source",
        "concurrency",
        "integer, 1 to 64",
        "1",
        "how many pulls may read the source at once (backfill --workers is capped by it)",
    ),
    *(
        Key(table, *storage, only=only)
        for table, only in (("source", _FILES), ("store", ("ducklake",)))
        for storage in _STORAGE
    ),
    Key("metric", "source", "source name", "", "the source the SQL reads", required=True),
    Key(
        "metric",
        "grain",
        "minute | hour | day | week | month",
        "",
        "the bucket size (weeks start on Monday)",
        required=True,
    ),
    Key(
        "metric",
        "lookback",
        "duration or integer",
        "",
        'how far back each pull re-computes: "7d", "36h", "4w", or a number of buckets',
        required=True,
    ),
    Key(
        "metric",
        "sql",
        "SQL",
        "",
        "the query: a bucket column, dimensions and measures, inside $window_start and $window_end",
        required=True,
    ),
    Key(
        "metric",
        "schedule",
        "cron (5 fields)",
        "manual only",
        "when the scheduler pulls, in the metric's time zone",
    ),
    Key("metric", "every", "duration", "manual only", "pull at this interval instead of a cron"),
    Key("metric", "timezone", "IANA name", "UTC", "the zone of the buckets and the schedule"),
    Key("metric", "description", "string", "", "a sentence shown beside the metric in the app"),
    Key(
        "metric",
        "complete_buckets_only",
        "boolean",
        "false",
        "end the window before the bucket that holds now, so no pull sees a partial bucket",
    ),
    Key(
        "metric",
        "allow_empty",
        "boolean",
        "false",
        "accept an empty result (else it fails the run: an empty answer is more often an outage)",
    ),
    Key(
        "metric",
        "measures",
        "list of column names",
        "the numeric columns",
        "which result columns are measures",
    ),
    Key(
        "metric",
        "dimensions",
        "list of column names",
        "the other columns",
        "which result columns are dimensions",
    ),
    Key(
        "metric", "retries", "integer, 0 to 20", "3", "retries of an unreachable source (0: one attempt only)"
    ),
    Key("metric", "retry_base", "duration", "2s", "the first retry's delay (it doubles, with jitter)"),
    Key("metric", "retry_max", "duration", "5m", "the longest delay between retries"),
    Key(
        "metric",
        "audit_every",
        "duration",
        "no audits",
        "a scheduled deep pull over audit_factor times the lookback (trigger audit)",
    ),
    Key("metric", "audit_factor", "integer, 2 or more", "4", "how many lookbacks an audit spans"),
    Key(
        "metric",
        "change_probe",
        "SQL (a SELECT)",
        "",
        "a cheap query of bucket and fingerprint; the SQL then runs only from the first "
        "bucket whose fingerprint changed",
    ),
    Key(
        "metric",
        "settle_share",
        "number above 0, at most 1",
        "0.99",
        "a bucket is settled once this share of its final value has arrived, by the "
        "development (advise, nowcast, chart and alerts)",
    ),
    Key("metric", "checks", "table of checks", "", "quality checks run before a run commits"),
    Key("metric", "alerts", "array of tables", "", "alert rules evaluated after every run"),
    Key("check", "measure", "measure name", "every measure", "the measure min and max apply to"),
    Key("check", "min", "number", "", "every value of the measure is at least this"),
    Key("check", "max", "number", "", "every value of the measure is at most this"),
    Key(
        "check",
        "row_change_pct",
        "number",
        "",
        "the row count may change by at most this % from the previous run",
    ),
    Key("check", "revision_pct", "number", "", "the largest revision of the run may be at most this %"),
    Key(
        "check",
        "severity",
        "error | warn",
        "error",
        "error fails the run before it commits; warn records a warning",
    ),
    Key(
        "alert",
        "kind",
        "threshold | restatement | freshness | failure",
        "",
        "what the rule watches",
        required=True,
    ),
    Key(
        "alert",
        "name",
        "string",
        "KIND#POSITION (restatement#2)",
        "how outputs and alerts --try name the rule",
    ),
    Key("alert", "measure", "measure name", "", "the measure it judges", only=("threshold", "restatement")),
    Key("alert", "above", "number", "", "fires when the value is above this", only=("threshold",)),
    Key("alert", "below", "number", "", "fires when the value is below this", only=("threshold",)),
    Key(
        "alert",
        "judge",
        "expected | settled | latest",
        "expected",
        "which value a threshold judges: a provisional bucket by its nowcast (fires only when "
        "the whole 80 % interval is beyond the bound), the newest settled bucket, or the newest "
        "complete bucket as it stands",
        only=("threshold",),
    ),
    Key(
        "alert",
        "series",
        "table of dimension values",
        "every series",
        'only this series, like { country = "DE" }',
        only=("threshold", "restatement"),
    ),
    Key(
        "alert",
        "older_than",
        "integer (buckets)",
        "",
        "a restatement: a revision of a bucket at least this many buckets old",
        only=("restatement",),
    ),
    Key("alert", "change_pct", "number", "0", "a restatement: of at least this %", only=("restatement",)),
    Key(
        "alert",
        "max_age",
        "duration",
        "",
        "fires when the newest successful run is older",
        only=("freshness",),
    ),
    Key(
        "alert",
        "command",
        "command line",
        "",
        "run on every firing and resolving, without a shell, the alert as JSON on stdin",
    ),
    Key("dashboard", "charts", "array of tables", "one chart per metric", "the small charts, in order"),
    Key("dashboard", "columns", "integer, 1 to 12", "2", "how many charts a row holds"),
    Key("dashboard chart", "metric", "metric name", "", "the metric charted", required=True),
    Key("dashboard chart", "measure", "measure name", "the metric's first measure", "the measure charted"),
    Key(
        "dashboard chart",
        "series",
        "table of dimension values",
        "the largest series",
        'the series charted, like { country = "DE" }',
    ),
)


def keys_of(table: str, only: str | None = None) -> set[str]:
    """The names of the keys ``table`` takes (those that belong to ``only`` when given)."""
    if table not in TABLES:
        raise KeyError(table)
    return {k.name for k in KEYS if k.table == table and (only is None or not k.only or only in k.only)}


def key(table: str, name: str) -> Key | None:
    return next((k for k in KEYS if k.table == table and k.name == name), None)


def did_you_mean(name: str, table: str) -> str | None:
    """The known key of ``table`` that ``name`` most likely misspells, if any is close."""
    close = difflib.get_close_matches(name, sorted(keys_of(table)), n=1, cutoff=0.6)
    return close[0] if close else None


def tooltip(table: str, name: str) -> str:
    """What an editor says about a key when hovered: its meaning and default."""
    found = key(table, name)
    if found is None:
        return ""
    default = f" Default: {found.default}." if found.default else ""
    return f"{name}: {found.meaning}.{default}"


def reference_markdown() -> str:
    """The manual's project-file reference, made from the table."""
    lines = [
        "# The project file: every key",
        "",
        "This page is generated from the validator's own table of keys",
        "(`lookback_gui/core/project/keys.py`): `python -m lookback_gui.core.project.keys >",
        "docs/project-file.md`. A test fails when it and the program disagree.",
        "",
        'Durations are written like `"90s"`, `"15m"`, `"36h"`, `"7d"`, `"4w"`.',
        "Paths are relative to the project file. Secrets never go in the file.",
    ]
    for table, title in TABLES.items():
        lines += [
            "",
            f"## {title}",
            "",
            "| key | value | default | for | does |",
            "| --- | --- | --- | --- | --- |",
        ]
        for k in KEYS:
            if k.table != table:
                continue
            default = "required" if k.required else (k.default or "—")
            only = ", ".join(k.only) if k.only else "all"
            cells = (f"`{k.name}`", k.kind, default, only, k.meaning)
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
