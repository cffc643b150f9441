"""The client over httpx.MockTransport: slicing, paging, retries and their waits, errors, secrecy."""

from __future__ import annotations

import asyncio
import gc
import logging
import pickle
import random
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import orjson
import polars as pl
import pytest
from pydantic import SecretStr

from pipelines.dates import Window, format_utc
from pipelines.errors import UsageError
from pipelines.opentact import api
from pipelines.opentact.client import (
    ApiError,
    ApiKeyRejected,
    ApiUnreachable,
    ClientConfig,
    OpentactClient,
    Page,
    RateGate,
    RetriesExhausted,
    RetryWarnings,
    SliceChanged,
    check_base_url,
    connection_pool,
    tls_context,
)
from pipelines.settings import Settings
from tests.opentact.factories import T0, cdr, mdr
from tests.opentact.fakes import API_KEY, BASE_URL, FakeApi, FakeTime, error, http_date, times

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
THREE_DAYS = Window(T0, T0 + timedelta(days=3))


def config(**changes: object) -> ClientConfig:
    options: dict = {"base_url": BASE_URL, "api_key": SecretStr(API_KEY), "page_size": 5, "concurrency": 3}
    options.update(changes)
    return ClientConfig(**options)


def client(fake: FakeApi, clock: FakeTime | None = None, **changes: object) -> OpentactClient:
    clock = clock or FakeTime()
    return OpentactClient(
        config(**changes), transport=fake.transport(), timer=clock.timer, sleep=clock.sleep, rng=random.Random(7),
        clock=lambda: NOW,
    )


def spread(n: int, make=cdr, every: timedelta = timedelta(hours=1, minutes=7)) -> list[dict]:
    """n records, one every `every` from T0."""
    return [make(i, at=T0 + i * every) for i in range(n)]


async def read_all(c: OpentactClient, kind: api.RecordType = "cdrs", window: Window = THREE_DAYS) -> list[Page]:
    async with c:
        return [page async for page in c.read_window(kind, window)]


def ids(pages: list[Page]) -> list[str]:
    return [i for p in pages for i in p.frame["id"].to_list()]


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://api.opentact.org", "http://10.0.0.1:8080", "http://192.168.1.5", "http://localhost.evil.com"]
)
def test_plain_http_is_refused_unless_the_host_is_loopback(url: str) -> None:
    with pytest.raises(UsageError, match="plain http://.*use https://"):
        check_base_url(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("http://127.8.9.10", "http://127.8.9.10"),
        ("http://localhost:1234", "http://localhost:1234"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("https://api.opentact.org", "https://api.opentact.org"),
        ("https://api.stage.opentact.org/", "https://api.stage.opentact.org"),
    ],
)
def test_https_and_loopback_http_are_accepted(url: str, expected: str) -> None:
    assert check_base_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ftp://api.opentact.org", "api.opentact.org", "https://", "https://x.org/?a=1",
        # a host name no connection can use: the sync would retry it for OPENTACT_RETRY_MAX_SECS
        "https://api..opentact.org", f"https://{'a' * 64}.opentact.org",
    ],
)
def test_malformed_base_url_is_refused(url: str) -> None:
    with pytest.raises(UsageError, match="OPENTACT_BASE_URL"):
        check_base_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://ops:PASSWD@api.opentact.org", "http://ops:PASSWD@127.0.0.1:8080", "http://api.opentact.org/?t=PASSWD",
        "https://ops:PASSWD@api.opentact.org:99999/PASSWD",
    ],
)
def test_a_base_url_refusal_shows_neither_its_password_nor_its_query(url: str) -> None:
    with pytest.raises(UsageError) as refused:
        check_base_url(url)
    assert "PASSWD" not in str(refused.value) and "ops" not in str(refused.value)


def test_missing_key_is_an_error_naming_the_variable() -> None:
    with pytest.raises(UsageError, match="OPENTACT_API_KEY is not set"):
        ClientConfig.from_settings(Settings())


def test_config_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENTACT_API_KEY", API_KEY)
    monkeypatch.setenv("OPENTACT_BASE_URL", "https://api.stage.opentact.org/")
    monkeypatch.setenv("OPENTACT_CONCURRENCY", "5")
    monkeypatch.setenv("OPENTACT_SETTLE_LAG_SECS", "30")
    built = ClientConfig.from_settings(Settings())
    assert (built.base_url, built.concurrency, built.settle_lag) == (
        "https://api.stage.opentact.org",
        5,
        timedelta(seconds=30),
    )
    assert built.api_key.get_secret_value() == API_KEY


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "it is empty"),
        (f"{API_KEY}\n", "it has leading or trailing whitespace"),
        (f"{API_KEY}\nX-Injected: 1", "it contains a line break"),
        (f"{API_KEY[:8]} {API_KEY[8:]}", "it contains a space, a control character or a non-ASCII character"),
    ],
)
def test_a_key_no_header_can_carry_is_refused_without_showing_it(key: str, problem: str) -> None:
    with pytest.raises(UsageError) as refused:
        config(api_key=SecretStr(key))
    assert str(refused.value) == f"OPENTACT_API_KEY is not allowed: {problem}; set it to the key exactly as issued"


