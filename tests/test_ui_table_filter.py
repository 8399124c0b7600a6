"""Table filters take several words and column=value terms, and filter once typing pauses."""

from PySide6.QtGui import QStandardItem, QStandardItemModel

from lookback_gui.ui.table_filter import QueryFilter, Term, parse_query, query_box

ROWS = [
    ("2026-12-01", "country=GB", "revenue", "12"),
    ("2026-12-01", "country=GB", "orders", "12"),
    ("2026-12-02", "country=DE", "revenue", "13"),
    ("2026-12-02", "country=New York", "orders", "14"),
]


def _proxy(qtbot) -> QueryFilter:
    model = QStandardItemModel(0, 4)
    model.setHorizontalHeaderLabels(["Bucket", "Series", "Measure", "Run"])
    for row in ROWS:
        model.appendRow([QStandardItem(text) for text in row])
    proxy = QueryFilter()
    proxy.setSourceModel(model)
    proxy._model = model  # kept alive with the proxy
    return proxy


def _shown(proxy: QueryFilter) -> list[tuple[str, ...]]:
    return [tuple(proxy.index(row, column).data() for column in range(4)) for row in range(proxy.rowCount())]


def test_a_query_is_words_column_terms_negations_and_quotes() -> None:
    assert parse_query('country=GB Revenue -failed measure:orders "new york"') == [
        Term("gb", "country"),
        Term("revenue"),
        Term("failed", negated=True),
        Term("orders", "measure"),
        Term("new york"),
    ]
    assert parse_query('"unbalanced') == [Term('"unbalanced')]


def test_every_word_must_match(qtbot) -> None:
    proxy = _proxy(qtbot)
    proxy.set_query("country=GB revenue")
    assert _shown(proxy) == [ROWS[0]]
    proxy.set_query("measure=orders")
    assert _shown(proxy) == [ROWS[1], ROWS[3]]
    proxy.set_query("-GB")
    assert _shown(proxy) == [ROWS[2], ROWS[3]]
    proxy.set_query('"new york"')
    assert _shown(proxy) == [ROWS[3]]
    proxy.set_query("run=13")
    assert _shown(proxy) == [ROWS[2]]
    proxy.set_query("")
    assert len(_shown(proxy)) == 4


def test_typing_filters_once_when_typing_pauses(qtbot) -> None:
    proxy = _proxy(qtbot)
    passes = []
    proxy.layoutChanged.connect(lambda *_: passes.append(1))
    proxy.rowsRemoved.connect(lambda *_: passes.append(1))
    box = query_box(proxy, "Filter", "filter")
    qtbot.addWidget(box)
    for character in "country=GB revenue":
        box.insert(character)
    assert len(_shown(proxy)) == 4  # nothing filtered while typing goes on
    qtbot.waitUntil(lambda: _shown(proxy) == [ROWS[0]], timeout=5000)
    assert proxy.query_terms == [Term("gb", "country"), Term("revenue")]
