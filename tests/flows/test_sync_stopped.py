"""A sync stopped (Ctrl-C, SIGTERM) while Prefect waits to retry it is logged as stopped, as one stopped mid-sync is."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from pipelines.lake import Lake
from pipelines.runs import read_sync_runs

NOW = "2026-10-06T00:00:00Z"
# Past the first attempt's end: the task's retry waits 10 s, so this is far inside it.
ATTEMPT_SECS = 120.0


def _closed_port() -> int:
    """A loopback port nothing listens on: every connection to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _last_status(data_dir: Path) -> str | None:
    runs = read_sync_runs(Lake(data_dir)) if (data_dir / "state").exists() else []
    return runs[0].status if runs else None


def test_a_sync_stopped_while_waiting_to_retry_is_logged_stopped(prefect_harness, monkeypatch, tmp_path) -> None:
    from pipelines.flows.sync import sync_flow

    monkeypatch.setenv("OPENTACT_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("OPENTACT_API_KEY", "stopped-test-key")
    monkeypatch.setenv("OPENTACT_RETRY_MAX_SECS", "0.3")
    monkeypatch.setenv("OPENTACT_BACKOFF_BASE_SECS", "0.01")
    data_dir = tmp_path / "data"

    async def stopped_between_attempts() -> None:
        run = asyncio.create_task(sync_flow(start="2026-10-01", end="2026-10-03", now=NOW, data_dir=str(data_dir)))
        deadline = time.monotonic() + ATTEMPT_SECS
        while _last_status(data_dir) != "incomplete" and not run.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not run.done() and _last_status(data_dir) == "incomplete"
        run.cancel()  # what Ctrl-C does to `cdr sync`'s flow (console.stoppable)
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(stopped_between_attempts())
    runs = read_sync_runs(Lake(data_dir))
    assert [run.status for run in runs] == ["stopped"]
    # What the attempt before left failed stays listed: the next run redoes it.
    assert {f.kind for f in runs[0].failed_slices} == {"cdrs", "mdrs"}