def test_key_is_absent_from_every_repr() -> None:
    c = OpentactClient(config())
    for text in (repr(c.config), str(c.config), repr(c), repr(c._gate), repr(c._http.auth), repr(c._auth)):
        assert API_KEY not in text


# --- planning ---------------------------------------------------------------------------------


def test_window_is_frozen_at_now_minus_settle_lag_and_cut_into_utc_days() -> None:
    c = OpentactClient(config(settle_lag=timedelta(minutes=2)))
    now = T0 + timedelta(days=2, hours=5, microseconds=123456)
    assert c.plan_slices("cdrs", THREE_DAYS, now) == [
        Window(T0, T0 + timedelta(days=1)),
        Window(T0 + timedelta(days=1), T0 + timedelta(days=2)),
        Window(T0 + timedelta(days=2), T0 + timedelta(days=2, hours=4, minutes=58, milliseconds=123)),
    ]


async def test_a_small_window_is_planned_as_one_slice_read_from_the_page_that_sized_it() -> None:
    records = spread(60)  # 60 records over ~2.8 days: 12 pages of 5
    fake = FakeApi({"cdrs": records})
    async with client(fake, slice_max_pages=12) as c:
        assert await c.plan("cdrs", THREE_DAYS, NOW) == [THREE_DAYS]
        assert len(fake.requests) == 1
        pages = [page async for page in c.read_slice("cdrs", THREE_DAYS)]
    assert sorted(ids(pages)) == sorted(r["id"] for r in records) and len(ids(pages)) == 60
    # Page 1 is not asked for twice: 12 requests in all.
    assert sorted(q[2] for q in fake.queries()) == list(range(1, 13))
    assert {p.slice for p in pages} == {THREE_DAYS} and pages[-1].last


async def test_a_window_of_more_pages_is_planned_by_utc_day_for_one_request_more() -> None:
    fake = FakeApi({"cdrs": spread(60)})
    async with client(fake, slice_max_pages=11) as c:
        assert await c.plan("cdrs", THREE_DAYS, NOW) == c.plan_slices("cdrs", THREE_DAYS, NOW)
        assert len(c.plan_slices("cdrs", THREE_DAYS, NOW)) == 3
        assert [(q[0], q[1], q[2]) for q in fake.queries()] == [
            ("2026-10-01T00:00:00.000Z", "2026-10-04T00:00:00.000Z", 1)
        ]
        # The probe is not kept: the days read their own pages.
        assert c._probes == {}


async def test_a_window_within_one_utc_day_is_planned_without_a_request() -> None:
    fake = FakeApi({"cdrs": spread(60)})
    async with client(fake) as c:
        one_day = Window(T0, T0 + timedelta(days=1))
        assert await c.plan("cdrs", one_day, NOW) == [one_day]
        assert await c.plan("cdrs", THREE_DAYS, T0 - timedelta(days=1)) == []
    assert fake.requests == []


def test_window_entirely_in_the_future_has_no_slices() -> None:
    assert OpentactClient(config()).plan_slices("mdrs", THREE_DAYS, T0 - timedelta(days=1)) == []


def test_unknown_record_type_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="cdrs, mdrs"):
        OpentactClient(config()).plan_slices("calls", THREE_DAYS, NOW)  # type: ignore[arg-type]


# --- reading ----------------------------------------------------------------------------------


async def test_window_read_returns_every_record_once_slice_by_slice() -> None:
    records = spread(60)  # 60 records over ~2.8 days, 5 per page
    fake = FakeApi({"cdrs": records})
    pages = await read_all(client(fake))
    assert sorted(ids(pages)) == sorted(r["id"] for r in records)
    assert len(ids(pages)) == 60
    slices = [p.slice for p in pages]
    assert slices == sorted(slices, key=lambda w: w.start)  # each slice's pages together, in order
    assert [p.slice for p in pages if p.last] == [
        Window(T0 + timedelta(days=d), T0 + timedelta(days=d + 1)) for d in range(3)
    ]
    for page in pages:
        assert page.frame.schema == pl.Schema(api.LAKE_SCHEMAS["cdrs"])
        assert page.frame["created_at"].is_between(page.slice.start, page.slice.end, closed="left").all()
    # The last page of each slice is the last one yielded for it.
    assert all(p.last == (i + 1 == len(pages) or pages[i + 1].slice != p.slice) for i, p in enumerate(pages))


