"""API client stage: read every record of a window from the Opentact Reports API, page by page.

The frozen window is read as one slice when it is small (`plan`: its page 1 says how many pages
it has), else cut into UTC-day slices (hours where a day is too big); page 1 of a slice tells
`total_pages`, the rest are fetched concurrently, validated and yielded as they arrive.
Retries are an explicit loop, not tenacity: the wait depends on the response, throttles every
request through a shared gate, and runs on an injectable clock. Each request has one deadline
and each body a byte limit, so a broken or hostile API cannot exhaust time or memory.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import random
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import cache, partial
from typing import TypeVar
from urllib.parse import urlencode, urlsplit

import httpx
import orjson
import polars as pl
from pydantic import SecretStr

from pipelines import __version__
from pipelines.dates import Window
from pipelines.errors import CdrError, UsageError, connection_failure, counted, shown_url
from pipelines.opentact import api
from pipelines.opentact.records import Rejected, empty_frame, usage_frame, validate_records
from pipelines.opentact.slices import freeze, utc_days, utc_hours
from pipelines.settings import Settings, api_key_problem, api_key_refusal, base_url_refusal, missing_api_key

log = logging.getLogger(__name__)

_T = TypeVar("_T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# While requests keep failing, a client warns at most this often (each attempt is logged at INFO):
# an outage may last the whole retry cap, and a warning per attempt would bury the terminal.
RETRY_WARNING_EVERY_SECS = 60.0

# Far above what a real account sends: past these the API (or something posing as it) is broken,
# and paging its claimed pages or reading its endless body would exhaust memory before any error.
MAX_RECORDS_PER_HOUR = 1_000_000
MAX_USAGE_ROWS_PER_DAY = 10_000
MAX_RESPONSE_BYTES = 16 * 2**20


class ApiError(CdrError):
    """The API refused or failed a request; `retryable`: whether the same read may succeed later."""

    retryable = False


class ApiKeyRejected(ApiError):
    """401: the key is wrong, revoked or for another environment. Never retried."""


class RetriesExhausted(ApiError):
    """A request kept failing (timeouts, 5xx, 429, broken connections) until the retry time cap."""

    retryable = True


class ApiUnreachable(RetriesExhausted):
    """RetriesExhausted whose last try made no connection at all (refused, or a name that does not resolve)."""

    def __init__(self, message: str, cause: str = "") -> None:
        # `cause` has a default: unpickling calls the class with the message alone, then restores it
        super().__init__(message)
        self.cause = cause


class SliceChanged(ApiError):
    """A slice's records changed while it was being paged: re-read it."""

    retryable = True


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """How to reach and read the API; built from Settings by `from_settings`."""

    base_url: str
    api_key: SecretStr
    concurrency: int = 4
    page_size: int = api.MAX_PAGE_SIZE
    settle_lag: timedelta = timedelta(minutes=2)
    timeout_secs: float = 30.0
    retry_max_secs: float = 300.0
    backoff_base_secs: float = 0.5
    backoff_max_secs: float = 30.0
    slice_max_pages: int = 100
    prefetch_slices: int = 1
    # where the key came from, as a rejected key's message names it (an account's variable or block)
    key_source: str = "OPENTACT_API_KEY"

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", check_base_url(self.base_url))
        if problem := api_key_problem(self.api_key.get_secret_value()):
            raise UsageError(api_key_refusal(problem))
        if not 1 <= self.page_size <= api.MAX_PAGE_SIZE:
            raise UsageError(f"page size must be 1 to {api.MAX_PAGE_SIZE}, got {self.page_size}")
        if self.concurrency < 1 or self.slice_max_pages < 1 or self.prefetch_slices < 0:
            raise UsageError("concurrency and slice_max_pages must be >= 1, prefetch_slices >= 0")

    @classmethod
    def from_settings(
        cls, settings: Settings, *, api_key: SecretStr | None = None, base_url: str | None = None
    ) -> ClientConfig:
        """Settings -> a client config; UsageError naming OPENTACT_API_KEY if there is no key.

        `api_key` and `base_url` (an account's) replace the settings' own.
        """
        api_key = api_key or settings.opentact_api_key
        if api_key is None:
            raise missing_api_key(settings)
        return cls(
            base_url=base_url or settings.opentact_base_url,
            api_key=api_key,
            concurrency=settings.opentact_concurrency,
            page_size=settings.opentact_page_size,
            settle_lag=timedelta(seconds=settings.opentact_settle_lag_secs),
            timeout_secs=settings.opentact_timeout_secs,
            retry_max_secs=settings.opentact_retry_max_secs,
            backoff_base_secs=settings.opentact_backoff_base_secs,
            backoff_max_secs=settings.opentact_backoff_max_secs,
            slice_max_pages=settings.opentact_slice_max_pages,
            prefetch_slices=settings.opentact_prefetch_slices,
        )


