"""Where data lives and how to reach it: addresses and credentials, nothing that reads data.

- ``urls``: object-storage URLs (``s3://``, ``gs://``, ``az://``, ``https://``) and the keys that
  say how to reach them;
- ``objectstore``: those credentials handed to DuckDB as secrets, extensions loaded offline,
  listing what a URL or glob matches;
- ``dsn``: connection strings of server sources and the team store's catalog;
- ``passwords``: passwords and secrets kept in the OS keyring;
- ``store_config``: the project file's ``[store]`` table: a local file or a team store, where.

Imports only the core's base modules. ``urls``, ``dsn``, ``passwords`` and ``store_config`` load no
DuckDB: the project file imports them, and ``lookback --help`` loads no more than that.
"""
