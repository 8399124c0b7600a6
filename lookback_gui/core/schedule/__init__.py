"""Recurring pulls in the background: the scheduler, its catch-up and its lease on the store.

``scheduler`` runs on APScheduler's ``BackgroundScheduler`` (never Qt's): the desktop app and
``lookback schedule`` both drive it. The top of the core: it may import every other package.
"""
