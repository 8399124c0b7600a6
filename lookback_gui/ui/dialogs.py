"""File dialogs that never open the files they list.

Qt's own file dialog asks QMimeDatabase for each file's icon and type, which opens files whose
name says nothing to it, such as the store. A process that opens and closes a DuckDB file drops
DuckDB's lock on it (a POSIX record lock): the app's file dialogs therefore name files by their
kind alone.
"""

from __future__ import annotations

from PySide6.QtCore import QFileInfo
from PySide6.QtGui import QAbstractFileIconProvider, QIcon
from PySide6.QtWidgets import QFileDialog, QWidget


class PlainIcons(QAbstractFileIconProvider):
    """Icons and type names from whether an entry is a folder or a file, nothing more."""

    def icon(self, what: QFileInfo | QAbstractFileIconProvider.IconType) -> QIcon:
        if isinstance(what, QFileInfo):
            kind = (
                QAbstractFileIconProvider.IconType.Folder
                if what.isDir()
                else QAbstractFileIconProvider.IconType.File
            )
            return super().icon(kind)
        return super().icon(what)

    def type(self, info: QFileInfo) -> str:
        return "Folder" if info.isDir() else f"{info.suffix().upper()} file".lstrip()


def file_dialog(
    parent: QWidget | None, caption: str, start: str, filters: str, mode: QFileDialog.AcceptMode
) -> QFileDialog:
    """A file dialog that names files by their kind alone (see the module)."""
    dialog = QFileDialog(parent, caption, start, filters)
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog)  # a native one may peek anyway
    icons = PlainIcons()
    dialog.setIconProvider(icons)
    dialog.setProperty("icons", icons)  # the dialog does not own its icon provider
    dialog.setAcceptMode(mode)
    if mode == QFileDialog.AcceptMode.AcceptOpen:
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
    else:
        dialog.setFileMode(QFileDialog.FileMode.AnyFile)
        if "." in start.rsplit("/", 1)[-1]:
            dialog.selectFile(start)
    return dialog


def _chosen(dialog: QFileDialog) -> str:
    if not dialog.exec():
        return ""
    chosen = dialog.selectedFiles()
    return chosen[0] if chosen else ""


def open_file_name(parent: QWidget | None, caption: str, start: str, filters: str = "") -> str:
    """The file the user chose to open, or "" when cancelled."""
    return _chosen(file_dialog(parent, caption, start, filters, QFileDialog.AcceptMode.AcceptOpen))


def save_file_name(parent: QWidget | None, caption: str, start: str, filters: str = "") -> str:
    """The file the user chose to save to, or "" when cancelled."""
    return _chosen(file_dialog(parent, caption, start, filters, QFileDialog.AcceptMode.AcceptSave))
