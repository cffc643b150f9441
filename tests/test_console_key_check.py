"""`cdr sync` tries the API key with one request before Prefect starts: a rejected key fails at once, nothing
else does; an API no connection can be made to is named in a warning at once."""

from __future__ import annotations

import pytest

import pipelines.flows.sync as flows
from pipelines import console
from pipelines.opentact.client import ApiKeyRejected
from sandbox.testing import TEST_API_KEY, running_sandbox

NOW = "2026-10-03T00:00:00Z"
WRONG_KEY = "not-the-sandbox-key-3f9a"


@pytest.fixture
def reached(monkeypatch) -> list[dict[str, object]]:
    """The parameters of each call of the sync flow, replaced by a stand-in (and so Prefect's start)."""
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(flows, "sync_flow", _flow_reached(calls))
    return calls


def _flow_reached(reached: list[dict[str, object]]):
    """A stand-in for the sync flow (and so for Prefect's start) that notes its parameters."""

    async def flow(progress=None, **parameters: object) -> dict[str, object]:
        reached.append(parameters)
        result: dict[str, object] = {"records": 0, "duration_secs": 0.1, "records_per_sec": 0.0, "types": {}}
        if "accounts" in parameters:  # a run of several accounts: each one's figures, none failed
            accounts = {name: {"records": 0, "types": {}} for name in parameters["accounts"]}
            result |= {"accounts": accounts, "failed": {}}
        return result

    return flow


def test_a_rejected_key_fails_in_one_line_before_prefect_starts(reached, monkeypatch, tmp_path) -> None:
    with running_sandbox(now=NOW) as url:
        monkeypatch.setenv("OPENTACT_BASE_URL", url)
        monkeypatch.setenv("OPENTACT_API_KEY", WRONG_KEY)
        with pytest.raises(ApiKeyRejected) as rejected:
            console.run_sync(date_range="yesterday", now=NOW, types="cdrs", data_dir=tmp_path / "data")
    assert reached == []
    assert str(rejected.value).startswith(f"API key rejected (401) by {url}: check OPENTACT_API_KEY")
    assert "\n" not in str(rejected.value) and WRONG_KEY not in str(rejected.value)
    assert not (tmp_path / "data").exists()


def test_an_unreachable_api_is_warned_of_at_once_and_left_to_the_flow_which_retries_it(
    reached, monkeypatch, tmp_path, capsys
) -> None:
    # nothing listens there; a path of the URL (a proxy's) may hold a token: only the origin is shown
    monkeypatch.setenv("OPENTACT_BASE_URL", "http://127.0.0.1:9/proxy/tok3n")
    monkeypatch.setenv("OPENTACT_API_KEY", WRONG_KEY)
    monkeypatch.setenv("OPENTACT_RETRY_MAX_SECS", "120")
    console.run_sync(date_range="yesterday", now=NOW, types="cdrs", data_dir=tmp_path / "data")
    assert [p["types"] for p in reached] == [["cdrs"]]
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: http://127.0.0.1:9: connection failed (ConnectError: All connection attempts failed); the sync "
        "retries each request for up to 120 s (OPENTACT_RETRY_MAX_SECS), then the sync itself: if the URL is wrong, "
        "stop it (Ctrl-C) and check OPENTACT_BASE_URL"
    ]


