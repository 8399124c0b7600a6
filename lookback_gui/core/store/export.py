"""History and revisions as the command line prints them (JSON, CSV), written by DuckDB.

A store a year old holds millions of values: building a Python object per row to print them
costs tens of seconds and gigabytes. Here DuckDB turns each row into its line of output text
(in the forms :mod:`jsonout` documents: exact integers and DECIMALs, ``"NaN"``/``"Infinity"``/
``"-Infinity"`` for a float that is not a number, ISO 8601 timestamps without offset); no Python
object is made per row, and memory stays flat whatever the size.

DuckDB writes the lines with ``COPY`` to a spool file while the store is held (in parallel, in
the order of the query, never holding the whole result), and the file is copied to the caller's
stream after the store is let go: a slow reader of the output (a pager, a pipe) never keeps
other processes waiting for the store.
"""

from __future__ import annotations

import codecs
import contextlib
import itertools
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import duckdb

from lookback_gui.core.duck import quote_literal
from lookback_gui.core.store import Store

Params = Sequence[Any] | Mapping[str, Any]

# history is written a range of buckets at a time, each of about this many values (revisions:
# a range of known times with half as many versions); DuckDB sorts a range out of core within
# its memory limit, so a range costs no more memory than a smaller one, and each range is a
# scan of its own (a year's 1M values of one metric: one range)
CHUNK_ROWS = 2_000_000
# DuckDB's memory while it writes one range; the process needs about 100 MB besides
MEMORY_LIMIT = "120MB"


def _iso(column: str) -> str:
    """SQL: a TIMESTAMP as Python's ``isoformat()`` writes it (microseconds only when set)."""
    return (
        f"CASE WHEN epoch_us({column}) % 1000000 = 0"
        f" THEN strftime({column}, '%Y-%m-%dT%H:%M:%S')"
        f" ELSE strftime({column}, '%Y-%m-%dT%H:%M:%S.%f') END"
    )


def _json_time(column: str, zone: str = "UTC") -> str:
    """SQL: a moment (naive, wall-clock time in ``zone``) as a JSON string in ISO 8601 with its
    UTC offset (``"2026-10-30T12:00:00+01:00"``), or null."""
    if zone == "UTC":  # no offset to work out per row
        return f"CASE WHEN {column} IS NULL THEN 'null' ELSE concat('\"', {_iso(column)}, '+00:00\"') END"
    offset = f"CAST(epoch({column}) - epoch(timezone({quote_literal(zone)}, {column})) AS INTEGER)"
    sign = f"CASE WHEN {offset} < 0 THEN '-' ELSE '+' END"
    hours = f"lpad(CAST(abs({offset}) // 3600 AS VARCHAR), 2, '0')"
    minutes = f"lpad(CAST(abs({offset}) % 3600 // 60 AS VARCHAR), 2, '0')"
    return (
        f"CASE WHEN {column} IS NULL THEN 'null' ELSE concat('\"', {_iso(column)}, {sign},"
        f" {hours}, ':', {minutes}, '\"') END"
    )


def _number_text(value: str, exact: str, nan: str, inf: str, ninf: str, null: str) -> str:
    """SQL: a stored value as text: its exact text where it has one, a whole float below 2**53
    as an integer, any other float in its shortest round-trip form."""
    return (
        f"coalesce({exact}, CASE"
        f" WHEN {value} = trunc({value}) AND abs({value}) < 9007199254740992"
        f" THEN CAST(CAST({value} AS BIGINT) AS VARCHAR)"
        f" WHEN isfinite({value}) THEN CAST({value} AS VARCHAR)"
        f" WHEN isnan({value}) THEN {nan}"
        f" WHEN {value} > 0 THEN {inf} WHEN {value} < 0 THEN {ninf} ELSE {null} END)"
    )


def _json_number(value: str, exact: str) -> str:
    return _number_text(value, exact, "'\"NaN\"'", "'\"Infinity\"'", "'\"-Infinity\"'", "'null'")


def _bool(column: str, true: str = "true", false: str = "false") -> str:
    return f"CASE WHEN {column} THEN '{true}' ELSE '{false}' END"


def _line(*parts: str) -> str:
    """SQL: one line of a JSON array (indented, with its comma) made of ``parts``, SQL text
    expressions, in one ``concat`` (one string made per row, where ``||`` makes one per
    operator)."""
    return f"concat('  ', {', '.join(parts)}, ',')"


def history_json_sql(query: str) -> str:
    """SQL giving one line of ``history --json`` (an element of its array) per row of a
    :meth:`Store.history_query`."""
    line = _line(
        '\'{"bucket": "\'',
        _iso("bucket"),
        '\'", "dims": \'',
        "dims",
        "', \"measure\": '",
        "to_json(measure)",
        "', \"value\": '",
        _json_number("value", "exact"),
        "', \"first_value\": '",
        _json_number("first_value", "first_exact"),
        "', \"versions\": '",
        "versions",
        "', \"revised\": '",
        _bool("versions > 1"),
        "', \"partial\": '",
        _bool("partial"),
        "'}'",
    )
    return f"SELECT {line} FROM ({query})"