async def test_queries_filter_sort_and_page_as_the_contract_says() -> None:
    fake = FakeApi({"cdrs": spread(12)})
    await read_all(client(fake), window=Window(T0, T0 + timedelta(days=1)))
    first = fake.requests[0]
    assert first.url.path == "/v2/reports/cdrs"
    assert first.url.params.multi_items() == [
        ("filter[created_at][gte]", "2026-10-01T00:00:00.000Z"),
        ("filter[created_at][lt]", "2026-10-02T00:00:00.000Z"),
        ("sort[]", "created_at"),
        ("sort[]", "id"),
        ("page[number]", "1"),
        ("page[size]", "5"),
    ]
    assert first.headers["authorization"] == f"Bearer {API_KEY}"
    assert first.extensions["timeout"] == {"connect": 30.0, "read": 30.0, "write": 30.0, "pool": 30.0}
    assert sorted(q[2] for q in fake.queries()) == [1, 2, 3]


async def test_records_after_the_frozen_end_are_not_asked_for() -> None:
    fake = FakeApi({"cdrs": spread(10, every=timedelta(minutes=1))})
    c = client(fake, settle_lag=timedelta(minutes=2))
    c._clock = lambda: T0 + timedelta(minutes=7)
    pages = await read_all(c)
    assert {q[1] for q in fake.queries()} == {"2026-10-01T00:05:00.000Z"}
    assert len(ids(pages)) == 5


async def test_empty_day_still_yields_one_last_page() -> None:
    fake = FakeApi({"mdrs": []})
    pages = await read_all(client(fake), "mdrs", Window(T0, T0 + timedelta(days=1)))
    assert [(p.page_number, p.frame.height, p.last) for p in pages] == [(1, 0, True)]
    assert pages[0].frame.schema == pl.Schema(api.LAKE_SCHEMAS["mdrs"])


async def test_big_day_is_read_hour_by_hour() -> None:
    records = spread(40, make=mdr, every=timedelta(minutes=9))  # 6 hours of records, 8 pages
    fake = FakeApi({"mdrs": records})
    pages = await read_all(client(fake, slice_max_pages=3), "mdrs", Window(T0, T0 + timedelta(days=1)))
    assert sorted(ids(pages)) == sorted(r["id"] for r in records)
    hours = {(q[0], q[1]) for q in fake.queries("mdrs")[1:]}
    assert len(hours) == 24
    assert ("2026-10-01T05:00:00.000Z", "2026-10-01T06:00:00.000Z") in hours
    assert {p.slice for p in pages} == {Window(T0, T0 + timedelta(days=1))}
    assert {p.query.end - p.query.start for p in pages} == {timedelta(hours=1)}
    assert [p.last for p in pages].count(True) == 1 and pages[-1].last


async def test_malformed_records_come_as_rejects_with_their_request() -> None:
    records = spread(12)
    records[7]["cli"] = "12345"
    fake = FakeApi({"cdrs": records})
    pages = await read_all(client(fake), window=Window(T0, T0 + timedelta(days=1)))
    rejects = [r for p in pages for r in p.rejects]
    assert [(r.reason, r.page_number, r.kind) for r in rejects] == [
        ("field 'cli' is not an E.164 number: '12345'", 2, "cdrs")
    ]
    assert orjson.loads(rejects[0].raw_json) == records[7]
    assert len(ids(pages)) == 11


async def test_consumer_stopping_early_cancels_the_rest() -> None:
    fake = FakeApi({"cdrs": spread(60)})
    async with client(fake) as c:
        async for _ in c.read_window("cdrs", THREE_DAYS):
            break
    assert len(fake.requests) < 13


# --- counts: none missing, none twice ---------------------------------------------------------


async def test_total_results_moving_while_paging_is_an_error() -> None:
    fake = FakeApi({"cdrs": spread(12)})
    fake.total_results_bias = lambda page: 1 if page == 3 else 0
    with pytest.raises(SliceChanged, match=r"total_results moved from 12 to 13 by page 3"):
        await read_all(client(fake), window=Window(T0, T0 + timedelta(days=1)))


async def test_fewer_records_than_announced_is_an_error() -> None:
    fake = FakeApi({"cdrs": spread(12)})
    fake.total_results_bias = lambda page: 1
    with pytest.raises(SliceChanged, match="announced 13 records but 12 arrived"):
        await read_all(client(fake), window=Window(T0, T0 + timedelta(days=1)))


@pytest.mark.parametrize(
    "page_two",
    [
        pytest.param(lambda records: records[4:9], id="clean page"),
        pytest.param(lambda records: [records[4], {**records[5], "cli": "12345"}, *records[6:9]], id="beside a malformed one"),
    ],
)
async def test_a_record_served_twice_is_an_error(page_two) -> None:
    records = spread(10, every=timedelta(minutes=1))
    fake = FakeApi({"cdrs": records})

    def repeat_first(request: httpx.Request) -> httpx.Response | None:
        if request.url.params["page[number]"] == "2":
            meta = {"page_number": 2, "page_size": 5, "total_pages": 2, "total_results": 10}
            return httpx.Response(200, content=orjson.dumps({"data": page_two(records), "meta": meta}))
        return None

    fake.faults.append(repeat_first)
    with pytest.raises(SliceChanged, match=f"record {records[4]['id']} came twice"):
        await read_all(client(fake), window=Window(T0, T0 + timedelta(days=1)))


