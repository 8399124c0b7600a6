"""A source's table: its type and where it is read from, validated."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lookback_gui.core.project.keys import keys_of
from lookback_gui.core.project.locate import Validator
from lookback_gui.core.project.model import (
    FILE_SOURCE_TYPES,
    MAX_CONCURRENCY,
    SERVER_SOURCE_TYPES,
    SOURCE_TYPES,
    SourceConfig,
)
from lookback_gui.core.project.parse_store import refuse_a_password, storage_settings
from lookback_gui.core.storage.dsn import parse_dsn
from lookback_gui.core.storage.urls import is_url

_SOURCE_KEYS = keys_of("source")
# what a source's or a metric's name may be
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def source_settings(
    check: Validator, name: str, table: Mapping[str, Any], key_path: tuple[Any, ...], directory: Path
) -> SourceConfig:
    if not NAME.match(name):
        raise check.fail(key_path, "a source name takes letters, digits, '_' and '-' only")
    check.known_keys(table, _SOURCE_KEYS, key_path)
    kind = check.string(table, "type", key_path, required=True)
    if kind not in SOURCE_TYPES:
        raise check.fail(
            (*key_path, "type"), f"unknown source type '{kind}' (expected {', '.join(SOURCE_TYPES)})"
        )
    path = check.string(table, "path", key_path)
    dsn = check.string(table, "dsn", key_path)
    password_env = check.string(table, "password_env", key_path)
    pushdown = check.boolean(table, "pushdown", key_path, False)
    trust_role = check.boolean(table, "trust_role", key_path, False)
    concurrency = check.integer(table, "concurrency", key_path, minimum=1, maximum=MAX_CONCURRENCY) or 1
    snapshot_as_of = check.boolean(table, "snapshot_as_of", key_path, False)
    if snapshot_as_of and kind not in ("iceberg", "delta"):
        raise check.fail(
            (*key_path, "snapshot_as_of"),
            "snapshot_as_of reads an Iceberg or "
            f"Delta table as it was at the pull's as-of; a {kind} source keeps no "
            "snapshots",
        )
    storage = storage_settings(check, table, key_path, path, "path")
    if pushdown and kind not in SERVER_SOURCE_TYPES:
        raise check.fail(
            (*key_path, "pushdown"),
            f"pushdown runs the SQL on a postgres or mysql server; a {kind} source is read by DuckDB itself",
        )
    if trust_role and kind not in SERVER_SOURCE_TYPES:
        raise check.fail(
            (*key_path, "trust_role"),
            f"trust_role accepts the role of a postgres or mysql server; a {kind} source has none",
        )
    if kind in FILE_SOURCE_TYPES:
        if not path:
            raise check.fail(key_path, f"a {kind} source needs a 'path'")
        if dsn is not None:
            raise check.fail((*key_path, "dsn"), f"a {kind} source takes a 'path', not a 'dsn'")
        if password_env is not None:
            raise check.fail((*key_path, "password_env"), f"a {kind} source has no password")
        if is_url(path) and kind in ("duckdb", "sqlite"):
            raise check.fail(
                (*key_path, "path"),
                f"a {kind} source is a file on this computer; "
                "object storage holds parquet, csv, iceberg or delta sources",
            )
        resolved = path if is_url(path) else str(directory / os.path.expanduser(path))
        return SourceConfig(
            name=name,
            type=kind,
            path=path,
            resolved_path=resolved,
            concurrency=concurrency,
            storage=storage,
            snapshot_as_of=snapshot_as_of,
        )
    if dsn is None:
        raise check.fail(key_path, f"a {kind} source needs a 'dsn'")
    if path is not None:
        raise check.fail((*key_path, "path"), f"a {kind} source takes a 'dsn', not a 'path'")
    refuse_a_password(check, key_path, "dsn", dsn)
    if kind == "mysql" and parse_dsn(dsn).database is None:
        raise check.fail(
            (*key_path, "dsn"),
            "a mysql dsn must name its database (database=NAME, or "
            "mysql://user@host:3306/NAME): the metric SQL reads that one only",
        )
    return SourceConfig(
        name=name,
        type=kind,
        dsn=dsn,
        password_env=password_env,
        pushdown=pushdown,
        concurrency=concurrency,
        trust_role=trust_role,
    )
