"""Accounts: the names the lake, the state and every model are keyed by.

One Opentact API key belongs to one account. With no accounts file, the single key of today is
the account `default`.
"""

from __future__ import annotations

import re

DEFAULT_ACCOUNT = "default"

# Lowercase, so an account's folder name is the same on every filesystem.
_ACCOUNT_NAME = re.compile(r"^[a-z0-9_-]+$")


def account_name_problem(name: str) -> str | None:
    """A candidate account name -> why it cannot name an account, or None if it can."""
    if not _ACCOUNT_NAME.fullmatch(name):
        return "an account name is lowercase letters, digits, '_' and '-' only"
    return None
