"""Time as the project file and the pulls speak of it: buckets, lookback windows, durations,
moments and cron schedules.

- ``windows``: the window arithmetic of DESIGN (buckets, lookback windows, ``$window_start`` …);
- ``durations``: ``"90s"``, ``"7d"`` as the project file writes them;
- ``moments``: points in time with offsets (``--as-of``, ``--as-known-then``);
- ``cron``: cron schedules as cron means them, made into APScheduler triggers.

Imports only the standard library, APScheduler's triggers and the core's base modules.
"""
