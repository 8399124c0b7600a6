"""The store's table and the object-storage keys of a store or a source: the settings they
hold, validated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lookback_gui.core.project.keys import keys_of
from lookback_gui.core.project.locate import Validator
from lookback_gui.core.project.model import DEFAULT_STORE
from lookback_gui.core.storage.dsn import parse_dsn
from lookback_gui.core.storage.store_config import STORE_TYPES, StoreConfig
from lookback_gui.core.storage.urls import STORAGE_KEYS, StorageConfig, is_url, storage_problem

_STORE_KEYS = keys_of("store")


def refuse_a_password(check: Validator, key_path: tuple[Any, ...], key: str, dsn: str) -> None:
    """A connection string in the project file never holds a password (``password=``,
    ``passwd=``, a URI's ``user:password@`` or ``?password=``: :func:`parse_dsn` reads them all)."""
    if parse_dsn(dsn).password_key is not None:
        raise check.fail(
            (*key_path, key),
            f"the {key} holds a password: secrets never go in the project file; "
            "set password_env to the name of an environment variable, or keep it in the keyring",
        )


def store_settings(check: Validator, table: Mapping[str, Any], directory: Path) -> StoreConfig:
    key_path = ("store",)
    check.known_keys(table, _STORE_KEYS, key_path)
    kind = check.string(table, "type", key_path) or "duckdb"
    if kind not in STORE_TYPES:
        raise check.fail(
            (*key_path, "type"), f"unknown store type '{kind}' (expected {', '.join(STORE_TYPES)})"
        )
    path = check.string(table, "path", key_path)
    catalog = check.string(table, "catalog", key_path)
    password_env = check.string(table, "password_env", key_path)
    data_path = check.string(table, "data_path", key_path)
    if kind == "duckdb":
        if path is not None and not path.strip():
            raise check.fail(
                (*key_path, "path"),
                f"the store's path is empty (leave the key out for {DEFAULT_STORE} beside the project file)",
            )
        for key, value in (("catalog", catalog), ("password_env", password_env), ("data_path", data_path)):
            if value is not None:
                raise check.fail(
                    (*key_path, key),
                    f"a local store takes a 'path', not a '{key}' (set type = \"ducklake\" for a team store)",
                )
        resolved = (directory / os.path.expanduser(path or DEFAULT_STORE)).resolve()
        return StoreConfig(type=kind, path=resolved)
    if path is not None:
        raise check.fail(
            (*key_path, "path"), "a team store (ducklake) takes a 'catalog' and a 'data_path', not a 'path'"
        )
    if not catalog:
        raise check.fail(
            key_path, "a team store (ducklake) needs a 'catalog': the PostgreSQL DSN of its catalog database"
        )
    if not data_path:
        raise check.fail(
            key_path,
            "a team store (ducklake) needs a 'data_path': the folder "
            "every member reaches, where its data files go",
        )
    refuse_a_password(check, key_path, "catalog", catalog)
    storage = storage_settings(check, table, key_path, data_path, "data_path")
    if "://" not in data_path:  # a folder, relative to the project file; else object storage
        data_path = str((directory / os.path.expanduser(data_path)).resolve())
    return StoreConfig(
        type=kind, catalog=catalog, password_env=password_env, data_path=data_path, storage=storage
    )


def storage_settings(
    check: Validator, table: Mapping[str, Any], key_path: tuple[Any, ...], path: str | None, path_key: str
) -> StorageConfig | None:
    """The object-storage keys of a source or team store (see core/storage/urls.py); None when it
    has none. They belong to a URL only."""
    given = sorted(key for key in STORAGE_KEYS if key in table)
    if not is_url(path):
        if given:
            raise check.fail(
                (*key_path, given[0]),
                f"{given[0]} is for object storage; the "
                f"{path_key} is not a URL (s3://, gs://, az://, https://)",
            )
        return None
    use_ssl = check.boolean(table, "use_ssl", key_path, True) if "use_ssl" in table else None
    storage = StorageConfig(
        access_key_id=check.string(table, "access_key_id", key_path),
        secret_env=check.string(table, "secret_env", key_path),
        endpoint=check.string(table, "endpoint", key_path),
        region=check.string(table, "region", key_path),
        url_style=check.string(table, "url_style", key_path),
        use_ssl=use_ssl,
        credential_chain=check.boolean(table, "credential_chain", key_path, False),
    )
    problem = storage_problem(storage, path or "")
    if problem:
        raise check.fail((*key_path, problem[0]), problem[1])
    if (
        problem is None
        and path
        and path.lower().startswith(("http://", "https://"))
        and any(c in path for c in "*?[")
    ):
        raise check.fail((*key_path, path_key), "a web address names one file; it cannot be a glob")
    return storage
