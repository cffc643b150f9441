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


def _flow_reached(reached: list[dict[str, object]]):
    """A stand-in for the sync flow (and so for Prefect's start) that notes its parameters."""

    async def flow(progress=None, **parameters: object) -> dict[str, object]:
        reached.append(parameters)
        return {"records": 0, "duration_secs": 0.1, "records_per_sec": 0.0, "types": {}}

    return flow


def test_a_rejected_key_fails_in_one_line_before_prefect_starts(monkeypatch, tmp_path) -> None:
    reached: list[dict[str, object]] = []
    monkeypatch.setattr(flows, "sync_flow", _flow_reached(reached))
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
    monkeypatch, tmp_path, capsys
) -> None:
    reached: list[dict[str, object]] = []
    monkeypatch.setattr(flows, "sync_flow", _flow_reached(reached))
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


def test_a_key_the_api_accepts_goes_on_to_the_flow_without_a_word(monkeypatch, tmp_path, capsys) -> None:
    reached: list[dict[str, object]] = []
    monkeypatch.setattr(flows, "sync_flow", _flow_reached(reached))
    with running_sandbox(now=NOW) as url:
        monkeypatch.setenv("OPENTACT_BASE_URL", url)
        monkeypatch.setenv("OPENTACT_API_KEY", TEST_API_KEY)
        console.run_sync(date_range="yesterday", now=NOW, types="cdrs", data_dir=tmp_path / "data")
    assert len(reached) == 1
    assert "warning" not in capsys.readouterr().err
