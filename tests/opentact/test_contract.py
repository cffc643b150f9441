"""The client against the sandbox over a real socket: exactly the sandbox's export, whatever the faults.

Ground truth is `export_window` of the same world (the records as served, and the malformed
ones). Each fault runs alone, then all together, each on its own server; waits are kept
short (small backoff base) so the module stays quick.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import orjson
import polars as pl
import pytest
from pydantic import SecretStr

from pipelines.dates import Window, format_utc, parse_datetime
from pipelines.opentact import api
from pipelines.opentact.client import ApiKeyRejected, ClientConfig, OpentactClient, Page, RetriesExhausted
from sandbox.export import export_window
from sandbox.testing import TEST_API_KEY, running_sandbox
from sandbox.world import World

pytestmark = pytest.mark.anyio

UTC = timezone.utc
START = date(2026, 10, 1)
NOW = datetime(2026, 10, 6, 6, 0, tzinfo=UTC)
WORLD = {"seed": 23, "calls_per_day": 300, "messages_per_day": 150, "rerate_rate": 0.2, "malformed_rate": 0.03}
WINDOW = Window(datetime(2026, 10, 2, 12, tzinfo=UTC), datetime(2026, 10, 5, tzinfo=UTC))

# Faults are drawn per request (deterministic for the same requests) except the rate limit,
# which is per second: 3/s is below the 4 pages the client fires at once after a page 1, so
# it bites however slow a loaded machine makes the client.
FAULTS = {
    "none": {},
    "fail": {"fail_rate": 0.3},
    "drop": {"drop_rate": 0.25},
    "rate_limit": {"rate_limit": 3},
    "latency": {"latency_ms": 40},
    "all": {"fail_rate": 0.2, "drop_rate": 0.15, "rate_limit": 3, "latency_ms": 10},
}


def config(base_url: str, **changes: object) -> ClientConfig:
    options: dict = {
        "base_url": base_url,
        "api_key": SecretStr(TEST_API_KEY),
        "page_size": 50,
        "concurrency": 4,
        "backoff_base_secs": 0.02,
        "backoff_max_secs": 0.5,
        "retry_max_secs": 60,
        "timeout_secs": 10,
    }
    options.update(changes)
    return ClientConfig(**options)


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    """The window's records as served at NOW: {kind: [record, ...], "malformed": [line, ...]}."""
    out = tmp_path_factory.mktemp("export")
    export_window(World(start=START, cache_days=1, **WORLD), NOW, WINDOW.start, WINDOW.end, out)
    return _read_export(out)


def _read_export(out: Path) -> dict[str, list]:
    return {name: [orjson.loads(line) for line in (out / f"{name}.jsonl").read_bytes().splitlines()] for name in ("cdrs", "mdrs", "malformed")}


@pytest.fixture(scope="module", params=list(FAULTS))
def sandbox(request: pytest.FixtureRequest) -> str:
    with running_sandbox(start=START.isoformat(), now=format_utc(NOW), **WORLD, **FAULTS[request.param]) as url:
        yield url


async def read(cfg: ClientConfig, kind: api.RecordType, window: Window, now: datetime = NOW) -> list[Page]:
    async with OpentactClient(cfg) as client:
        return [page async for page in client.read_window(kind, window, now)]


def assert_exactly(pages: list[Page], kind: str, truth: dict[str, list]) -> None:
    """Same ids, costs and updated_at as the export; none missing, none twice; same malformed records."""
    frame = pl.concat([p.frame for p in pages])
    assert frame["id"].is_unique().all(), "a record came twice"
    expected = {r["id"]: (Decimal(r["cost"]), parse_datetime(r["updated_at"])) for r in truth[kind]}
    got = {row[0]: (row[1], row[2]) for row in frame.select("id", "cost", "updated_at").iter_rows()}
    assert got.keys() == expected.keys()
    assert got == expected
    rejected = Counter(p.rejects[i].raw_json for p in pages for i in range(len(p.rejects)))
    malformed = Counter(orjson.dumps(line["record"]).decode() for line in truth["malformed"] if line["type"] == kind)
    assert rejected == malformed
    assert [p.last for p in pages].count(True) == len({p.slice for p in pages})