@pytest.mark.parametrize("enabled", [True, False])
async def test_the_garbage_collector_is_left_as_found(enabled: bool) -> None:
    records = spread(12)
    records[7]["cli"] = "12345"
    fake = FakeApi({"cdrs": records})
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        pages = await read_all(client(fake))
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
    assert len(ids(pages)) == 11


# --- retries and their waits ------------------------------------------------------------------


async def test_server_errors_are_retried_with_full_jitter_backoff() -> None:
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(times(3, lambda r: error(503)))
    clock = FakeTime()
    pages = await read_all(client(fake, clock, backoff_base_secs=1.0), window=Window(T0, T0 + timedelta(days=1)))
    assert len(ids(pages)) == 3
    assert len(clock.sleeps) == 3
    for attempt, slept in enumerate(clock.sleeps):
        assert 0 <= slept <= 2**attempt


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_each_retryable_status_is_retried(status: int) -> None:
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(times(1, lambda r: error(status)))
    pages = await read_all(client(fake), window=Window(T0, T0 + timedelta(days=1)))
    assert len(ids(pages)) == 3 and len(fake.requests) == 2


async def test_503_with_retry_after_waits_it_without_throttling_the_rest() -> None:
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(times(1, lambda r: error(503, headers={"Retry-After": "5"})))
    clock = FakeTime()
    c = client(fake, clock)
    await read_all(c, window=Window(T0, T0 + timedelta(days=1)))
    assert clock.sleeps == [5.0]
    assert c._gate.limit == 3.0


async def test_429_waits_retry_after() -> None:
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(times(1, lambda r: error(429, headers={"Retry-After": "7", "x-ratelimit-reset": "3"})))
    clock = FakeTime()
    await read_all(client(fake, clock), window=Window(T0, T0 + timedelta(days=1)))
    assert clock.sleeps == [7.0]


async def test_429_retry_after_as_a_date() -> None:
    fake = FakeApi({"cdrs": spread(3)})
    when = http_date(NOW + timedelta(seconds=12))
    fake.faults.append(times(1, lambda r: error(429, headers={"Retry-After": when})))
    clock = FakeTime()
    await read_all(client(fake, clock), window=Window(T0, T0 + timedelta(days=1)))
    assert clock.sleeps == [12.0]


async def test_429_without_retry_after_waits_ratelimit_reset() -> None:
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(times(1, lambda r: error(429, headers={"x-ratelimit-reset": "3"})))
    clock = FakeTime()
    await read_all(client(fake, clock), window=Window(T0, T0 + timedelta(days=1)))
    assert clock.sleeps == [3.0]


async def test_429_without_any_hint_waits_the_backoff_base() -> None:
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(times(1, lambda r: error(429)))
    clock = FakeTime()
    await read_all(client(fake, clock, backoff_base_secs=0.25), window=Window(T0, T0 + timedelta(days=1)))
    assert clock.sleeps == [0.25]


async def test_429_pauses_every_request_until_the_limit_resets() -> None:
    fake = FakeApi({"cdrs": spread(60, every=timedelta(minutes=1))})
    clock = FakeTime()
    sent_at: list[float] = []

    def note_time(request: httpx.Request) -> None:
        sent_at.append(clock.now)

    fake.faults.append(note_time)  # type: ignore[arg-type]
    throttled: list[float] = []

    def limit_page_4(request: httpx.Request) -> httpx.Response | None:
        if request.url.params["page[number]"] == "4" and not throttled:
            throttled.append(len(sent_at) - 1)
            return error(429, headers={"Retry-After": "2"})
        return None

    fake.faults.append(limit_page_4)
    pages = await read_all(client(fake, clock, concurrency=4), window=Window(T0, T0 + timedelta(days=1)))
    assert len(ids(pages)) == 60
    index = throttled[0]
    during_pause = [t for t in sent_at[index + 1 :] if t < sent_at[index] + 2.0]
    # Only requests already past the gate (at most concurrency - 1) went out during the pause.
    assert len(during_pause) <= 3
    assert len(sent_at) - index - 1 > 3


