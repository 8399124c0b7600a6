"""Recurring pulls in the background: the scheduler, its catch-up and its lease on the store.

``scheduler`` runs on APScheduler's ``BackgroundScheduler`` (never Qt's): the desktop app and
``lookback schedule`` both drive it. Its parts, each in the file named after it:

- ``scheduler``: the :class:`Scheduler`, its worker threads, its lease and its held gap fills;
- ``jobs``: the APScheduler jobs of the project's metrics (synced, paused, resumed);
- ``upkeep``: the freshness alerts judged between pulls;
- ``planning``: what a metric owes (the catch-up, the failed windows, a large gap fill held).

The top of the core: it may import every other package.
"""