def test_a_host_that_does_not_resolve_is_warned_of_in_words_as_the_object_stores_is(
    reached, monkeypatch, tmp_path, capsys
) -> None:
    monkeypatch.setenv("OPENTACT_BASE_URL", "https://cdr-no-such-host.invalid")
    monkeypatch.setenv("OPENTACT_API_KEY", WRONG_KEY)
    console.run_sync(date_range="yesterday", now=NOW, types="cdrs", data_dir=tmp_path / "data")
    (warning,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warning.startswith("warning: https://cdr-no-such-host.invalid: connection failed (host not found: "), warning
    assert "Errno" not in warning and "ConnectError" not in warning
    assert warning.endswith("if the URL is wrong, stop it (Ctrl-C) and check OPENTACT_BASE_URL"), warning


def test_an_https_url_of_a_plain_http_server_is_warned_of_in_words_not_openssls(
    reached, monkeypatch, tmp_path, capsys
) -> None:
    with running_sandbox(now=NOW) as url:
        tls_url = url.replace("http://", "https://")
        monkeypatch.setenv("OPENTACT_BASE_URL", tls_url)
        monkeypatch.setenv("OPENTACT_API_KEY", TEST_API_KEY)
        console.run_sync(date_range="yesterday", now=NOW, types="cdrs", data_dir=tmp_path / "data")
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {tls_url}: connection failed (the server answered plain HTTP, not HTTPS: check the URL's scheme "
        "(http://) and port); the sync retries each request for up to 300 s (OPENTACT_RETRY_MAX_SECS), then the sync "
        "itself: if the URL is wrong, stop it (Ctrl-C) and check OPENTACT_BASE_URL"
    ]


def test_a_key_the_api_accepts_goes_on_to_the_flow_without_a_word(reached, monkeypatch, tmp_path, capsys) -> None:
    with running_sandbox(now=NOW) as url:
        monkeypatch.setenv("OPENTACT_BASE_URL", url)
        monkeypatch.setenv("OPENTACT_API_KEY", TEST_API_KEY)
        console.run_sync(date_range="yesterday", now=NOW, types="cdrs", data_dir=tmp_path / "data")
    assert len(reached) == 1
    assert "warning" not in capsys.readouterr().err


# -- with an accounts file: each account's key in a variable, tried at once ---------------------------------

SERVED = ("acme-served-key-0", "globex-served-key-1")


def _accounts(monkeypatch, tmp_path, url: str, keys: dict[str, str], extra: str = "") -> None:
    """An accounts file of one account a key variable (NAME_KEY = its key), at the base URL `url`."""
    path = tmp_path / "accounts.toml"
    path.write_text(
        "".join(f'[accounts.{name}]\napi_key_env = "{name.upper()}_KEY"\n' for name in keys) + extra
    )
    monkeypatch.setenv("CDR_ACCOUNTS_FILE", str(path))
    monkeypatch.setenv("OPENTACT_BASE_URL", url)
    for name, key in keys.items():
        monkeypatch.setenv(f"{name.upper()}_KEY", key)


def test_when_every_accounts_key_is_rejected_the_sync_fails_at_once_naming_each(
    reached, monkeypatch, tmp_path, capsys
) -> None:
    with running_sandbox(api_key=list(SERVED), now=NOW) as url:
        _accounts(monkeypatch, tmp_path, url, {"acme": WRONG_KEY, "globex": "globex-wrong-key-7"})
        with pytest.raises(ApiKeyRejected) as rejected:
            console.run_sync(date_range="yesterday", now=NOW, types="cdrs", data_dir=tmp_path / "data")
    assert reached == []
    # one cause for both, though each names its own variable
    assert str(rejected.value) == (
        f"accounts acme, globex: API key rejected (401) by {url}: check each one's api_key_env variable "
        "(and that it belongs to this environment)"
    )
    assert not (tmp_path / "data").exists()
    err = capsys.readouterr().err
    assert not any(key in err + str(rejected.value) for key in (WRONG_KEY, "globex-wrong-key-7", *SERVED))


def test_an_account_with_its_variable_unset_fails_on_its_key_too(reached, monkeypatch, tmp_path) -> None:
    with running_sandbox(api_key=list(SERVED), now=NOW) as url:
        _accounts(monkeypatch, tmp_path, url, {"acme": WRONG_KEY, "globex": SERVED[1]})
        monkeypatch.delenv("GLOBEX_KEY")
        with pytest.raises(ApiKeyRejected) as rejected:
            console.run_sync(date_range="yesterday", now=NOW, types="cdrs", data_dir=tmp_path / "data")
    assert reached == []
    assert str(rejected.value) == (
        f"account acme: API key rejected (401) by {url}: check ACME_KEY (and that it belongs to this environment); "
        "account globex: GLOBEX_KEY is not set (or is empty): export it with the account's API key"
    )


def test_one_rejected_account_of_two_is_warned_of_and_the_run_goes_on(reached, monkeypatch, tmp_path, capsys) -> None:
    with running_sandbox(api_key=list(SERVED), now=NOW) as url:
        _accounts(monkeypatch, tmp_path, url, {"acme": SERVED[0], "globex": WRONG_KEY})
        console.run_sync(date_range="yesterday", now=NOW, types="cdrs", data_dir=tmp_path / "data")
    assert [p["accounts"] for p in reached] == [["acme", "globex"]]
    out, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: account globex: API key rejected (401) by {url}: check GLOBEX_KEY (and that it belongs to this "
        "environment); it fails in this run, the other accounts sync"
    ]
    assert not any(key in out + err for key in (WRONG_KEY, *SERVED))


def test_many_rejected_accounts_are_warned_of_with_their_cause_once(reached, monkeypatch, tmp_path, capsys) -> None:
    # A reseller's lapsed customers: a few names and how many, not each one's 130-character cause.
    lapsed = {f"lapsed{n}": f"lapsed-wrong-key-{n}" for n in range(4)}
    with running_sandbox(api_key=list(SERVED), now=NOW) as url:
        _accounts(monkeypatch, tmp_path, url, {"acme": SERVED[0], **lapsed})
        console.run_sync(date_range="yesterday", now=NOW, types="cdrs", data_dir=tmp_path / "data")
    assert [p["accounts"] for p in reached] == [["acme", *lapsed]]
    out, err = capsys.readouterr()
    assert [line for line in err.splitlines() if line.startswith("warning:")] == [
        f"warning: accounts lapsed0, lapsed1, lapsed2, ... (4 accounts): API key rejected (401) by {url}: check each "
        "one's api_key_env variable (and that it belongs to this environment); they fail in this run, the other "
        "accounts sync"
    ]


def test_an_account_of_a_secret_block_is_not_tried_and_keeps_the_run_going(
    reached, monkeypatch, tmp_path, capsys,
) -> None:
    # Only the flow reads blocks: the block's key may be good, so the rejected ones do not stop the run.
    with running_sandbox(api_key=list(SERVED), now=NOW) as url:
        _accounts(monkeypatch, tmp_path, url, {"acme": WRONG_KEY},
                  extra='[accounts.hooli]\napi_key_block = "hooli-key"\n')
        console.run_sync(date_range="yesterday", now=NOW, types="cdrs", data_dir=tmp_path / "data")
    assert [p["accounts"] for p in reached] == [["acme", "hooli"]]
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith("warning: account acme: API key rejected (401)")


def test_accounts_at_an_unreachable_base_url_are_named_with_it_in_one_warning(
    reached, monkeypatch, tmp_path, capsys
) -> None:
    monkeypatch.setenv("OPENTACT_RETRY_MAX_SECS", "120")
    with running_sandbox(api_key=list(SERVED), now=NOW) as url:
        _accounts(monkeypatch, tmp_path, url, {"acme": SERVED[0]},
                  extra='[accounts.globex]\napi_key_env = "GLOBEX_KEY"\nbase_url = "http://127.0.0.1:9/proxy/tok3n"\n'
                        '[accounts.hooli]\napi_key_env = "HOOLI_KEY"\nbase_url = "http://127.0.0.1:9"\n')
        monkeypatch.setenv("GLOBEX_KEY", SERVED[1])
        monkeypatch.setenv("HOOLI_KEY", WRONG_KEY)
        console.run_sync(date_range="yesterday", now=NOW, types="cdrs", data_dir=tmp_path / "data")
    assert [p["accounts"] for p in reached] == [["acme", "globex", "hooli"]]
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: accounts globex, hooli at http://127.0.0.1:9: connection failed (ConnectError: All connection "
        "attempts failed); the sync retries each request for up to 120 s (OPENTACT_RETRY_MAX_SECS), then the sync "
        "itself: if a URL is wrong, stop it (Ctrl-C) and check the account's base_url (or OPENTACT_BASE_URL)"
    ]