async def test_window_read_is_exactly_the_export_under_each_fault(
    sandbox: str, truth: dict[str, list], caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    caplog.set_level(logging.INFO, logger="pipelines.opentact.client")
    for kind in api.RECORD_TYPES:
        assert_exactly(await read(config(sandbox), kind, WINDOW), kind, truth)
    causes = " ".join(r.getMessage() for r in caplog.records if r.getMessage().startswith("retrying"))
    fault = request.node.callspec.params["sandbox"]
    # The faults did bite: each shows up as the retries it caused.
    if fault in ("fail", "all"):
        assert "HTTP 50" in causes
    if fault in ("drop", "all"):
        assert "connection failed" in causes or "unreadable body" in causes
    if fault in ("rate_limit", "all"):
        assert "HTTP 429" in causes
    if fault in ("none", "latency"):
        assert causes == ""


async def test_wrong_key_is_rejected_at_once(truth: dict[str, list]) -> None:
    with running_sandbox(start=START.isoformat(), now=format_utc(NOW), **WORLD) as url:
        started = time.monotonic()
        with pytest.raises(ApiKeyRejected, match=f"API key rejected \\(401\\) by {url}"):
            await read(config(url, api_key=SecretStr("not-the-key")), "cdrs", WINDOW)
        assert time.monotonic() - started < 5  # no retries


async def test_retry_exhaustion_names_window_page_and_status() -> None:
    with running_sandbox(start=START.isoformat(), now=format_utc(NOW), **WORLD, fail_rate=1.0) as url:
        day = Window(WINDOW.start, WINDOW.start + timedelta(hours=1))
        with pytest.raises(RetriesExhausted) as failure:
            await read(config(url, retry_max_secs=0.5), "mdrs", day)
    message = str(failure.value)
    assert message.startswith(f"gave up on mdrs {day} page 1 after ")
    assert "last: HTTP 50" in message


async def test_responses_slower_than_the_timeout_are_retried_then_given_up() -> None:
    with running_sandbox(start=START.isoformat(), now=format_utc(NOW), **WORLD, latency_ms=400) as url:
        # Whichever bound fires first: httpx's per read, or the client's one deadline per request.
        timed_out = r"last: timed out \((ReadTimeout, timeout 0.1s|the response took longer than 0.1s, OPENTACT_TIMEOUT_SECS)\)"
        with pytest.raises(RetriesExhausted, match=timed_out):
            await read(config(url, timeout_secs=0.1, retry_max_secs=0.5), "cdrs", WINDOW)


@pytest.mark.slow
async def test_records_arriving_while_paging_cause_neither_duplicates_nor_gaps(tmp_path: Path) -> None:
    # A busy hour, live: ~8 new calls a second appear while ~50 slow pages are read.
    live = {"seed": 5, "calls_per_day": 360_000, "messages_per_day": 10}
    start_at = datetime(2026, 10, 2, 10, 0, tzinfo=UTC)
    window = Window(start_at - timedelta(minutes=3), start_at + timedelta(hours=1))
    with running_sandbox(start=START.isoformat(), now=format_utc(start_at), live=True, latency_ms=60, **live) as url:
        # The server's clock started before it said it was ready: ours, started now, lags it
        # by a little; the settle lag covers the rest.
        origin = time.monotonic()
        now = start_at + timedelta(seconds=time.monotonic() - origin)
        cfg = config(url, page_size=30, concurrency=2, settle_lag=timedelta(seconds=1))
        async with OpentactClient(cfg) as client:
            frozen = client.frozen(window, now)
            pages = [page async for page in client.read_window("cdrs", window, now)]
            # Records did arrive meanwhile: the open window now holds more than the frozen one.
            _, meta = await client._get(api.PATHS["cdrs"], api.listing_params(window, 1, 1), "count", len)
    export_window(World(start=START, cache_days=1, **live), frozen.end, frozen.start, frozen.end, tmp_path)
    truth = _read_export(tmp_path)
    assert len(truth["cdrs"]) > 1000
    assert meta.total_results > len(truth["cdrs"]) + len(truth["malformed"]) + 5
    assert_exactly(pages, "cdrs", truth)
