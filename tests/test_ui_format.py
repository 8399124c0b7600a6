"""One number format everywhere: thousands separators, no float noise, no exponents."""

from __future__ import annotations

from decimal import Decimal

import pytest

pytest.importorskip("PySide6.QtWidgets")

from lookback_gui.ui.models import PreviewModel, fmt_number


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (4585.240000000002, "4,585.24"),
        (2_210_000.5, "2,210,000.50"),
        (12320.82, "12,320.82"),
        (287072.0, "287,072"),
        (9_223_372_036_854_775_806, "9,223,372,036,854,775,806"),
        (Decimal("1234.5"), "1,234.50"),
        (0.0012345, "0.0012"),
        (-3.5, "-3.50"),
        (None, "–"),
        (float("nan"), "–"),
    ],
)
def test_numbers_read_the_same_everywhere(value, text):
    assert fmt_number(value) == text


def test_a_change_carries_its_sign():
    assert fmt_number(1.0, signed=True) == "+1"
    assert fmt_number(-1234.5, signed=True) == "-1,234.50"


def test_the_preview_shows_numbers_in_the_same_format(qtmodeltester):
    model = PreviewModel()
    model.set_result(("bucket", "revenue", "orders"), [("DE", 4585.240000000002, 12345)])
    qtmodeltester.check(model)
    assert [model.data(model.index(0, c)) for c in range(3)] == ["DE", "4,585.24", "12,345"]


def test_long_tooltips_are_rich_text_that_qt_wraps():
    from PySide6.QtGui import Qt

    from lookback_gui.ui.models import wrapped_tip

    long = "quality check failed: the query returned no rows for the window " * 3
    for text in ("short <error>", long):
        tip = wrapped_tip(text)
        assert tip is not None and Qt.mightBeRichText(tip) and "&lt;error&gt;" in wrapped_tip("short <error>")
    assert "width='440'" in wrapped_tip(long)
    assert wrapped_tip(None) is None


@pytest.mark.parametrize(
    ("pct", "text"),
    [
        (12.345, "+12.3%"),
        (-0.5, "-0.5%"),
        (0.0034, "+0.003%"),
        (-0.042, "-0.04%"),
        (0.0000001, "+<0.001%"),
        (0.1, "+0.1%"),
    ],
)
def test_a_small_change_never_reads_as_zero_percent(pct, text):
    from lookback_gui.ui.models import fmt_pct

    assert fmt_pct(pct) == text


def test_the_runs_log_fits_its_counts(qtbot, tmp_path):
    from datetime import UTC, datetime

    from lookback_gui.core.store import RunRecord
    from lookback_gui.ui.bridge import Bridge
    from lookback_gui.ui.models import RunsModel
    from lookback_gui.ui.runs_views import RunsLog

    fields = {name: None for name in RunRecord.__dataclass_fields__}
    now = datetime(2026, 12, 7, tzinfo=UTC)
    fields.update(
        id=1,
        metric="daily_orders",
        trigger="manual",
        status="succeeded",
        as_of=now,
        window_start=now,
        window_end=now,
        attempts=1,
        rows=123_456_789,
        new=123_456_789,
        revised=0,
        removed=0,
    )
    model = RunsModel()
    bridge = Bridge()
    log = RunsLog(model, bridge)
    qtbot.addWidget(log)
    model.set_records([RunRecord(**fields)])
    rows = next(c for c in range(model.columnCount()) if model.COLUMNS[c].header == "Rows")
    text_width = log.view.fontMetrics().horizontalAdvance("123,456,789")
    assert log.view.columnWidth(rows) >= text_width
