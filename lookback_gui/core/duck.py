"""What every part that speaks to DuckDB needs: quoting, and extensions loaded offline."""

from __future__ import annotations

import duckdb


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load_named_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load the DuckDB extension ``name``, installing it first (offline, from its pip package)
    when it is not installed yet."""
    try:
        con.execute(f"LOAD {name}")
        return
    except duckdb.Error:
        pass
    import duckdb_extensions

    duckdb_extensions.import_extension(name, con=con)
    con.execute(f"LOAD {name}")