def revisions_json_sql(query: str, zone: str = "UTC") -> str:
    """SQL giving one line of ``revisions --json`` (an element of its array) per row of a
    :meth:`Store.revisions_query` (``zone``: the metric's, in which its known times are
    stored)."""
    line = _line(
        "'{\"run\": '",
        "run_id",
        "', \"known_at\": '",
        _json_time("known_at", zone),
        '\', "bucket": "\'',
        _iso("bucket"),
        '\'", "dims": \'',
        "dims",
        "', \"measure\": '",
        "to_json(measure)",
        "', \"old_value\": '",
        _json_number("old_value", "old_exact"),
        "', \"new_value\": '",
        _json_number("new_value", "new_exact"),
        '\', "kind": "\'',
        "kind",
        "'\"}'",
    )
    return f"SELECT {line} FROM ({query})"


def _csv_number(value: str, exact: str) -> str:
    # as Python's csv module writes the number (str() of an int, Decimal or float)
    return _number_text(value, exact, "'nan'", "'inf'", "'-inf'", "NULL")


def history_csv_sql(query: str, dims: Sequence[str]) -> str:
    """SQL giving the cells of ``history --csv`` per row of a :meth:`Store.history_query`,
    with a column for each of ``dims``, as text; DuckDB's CSV writer quotes them (where
    Python's csv module would) and writes NULL as an empty cell."""
    cells = [_iso("bucket")]
    for key in dims:
        path = quote_literal(_json_pointer(key))
        cells.append(
            f"CASE json_type(dims, {path}) WHEN 'BOOLEAN' THEN"
            f" {_bool(f'CAST(json_extract(dims, {path}) AS BOOLEAN)', 'True', 'False')}"
            f" ELSE nullif(json_extract_string(dims, {path}), '') END"
        )
    cells += [
        "nullif(measure, '')",
        _csv_number("value", "exact"),
        _csv_number("first_value", "first_exact"),
        "CAST(versions AS VARCHAR)",
        _bool("versions > 1"),
        _bool("partial"),
    ]
    return "SELECT " + ", ".join(f"{cell} AS c{i}" for i, cell in enumerate(cells)) + f" FROM ({query})"


