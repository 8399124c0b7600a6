"""History and revisions as the command line prints them (JSON, CSV), written by DuckDB.

A store a year old holds millions of values: building a Python object per row to print them
costs tens of seconds and gigabytes. Here DuckDB turns each row into its line of output text
(in the forms :mod:`jsonout` documents: exact integers and DECIMALs, ``"NaN"``/``"Infinity"``/
``"-Infinity"`` for a float that is not a number, ISO 8601 timestamps without offset), and the
lines are fetched and written in batches, so memory stays flat whatever the size.

The output is first written to a spool file while the store is held, and copied to the caller's
stream after the store is let go: a slow reader of the output (a pager, a pipe) never keeps
other processes waiting for the store.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO

from lookback_gui.core.store import Store

BATCH_ROWS = 20_000

Params = Sequence[Any] | Mapping[str, Any]


def _iso(column: str) -> str:
    """SQL: a TIMESTAMP as Python's ``isoformat()`` writes it (microseconds only when set)."""
    return (f"CASE WHEN epoch_us({column}) % 1000000 = 0"
            f" THEN strftime({column}, '%Y-%m-%dT%H:%M:%S')"
            f" ELSE strftime({column}, '%Y-%m-%dT%H:%M:%S.%f') END")


def _json_time(column: str) -> str:
    return f"CASE WHEN {column} IS NULL THEN 'null' ELSE '\"' || {_iso(column)} || '\"' END"


def _number_text(value: str, exact: str, nan: str, inf: str, ninf: str, null: str) -> str:
    """SQL: a stored value as text: its exact text where it has one, a whole float below 2**53
    as an integer, any other float in its shortest round-trip form."""
    return (f"CASE WHEN {exact} IS NOT NULL THEN {exact}"
            f" WHEN {value} IS NULL THEN {null}"
            f" WHEN isnan({value}) THEN {nan}"
            f" WHEN isinf({value}) THEN CASE WHEN {value} > 0 THEN {inf} ELSE {ninf} END"
            f" WHEN {value} = trunc({value}) AND abs({value}) < 9007199254740992"
            f" THEN CAST(CAST({value} AS BIGINT) AS VARCHAR)"
            f" ELSE CAST({value} AS VARCHAR) END")


def _json_number(value: str, exact: str) -> str:
    return _number_text(value, exact, "'\"NaN\"'", "'\"Infinity\"'", "'\"-Infinity\"'", "'null'")


def _csv_field(text: str) -> str:
    """SQL: a text quoted as Python's csv module quotes it (only when it must be)."""
    return (f"CASE WHEN regexp_matches({text}, '[,\"\\r\\n]')"
            f" THEN '\"' || replace({text}, '\"', '\"\"') || '\"' ELSE {text} END")


def _bool(column: str, true: str = "true", false: str = "false") -> str:
    return f"CASE WHEN {column} THEN '{true}' ELSE '{false}' END"


def history_json_sql(query: str) -> str:
    """SQL giving one line of ``history --json`` per row of a :meth:`Store.history_query`."""
    return f"""
        SELECT '{{"bucket": "' || {_iso('bucket')} || '", "dims": ' || dims
               || ', "measure": ' || CAST(to_json(measure) AS VARCHAR)
               || ', "value": ' || {_json_number('value', 'exact')}
               || ', "first_value": ' || {_json_number('first_value', 'first_exact')}
               || ', "versions": ' || CAST(versions AS VARCHAR)
               || ', "revised": ' || {_bool('versions > 1')}
               || ', "partial": ' || {_bool('partial')} || '}}'
        FROM ({query})
    """


def revisions_json_sql(query: str) -> str:
    """SQL giving one line of ``revisions --json`` per row of a :meth:`Store.revisions_query`."""
    return f"""
        SELECT '{{"run": ' || CAST(run_id AS VARCHAR) || ', "known_at": ' || {_json_time('known_at')}
               || ', "bucket": "' || {_iso('bucket')} || '", "dims": ' || dims
               || ', "measure": ' || CAST(to_json(measure) AS VARCHAR)
               || ', "old_value": ' || {_json_number('old_value', 'old_exact')}
               || ', "new_value": ' || {_json_number('new_value', 'new_exact')} || '}}'
        FROM ({query})
    """


