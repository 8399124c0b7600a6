"""Passwords kept in the OS keyring, for sources and the team store's catalog."""

from __future__ import annotations

KEYRING_SERVICE = "lookback-gui"


def keyring_get(user: str) -> str | None:
    """The password kept for ``user``; None when the keyring holds none or when there is no
    keyring service here (a server that wants a password then says so)."""
    try:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, user)
    except Exception:  # no keyring service here
        return None
