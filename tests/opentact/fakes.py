"""A fake clock and a tiny in-process listing API for client tests over httpx.MockTransport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime

import httpx
import orjson

from pipelines.dates import parse_datetime

API_KEY = "sk-live-DO-NOT-LEAK-0123456789"
BASE_URL = "http://127.0.0.1:9"


class FakeTime:
    """A monotonic timer that only moves when the client sleeps: no real waiting in tests."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def timer(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        wake = self.now + seconds
        # Let every task that can run at this instant run before time jumps ahead.
        for _ in range(20):
            await asyncio.sleep(0)
        self.now = max(self.now, wake)


Fault = Callable[[httpx.Request], httpx.Response | None]


class FakeApi:
    """Serves listings of the given records like the real API (filter, sort, pages), with faults.

    `faults` are consulted in order for each request; the first that returns a response
    (or raises) wins, else the listing is served. Every request is kept in `requests`.
    """

    def __init__(self, records: dict[str, list[dict]] | None = None) -> None:
        self.records = {kind: sorted(rows, key=lambda r: (r["created_at"], r["id"])) for kind, rows in (records or {}).items()}
        self.requests: list[httpx.Request] = []
        self.faults: list[Fault] = []
        self.usage_rows: list[dict] = []
        self.usage_page_size = 5000
        self.total_results_bias: Callable[[int], int] = lambda page: 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for fault in self.faults:
            response = fault(request)
            if response is not None:
                return response
        kind = request.url.path.rsplit("/", 1)[-1]
        params = request.url.params
        number = int(params.get("page[number]", "1"))
        if kind == "usage":
            return self._page(self.usage_rows, number, self.usage_page_size, 0)
        start = parse_datetime(params["filter[created_at][gte]"])
        end = parse_datetime(params["filter[created_at][lt]"])
        rows = [r for r in self.records.get(kind, []) if start <= _created(r) < end]
        return self._page(rows, number, int(params.get("page[size]", "20")), self.total_results_bias(number))

    @staticmethod
    def _page(rows: list, number: int, size: int, bias: int) -> httpx.Response:
        total = len(rows) + bias
        meta = {"page_number": number, "page_size": size, "total_pages": -(-total // size), "total_results": total}
        body = {"data": rows[(number - 1) * size : number * size], "meta": meta}
        return httpx.Response(200, content=orjson.dumps(body), headers={"content-type": "application/json"})

    def queries(self, kind: str = "cdrs") -> list[tuple[str, str, int]]:
        """(gte, lt, page) of each listing request of a kind, in order."""
        return [
            (r.url.params["filter[created_at][gte]"], r.url.params["filter[created_at][lt]"], int(r.url.params["page[number]"]))
            for r in self.requests
            if r.url.path.endswith("/" + kind)
        ]


def _created(record: dict) -> datetime:
    return parse_datetime(record["created_at"])


def error(status: int, detail: str = "boom", parameter: str | None = None, headers: dict | None = None) -> httpx.Response:
    """An API error response in the contract's envelope."""
    body: dict = {"code": str(10000 + status), "title": "Error", "detail": detail}
    if parameter:
        body["source"] = {"parameter": parameter}
    return httpx.Response(status, content=orjson.dumps({"errors": [body]}), headers=headers or {})


def times(n: int, make: Callable[[httpx.Request], httpx.Response | None]) -> Fault:
    """A fault applied to the first n requests only."""
    count = 0

    def fault(request: httpx.Request) -> httpx.Response | None:
        nonlocal count
        count += 1
        return make(request) if count <= n else None

    return fault


def http_date(moment: datetime) -> str:
    """An IMF-fixdate, as in Retry-After and Date headers."""
    return format_datetime(moment, usegmt=True)
