"""JSON as the command line prints it: always valid JSON (RFC 8259), exact numbers.

- Integer measures are JSON integers and DECIMAL measures JSON numbers with every digit they have
  (``12345678901234567890123456789012345.678``), never rounded through a float.
- A float that is not a number is written as a string: ``"NaN"``, ``"Infinity"`` or
  ``"-Infinity"`` (JSON has no literal for them; a bare ``NaN`` is not JSON).
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any, TextIO

_MARK = "\x00"
_MARKED = re.compile(r'"\\u0000([-0-9.Ee+]+)\\u0000"')


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Decimal):
        if not value.is_finite():
            return "NaN" if value.is_nan() else ("Infinity" if value > 0 else "-Infinity")
        return f"{_MARK}{value}{_MARK}"  # put back as a bare number after encoding
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def dumps(value: Any, indent: int | None = 2) -> str:
    """``value`` as JSON text."""
    text = json.dumps(_plain(value), indent=indent, allow_nan=False)
    return _MARKED.sub(r"\1", text)


def dump(value: Any, out: TextIO, indent: int | None = 2) -> None:
    out.write(dumps(value, indent))
