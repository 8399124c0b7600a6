"""Lookback GUI: re-pull aggregate metrics over a lookback window and chart their revisions."""

__version__ = "0.1.0"
