"""Where a project keeps its runs and versions: the ``[store]`` table of its project file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lookback_gui.core.storage.urls import StorageConfig

STORE_TYPES = ("duckdb", "ducklake")


@dataclass(frozen=True)
class StoreConfig:
    """Where a project keeps its runs and versions.

    Attributes:
        type: "duckdb" (a local file, the default) or "ducklake" (the team store).
        path: the local store file (absolute); None for a team store.
        catalog: the team store's catalog, a PostgreSQL DSN without a password.
        password_env: the environment variable that holds the catalog's password, if any.
        data_path: the folder (or object storage URL) of the team store's data files.
        storage: how to reach a data_path in object storage (None for a folder).
    """

    type: str = "duckdb"
    path: Path | None = None
    catalog: str | None = None
    password_env: str | None = None
    data_path: str | None = None
    storage: StorageConfig | None = None

    @property
    def team(self) -> bool:
        return self.type == "ducklake"

    def describe(self) -> str:
        """The store as messages name it: its file, or its catalog and data folder."""
        if self.team:
            return f"team store {self.catalog} (data in {self.data_path})"
        return str(self.path)
