"""The project file: sources and metrics in TOML, loaded, validated and edited in place.

Loading refuses a broken file as a whole with the file, the line and the key of the first mistake.
Editing goes through :class:`ProjectDocument`, which keeps the user's comments and layout
(tomlkit) and writes the file atomically.

The package's parts, each in the file named after it:

- ``model``: the frozen records a loaded project is made of, and the file's vocabulary;
- ``keys``: the one table of every key the file takes (the manual and the validator use it);
- ``locate`` and ``parse``: loading and validating a file, each table in a module of its own
  (``parse_store``, ``parse_sources``, ``parse_metric``, ``parse_rules``);
- ``document``: editing a file in place;
- ``definitions`` and ``rename``: a metric's definition over time, and renaming a metric or a
  source in the file and the store together.

Imports the timing, storage and store-config modules only; everything that runs pulls imports it.
"""

from lookback_gui.core.project.document import ProjectDocument, sql_string, write_atomically
from lookback_gui.core.project.model import (
    DEFAULT_PROJECT,
    DEFAULT_STORE,
    FILE_SOURCE_TYPES,
    JUDGES,
    SERVER_SOURCE_TYPES,
    SOURCE_TYPES,
    AlertRule,
    CheckConfig,
    Dashboard,
    DashboardChart,
    MetricConfig,
    Project,
    SourceConfig,
)
from lookback_gui.core.project.parse import load_project, parse_project

__all__ = [
    "DEFAULT_PROJECT",
    "DEFAULT_STORE",
    "FILE_SOURCE_TYPES",
    "JUDGES",
    "SERVER_SOURCE_TYPES",
    "SOURCE_TYPES",
    "AlertRule",
    "CheckConfig",
    "Dashboard",
    "DashboardChart",
    "MetricConfig",
    "Project",
    "ProjectDocument",
    "SourceConfig",
    "load_project",
    "parse_project",
    "sql_string",
    "write_atomically",
]
