"""Object storage through DuckDB: the extensions (installed offline from their pip packages),
credentials handed over as DuckDB secrets, and listing what a URL or glob matches.

A key's secret reaches DuckDB only inside ``CREATE SECRET``; it is never part of a message (a
failed ``CREATE SECRET`` is reported without DuckDB's text, which could quote the statement),
of the store, or of the project file. What the project file says is in
:mod:`lookback_gui.core.storage.urls`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import duckdb

from lookback_gui.core.duck import load_named_extension, quote_literal
from lookback_gui.core.errors import LookbackError, PullError
from lookback_gui.core.storage.passwords import keyring_get
from lookback_gui.core.storage.urls import StorageConfig, has_glob, is_url, secret_type, url_prefix

_EXTENSIONS = {"s3": ("httpfs",), "gcs": ("httpfs",), "http": ("httpfs",), "azure": ("azure",)}


def load_storage_extensions(
    con: duckdb.DuckDBPyConnection, url: str, storage: StorageConfig | None = None
) -> None:
    """Load what DuckDB needs to read ``url`` (httpfs, azure; aws for the credential chain)."""
    kind = secret_type(url)
    names = list(_EXTENSIONS[kind])
    if storage is not None and storage.credential_chain and kind in ("s3", "gcs"):
        names.append("aws")
    for name in names:
        load_named_extension(con, name)


def key_secret(
    storage: StorageConfig,
    kind: str,
    owner: str,
    environ: Mapping[str, str] | None = None,
    error: type[LookbackError] = PullError,
) -> str | None:
    """The secret of the storage's key: from ``secret_env``, else the OS keyring; None when
    there is no key (public data, the credential chain) or the keyring holds none."""
    if not storage.access_key_id or storage.credential_chain:
        return None
    env = os.environ if environ is None else environ
    if storage.secret_env:
        if storage.secret_env not in env:  # retrying in this process cannot set it
            raise error(f"{owner}: the environment variable {storage.secret_env} (secret_env) is not set")
        return env[storage.secret_env]
    return keyring_get(storage.keyring_user(kind))


def create_secret(
    con: duckdb.DuckDBPyConnection,
    name: str,
    url: str,
    storage: StorageConfig | None,
    owner: str,
    environ: Mapping[str, str] | None = None,
    error: type[LookbackError] = PullError,
) -> None:
    """Load the extensions for ``url`` and hand its credentials to DuckDB as the secret
    ``name``, scoped to the URL's prefix."""
    storage = storage or StorageConfig()
    try:
        load_storage_extensions(con, url, storage)
    except (duckdb.Error, ImportError) as exc:
        raise error(
            f"{owner}: DuckDB's extension for {url} cannot be loaded ({str(exc).splitlines()[0]})"
        ) from None
    kind = secret_type(url)
    if kind == "http":
        return
    secret = key_secret(storage, kind, owner, environ, error)
    if storage.access_key_id and not storage.credential_chain and secret is None:
        raise error(
            f"{owner}: no secret for the key {storage.access_key_id}: set secret_env to "
            "the name of an environment variable that holds it, or keep it in the "
            f"keyring under '{storage.keyring_user(kind)}'"
        )
    options = [f"TYPE {kind}", f"SCOPE {quote_literal(url_prefix(url))}"]
    if storage.credential_chain:
        options.append("PROVIDER credential_chain")
        if kind == "azure" and storage.access_key_id:
            options.append(f"ACCOUNT_NAME {quote_literal(storage.access_key_id)}")
    elif kind == "azure":
        if secret is not None:
            options.append(
                "CONNECTION_STRING "
                + quote_literal(f"AccountName={storage.access_key_id};AccountKey={secret}")
            )
        elif storage.access_key_id:
            options.append(f"ACCOUNT_NAME {quote_literal(storage.access_key_id)}")
    elif secret is not None:
        options += [f"KEY_ID {quote_literal(storage.access_key_id or '')}", f"SECRET {quote_literal(secret)}"]
    if kind in ("s3", "gcs"):  # GCS: its S3-compatible XML API, at an endpoint of one's own
        endpoint, use_ssl = storage.endpoint, storage.use_ssl
        if endpoint and "://" in endpoint:
            scheme, endpoint = endpoint.split("://", 1)
            use_ssl = scheme.lower() == "https" if use_ssl is None else use_ssl
        if endpoint:
            options.append(f"ENDPOINT {quote_literal(endpoint.rstrip('/'))}")
        if storage.region:
            options.append(f"REGION {quote_literal(storage.region)}")
        if storage.url_style:
            options.append(f"URL_STYLE {quote_literal(storage.url_style)}")
        if use_ssl is not None:
            options.append(f"USE_SSL {'true' if use_ssl else 'false'}")
    try:
        con.execute(f"CREATE OR REPLACE SECRET {name} ({', '.join(options)})")
    except duckdb.Error:  # its message could quote the statement: not repeated
        reason = (
            "the credential chain found no credentials"
            if storage.credential_chain
            else ("does the secret hold a control character?")
        )
        raise error(
            f"{owner}: the credentials for {url_prefix(url)} could not be handed to DuckDB ({reason})"
        ) from None


def list_objects(con: duckdb.DuckDBPyConnection, url: str) -> list[str]:
    """The objects (or local files) that ``url`` (a URL, path or glob) names, sorted; [] when
    none exists.

    An ``https://`` address cannot be listed: it is returned as it is (a missing one fails
    when it is read, with DuckDB's message naming it).
    """
    if is_url(url) and secret_type(url) == "http":
        return [url]
    if has_glob(url):
        rows = con.execute("SELECT file FROM glob(?)", [url]).fetchall()
        return sorted(str(row[0]) for row in rows if not str(row[0]).endswith("/"))
    # glob() returns a plain name as it is: list the objects that start with it instead
    rows = con.execute("SELECT file FROM glob(?)", [url + "*"]).fetchall()
    return [url] if any(str(row[0]) == url for row in rows) else []
