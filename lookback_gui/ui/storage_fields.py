"""The object-storage fields of the source editor: the key's id, where its secret comes from
(an environment variable, or the OS keyring, written there by the editor), an S3-compatible
endpoint and region, and path-style requests (endpoint and path style also for ``gs://``).

They show while the source's path is a URL of object storage (``s3://``, ``gs://``, ``az://``);
the keys they edit are :data:`lookback_gui.core.storage.urls.STORAGE_KEYS`. A secret typed here goes
to the keyring under the user name :meth:`StorageConfig.keyring_user` gives, never to the file;
a connection test before saving hands it to DuckDB through a variable of the test's own.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from PySide6.QtWidgets import QCheckBox, QLineEdit

from lookback_gui.core.project import SourceConfig
from lookback_gui.core.storage.passwords import KEYRING_SERVICE
from lookback_gui.core.storage.urls import STORAGE_KEYS, StorageConfig, is_url, secret_type

TEST_SECRET_ENV = "LOOKBACK_EDITOR_TEST_SECRET"  # a connection test's own, never written


def storage_kind(path: str) -> str | None:
    """The kind of secret a path in object storage takes (``s3``, ``gcs``, ``azure``); None for
    a local path, a web address or an unknown scheme."""
    if not is_url(path):
        return None
    try:
        kind = secret_type(path)
    except ValueError:
        return None
    return None if kind == "http" else kind


class StorageFields:
    """The fields, filled from a source's storage keys.

    Attributes:
        access_key_id, secret_env, secret, endpoint, region: line edits (``secret`` is for
            the keyring and never written to the project file).
        path_style: ``url_style = "path"`` (MinIO, a local test server).
    """

    KEYS = ("access_key_id", "secret_env", "secret", "endpoint", "region", "url_style")

    def __init__(self, storage: StorageConfig | None):
        self._original = storage or StorageConfig()
        given = self._original
        self.access_key_id = QLineEdit(given.access_key_id or "", accessibleName="Access key id")
        self.secret_env = QLineEdit(given.secret_env or "", accessibleName="Secret environment variable")
        self.secret = QLineEdit(accessibleName="Secret for the keyring")
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret.setPlaceholderText("kept in the OS keyring, never in the project file")
        self.endpoint = QLineEdit(given.endpoint or "", accessibleName="Endpoint")
        self.endpoint.setPlaceholderText("the provider's; or host:port of an S3-compatible store")
        self.region = QLineEdit(given.region or "", accessibleName="Region")
        self.path_style = QCheckBox(
            'path-style requests (url_style = "path")', accessibleName="Path-style requests"
        )
        self.path_style.setChecked(given.url_style == "path")

    def widgets(self) -> dict[str, Any]:
        """The fields by the key they edit (``secret`` for the keyring)."""
        return {
            "access_key_id": self.access_key_id,
            "secret_env": self.secret_env,
            "secret": self.secret,
            "endpoint": self.endpoint,
            "region": self.region,
            "url_style": self.path_style,
        }

    def signals(self) -> list[Any]:
        return [
            self.access_key_id.textChanged,
            self.secret_env.textChanged,
            self.secret.textChanged,
            self.endpoint.textChanged,
            self.region.textChanged,
            self.path_style.toggled,
        ]

    def visible_keys(self, kind: str | None) -> set[str]:
        """The fields that a path of this kind takes (none for a local path)."""
        if kind is None:
            return set()
        if kind == "s3":
            return set(self.KEYS)
        if kind == "gcs":
            return {"access_key_id", "secret_env", "secret", "endpoint", "url_style"}
        return {"access_key_id", "secret_env", "secret"}

    def snapshot(self) -> tuple[Any, ...]:
        return (
            self.access_key_id.text(),
            self.secret_env.text(),
            self.secret.text(),
            self.endpoint.text(),
            self.region.text(),
            self.path_style.isChecked(),
        )

    def values(self, path: str) -> dict[str, Any]:
        """The storage keys to write for ``path`` (None deletes a key; use_ssl and
        credential_chain, which the editor does not show, stay as written)."""
        kind = storage_kind(path)
        if kind is None:
            return {key: None for key in STORAGE_KEYS}
        values: dict[str, Any] = {
            "access_key_id": self.access_key_id.text().strip() or None,
            "secret_env": self.secret_env.text().strip() or None,
        }
        if kind in ("s3", "gcs"):
            original = self._original.url_style
            values.update(
                endpoint=self.endpoint.text().strip() or None,
                region=(self.region.text().strip() or None) if kind == "s3" else None,
                url_style="path"
                if self.path_style.isChecked()
                else (original if original != "path" else None),
            )
        else:
            values.update(endpoint=None, region=None, url_style=None)
        return values

    def for_test(self, source: SourceConfig) -> tuple[SourceConfig, Mapping[str, str] | None]:
        """``source`` as a connection test reads it: a secret typed but not saved yet reaches
        DuckDB through a variable of the test's own environment."""
        secret = self.secret.text()
        if not secret or source.storage is None or source.storage.secret_env:
            return source, None
        storage = dataclasses.replace(source.storage, secret_env=TEST_SECRET_ENV)
        return (dataclasses.replace(source, storage=storage), {**os.environ, TEST_SECRET_ENV: secret})

    def secret_problem(self, path: str) -> str | None:
        """Why the typed secret cannot be kept, if it cannot."""
        if not self.secret.text() or storage_kind(path) is None:
            return None
        if not self.access_key_id.text().strip():
            return "give the access key id this secret belongs to"
        if self.secret_env.text().strip():
            return (
                "the secret comes from the secret variable; clear it to keep the secret in "
                "the keyring instead"
            )
        return None

    def keep_secret(self, path: str) -> None:
        """Write the typed secret to the OS keyring (raises when there is no keyring)."""
        kind = storage_kind(path)
        if not self.secret.text() or kind is None:
            return
        import keyring

        user = StorageConfig(access_key_id=self.access_key_id.text().strip()).keyring_user(kind)
        keyring.set_password(KEYRING_SERVICE, user, self.secret.text())
