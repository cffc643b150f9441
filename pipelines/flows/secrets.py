"""Prefect Secret blocks: where an account's `api_key_block` (pipelines/accounts.py) is read."""

from __future__ import annotations

from prefect.blocks.system import Secret
from prefect.exceptions import ObjectNotFound

from pipelines.errors import UsageError


def read_secret_block(name: str) -> str | None:
    """A Secret block's name -> the text it holds, or None if there is no such block (an `accounts.BlockReader`).

    The text is taken as stored: `Secret.get()` would parse it as JSON, turning a key of digits into
    a number. Loaded synchronously even inside an async flow, where `Secret.load` would otherwise
    return a coroutine. UsageError, naming no value, if the block holds something other than text.
    """
    try:
        secret = Secret.load(name, _sync=True)
    except ValueError as exc:
        # Prefect reports a missing block as a ValueError caused by the API's 404.
        if isinstance(exc.__cause__, ObjectNotFound):
            return None
        raise
    value = secret.value.get_secret_value()
    if not isinstance(value, str):
        raise UsageError(f"holds {type(value).__name__} data, not the key as text")
    return value