def _json_pointer(key: str) -> str:
    """A JSON pointer (RFC 6901) to one key of the dims object."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _dims_keys(store: Store, query: str, params: Params) -> list[str]:
    """The dims keys of the rows of a history query, in the order they first appear."""
    query = query.removesuffix(" ORDER BY bucket, dims, measure")  # no sort needed here
    with store.reading() as cur:
        rows = cur.execute(
            f"""
        WITH d AS (SELECT dims, min(bucket) AS first FROM ({query}) GROUP BY dims),
        k AS (SELECT first, dims, unnest(json_keys(dims)) AS key,
                     unnest(generate_series(1, len(json_keys(dims)))) AS pos FROM d)
        SELECT key FROM k GROUP BY key ORDER BY min((first, dims, pos))
    """,
            params,
        ).fetchall()
    return [r[0] for r in rows]


def _copy_lines(store: Store, sql: str, params: Params, path: Path, verbatim: bool = True) -> None:
    """DuckDB writes the rows of ``sql`` to ``path``, one a line: when ``verbatim``, each
    one-column row as it is (a CSV writer with no quoting and a delimiter that never occurs
    writes the text verbatim), else as CSV (cells quoted where they must be)."""
    with store.reading() as cur:
        # DuckDB keeps what it reads cached up to its memory limit (80 % of the machine's
        # memory by default): bounded here, what a range needs beyond it spills to disk
        with contextlib.suppress(duckdb.Error):  # where it spilled before, it stays
            cur.execute(
                "SET temp_directory = " + quote_literal(str(Path(tempfile.gettempdir()) / "lookback-spill"))
            )
        cur.execute(f"SET memory_limit = {quote_literal(MEMORY_LIMIT)}")
        try:
            options = (
                "FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x1f'"
                if verbatim
                else "FORMAT csv, HEADER false"
            )
            cur.execute(f"COPY ({sql}) TO {quote_literal(str(path))} ({options})", params)
        finally:
            cur.execute("RESET memory_limit")


def _copy_out(paths: Sequence[Path], out: TextIO, head: str = "", json_array: bool = False) -> None:
    """``head``, then the lines in ``paths``; as a JSON array when ``json_array`` (each line
    ends with a comma; the last one's is left out)."""
    sizes = [p.stat().st_size for p in paths]
    if json_array and not sum(sizes):
        out.write(head + "[]\n")
        return
    out.write(head + ("[\n" if json_array else ""))
    last = max(i for i, size in enumerate(sizes) if size) if json_array else -1
    raw = getattr(out, "buffer", None)
    utf8 = raw is not None and (getattr(out, "encoding", "") or "").lower().replace("-", "") == "utf8"
    if utf8:
        out.flush()  # the bytes go straight to the stream under it
    decoder = codecs.getincrementaldecoder("utf-8")()
    for index, (path, size) in enumerate(zip(paths, sizes, strict=True)):
        left = size - 2 if index == last else size  # without the last ",\n"
        with path.open("rb") as lines:
            while left > 0:
                chunk = lines.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
                if utf8:
                    raw.write(chunk)  # type: ignore[union-attr]
                else:
                    out.write(decoder.decode(chunk))
    if utf8:
        raw.flush()  # type: ignore[union-attr]
    out.write("\n]\n" if json_array else "")


@contextlib.contextmanager
def _spool_folder() -> Iterator[Path]:
    folder = tempfile.mkdtemp(prefix="lookback-")
    try:
        yield Path(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bucket_spans(
    store: Store,
    metric: str,
    as_of_run: int | None = None,
    as_known_at: datetime | None = None,
    rows: int | None = None,
) -> list[tuple[datetime, datetime]]:
    """Consecutive bucket ranges [start, end) that together hold every bucket of ``metric``,
    each with about ``rows`` values (evenly spaced in time): history is written a range at a
    time, so that no sort ever holds more than one range."""
    table = "current" if as_of_run is None and as_known_at is None else "versions"
    with store.reading() as cur:
        row = cur.execute(
            f"SELECT min(bucket), max(bucket), count(*) FROM {table} WHERE metric = ?", [metric]
        ).fetchone()
    if row is None or row[0] is None:
        return [(datetime.min, datetime.max)]
    first, last, count = row
    parts = max(1, min(1000, -(-int(count) // (rows or CHUNK_ROWS))))
    step = (last - first) / parts
    edges = [first + step * i for i in range(parts)] + [last + timedelta(microseconds=1)]
    return [(a, b) for a, b in itertools.pairwise(edges) if a < b] or [
        (first, last + timedelta(microseconds=1))
    ]


def write_history(
    store: Store,
    metric: str,
    fmt: str,
    out: TextIO,
    as_of_run: int | None = None,
    as_known_at: datetime | None = None,
) -> None:
    """``history`` of ``metric`` as JSON (``fmt`` "json") or CSV ("csv") to ``out``, a range
    of buckets at a time. The store is let go of (closed) before the output is copied to
    ``out``."""
    import csv
    import io

    head = ""
    with _spool_folder() as folder:
        if fmt == "csv":
            query, params = store.history_query(metric, as_of_run, as_known_at)
            dims = _dims_keys(store, query, params)
            header = io.StringIO()
            csv.writer(header, lineterminator="\n").writerow(
                ["bucket", *dims, "measure", "value", "first_value", "versions", "revised", "partial"]
            )
            head = header.getvalue()
        paths = []
        with store.reading():  # one hold of the store for every range
            for index, span in enumerate(bucket_spans(store, metric, as_of_run, as_known_at)):
                query, params = store.history_query(metric, as_of_run, as_known_at, span)
                sql = history_json_sql(query) if fmt == "json" else history_csv_sql(query, dims)
                paths.append(folder / f"part{index:04d}.txt")
                _copy_lines(store, sql, params, paths[-1], verbatim=fmt == "json")
        store.close()
        _copy_out(paths, out, head, json_array=fmt == "json")


def known_spans(
    store: Store, metric: str, rows: int | None = None
) -> list[tuple[datetime, datetime, datetime, datetime]]:
    """Consecutive known-time ranges [start, end) holding every version of ``metric``, each
    with about ``rows`` versions, and the first and last bucket of the versions in each."""
    with store.reading() as cur:
        row = cur.execute(
            "SELECT min(known_at), max(known_at), count(*) FROM versions WHERE metric = ?", [metric]
        ).fetchone()
        if row is None or row[0] is None:
            return []
        first, last, count = row
        parts = max(1, min(1000, -(-int(count) // (rows or max(1, CHUNK_ROWS // 2)))))
        step = (last - first) / parts
        edges = [first + step * i for i in range(parts)] + [last + timedelta(microseconds=1)]
        spans = []
        for a, b in itertools.pairwise(edges):
            if a >= b:
                continue
            low, high = cur.execute(
                "SELECT min(bucket), max(bucket) FROM versions WHERE metric = ?"
                " AND known_at >= ? AND known_at < ?",
                [metric, a, b],
            ).fetchone() or (None, None)
            if low is not None:
                spans.append((a, b, low, high))
    return spans


def write_revisions(store: Store, metric: str, out: TextIO, zone: str = "UTC") -> None:
    """``revisions --json`` of ``metric`` to ``out``, a range of known times at a time (the
    store closed before the copy)."""
    with _spool_folder() as folder:
        paths = []
        with store.reading():
            for index, span in enumerate(known_spans(store, metric)):
                query, params = store.revisions_query(metric, known=span)
                paths.append(folder / f"part{index:04d}.txt")
                _copy_lines(store, revisions_json_sql(query, zone), params, paths[-1])
        store.close()
        _copy_out(paths, out, json_array=True)
