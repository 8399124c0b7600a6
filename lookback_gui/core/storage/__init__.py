"""Where data lives and how to reach it: addresses and credentials, nothing that reads data.

- ``urls``: object-storage URLs (``s3://``, ``gs://``, ``az://``, ``https://``) and the keys that
  say how to reach them;
- ``objectstore``: those credentials handed to DuckDB as secrets, extensions loaded offline,
  listing what a URL or glob matches;
- ``dsn``: connection strings of server sources and the team store's catalog;
- ``passwords``: passwords and secrets kept in the OS keyring.

Imports only the core's base modules (``errors``, ``duck``); sources, the store and the project
file import it.
"""