async def test_clients_sharing_a_budget_keep_their_requests_in_flight_within_it() -> None:
    # Two accounts synced at once, each client allowed 3 requests, share a budget of 2.
    fakes = [FakeApi({"cdrs": spread(40)}), FakeApi({"cdrs": spread(30, every=timedelta(hours=2))})]
    in_flight, most = 0, 0

    def slow(fake: FakeApi) -> httpx.MockTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.005)
            in_flight -= 1
            return fake.handle(request)

        return httpx.MockTransport(handle)

    budget = asyncio.Semaphore(2)
    clients = [
        OpentactClient(config(), transport=slow(fake), rng=random.Random(7), clock=lambda: NOW, budget=budget)
        for fake in fakes
    ]
    read = await asyncio.gather(*(read_all(c) for c in clients))
    assert [len(ids(pages)) for pages in read] == [40, 30]
    assert most == 2


async def test_clients_share_one_tls_context() -> None:
    # A sync of many accounts opens a client each: the CA bundle is read once, not per client.
    first, second = OpentactClient(config()), OpentactClient(config(api_key=SecretStr("another-key")))
    async with first, second:
        pools = [c._http._transport._pool for c in (first, second)]  # type: ignore[attr-defined]
        assert pools[0]._ssl_context is pools[1]._ssl_context is tls_context()


async def test_clients_on_a_shared_pool_sign_their_own_requests_and_leave_it_open() -> None:
    fakes = {API_KEY: FakeApi({"cdrs": spread(12)}), "another-key-0123": FakeApi({"cdrs": spread(7)})}

    async def handle(request: httpx.Request) -> httpx.Response:
        key = request.headers["authorization"].removeprefix("Bearer ")
        return fakes[key].handle(request)

    pool = connection_pool(4, 30.0, httpx.MockTransport(handle))
    clients = [
        OpentactClient(config(api_key=SecretStr(key)), pool=pool, rng=random.Random(7), clock=lambda: NOW)
        for key in fakes
    ]
    read = await asyncio.gather(*(read_all(c) for c in clients))
    assert [len(ids(pages)) for pages in read] == [12, 7]  # each key's own records
    assert not pool.is_closed  # its owner closes it
    await pool.aclose()
    with pytest.raises(ValueError, match="shared pool"):
        OpentactClient(config(), pool=pool, transport=httpx.MockTransport(handle))


async def test_rate_gate_halves_once_per_burst_and_opens_up_again() -> None:
    clock = FakeTime()
    gate = RateGate(8, clock.timer, clock.sleep)
    gate.throttled(3.0)
    gate.throttled(3.0)  # the same burst: no second halving
    assert (gate.limit, gate.resume_at) == (4.0, 1003.0)
    await gate.acquire()
    assert clock.sleeps == [3.0]  # a request waits out the common pause
    await gate.release()
    for _ in range(100):
        gate.succeeded(remaining=50, reset_secs=1)
    assert gate.limit == 8.0
    clock.now += 5
    gate.throttled(1.0)
    assert gate.limit == 4.0


async def test_rate_gate_bounds_requests_in_flight() -> None:
    clock = FakeTime()
    gate = RateGate(2, clock.timer, clock.sleep)
    gate.throttled(0.0)  # limit 1
    await gate.acquire()
    waiter = asyncio.ensure_future(gate.acquire())
    await asyncio.sleep(0)
    assert not waiter.done() and gate.in_flight == 1
    await gate.release()
    await waiter
    assert gate.in_flight == 1


async def test_exhausted_ratelimit_window_pauses_before_the_next_request() -> None:
    fake = FakeApi({"cdrs": spread(8, every=timedelta(minutes=1))})
    original = fake.handle

    def with_limit_headers(request: httpx.Request) -> httpx.Response:
        response = original(request)
        response.headers["x-ratelimit-remaining"] = "0"
        response.headers["x-ratelimit-reset"] = "4"
        return response

    clock = FakeTime()
    c = OpentactClient(
        config(concurrency=1), transport=httpx.MockTransport(with_limit_headers), timer=clock.timer, sleep=clock.sleep
    )
    async with c:
        pages = [p async for p in c.read_window("cdrs", Window(T0, T0 + timedelta(days=1)), NOW)]
    assert len(ids(pages)) == 8
    assert clock.sleeps == [4.0]  # page 2 waited for the window to reset; no 429 was needed


@pytest.mark.parametrize(
    "exception",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("connection refused"),
        httpx.ReadError("connection reset by peer"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    ],
)
async def test_transport_failures_are_retried(exception: Exception) -> None:
    fake = FakeApi({"cdrs": spread(3)})

    def fail(request: httpx.Request) -> httpx.Response:
        raise exception

    fake.faults.append(times(2, fail))
    clock = FakeTime()
    pages = await read_all(client(fake, clock), window=Window(T0, T0 + timedelta(days=1)))
    assert len(ids(pages)) == 3 and len(clock.sleeps) == 2


@pytest.mark.parametrize(
    "body",
    [b'{"data": [{"id": "x"', b"<html>Bad Gateway</html>", b"", b'{"data": []}', b'{"data": [], "meta": {"total_pages": 1}}'],
)
async def test_truncated_or_unparseable_bodies_are_retried(body: bytes) -> None:
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(times(1, lambda r: httpx.Response(200, content=body)))
    pages = await read_all(client(fake), window=Window(T0, T0 + timedelta(days=1)))
    assert len(ids(pages)) == 3 and len(fake.requests) == 2


