"""Say which system packages a Linux desktop lacks before Qt's xcb plugin fails to load.

Without them Qt prints only its own hint and aborts; this module finds the missing shared
libraries of the plugin (with ``ldd``) and names the Debian/Ubuntu packages that hold them, so
``lookback-gui`` can say it in one line and exit.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# what Qt loads at run time without linking it (so ldd cannot see it): since Qt 6.5 the xcb
# plugin refuses to start without libxcb-cursor
LOADED_AT_RUN_TIME = {"xcb-cursor": "libxcb-cursor.so.0"}


def uses_xcb(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Whether Qt will load its xcb plugin: on Linux, unless another platform is chosen."""
    if not sys.platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(":")[0].split(";")[0] == "xcb"
    return not environ.get("WAYLAND_DISPLAY")


def xcb_plugin() -> Path | None:
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        plugin = Path(location) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.exists():
            return plugin
    return None


def unresolved(ldd_output: str) -> list[str]:
    """The libraries ``ldd`` reports as ``not found``, each once, in order."""
    found = re.findall(r"^\s*(\S+) => not found", ldd_output, flags=re.MULTILINE)
    return list(dict.fromkeys(found))


def debian_package(library: str) -> str:
    """The Debian/Ubuntu package of a shared library by its soname (libxcb-icccm.so.4 → libxcb-icccm4)."""
    match = re.fullmatch(r"(lib.+?)\.so\.(\d+)(?:\..*)?", library)
    if not match:
        return library
    name, version = match.group(1).lower(), match.group(2)
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def missing_libraries(plugin: Path) -> list[str]:
    ldd = shutil.which("ldd")
    missing: list[str] = []
    if ldd is not None:
        try:
            result = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            result = None
        if result is not None:
            missing = unresolved(result.stdout)
    for short, soname in LOADED_AT_RUN_TIME.items():
        if ctypes.util.find_library(short) is None and soname not in missing:
            missing.append(soname)
    return missing


def xcb_problem(environ: dict[str, str] | os._Environ[str] = os.environ) -> str | None:
    """One line naming the missing libraries and the packages to install, or None when all is there."""
    if not uses_xcb(environ):
        return None
    plugin = xcb_plugin()
    if plugin is None:
        return None
    missing = missing_libraries(plugin)
    if not missing:
        return None
    packages = " ".join(dict.fromkeys(debian_package(library) for library in missing))
    return (
        f"the desktop app needs system libraries that are missing ({', '.join(missing)}); "
        f"install them, on Debian or Ubuntu: sudo apt-get install {packages}"
    )
