"""A Linux desktop without the X libraries Qt's xcb plugin needs gets one line naming the packages."""

import os
import subprocess
import sys
from pathlib import Path

from lookback_gui.ui.system_libraries import debian_package, unresolved, uses_xcb

LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd5a9f2000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f0f4e200000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxkbcommon-x11.so.0 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0f4de00000)
"""


def test_the_missing_libraries_are_read_from_ldd_once_each() -> None:
    assert unresolved(LDD_OUTPUT) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxkbcommon-x11.so.0"]


def test_libraries_are_named_by_their_debian_packages() -> None:
    assert debian_package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert debian_package("libxcb-cursor.so.0") == "libxcb-cursor0"
    assert debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert debian_package("libEGL.so.1") == "libegl1"
    assert debian_package("libdbus-1.so.3") == "libdbus-1-3"


def test_only_the_xcb_platform_is_checked() -> None:
    if not sys.platform.startswith("linux"):
        assert not uses_xcb({})
        return
    assert uses_xcb({})
    assert uses_xcb({"QT_QPA_PLATFORM": "xcb"})
    assert not uses_xcb({"QT_QPA_PLATFORM": "offscreen"})
    assert not uses_xcb({"WAYLAND_DISPLAY": "wayland-0"})


def test_the_app_names_the_packages_to_install_in_one_line(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        return
    # a desktop whose ldd finds no libxcb-icccm: the libraries may be installed on this machine
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ldd").write_text(f"#!/bin/sh\ncat <<'END'\n{LDD_OUTPUT}END\n")
    (fake / "ldd").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}",
        "QT_QPA_PLATFORM": "xcb",
        "DISPLAY": ":1999",
    }
    result = subprocess.run(
        [sys.executable, "-m", "lookback_gui.ui.app"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: the desktop app needs system libraries that are missing")
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0" in lines[0]