def check_base_url(url: str) -> str:
    """A base URL -> itself without a trailing slash; UsageError unless https:// or loopback http://."""
    if refusal := base_url_refusal("OPENTACT_BASE_URL", url):
        raise UsageError(refusal)
    return url.rstrip("/")


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a slice: its valid records as a lake-typed frame, and the records set aside.

    `slice` is the planned slice (the sync's checkpoint unit), `query` the window asked for (it, or
    one hour of it), `page_number` the page of `query`; `last` marks the slice's counted final page.
    """

    slice: Window
    query: Window
    page_number: int
    frame: pl.DataFrame
    rejects: list[Rejected]
    last: bool = False


class RateGate:
    """Shared by every request of a client: bounds requests in flight, and slows them all down when the
    rate limit bites (AIMD, plus a common pause until the limit resets) rather than each on its own."""

    def __init__(self, max_in_flight: int, timer: Callable[[], float], sleep: Callable[[float], Awaitable[None]]) -> None:
        self.max_in_flight = max_in_flight
        self.limit = float(max_in_flight)
        self.in_flight = 0
        self.resume_at = 0.0
        self._timer = timer
        self._sleep = sleep
        self._cooldown_until = 0.0
        self._changed = asyncio.Condition()

    def __repr__(self) -> str:
        return f"RateGate(limit={self.limit:.1f}/{self.max_in_flight}, in_flight={self.in_flight})"

    async def acquire(self) -> None:
        """Wait for a free slot under the current limit, then for any common pause to end."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < int(self.limit))
            self.in_flight += 1
        while (pause := self.resume_at - self._timer()) > 0:
            await self._sleep(pause)

    async def release(self) -> None:
        """Give a slot back."""
        async with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    def succeeded(self, remaining: float | None, reset_secs: float | None) -> None:
        """A request got through: open up a little; if the limit's window is used up, pause until it resets."""
        self.limit = min(float(self.max_in_flight), self.limit + 1.0 / self.limit)
        if remaining is not None and remaining <= 0 and reset_secs:
            self.resume_at = max(self.resume_at, self._timer() + reset_secs)

    def throttled(self, wait_secs: float) -> None:
        """A 429: halve the limit (once per burst) and pause every request for `wait_secs`."""
        now = self._timer()
        self.resume_at = max(self.resume_at, now + wait_secs)
        if now >= self._cooldown_until:
            before, self.limit = self.limit, max(1.0, self.limit / 2)
            self._cooldown_until = now + max(wait_secs, 1.0)
            log.info("rate limited: pausing %.1fs, requests in flight %d -> %d", wait_secs, before, self.limit)


@dataclass
class _Attempt:
    """What went wrong with one try of a request, and how long to wait before the next."""

    cause: str
    wait: float | None = None  # None: exponential backoff
    unreachable: bool = False  # no connection could be made: nothing answered


@dataclass
class _QueryCount:
    """What one query (slice or hour) promised and what arrived, to prove none missing, none twice."""

    window: Window
    total_results: int
    total_pages: int
    received: int = 0
    ids: set[str] = field(default_factory=set)


@cache
def tls_context() -> ssl.SSLContext:
    """The TLS settings every client of this process shares (httpx's defaults, read once).

    Loading the CA bundle costs milliseconds of CPU, and a sync of many accounts opens one client
    per account.
    """
    return httpx.create_ssl_context()


class RetryWarnings:
    """How many requests wait to try again and when the last warning about them was logged: a client's
    own, or shared by the clients of several accounts at one API base URL, so that an outage of that
    API is warned of once a minute, not once a minute per account."""

    def __init__(self) -> None:
        self.retrying = 0
        self.warned_at: float | None = None


