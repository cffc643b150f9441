"""An account's Prefect Secret block is read by its name, as stored, in a flow or not."""

from __future__ import annotations

import asyncio

import pytest

from pipelines.accounts import Account, account_api_key
from pipelines.errors import UsageError
from pipelines.settings import Settings

KEY = "0123456789"  # digits: Secret.get() would parse it as the number 123456789


def test_a_secret_block_is_read_as_stored_and_a_missing_one_names_the_account_and_block(prefect_harness) -> None:
    from prefect import flow
    from prefect.blocks.system import Secret

    from pipelines.flows.secrets import read_secret_block

    Secret(value=KEY).save("acme-opentact-key", overwrite=True)
    Secret(value={"key": KEY}).save("acme-opentact-table", overwrite=True)

    @flow
    async def in_an_async_flow() -> str | None:
        return read_secret_block("acme-opentact-key")

    assert read_secret_block("acme-opentact-key") == KEY
    assert asyncio.run(in_an_async_flow()) == KEY
    assert read_secret_block("no-such-block") is None

    settings = Settings()
    acme = Account("acme", None, "acme-opentact-key", "https://api.opentact.org")
    assert account_api_key(acme, settings, read_secret_block).get_secret_value() == KEY
    for block, problem in (("no-such-block", "does not exist: create it (or correct api_key_block)"),
                           ("acme-opentact-table", ": holds dict data, not the key as text")):
        with pytest.raises(UsageError) as refused:
            account_api_key(Account("acme", None, block, "https://api.opentact.org"), settings, read_secret_block)
        assert str(refused.value) == f"account acme: Prefect Secret block {block} {problem}".replace(" :", ":")
        assert KEY not in str(refused.value)
