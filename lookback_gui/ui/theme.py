"""Light and dark themes that hold on every desktop.

Asking Qt for a colour scheme does nothing on X11 without a platform theme (the scheme stays
Unknown), so a chosen theme sets a palette of its own on the Fusion style; "system" goes back to
what the desktop gives. Charts ask :func:`chart_colours` for their background and ink.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

_ORIGINAL: dict[str, object] = {}


def dark_palette() -> QPalette:
    palette = QPalette()
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    colours = {
        role.Window: "#2b2b2b",
        role.WindowText: "#e6e6e6",
        role.Base: "#1f1f1f",
        role.AlternateBase: "#2a2a2a",
        role.ToolTipBase: "#3a3a3a",
        role.ToolTipText: "#f0f0f0",
        role.PlaceholderText: "#8a8a8a",
        role.Text: "#e6e6e6",
        role.Button: "#353535",
        role.ButtonText: "#e6e6e6",
        role.BrightText: "#ff5252",
        role.Link: "#64b5f6",
        role.Highlight: "#2f65ca",
        role.HighlightedText: "#ffffff",
        role.Light: "#4a4a4a",
        role.Midlight: "#3d3d3d",
        role.Mid: "#303030",
        role.Dark: "#1a1a1a",
        role.Shadow: "#000000",
    }
    for colour_role, colour in colours.items():
        palette.setColor(colour_role, QColor(colour))
    for colour_role in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(group.Disabled, colour_role, QColor("#7a7a7a"))
    return palette


def apply_theme(name: str) -> None:
    """Apply "light", "dark" or "system" to the whole application."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return
    if not _ORIGINAL:
        _ORIGINAL["style"] = app.style().name()
        _ORIGINAL["palette"] = QPalette(app.palette())
        if name == "system":  # what the desktop gives is already in force
            return
    hints = app.styleHints()
    if name == "dark":
        app.setStyle(QStyleFactory.create("Fusion"))
        app.setPalette(dark_palette())
        scheme = Qt.ColorScheme.Dark
    elif name == "light":
        app.setStyle(QStyleFactory.create("Fusion"))
        app.setPalette(app.style().standardPalette())
        scheme = Qt.ColorScheme.Light
    else:
        app.setStyle(QStyleFactory.create(str(_ORIGINAL["style"])))
        palette = _ORIGINAL["palette"]
        assert isinstance(palette, QPalette)
        app.setPalette(palette)
        scheme = Qt.ColorScheme.Unknown
    if hasattr(hints, "setColorScheme"):  # Qt 6.8 and newer
        hints.setColorScheme(scheme)


def is_dark() -> bool:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return False
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def chart_colours(dark: bool | None = None) -> tuple[str, str, str]:
    """Background, ink (axes, text) and grid colour for a chart in the current theme (or, with
    ``dark`` given, in that one)."""
    if is_dark() if dark is None else dark:
        return "#1f1f1f", "#d0d0d0", "#3a3a3a"
    return "#ffffff", "#303030", "#e3e3e3"


def nowcast_colours(dark: bool | None = None) -> tuple[QColor, QColor]:
    """The nowcast's line and the fill of its interval band: a deep violet on light, a light
    one on dark (the deep one all but vanishes on a dark background)."""
    if is_dark() if dark is None else dark:
        return QColor("#ce93d8"), QColor(206, 147, 216, 85)
    return QColor("#6a1b9a"), QColor(106, 27, 154, 45)
