"""Numbers as people read them, one format everywhere (the app, alert texts)."""

from __future__ import annotations

import math
from decimal import Decimal


def fmt_number(value: float | Decimal | None, signed: bool = False) -> str:
    """Thousands separators, whole numbers without decimals, others with two (or, below 0.1,
    two significant digits), and no float noise (4585.240000000002 is 4,585.24). ``signed``
    puts a + before positive numbers; no value is "–"."""
    if value is None:
        return "–"
    sign = "+" if signed else ""
    if isinstance(value, int):  # exact, however large
        return f"{value:{sign},}"
    number = float(value)
    if math.isnan(number):
        return "–"
    if math.isinf(number):
        return f"{sign}∞" if number > 0 else "−∞"
    number = float(f"{number:.12g}")  # the last bits of a sum of doubles are noise
    if number.is_integer():
        return f"{int(number):{sign},}"
    size = abs(number)
    decimals = max(2, min(9, 1 - math.floor(math.log10(size))))
    return f"{number:{sign},.{decimals}f}"