async def test_exhaustion_names_the_kind_window_page_and_last_status() -> None:
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(lambda r: error(503, "upstream unavailable"))
    clock = FakeTime()
    with pytest.raises(RetriesExhausted) as failure:
        await read_all(client(fake, clock, retry_max_secs=20, backoff_base_secs=1), window=Window(T0, T0 + timedelta(days=1)))
    message = str(failure.value)
    assert message.startswith(
        "gave up on cdrs [2026-10-01T00:00:00.000Z, 2026-10-02T00:00:00.000Z) page 1 after "
    )
    assert "last: HTTP 503 upstream unavailable" in message
    assert "OPENTACT_RETRY_MAX_SECS" in message
    assert sum(clock.sleeps) <= 20


@pytest.mark.parametrize(
    ("exception", "unreachable"),
    [
        (httpx.ConnectError("connection refused"), True),
        (httpx.ConnectTimeout("connect timed out"), False),
        (httpx.ReadError("connection reset by peer"), False),
    ],
)
async def test_only_a_connection_never_made_exhausts_as_unreachable(exception: Exception, unreachable: bool) -> None:
    fake = FakeApi({"cdrs": spread(3)})

    def fail(request: httpx.Request) -> httpx.Response:
        raise exception

    fake.faults.append(fail)
    with pytest.raises(RetriesExhausted) as failure:
        await read_all(client(fake, FakeTime(), retry_max_secs=0.0), window=Window(T0, T0 + timedelta(days=1)))
    assert isinstance(failure.value, ApiUnreachable) is unreachable
    if unreachable:
        assert failure.value.cause == "connection failed (ConnectError: connection refused)"
        # as a Dask worker hands it back
        copy = pickle.loads(pickle.dumps(failure.value))
        assert (type(copy), str(copy), copy.cause) == (ApiUnreachable, str(failure.value), failure.value.cause)


async def test_an_http_url_of_a_tls_server_says_the_connection_was_closed_and_to_check_the_scheme(tmp_path) -> None:
    from tests.fixtures.tls import tls_only_server

    with tls_only_server(tmp_path) as address:
        with pytest.raises(RetriesExhausted) as failure:
            await read_all(OpentactClient(config(base_url=f"http://{address}", retry_max_secs=0.0)))
    # reset or closed, as the server's kernel has it; either way said in words, not `ReadError: `
    assert re.search(
        r"last: connection failed \(the server (reset the connection|closed the connection without an answer), as an "
        r"HTTPS server does to plain HTTP: if it is one, use https://\)$", str(failure.value)
    ), str(failure.value)


async def test_retry_after_beyond_the_cap_fails_at_once() -> None:
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(lambda r: error(429, headers={"Retry-After": "3600"}))
    clock = FakeTime()
    with pytest.raises(RetriesExhausted, match=r"page 1 after 1 attempts .* last: HTTP 429"):
        await read_all(client(fake, clock, retry_max_secs=60), window=Window(T0, T0 + timedelta(days=1)))
    assert clock.sleeps == []


# --- errors that are not retried --------------------------------------------------------------


async def test_401_fails_at_once_without_retrying() -> None:
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(lambda r: error(401, "invalid key"))
    clock = FakeTime()
    with pytest.raises(ApiKeyRejected) as failure:
        await read_all(client(fake, clock), window=Window(T0, T0 + timedelta(days=1)))
    assert str(failure.value).startswith(f"API key rejected (401) by {BASE_URL}")
    assert len(fake.requests) == 1 and clock.sleeps == []


async def test_400_fails_at_once_with_the_api_detail_and_parameter() -> None:
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(lambda r: error(400, "unknown operator 'gtx'", "filter[created_at][gtx]"))
    with pytest.raises(ApiError) as failure:
        await read_all(client(fake), window=Window(T0, T0 + timedelta(days=1)))
    assert "(HTTP 400): unknown operator 'gtx' (parameter: filter[created_at][gtx])" in str(failure.value)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("base_url, hinted", [(f"{BASE_URL}/v2", True), (f"{BASE_URL}/", False), (BASE_URL, False)])
async def test_a_404_says_when_the_base_url_has_a_path_of_its_own_without_showing_it(base_url, hinted) -> None:
    # OPENTACT_BASE_URL=https://api.opentact.org/v2 asks for /v2/v2/reports/cdrs: the 404 alone does not say why.
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(lambda r: error(404, "Not Found"))
    with pytest.raises(ApiError) as failure:
        await read_all(client(fake, base_url=base_url), window=Window(T0, T0 + timedelta(days=1)))
    message = str(failure.value)
    assert f"was refused by {BASE_URL} (HTTP 404): Not Found" in message and len(fake.requests) == 1
    hint = f"; the base URL has a path after {BASE_URL}, and the client adds the API's own (/v2/reports/...): check "
    assert message.endswith(hint + "OPENTACT_BASE_URL (or the account's base_url), e.g. https://api.opentact.org") is hinted
    assert "/v2" not in message.replace("/v2/reports/...", "")


