"""The metric editor's SQL: the field with its highlighting, the buttons that insert the window
parameters, and the query's preview (what it says, and the rows it returned)."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pygments.lexers.sql import SqlLexer
from pygments.token import Token
from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat, QTextDocument
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from lookback_gui.core.pull import Preview
from lookback_gui.ui.editor_base import error_label
from lookback_gui.ui.models import PreviewModel
from lookback_gui.ui.slots import weakly

MONO = QFont("monospace")
MONO.setStyleHint(QFont.StyleHint.Monospace)


class SqlHighlighter(QSyntaxHighlighter):
    """SQL highlighting with Pygments' SQL lexer; the window parameters stand out."""

    STYLES: ClassVar[dict[Any, tuple[str, bool]]] = {
        Token.Keyword: ("#1565c0", True),
        Token.Name.Builtin: ("#6a1b9a", False),
        Token.Literal.String: ("#2e7d32", False),
        Token.Literal.Number: ("#ef6c00", False),
        Token.Comment: ("#757575", False),
        Token.Operator: ("#424242", False),
    }

    DARK_STYLES: ClassVar[dict[Any, tuple[str, bool]]] = {
        Token.Keyword: ("#82b1ff", True),
        Token.Name.Builtin: ("#ce93d8", False),
        Token.Literal.String: ("#a5d6a7", False),
        Token.Literal.Number: ("#ffb74d", False),
        Token.Comment: ("#9e9e9e", False),
        Token.Operator: ("#e0e0e0", False),
    }

    def __init__(self, document: QTextDocument):
        from lookback_gui.ui.theme import is_dark

        super().__init__(document)
        self._lexer = SqlLexer()
        self._formats: dict[Any, QTextCharFormat] = {}
        styles = self.DARK_STYLES if is_dark() else self.STYLES
        for token, (colour, bold) in styles.items():
            fmt = QTextCharFormat()
            fmt.setForeground(QColor(colour))
            if bold:
                fmt.setFontWeight(QFont.Weight.Bold)
            self._formats[token] = fmt
        self._param = QTextCharFormat()
        self._param.setForeground(QColor("#f48fb1" if is_dark() else "#c2185b"))
        self._param.setFontWeight(QFont.Weight.Bold)

    def highlightBlock(self, text: str) -> None:
        position = 0
        for token, value in self._lexer.get_tokens(text):
            length = len(value)
            while token not in self._formats and token.parent is not None:
                token = token.parent
            if token in self._formats:
                self.setFormat(position, length, self._formats[token])
            position += length
        for match in re.finditer(r"\$\w+", text):
            self.setFormat(match.start(), match.end() - match.start(), self._param)


def lines_as_written(message: str, sql: str) -> str:
    """A query error's "LINE n:" counted in ``sql`` as the editor shows it.

    A pull runs the SQL as ``SELECT * FROM (\\n<sql without its leading blank lines>\\n)``, so
    DuckDB counts one line more, plus the blank lines it was given first. An error found while
    the SQL alone was parsed ("does not parse") already counts right.
    """
    if "does not parse" in message:
        return message
    shift = 1 + sql[: len(sql) - len(sql.lstrip())].count("\n")
    return re.sub(r"\bLINE (\d+):", lambda m: f"LINE {max(1, int(m.group(1)) - shift)}:", message)


class SqlField(QWidget):
    """The SQL with its mistake below it, the *Insert* buttons and *Preview*, and the preview's
    rows with what it says of them."""

    PARAMETERS = ("$window_start", "$window_end", "$as_of")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.edit = QPlainTextEdit(accessibleName="SQL")
        self.edit.setFont(MONO)
        self.edit.setTabChangesFocus(True)  # Tab leaves the editor; indent with spaces
        self.highlighter = SqlHighlighter(self.edit.document())
        self.preview_button = QPushButton("Preview", accessibleName="Preview the query")
        self.preview_info = QLabel(accessibleName="Preview result")
        self.preview_info.setWordWrap(True)
        self.preview_model = PreviewModel(self)
        self.preview_table = QTableView(accessibleName="Preview rows")
        self.preview_table.setModel(self.preview_model)
        self.preview_table.setWordWrap(False)
        self.preview_table.verticalHeader().setDefaultSectionSize(
            self.preview_table.fontMetrics().height() + 6
        )

        params = QHBoxLayout()
        params.addWidget(QLabel("Insert:"))
        for name in self.PARAMETERS:
            button = QPushButton(name, accessibleName=f"Insert {name}")
            button.clicked.connect(weakly(self._insert, name))
            params.addWidget(button)
        params.addStretch(1)
        params.addWidget(self.preview_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(
            QLabel("SQL (the source is the default catalog, or a view named after it for files)")
        )
        layout.addWidget(self.edit, 1)
        self.error = error_label()
        layout.addWidget(self.error)
        layout.addLayout(params)
        layout.addWidget(self.preview_info)
        layout.addWidget(self.preview_table, 1)

    def _insert(self, name: str) -> None:
        self.edit.insertPlainText(name)

    def show_running(self) -> None:
        self.preview_button.setEnabled(False)
        self.preview_info.setStyleSheet("")
        self.preview_info.setText("running the query for the current window…")

    def show_result(self, result: Preview) -> None:
        """The rows of a preview, its window and the shape the loader read in them."""
        self.preview_button.setEnabled(True)
        self.preview_model.set_result(result.columns, result.rows)
        self.preview_table.resizeColumnsToContents()
        shape = result.shape
        window = f"[{result.window.start:%Y-%m-%d %H:%M}, {result.window.end:%Y-%m-%d %H:%M})"
        text = (
            f"{result.total_rows} row(s) for window {window}. bucket: {shape.bucket}; "
            f"dimensions: {', '.join(shape.dimensions) or 'none'}; measures: "
            f"{', '.join(shape.measures)}"
        )
        if result.warnings:
            text += "\n⚠ " + "\n⚠ ".join(result.warnings)
        self.preview_info.setStyleSheet("color: #2e7d32;")
        self.preview_info.setText(text)

    def show_failure(self, message: str) -> None:
        """Why there is no preview, in place of its rows."""
        self.preview_model.set_result((), ())
        self.preview_info.setStyleSheet("color: #c62828;")
        self.preview_info.setText(message)
