"""Connection strings: one parser for every form a server source's ``dsn`` takes.

PostgreSQL and MySQL/MariaDB sources are given either as ``key=value`` pairs
(``host=db port=5432 dbname=shop user=analyst``, values optionally in single quotes) or as a
URI (``postgresql://analyst@db:5432/shop``, ``mysql://analyst@db:3306/shop?ssl_mode=required``),
with or without a database. Every check that reads a DSN (a password written into it, the
database a MySQL source may read) goes through :func:`parse_dsn`, so no form slips past one of
them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

# the names each form may give to the same setting
_ALIASES = {
    "dbname": "database",
    "database": "database",
    "db": "database",
    "user": "user",
    "username": "user",
    "password": "password",
    "passwd": "password",
    "host": "host",
    "hostaddr": "host",
    "port": "port",
}
_URI = re.compile(r"^\s*([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
_PAIR = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)")


@dataclass(frozen=True)
class Dsn:
    """A parsed connection string.

    Attributes:
        form: "uri" or "pairs".
        settings: every setting under its canonical name (database, user, password, host,
            port; others as written, lower case).
        password_key: the key or part that holds a password ("password", "passwd", or
            "user:password@" for a URI's), None when there is none.
    """

    form: str
    settings: dict[str, str] = field(default_factory=dict)
    password_key: str | None = None

    @property
    def database(self) -> str | None:
        return self.settings.get("database") or None

    @property
    def user(self) -> str | None:
        return self.settings.get("user") or None

    @property
    def host(self) -> str | None:
        return self.settings.get("host") or None


def _canonical(key: str) -> str:
    return _ALIASES.get(key.lower(), key.lower())


def _unquote_value(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_dsn(text: str) -> Dsn:
    """Parse ``text`` in either form; an unreadable part is left out, never guessed."""
    if _URI.match(text):
        return _parse_uri(text.strip())
    settings: dict[str, str] = {}
    password_key = None
    for match in _PAIR.finditer(text):
        key, value = match.group(1), _unquote_value(match.group(2))
        name = _canonical(key)
        if name == "password":
            password_key = key.lower()
        settings[name] = value
    return Dsn(form="pairs", settings=settings, password_key=password_key)


def _parse_uri(text: str) -> Dsn:
    parts = urlsplit(text)
    settings: dict[str, str] = {}
    password_key = None
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, colon, password = userinfo.partition(":")
        if user:
            settings["user"] = unquote(user)
        if colon:
            password_key = "user:password@"
            settings["password"] = unquote(password)
    host, _, port = netloc.rpartition(":") if netloc.count(":") == 1 else (netloc, "", "")
    if host:
        settings["host"] = unquote(host)
    if port:
        settings["port"] = port
    database = unquote(parts.path.lstrip("/"))
    if database:
        settings["database"] = database
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        name = _canonical(key)
        if name == "password" and password_key is None:
            password_key = key.lower()
        settings[name] = value
    return Dsn(form="uri", settings=settings, password_key=password_key)