def _csv_number(value: str, exact: str) -> str:
    # as Python's csv module writes the number (str() of an int, Decimal or float)
    return _number_text(value, exact, "'nan'", "'inf'", "'-inf'", "''")


def history_csv_sql(query: str, dims: Sequence[str]) -> str:
    """SQL giving one line of ``history --csv`` per row of a :meth:`Store.history_query`, with
    a column for each of ``dims``."""
    cells = [_iso("bucket")]
    for key in dims:
        path = _literal(_json_pointer(key))
        text = (f"CASE json_type(dims, {path}) WHEN 'BOOLEAN' THEN"
                f" {_bool(f'CAST(json_extract(dims, {path}) AS BOOLEAN)', 'True', 'False')}"
                f" ELSE coalesce(json_extract_string(dims, {path}), '') END")
        cells.append(_csv_field(text))
    cells += [_csv_field("measure"), _csv_number("value", "exact"),
              _csv_number("first_value", "first_exact"), "CAST(versions AS VARCHAR)",
              _bool("versions > 1"), _bool("partial")]
    line = " || ',' || ".join(cells)
    return f"SELECT {line} FROM ({query})"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_pointer(key: str) -> str:
    """A JSON pointer (RFC 6901) to one key of the dims object."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _dims_keys(store: Store, query: str, params: Params) -> list[str]:
    """The dims keys of the rows of a history query, in the order they first appear."""
    with store.reading() as cur:
        rows = cur.execute(f"""
        WITH d AS (SELECT dims, min(bucket) AS first FROM ({query}) GROUP BY dims),
        k AS (SELECT first, dims, unnest(json_keys(dims)) AS key,
                     unnest(generate_series(1, len(json_keys(dims)))) AS pos FROM d)
        SELECT key FROM k GROUP BY key ORDER BY min((first, dims, pos))
    """, params).fetchall()
    return [r[0] for r in rows]


def _spool(store: Store, sql: str, params: Params, spool: TextIO, json_array: bool) -> None:
    """Write the one-column rows of ``sql`` to ``spool``, a line each (as the elements of a
    JSON array when ``json_array``), a batch at a time."""
    with store.reading() as cur:
        result = cur.execute(sql, params)
        first = True
        sep = ",\n  " if json_array else "\n"
        while batch := result.fetchmany(BATCH_ROWS):
            if first:
                spool.write("[\n  " if json_array else "")
                first = False
            else:
                spool.write(sep)
            spool.write(sep.join([r[0] for r in batch]))
        if json_array:
            spool.write("[]\n" if first else "\n]\n")
        elif not first:
            spool.write("\n")


def _copy_out(spool: TextIO, out: TextIO) -> None:
    spool.seek(0)
    shutil.copyfileobj(spool, out, 1 << 20)


def _spool_file() -> TextIO:
    return tempfile.TemporaryFile("w+", encoding="utf-8", newline="")


def write_history(store: Store, metric: str, fmt: str, out: TextIO,
                  as_of_run: int | None = None, as_known_at: datetime | None = None) -> None:
    """``history`` of ``metric`` as JSON (``fmt`` "json") or CSV ("csv") to ``out``. The
    store is let go of (closed) before the output is copied to ``out``."""
    import csv

    query, params = store.history_query(metric, as_of_run, as_known_at)
    with _spool_file() as spool:
        if fmt == "json":
            _spool(store, history_json_sql(query), params, spool, json_array=True)
        else:
            dims = _dims_keys(store, query, params)
            csv.writer(spool, lineterminator="\n").writerow(
                ["bucket", *dims, "measure", "value", "first_value", "versions", "revised",
                 "partial"])
            _spool(store, history_csv_sql(query, dims), params, spool, json_array=False)
        store.close()
        _copy_out(spool, out)


def write_revisions(store: Store, metric: str, out: TextIO) -> None:
    """``revisions --json`` of ``metric`` to ``out`` (the store closed before the copy)."""
    query, params = store.revisions_query(metric)
    with _spool_file() as spool:
        _spool(store, revisions_json_sql(query), params, spool, json_array=True)
        store.close()
        _copy_out(spool, out)