def connection_pool(
    max_connections: int, timeout_secs: float, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """HTTP connections to the API, for one client or shared by the clients of several accounts.

    It holds no key: each client signs its own requests as it sends them.
    """
    return httpx.AsyncClient(
        headers={"Accept": "application/json", "User-Agent": f"opentact-cdr/{__version__}"},
        timeout=httpx.Timeout(timeout_secs),
        # One keep-alive connection per concurrent request; the gates never ask for more.
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        # A redirect could carry the key to another host: refuse, do not follow.
        follow_redirects=False,
        verify=tls_context(),
        transport=transport,
    )


class OpentactClient:
    """Async reader of the Reports API: `async with OpentactClient(config) as client: ...`."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = partial(datetime.now, timezone.utc),
        timer: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        budget: asyncio.Semaphore | None = None,
        pool: httpx.AsyncClient | None = None,
        retries: RetryWarnings | None = None,
    ) -> None:
        """`budget`, shared by the clients of several accounts synced at once, bounds their requests in
        flight together; each client's own gate still paces its key's rate limit. `pool` (a
        `connection_pool`, of at least `budget` connections) is theirs to share too, closed by its
        owner: the accounts then reuse connections rather than each opening its own. `retries`, shared
        by those at one base URL, paces their retry warnings together."""
        self.config = config
        self._budget = budget
        self._clock = clock
        self._timer = timer
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._gate = RateGate(config.concurrency, timer, sleep)
        self._timeout = httpx.Timeout(config.timeout_secs).as_dict()
        self._retries = retries or RetryWarnings()
        # Page 1 of a window `plan` read whole, kept for `read_slice` to start from.
        self._probes: dict[tuple[str, Window], tuple[Page, api.PageMeta, list[str]]] = {}

        def authorize(request: httpx.Request) -> httpx.Request:
            # At send time, so the key lives only in a SecretStr until then.
            request.headers[api.AUTHORIZATION] = api.bearer(config.api_key.get_secret_value())
            return request

        self._auth = authorize
        if pool is not None and transport is not None:
            raise ValueError("programming error: a client on a shared pool uses the pool's transport")
        self._owns_pool = pool is None
        self._http = pool or connection_pool(config.concurrency, config.timeout_secs, transport)

    def __repr__(self) -> str:
        return f"OpentactClient(base_url={shown_url(self.config.base_url)!r}, concurrency={self.config.concurrency})"

    async def __aenter__(self) -> OpentactClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (unless shared: its owner closes it)."""
        if self._owns_pool:
            await self._http.aclose()

    # --- planning ------------------------------------------------------------------------

    def frozen(self, window: Window, now: datetime | None = None) -> Window:
        """A window -> the part that has settled at `now` (default: the client's clock)."""
        return freeze(window, now or self._clock(), self.config.settle_lag)

    def plan_slices(self, kind: api.RecordType, window: Window, now: datetime | None = None) -> list[Window]:
        """A window -> the UTC-day slices of its frozen part, in order (the sync's checkpoint units)."""
        api.record_types(kind)
        return utc_days(self.frozen(window, now))

    async def plan(self, kind: api.RecordType, window: Window, now: datetime | None = None) -> list[Window]:
        """A window -> the slices its frozen part is read in: the whole of it when it holds at most
        `slice_max_pages` pages, else its UTC days (`plan_slices`).

        A small account's window is then one query, not one per day. Asking costs page 1 of the
        window: kept for `read_slice` when the window is one slice, the only extra request otherwise.
        """
        days = self.plan_slices(kind, window, now)
        if len(days) <= 1:
            return days
        whole = Window(days[0].start, days[-1].end)
        probe = await self._fetch_page(kind, whole, whole, 1)
        if probe[1].total_pages > self.config.slice_max_pages:
            return days
        self._probes[(kind, whole)] = probe
        return [whole]

    # --- reading records -----------------------------------------------------------------

    async def read_window(
        self, kind: api.RecordType, window: Window, now: datetime | None = None
    ) -> AsyncIterator[Page]:
        """Every record of the frozen window, page by page, slice after slice (next slices prefetched)."""
        async for page in self.read_slices(kind, self.plan_slices(kind, window, now)):
            yield page

    async def read_slices(self, kind: api.RecordType, slices: Sequence[Window]) -> AsyncIterator[Page]:
        """Pages of the given slices, each slice's pages together and in slice order.

        Up to `prefetch_slices` further slices are read meanwhile into bounded queues, so
        the connections do not idle while one slice's last pages arrive.
        """
        api.record_types(kind)
        queues: list[asyncio.Queue[Page | BaseException | None]] = []
        pumps: list[asyncio.Task[None]] = []

        async def pump(slice_: Window, queue: asyncio.Queue[Page | BaseException | None]) -> None:
            try:
                async for page in self.read_slice(kind, slice_):
                    await queue.put(page)
            except Exception as exc:  # handed to the consumer, raised there in order
                await queue.put(exc)
            else:
                await queue.put(None)

        try:
            for index in range(len(slices)):
                while len(pumps) < min(len(slices), index + 1 + self.config.prefetch_slices):
                    queues.append(asyncio.Queue(maxsize=self.config.concurrency))
                    pumps.append(asyncio.create_task(pump(slices[len(pumps)], queues[-1])))
                while (item := await queues[index].get()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    yield item
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

    async def read_slice(self, kind: api.RecordType, slice_: Window) -> AsyncIterator[Page]:
        """Every record of one slice, page by page as pages arrive; the last one is marked `last`.

        Raises SliceChanged if the API's counts move while paging or a record comes twice.
        """
        api.record_types(kind)
        counts: dict[Window, _QueryCount] = {}
        jobs: deque[tuple[Window, int]] = deque()
        ready: deque[Page] = deque()

        def arrived(page: Page, meta: api.PageMeta, ids: list[str]) -> None:
            if page.query not in counts:  # the query's first page: plan the rest
                counts[page.query] = _QueryCount(page.query, meta.total_results, meta.total_pages)
                jobs.extend((page.query, number) for number in range(2, meta.total_pages + 1))
            self._count(kind, counts[page.query], page, meta, ids)
            ready.append(page)

        probe = self._probes.pop((kind, slice_), None)
        first, meta, ids = probe or await self._fetch_page(kind, slice_, slice_, 1)
        if meta.total_pages > self.config.slice_max_pages and len(hours := utc_hours(slice_)) > 1:
            log.info("%s %s has %d pages: reading it hour by hour", kind, slice_, meta.total_pages)
            jobs.extend((hour, 1) for hour in hours)
        else:
            arrived(first, meta, ids)

        running: set[asyncio.Task[tuple[Page, api.PageMeta, list[str]]]] = set()
        unread: set[asyncio.Task[tuple[Page, api.PageMeta, list[str]]]] = set()
        try:
            while True:
                while jobs and len(running) < self.config.concurrency:
                    query, number = jobs.popleft()
                    task = asyncio.create_task(self._fetch_page(kind, slice_, query, number))
                    running.add(task)
                    unread.add(task)
                # Pages go out as they come, except the final one, held until every count checks.
                while ready and (jobs or running):
                    yield ready.popleft()
                if not running:
                    break
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    unread.discard(task)
                    arrived(*task.result())
        finally:
            for task in running:
                task.cancel()
            # Collect the outcome of every task not read, so no failure goes unretrieved.
            await asyncio.gather(*unread, return_exceptions=True)
        for count in counts.values():
            if count.received != count.total_results:
                raise SliceChanged(
                    f"{kind} {count.window}: the API announced {counted(count.total_results, 'record')} but "
                    f"{count.received} arrived; records changed while paging: re-run the sync for this window"
                )
        if not ready:  # hour by hour, and every hour empty
            ready.append(Page(slice_, slice_, 1, empty_frame(kind), []))
        last = ready.pop()
        while ready:
            yield ready.popleft()
        yield replace(last, last=True)

    def _count(self, kind: str, count: _QueryCount, page: Page, meta: api.PageMeta, ids: list[str]) -> None:
        """Check one page against its query's promise: same total, no record seen before."""
        if meta.total_results != count.total_results:
            raise SliceChanged(
                f"{kind} {count.window}: total_results moved from {count.total_results} to {meta.total_results} "
                f"by page {page.page_number}; records changed while paging: re-run the sync for this window"
            )
        count.received += page.frame.height + len(page.rejects)
        new = set(ids)
        twice = (count.ids & new) or ({i for i in new if ids.count(i) > 1} if len(new) != len(ids) else set())
        if twice:
            raise SliceChanged(
                f"{kind} {count.window}: record {min(twice)} came twice (again on page {page.page_number}): "
                "the API's order moved while paging: re-run the sync for this window"
            )
        count.ids |= new

    async def _fetch_page(
        self, kind: api.RecordType, slice_: Window, query: Window, number: int
    ) -> tuple[Page, api.PageMeta, list[str]]:
        """One listing page -> (validated page, its meta, the ids it held)."""

        def read(records: list[object]) -> tuple[Page, list[str]]:
            frame, rejects = validate_records(kind, records, query, number)
            if rejects:
                ids = [r[api.ID] for r in records if type(r) is dict and type(r.get(api.ID)) is str]
            else:
                ids = frame.get_column(api.ID).to_list()
            return Page(slice_, query, number, frame, rejects), ids

        params = api.listing_params(query, number, self.config.page_size)
        what = f"{kind} {query} page {number}"
        (page, ids), meta = await self._get(api.PATHS[kind], params, what, read)
        most = MAX_RECORDS_PER_HOUR * max(1, -(-(query.end - query.start) // timedelta(hours=1)))
        _check_claim(what, meta, most, self.config.page_size, f"{MAX_RECORDS_PER_HOUR:,} records an hour")
        return page, meta, ids

    # --- usage -----------------------------------------------------------------------------

    async def read_usage(
        self,
        kind: api.RecordType,
        window: Window,
        dimensions: Sequence[str] = api.USAGE_DIMENSIONS,
        now: datetime | None = None,
    ) -> pl.DataFrame:
        """The platform's own usage aggregate of the frozen window -> a frame in `api.USAGE_SCHEMA`."""
        api.record_types(kind)
        dimensions = tuple(dimensions)
        unknown = [d for d in dimensions if d not in api.USAGE_DIMENSIONS]
        if unknown or not dimensions:
            raise UsageError(f"usage dimensions must be some of {', '.join(api.USAGE_DIMENSIONS)}; got {dimensions}")
        frozen = self.frozen(window, now)
        size = api.MAX_USAGE_PAGE_SIZE

        async def page(number: int) -> tuple[list[object], api.PageMeta]:
            params = api.usage_params(kind, frozen, dimensions, number, size)
            return await self._get(api.PATHS["usage"], params, f"usage of {kind} {frozen} page {number}", list)

        rows, meta = await page(1)
        most = MAX_USAGE_ROWS_PER_DAY * max(1, -(-(frozen.end - frozen.start) // timedelta(days=1)))
        why = f"{MAX_USAGE_ROWS_PER_DAY:,} rows a day"
        _check_claim(f"usage of {kind} {frozen} page 1", meta, most, size, why, noun="row")
        rest = await asyncio.gather(*(page(n) for n in range(2, meta.total_pages + 1)))
        for more, _ in rest:
            rows.extend(more)
        if len(rows) != meta.total_results:
            raise SliceChanged(f"usage of {kind} {frozen}: {counted(meta.total_results, 'row')} announced, {len(rows)} arrived")
        try:
            return usage_frame(kind, rows, dimensions)
        except ValueError as exc:
            problem = self._foreign(exc)
            raise ApiError(f"usage of {kind} {frozen}: the API sent a row this client cannot read: {problem}") from None

    # --- one request, with retries -----------------------------------------------------------

    async def _get(
        self, path: str, params: list[tuple[str, str]], what: str, read: Callable[[list[object]], _T]
    ) -> tuple[_T, api.PageMeta]:
        """GET a listing -> (`read` of its records, its meta), retrying what can pass; domain errors for the rest."""
        started = self._timer()
        attempt = 0
        waiting = False  # counted among the client's retrying requests
        try:
            while True:
                attempt += 1
                failure = await self._try(path, params, what, read)
                if not isinstance(failure, _Attempt):
                    return failure
                wait = failure.wait
                if wait is None:
                    # Full jitter: concurrent retries spread out instead of arriving together.
                    ceiling = min(self.config.backoff_max_secs, self.config.backoff_base_secs * 2 ** (attempt - 1))
                    wait = self._rng.uniform(0, ceiling)
                elapsed = self._timer() - started
                if elapsed + wait > self.config.retry_max_secs:
                    message = (
                        f"gave up on {what} after {attempt} attempts in {elapsed:.1f}s "
                        f"(retry cap {self.config.retry_max_secs:g}s, OPENTACT_RETRY_MAX_SECS); last: {failure.cause}"
                    )
                    raise ApiUnreachable(message, failure.cause) if failure.unreachable else RetriesExhausted(message)
                if not waiting:
                    waiting = True
                    self._retries.retrying += 1
                self._log_retry(what, attempt, wait, failure.cause, self.config.retry_max_secs - elapsed)
                await self._sleep(wait)
        finally:
            if waiting:
                self._retries.retrying -= 1

    def _log_retry(self, what: str, attempt: int, wait: float, cause: str, left_secs: float) -> None:
        """Log a failed attempt about to be retried: at INFO, or as the client's warning when one is due.

        One failed attempt is routine on a busy API; repeated ones deserve attention, once per
        RETRY_WARNING_EVERY_SECS for all of the client's requests (and those of the clients sharing its
        RetryWarnings), saying the cause and when this request gives up.
        """
        now = self._timer()
        shared = self._retries
        due = shared.warned_at is None or now - shared.warned_at >= RETRY_WARNING_EVERY_SECS
        if attempt < 3 or not due:
            log.info("retrying %s in %.2fs (attempt %d failed: %s)", what, wait, attempt, cause)
            return
        shared.warned_at = now
        gives_up = (self._clock() + timedelta(seconds=left_secs)).astimezone(timezone.utc)
        others = shared.retrying - 1
        log.warning(
            "still retrying %s from %s%s: %s (attempt %d); next try in %.1fs, giving up by %s (OPENTACT_RETRY_MAX_SECS %gs)",
            what, shown_url(self.config.base_url), f" and {counted(others, 'other request')}" if others > 0 else "", cause,
            attempt, wait, gives_up.strftime("%H:%M:%S UTC"), self.config.retry_max_secs,
        )

    async def _try(
        self, path: str, params: list[tuple[str, str]], what: str, read: Callable[[list[object]], _T]
    ) -> tuple[_T, api.PageMeta] | _Attempt:
        """One attempt -> (`read` of the page's records, its meta), or what went wrong if it is worth retrying."""
        await self._gate.acquire()
        try:
            # The whole exchange has one deadline: httpx's own timeouts bound each read, so a
            # server trickling a byte at a time would otherwise hold a request forever.
            async with self._budget or nullcontext(), asyncio.timeout(self.config.timeout_secs):
                status, headers, content = await self._receive(self._request(path, params), what)
        except TimeoutError:
            return _Attempt(f"timed out (the response took longer than {self.config.timeout_secs:g}s, OPENTACT_TIMEOUT_SECS)")
        except httpx.TimeoutException as exc:
            return _Attempt(f"timed out ({type(exc).__name__}, timeout {self.config.timeout_secs:g}s)")
        except (httpx.TransportError, httpx.DecodingError) as exc:
            # Refused or reset connections, and bodies cut short mid-transfer.
            said = connection_failure(exc, self.config.base_url) or f"{type(exc).__name__}: {self._foreign(exc)}"
            return _Attempt(f"connection failed ({said})", unreachable=isinstance(exc, httpx.ConnectError))
        finally:
            await self._gate.release()
        if status == 200:
            # The decoded records live only until `read` has made what it keeps of them.
            with _cyclic_gc_paused():
                try:
                    records, meta = api.parse_envelope(orjson.loads(content))
                except (orjson.JSONDecodeError, ValueError) as exc:
                    return _Attempt(f"HTTP 200 with an unreadable body ({len(content)} bytes: {self._foreign(exc)})")
                result = read(records)
                del records
            self._gate.succeeded(_number(headers.get(api.RATELIMIT_REMAINING)), _number(headers.get(api.RATELIMIT_RESET)))
            return result, meta
        if status == 401:
            raise ApiKeyRejected(
                f"API key rejected (401) by {shown_url(self.config.base_url)}: check {self.config.key_source} "
                "(and that it belongs to this environment)"
            )
        if status in RETRY_STATUSES:
            wait = self._retry_after(headers)
            if status == 429:
                wait = wait if wait is not None else _number(headers.get(api.RATELIMIT_RESET))
                if wait is None:
                    wait = self.config.backoff_base_secs
                self._gate.throttled(wait)
            return _Attempt(f"HTTP {status} {self._foreign(api.error_summary(content))}".rstrip(), wait)
        raise ApiError(
            f"{what} was refused by {shown_url(self.config.base_url)} (HTTP {status}): "
            f"{self._foreign(api.error_summary(content))}{self._not_found_hint(status)}"
        )

    def _not_found_hint(self, status: int) -> str:
        """A 404 from a base URL with a path -> what to check: the client adds the API's own paths (/v2/reports/...),
        so a base URL copied with one (`https://api.opentact.org/v2`) asks for paths that do not exist. The
        message shows no path (it may hold a proxy's token), so it must say that there is one."""
        if status != 404 or not urlsplit(self.config.base_url).path.strip("/"):
            return ""
        return (
            f"; the base URL has a path after {shown_url(self.config.base_url)}, and the client adds the API's own "
            "(/v2/reports/...): check OPENTACT_BASE_URL (or the account's base_url), e.g. https://api.opentact.org"
        )

    async def _receive(self, request: httpx.Request, what: str) -> tuple[int, httpx.Headers, bytes]:
        """Send a request -> (status, headers, whole body); ApiError once the body passes MAX_RESPONSE_BYTES."""
        response = await self._http.send(request, stream=True, auth=self._auth)
        try:
            declared = _number(response.headers.get("content-length"))
            if declared is not None and declared > MAX_RESPONSE_BYTES:
                raise self._too_large(what, f"announced {declared:.0f} bytes")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise self._too_large(what, f"sent more than {MAX_RESPONSE_BYTES} bytes")
                chunks.append(chunk)
        finally:
            await response.aclose()
        return response.status_code, response.headers, b"".join(chunks)

    def _too_large(self, what: str, how: str) -> ApiError:
        return ApiError(
            f"{what}: the response {how}, past the client's limit of {MAX_RESPONSE_BYTES // 2**20} MiB "
            f"(a full page is well under 1 MiB); check that OPENTACT_BASE_URL ({shown_url(self.config.base_url)}) is "
            "the Opentact API"
        )

    def _foreign(self, source: object) -> str:
        """Text the client did not write (an error body, an exception) -> fit for a message:
        the key masked in every form it may be quoted in, on one line, at most 300 characters."""
        key = self.config.api_key.get_secret_value()
        text = str(source)
        # As sent, and as Python quotes a str or the header's bytes in an exception's message.
        for form in (key, repr(key)[1:-1], repr(key.encode())[2:-1]):
            text = text.replace(form, "**********")
        text = " ".join(text.split())
        return text if len(text) <= 300 else text[:300] + "..."

    def _request(self, path: str, params: list[tuple[str, str]]) -> httpx.Request:
        """A GET request built here, not by httpx's costly URL merging and parameter encoding (bench/RESULTS.md)."""
        return httpx.Request(
            "GET",
            f"{self.config.base_url}{path}?{urlencode(params)}",
            headers=self._http.headers,
            extensions={"timeout": self._timeout},
        )

    def _retry_after(self, headers: httpx.Headers) -> float | None:
        """Retry-After as seconds (a number, or an IMF-fixdate against our clock), if present."""
        value = headers.get(api.RETRY_AFTER)
        if value is None:
            return None
        if (seconds := _number(value)) is not None:
            return max(seconds, 0.0)
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:  # "-0000" or no zone: HTTP dates are UTC
            moment = moment.replace(tzinfo=timezone.utc)
        return max((moment - self._clock()).total_seconds(), 0.0)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (left as found if it was already off).

    A decoded page's many containers die by reference counting; allocated with the collector on,
    they would trigger its passes and be promoted (bench/RESULTS.md). The block never awaits.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _check_claim(what: str, meta: api.PageMeta, most: int, page_size: int, why: str, noun: str = "record") -> None:
    """A page's announced totals -> nothing, or ApiError if they pass `most` (what no account could fill)."""
    pages = -(-most // page_size)
    if meta.total_results > most or meta.total_pages > pages:
        raise ApiError(
            f"{what}: the API announced {counted(meta.total_results, noun)} in {counted(meta.total_pages, 'page')}, "
            f"more than this client accepts for the window ({counted(most, noun)} or {counted(pages, 'page')} of {page_size}: "
            f"at most {why}); the answer cannot be paged: check that OPENTACT_BASE_URL is the Opentact API"
        )