def test_many_accounts_at_an_unreachable_base_url_are_a_few_names_and_a_count(
    reached, monkeypatch, tmp_path, capsys
) -> None:
    # A reseller's accounts all on one wrong OPENTACT_BASE_URL: one place, a few of its accounts named, not each.
    monkeypatch.setenv("OPENTACT_RETRY_MAX_SECS", "120")
    names = [f"c{n:03d}" for n in range(12)]
    _accounts(monkeypatch, tmp_path, "http://127.0.0.1:9", dict.fromkeys(names, TEST_API_KEY))
    console.run_sync(date_range="yesterday", now=NOW, types="cdrs", data_dir=tmp_path / "data")
    assert [p["accounts"] for p in reached] == [names]
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: accounts c000, c001, c002, ... (12 accounts) at http://127.0.0.1:9: connection failed (ConnectError: "
        "All connection attempts failed); the sync retries each request for up to 120 s (OPENTACT_RETRY_MAX_SECS), "
        "then the sync itself: if a URL is wrong, stop it (Ctrl-C) and check the account's base_url (or "
        "OPENTACT_BASE_URL)"
    ]


def test_the_keys_of_many_accounts_are_tried_within_the_syncs_budget_of_requests(monkeypatch) -> None:
    # a reseller's hundreds of accounts must not become hundreds of requests at once
    import asyncio
    from datetime import datetime, timezone

    import pipelines.opentact.client as client_module
    from pydantic import SecretStr

    from pipelines.opentact.client import ClientConfig

    in_flight, most = 0, 0

    class Client:
        def __init__(self, config) -> None:
            pass

        async def __aenter__(self):
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            return self

        async def __aexit__(self, *exc) -> None:
            nonlocal in_flight
            in_flight -= 1

        async def read_slice(self, kind, window):
            await asyncio.sleep(0.02)
            yield []

    monkeypatch.setattr(client_module, "OpentactClient", Client)
    config = ClientConfig(base_url="http://127.0.0.1:9", api_key=SecretStr(TEST_API_KEY))
    start = datetime(2026, 10, 1, tzinfo=timezone.utc)
    outcomes = asyncio.run(console._try_keys({f"a{i}": (config, start) for i in range(12)}, "cdrs", 3))
    assert outcomes == {f"a{i}": None for i in range(12)} and most == 3