async def test_redirects_are_not_followed() -> None:
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(lambda r: httpx.Response(302, headers={"Location": "https://elsewhere.example/"}))
    with pytest.raises(ApiError, match="HTTP 302"):
        await read_all(client(fake), window=Window(T0, T0 + timedelta(days=1)))
    assert len(fake.requests) == 1


async def test_key_never_appears_in_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(times(2, lambda r: error(503)))
    fake.faults.append(times(3, lambda r: error(429)))
    fake.faults.append(lambda r: error(401))
    with pytest.raises(ApiKeyRejected) as failure:
        await read_all(client(fake))
    assert "retrying cdrs" in caplog.text
    assert API_KEY not in caplog.text
    assert API_KEY not in str(failure.value) and API_KEY not in repr(failure.value)


ODD_KEY = "sk-live-back\\slash-'quote'-\"dquote\"-0123456789"


def _echo_the_header(request: httpx.Request) -> httpx.Response:
    # As h11 words a header value it refuses: the raw bytes, quoted by repr.
    raise httpx.LocalProtocolError(f"Illegal header value {request.headers['authorization'].encode()!r}")


def _echo_in_body(status: int) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        key = request.headers["authorization"].removeprefix("Bearer ")
        return error(status, f"token {key} / {key!r} / {key.encode()!r} is not valid here")

    return respond


