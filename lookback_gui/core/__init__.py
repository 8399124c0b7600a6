"""The headless engine: project files, sources, windows, pulls and the versioned store.

Nothing in this package imports Qt; the desktop app and the command line are two faces of it.
Importing it changes nothing in the process: what a process needs once is set up by its entry
point (:mod:`lookback_gui.core.runtime`).
"""
