"""Object storage as the project file names it: URLs (``s3://``, ``gs://``, ``az://``,
``https://``) and the keys that say how to reach them.

A source (or the team store's ``data_path``) in object storage takes these keys beside its path:

- ``access_key_id``: the key's id (S3, or a GCS HMAC key; for ``az://`` the storage account);
  its secret comes from the environment variable named by ``secret_env``, else the OS keyring
  (under ``s3:ID``, ``gcs:ID`` or ``azure:ID``) — never from the project file;
- ``endpoint``, ``region``, ``url_style`` (``path`` or ``vhost``), ``use_ssl``: for
  S3-compatible stores (MinIO, Ceph, R2, a local test server); ``endpoint``, ``url_style`` and
  ``use_ssl`` also for ``gs://`` (a Private Service Connect endpoint, an S3-compatible test
  server: DuckDB reads GCS through its S3-compatible XML API with an HMAC key);
- ``credential_chain = true``: the environment's default chain (AWS profile and environment
  variables, instance roles; Azure's CLI and managed identities) instead of a key.

Nothing here talks to DuckDB (:mod:`lookback_gui.core.storage.objectstore` does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STORAGE_KEYS = frozenset(
    {"access_key_id", "secret_env", "endpoint", "region", "url_style", "use_ssl", "credential_chain"}
)
URL_STYLES = ("path", "vhost")
# the URL schemes a path may start with, and the kind of DuckDB secret each one takes
_SCHEMES = {
    "s3": "s3",
    "s3a": "s3",
    "s3n": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "azure": "azure",
    "abfss": "azure",
    "https": "http",
    "http": "http",
}
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_GLOB = re.compile(r"[*?\[{]")


def url_scheme(path: str | None) -> str | None:
    """The scheme of ``path`` in lower case when it is a URL (``s3``), else None."""
    match = _URL.match(path or "")
    return match.group(1).lower() if match else None


def is_url(path: str | None) -> bool:
    """Whether ``path`` names object storage or a web address rather than a local file."""
    return url_scheme(path) is not None


def secret_type(path: str) -> str:
    """The kind of DuckDB secret that ``path`` takes: ``s3``, ``gcs``, ``azure`` or ``http``.

    Raises ValueError for a scheme DuckDB cannot read.
    """
    scheme = url_scheme(path)
    if scheme not in _SCHEMES:
        raise ValueError(f"unknown URL scheme '{scheme}://' (expected s3://, gs://, az:// or https://)")
    return _SCHEMES[scheme]


def has_glob(path: str) -> bool:
    return _GLOB.search(path) is not None


def url_prefix(path: str) -> str:
    """The part of a URL before its first wildcard, cut back to a folder (``s3://b/p/``): the
    prefix a source's secret is scoped to and its objects are listed under."""
    match = _GLOB.search(path)
    head = path[: match.start()] if match else path
    if match or head.endswith("/"):
        return head[: head.rfind("/") + 1]
    return head


def without_query(path: str) -> str:
    return path.split("?", 1)[0]


@dataclass(frozen=True)
class StorageConfig:
    """How to reach a source's (or the team store's) object storage.

    Attributes:
        access_key_id: the key's id; None for no key (public data or the credential chain).
        secret_env: the environment variable that holds the key's secret, if any (else the
            keyring).
        endpoint: host[:port] of an S3-compatible store (or of GCS's XML API); None for the
            provider's own.
        region: the bucket's region.
        url_style: ``path`` or ``vhost`` (None: DuckDB's default).
        use_ssl: False for a plain-HTTP endpoint (None: DuckDB's default, True).
        credential_chain: use the environment's default credential chain.
    """

    access_key_id: str | None = None
    secret_env: str | None = None
    endpoint: str | None = None
    region: str | None = None
    url_style: str | None = None
    use_ssl: bool | None = None
    credential_chain: bool = False

    def keyring_user(self, kind: str) -> str:
        """The keyring user name under which the key's secret is kept (``s3:ID``)."""
        return f"{kind}:{self.access_key_id}"


def storage_problem(storage: StorageConfig, path: str) -> tuple[str, str] | None:
    """What is wrong with these keys for ``path``, as (key, reason); None when nothing is."""
    try:
        kind = secret_type(path)
    except ValueError as exc:
        return "path", str(exc)
    if kind == "http":
        for key in ("access_key_id", "secret_env", "endpoint", "region", "url_style", "credential_chain"):
            if getattr(storage, key) not in (None, False):
                return key, f"an {url_scheme(path)}:// address is read as it is; it takes no {key}"
        return None
    if storage.credential_chain and storage.secret_env:
        return "credential_chain", (
            "credential_chain uses the environment's credentials; it takes no secret_env"
        )
    if storage.secret_env and not storage.access_key_id:
        return "secret_env", "secret_env holds the secret of a key: set access_key_id too"
    if kind != "s3" and storage.region is not None:
        return "region", "region is for S3 and S3-compatible stores (s3://)"
    if kind == "azure":
        for key in ("endpoint", "url_style"):
            if getattr(storage, key) is not None:
                return key, f"{key} is for S3-compatible stores and GCS (s3://, gs://)"
    if storage.url_style is not None and storage.url_style not in URL_STYLES:
        return "url_style", f"url_style is 'path' or 'vhost', not '{storage.url_style}'"
    if storage.endpoint is not None and (
        "/" in storage.endpoint.split("://", 1)[-1].rstrip("/") or not storage.endpoint.strip()
    ):
        return "endpoint", "the endpoint is a host[:port] (with http:// or https:// if you like)"
    return None