@pytest.mark.parametrize("key", [API_KEY, ODD_KEY])
@pytest.mark.parametrize(
    ("respond", "raised"),
    [
        pytest.param(_echo_the_header, RetriesExhausted, id="http-stack-error-quoting-the-header"),
        pytest.param(_echo_in_body(503), RetriesExhausted, id="retried-error-body-quoting-the-key"),
        pytest.param(_echo_in_body(400), ApiError, id="refusal-quoting-the-key"),
    ],
)
async def test_no_message_or_log_line_can_contain_the_key(
    caplog: pytest.LogCaptureFixture, key: str, respond: Callable[[httpx.Request], httpx.Response], raised: type
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(respond)
    with pytest.raises(raised) as failure:
        await read_all(client(fake, api_key=SecretStr(key), retry_max_secs=20), window=Window(T0, T0 + timedelta(days=1)))
    shown = [str(failure.value), repr(failure.value), caplog.text]
    assert "**********" in str(failure.value)
    for form in (key, repr(key)[1:-1], repr(key.encode())[2:-1]):
        assert all(form not in text for text in shown)


async def test_a_long_error_body_is_cut_short_in_the_message() -> None:
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(lambda r: error(400, "x" * 1_000_000))
    with pytest.raises(ApiError) as failure:
        await read_all(client(fake), window=Window(T0, T0 + timedelta(days=1)))
    assert len(str(failure.value)) < 500 and str(failure.value).endswith("x...")


# --- usage ------------------------------------------------------------------------------------


def usage_row(day: int, country: str, count: int, cost: str) -> dict:
    return {
        "date": f"2026-10-{day:02d}",
        "country_code": country,
        "direction": "outbound",
        "currency": "USD",
        "count": count,
        "billed_duration_secs": count * 60,
        "cost": cost,
    }


async def test_usage_is_read_across_pages_into_the_usage_schema() -> None:
    fake = FakeApi()
    fake.usage_rows = [usage_row(1, "GB", 3, "1.5"), usage_row(1, "US", 2, "1.666E-4"), usage_row(2, "GB", 1, "0")]
    fake.usage_page_size = 2
    async with client(fake) as c:
        frame = await c.read_usage("cdrs", THREE_DAYS)
    assert frame.schema == pl.Schema(api.USAGE_SCHEMA)
    assert frame.select("country_code", "count", "cost").rows() == [
        ("GB", 3, Decimal("1.5")),
        ("US", 2, Decimal("0.0001666")),
        ("GB", 1, Decimal(0)),
    ]
    assert frame["cost"].cast(pl.String).to_list() == ["1.500000000", "0.000166600", "0.000000000"]
    assert frame["product"].unique().to_list() == ["calls"] and frame["parts"].null_count() == 3
    params = fake.requests[0].url.params
    assert (params["product"], params["dimensions"], params["metrics"]) == (
        "calls",
        "date,country_code,direction,currency",
        "count,billed_duration_secs,cost",
    )
    assert params["filter[created_at][lt]"] == format_utc(THREE_DAYS.end)


async def test_usage_claiming_more_rows_than_its_days_can_have_fails_at_once() -> None:
    fake = FakeApi()
    meta = {"page_number": 1, "page_size": 5000, "total_pages": 3, "total_results": 10_001}
    fake.faults.append(lambda r: httpx.Response(200, content=orjson.dumps({"data": [], "meta": meta})))
    with pytest.raises(ApiError) as failure:
        async with client(fake) as c:
            await c.read_usage("cdrs", Window(T0, T0 + timedelta(days=1)))
    assert type(failure.value) is ApiError and not failure.value.retryable
    assert str(failure.value).startswith(
        "usage of cdrs [2026-10-01T00:00:00.000Z, 2026-10-02T00:00:00.000Z) page 1: "
        "the API announced 10,001 rows in 3 pages, more than this client accepts for the window (10,000 rows"
    )
    assert len(fake.requests) == 1


async def test_usage_with_an_unknown_dimension_is_a_usage_error() -> None:
    async with client(FakeApi()) as c:
        with pytest.raises(UsageError, match="usage dimensions must be some of"):
            await c.read_usage("mdrs", THREE_DAYS, dimensions=("date", "carrier"))


async def test_usage_row_the_client_cannot_read_is_an_error() -> None:
    fake = FakeApi()
    fake.usage_rows = [usage_row(1, "GB", 3, "1.5"), usage_row(1, "US", -2, "1")]
    async with client(fake) as c:
        with pytest.raises(ApiError, match="usage row 2: count -2 is not a non-negative integer"):
            await c.read_usage("cdrs", THREE_DAYS)


async def test_a_single_retry_is_info_and_persistent_retries_are_warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pipelines.opentact.client")
    fake = FakeApi({"cdrs": spread(3)})
    fake.faults.append(times(3, lambda r: error(503)))
    await read_all(client(fake), window=Window(T0, T0 + timedelta(days=1)))
    levels = [r.levelname for r in caplog.records if "retrying" in r.getMessage()]
    assert levels == ["INFO", "INFO", "WARNING"]


async def test_an_api_that_never_answers_is_warned_of_once_a_minute_with_cause_and_give_up_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pipelines.opentact.client")
    fake = FakeApi({"cdrs": spread(3)})

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("All connection attempts failed")

    fake.faults.append(refused)
    clock = FakeTime()
    started = clock.now
    reader = OpentactClient(
        # a path of the base URL may hold a token (a proxy's): the warning names the origin alone
        config(retry_max_secs=300, base_url=f"{BASE_URL}/proxy/tok3n"), transport=fake.transport(),
        timer=clock.timer, sleep=clock.sleep, rng=random.Random(7),
        clock=lambda: NOW + timedelta(seconds=clock.now - started),
    )
    with pytest.raises(ApiUnreachable):
        await read_all(reader, window=THREE_DAYS)
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    warnings = [r.getMessage() for r in retries if r.levelno == logging.WARNING]
    # The retries themselves are as before: every attempt, each in the log at INFO or as a warning.
    assert len(retries) == len(clock.sleeps) == len(fake.requests) - 2 > 40
    # Two requests retry at once for 300 s: a warning a minute between them, not one per attempt.
    assert 2 <= len(warnings) <= 300 / 60 + 1
    assert all(
        re.fullmatch(
            r"still retrying cdrs \[.*\) page 1 from http://127\.0\.0\.1:9( and 1 other request)?: "
            r"connection failed \(ConnectError: All connection attempts failed\) \(attempt \d+\); "
            r"next try in \d+\.\ds, giving up by 00:0[45]:\d\d UTC \(OPENTACT_RETRY_MAX_SECS 300s\)",
            message,
        )
        for message in warnings
    ), warnings
    assert any("and 1 other request:" in message for message in warnings)


async def test_accounts_at_one_api_sharing_retry_warnings_are_warned_of_together(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pipelines.opentact.client")
    clock = FakeTime()
    started = clock.now
    shared = RetryWarnings()

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("All connection attempts failed")

    def account(seed: int) -> OpentactClient:
        fake = FakeApi({"cdrs": spread(3)})
        fake.faults.append(refused)
        return OpentactClient(
            config(retry_max_secs=300), transport=fake.transport(), timer=clock.timer, sleep=clock.sleep,
            rng=random.Random(seed), clock=lambda: NOW + timedelta(seconds=clock.now - started), retries=shared,
        )

    outcomes = await asyncio.gather(*(read_all(account(seed)) for seed in range(3)), return_exceptions=True)
    assert all(isinstance(outcome, ApiUnreachable) for outcome in outcomes), outcomes
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "retrying" in r.getMessage()]
    # Three accounts retrying for 300 s: a warning a minute among them all, not one a minute each.
    assert 2 <= len(warnings) <= 300 / 60 + 1, warnings
    others = [int(found) for message in warnings for found in re.findall(r"and (\d+) other request", message)]
    assert max(others) > 1, warnings  # the other accounts' requests are counted too
