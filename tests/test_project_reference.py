"""The manual's project-file reference and the validator come from one table of keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lookback_gui.core.errors import ProjectError
from lookback_gui.core.project import parse as project_module
from lookback_gui.core.project import parse_project
from lookback_gui.core.project.keys import KEYS, Key, reference_markdown, tooltip

ROOT = Path(__file__).resolve().parents[1]

BASE = """\
[sources.shop]
type = "duckdb"
path = "shop.duckdb"

[sources.db]
type = "postgres"
dsn = "host=127.0.0.1 dbname=shop user=analyst"

[metrics.daily_orders]
source = "shop"
grain = "day"
lookback = "7d"
sql = "SELECT current_date AS bucket, 1 AS n"
"""

SAMPLES = {
    "string": '"x"',
    "boolean": "true",
    "number": "5",
    "duration": '"1h"',
    "integer": "2",
    "SQL": '"SELECT 1"',
    "table": "{}",
}


def _sample(key: Key) -> str:
    for word, value in SAMPLES.items():
        if key.kind.startswith(word) or word in key.kind:
            return value
    if "|" in key.kind:
        return f'"{key.kind.split(" | ")[0]}"'
    return '"x"'


def test_the_reference_in_docs_is_the_one_the_table_makes():
    written = (ROOT / "docs" / "project-file.md").read_text(encoding="utf-8")
    assert written == reference_markdown(), (
        "docs/project-file.md is out of date: python -m lookback_gui.core.project.keys > docs/project-file.md"
    )


def test_the_readme_links_the_reference():
    assert "docs/project-file.md" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "key",
    [k for k in KEYS if k.table in ("source", "metric", "check", "alert")],
    ids=lambda k: f"{k.table}.{k.name}",
)
def test_every_documented_key_is_accepted_where_the_reference_says(key: Key, tmp_path):
    value = _sample(key)
    if key.table == "source":
        table = "db" if key.only and "postgres" in key.only else "shop"
        text = BASE.replace(f"[sources.{table}]\n", f"[sources.{table}]\n{key.name} = {value}\n")
    elif key.table == "metric":
        text = (
            BASE + f"{key.name} = {value}\n"
            if key.name not in ("source", "grain", "lookback", "sql")
            else BASE
        )
    elif key.table == "check":
        text = BASE + f"\n[metrics.daily_orders.checks]\nc = {{ {key.name} = {value} }}\n"
    else:
        kind = key.only[0] if key.only else "failure"
        entry = f'kind = "{kind}"' + ("" if key.name == "kind" else f"\n{key.name} = {value}")
        text = BASE + f"\n[[metrics.daily_orders.alerts]]\n{entry}\n"
    try:
        parse_project(text, tmp_path / "lookback.toml")
    except ProjectError as exc:  # a wrong value or a missing partner key, never an unknown key
        assert "unknown key" not in str(exc) and "takes no" not in str(exc), str(exc)


def test_every_key_the_validator_reads_is_in_the_table():
    source = "".join(
        p.read_text(encoding="utf-8") for p in Path(project_module.__file__).parent.glob("parse*.py")
    )
    read = set(re.findall(r"check\.\w+\(\s*table,\s*\"(\w+)\"", source))
    documented = {k.name for k in KEYS}
    assert read and read <= documented, read - documented


def test_a_misspelt_key_gets_a_did_you_mean(tmp_path):
    with pytest.raises(ProjectError, match="unknown key 'lookbak' \\(did you mean 'lookback'\\?"):
        parse_project(BASE.replace("lookback =", "lookbak ="), tmp_path / "lookback.toml")


def test_a_key_has_a_tooltip():
    assert tooltip("metric", "settle_share").startswith("settle_share: a bucket is settled")
    assert "Default: 0.99." in tooltip("metric", "settle_share")


def test_the_object_storage_keys_are_those_the_storage_module_reads():
    from lookback_gui.core.project.keys import keys_of
    from lookback_gui.core.storage.urls import STORAGE_KEYS

    for table, only in (("source", "parquet"), ("store", "ducklake")):
        assert set(STORAGE_KEYS) <= keys_of(table, only=only)
    assert not set(STORAGE_KEYS) & keys_of("source", only="postgres")
