"""The client against a broken or hostile API on a real loopback socket: what it cannot trust
fails the slice at once or after its retries, never by exhausting memory or time.

Each server below answers every request itself, byte by byte, and stops on its own.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
import pytest
from pydantic import SecretStr

from pipelines.dates import Window
from pipelines.opentact.client import (
    MAX_RECORDS_PER_HOUR,
    MAX_RESPONSE_BYTES,
    ApiError,
    ClientConfig,
    OpentactClient,
    RetriesExhausted,
)
from tests.opentact.factories import T0
from tests.opentact.fakes import API_KEY

pytestmark = pytest.mark.anyio

HOUR = Window(T0, T0 + timedelta(hours=1))
DAY = Window(T0, T0 + timedelta(days=1))
PAGE_SIZE = 250

Answer = Callable[[int, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Server:
    url: str
    pages: list[int] = field(default_factory=list)  # the page number of each request, in order


@asynccontextmanager
async def serving(answer: Answer) -> AsyncIterator[Server]:
    """A loopback HTTP/1.1 server: each request's head is read, then `answer(page number, writer)`."""
    handlers: set[asyncio.Task[None]] = set()
    server: Server

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            number = int(re.search(rb"page%5Bnumber%5D=(\d+)", head).group(1))  # type: ignore[union-attr]
            server.pages.append(number)
            await answer(number, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up: the point of most of these servers
        finally:
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    host, port = listener.sockets[0].getsockname()[:2]
    server = Server(f"http://{host}:{port}")
    try:
        yield server
    finally:
        listener.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await listener.wait_closed()


def head(status: str = "200 OK", **headers: object) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", "Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def claiming(total_pages: int, total_results: int) -> Answer:
    """Page 1 of any query claims these totals (with no records); any later page is refused."""

    async def answer(number: int, writer: asyncio.StreamWriter) -> None:
        if number == 1:
            meta = {"page_number": 1, "page_size": PAGE_SIZE, "total_pages": total_pages, "total_results": total_results}
            body = orjson.dumps({"data": [], "meta": meta})
            writer.write(head(Content_Length=len(body)) + body)
        else:
            body = orjson.dumps({"errors": [{"detail": "no such page"}]})
            writer.write(head("400 Bad Request", Content_Length=len(body)) + body)
        await writer.drain()

    return answer


async def endless(number: int, writer: asyncio.StreamWriter) -> None:
    """A body that goes on (up to four times the client's limit), never closing its JSON."""
    writer.write(head(Transfer_Encoding="chunked") + b'b\r\n{"data": [ \r\n')
    chunk = b" " * 65536
    for _ in range(4 * MAX_RESPONSE_BYTES // len(chunk)):
        writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    await writer.drain()


async def announcing_a_huge_body(number: int, writer: asyncio.StreamWriter) -> None:
    writer.write(head(Content_Length=10**12) + b'{"data": [')
    await writer.drain()


async def trickling(number: int, writer: asyncio.StreamWriter) -> None:
    """A slow loris: the head at once, then one byte of the body every 0.1 s (40 bytes)."""
    writer.write(head(Content_Length=40))
    await writer.drain()
    for _ in range(40):
        await asyncio.sleep(0.1)
        writer.write(b" ")
        await writer.drain()


async def read(url: str, window: Window, **changes: object) -> None:
    options: dict = {"base_url": url, "api_key": SecretStr(API_KEY), "page_size": PAGE_SIZE, "concurrency": 4}
    options.update({"retry_max_secs": 1.0, "backoff_base_secs": 0.05, "backoff_max_secs": 0.1, **changes})
    async with OpentactClient(ClientConfig(**options)) as client:
        async for _ in client.read_slice("cdrs", window):
            pass


HOUR_PAGES = MAX_RECORDS_PER_HOUR // PAGE_SIZE


@pytest.mark.parametrize(
    ("window", "total_pages", "total_results"),
    [
        pytest.param(HOUR, HOUR_PAGES + 1, 0, id="an-hour-of-more-pages-than-allowed"),
        pytest.param(DAY, 24 * HOUR_PAGES + 1, 0, id="a-day-of-more-pages-than-allowed"),
        pytest.param(HOUR, 1, MAX_RECORDS_PER_HOUR + 1, id="an-hour-of-more-records-than-allowed"),
    ],
)
async def test_a_claim_no_account_could_fill_fails_the_slice_at_once(
    window: Window, total_pages: int, total_results: int
) -> None:
    async with serving(claiming(total_pages, total_results)) as server:
        with pytest.raises(ApiError) as failure:
            await read(server.url, window)
    assert type(failure.value) is ApiError and failure.value.retryable is False
    message = str(failure.value)
    # "1 page", never "1 pages"
    announced = f"{total_results:,} records in {total_pages:,} page{'s' if total_pages != 1 else ''}"
    assert message.startswith(f"cdrs {window} page 1: the API announced {announced}, more than")
    assert "check that OPENTACT_BASE_URL is the Opentact API" in message
    assert server.pages == [1]  # not retried, and no page of the claim asked for


@pytest.mark.parametrize(
    ("answer", "how"),
    [
        pytest.param(endless, f"sent more than {MAX_RESPONSE_BYTES} bytes", id="a-body-that-never-ends"),
        pytest.param(announcing_a_huge_body, "announced 1000000000000 bytes", id="a-body-announced-too-big"),
    ],
)
async def test_a_body_past_the_limit_fails_the_slice_at_once(answer: Answer, how: str) -> None:
    async with serving(answer) as server:
        with pytest.raises(ApiError) as failure:
            await read(server.url, HOUR)
    assert type(failure.value) is ApiError and failure.value.retryable is False
    assert str(failure.value).startswith(f"cdrs {HOUR} page 1: the response {how}, past the client's limit of 16 MiB")
    assert server.pages == [1]


async def test_a_slow_loris_is_cut_off_at_the_request_deadline_and_retried_to_the_cap() -> None:
    async with serving(trickling) as server:
        with pytest.raises(RetriesExhausted) as failure:
            await read(server.url, HOUR, timeout_secs=0.3, retry_max_secs=0.8)
    assert failure.value.retryable is True
    message = str(failure.value)
    assert message.startswith(f"gave up on cdrs {HOUR} page 1 after ")
    assert message.endswith("last: timed out (the response took longer than 0.3s, OPENTACT_TIMEOUT_SECS)")
    assert len(server.pages) >= 2
