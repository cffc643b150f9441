"""Sandbox server: the Opentact Reports API over HTTP, served from the synthetic world.

The last stage of the sandbox: world (records per day) -> query (typed selection) ->
`Reports` (pages and usage aggregates) -> `SandboxApp` (raw ASGI on uvicorn with
uvloop/httptools, so the fault injector controls the bytes on the wire). Every API key
the server accepts is an `Account` with a world and faults of its own.

Pages sorted by created_at are cut from per-day counts: the server never materialises
a window to serve one page, so page 4000 costs what page 1 costs. Counts and per-day
row selections are cached in bounded LRUs keyed by the query's selection and the day's
state (the pinned instant, or "settled" once no re-rating can still change the day).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import signal
import socket
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Generator, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from email.utils import formatdate
from typing import Any, Generic, Literal, Protocol, TypeVar

import orjson
import polars as pl
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pipelines.opentact.api import CREATED_AT, PATHS, RecordType
from sandbox.clock import Clock
from sandbox.faults import Draw, Faults, RateState
from sandbox.query import (
    Listing,
    QueryError,
    Selection,
    SortKey,
    Usage,
    parse_listing,
    parse_usage,
)

UTC = timezone.utc
logger = logging.getLogger("sandbox.server")

# Re-ratings land within 3 days of created_at; a day this long past its end can no
# longer change, so its views and counts are cached whatever the clock does.
SETTLED_AFTER = timedelta(days=4)
_COST_PLACES = Decimal("0.000001")
_ROW = "__row"
_DAY = "__day"

TRANSPORT_EXTENSION = "sandbox.transport"

ERROR_TITLES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
# One stable code per kind of error (the 400s carry their own, from sandbox.query).
ERROR_CODES: dict[int, str] = {
    401: "10001",
    404: "10004",
    405: "10005",
    429: "10029",
    500: "10500",
    502: "10502",
    503: "10503",
}


class World(Protocol):
    """What the server needs of the synthetic world (sandbox.world.World)."""

    @property
    def start(self) -> date:
        """The first day of records."""
        ...

    def view(self, kind: str, day: date, now: datetime) -> pl.DataFrame:
        """One day's records visible at `now`, sorted by (created_at, id)."""
        ...


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A bounded least-recently-used mapping."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value for a key (marking it recent), or None."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Store a value, evicting the least recently used beyond the size."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True, slots=True)
class DayRows:
    """The rows of one day's view a query selects, in the order the page wants them.

    `rows` is None when the selection is the contiguous slice [lo, hi) of the presorted
    view; `reverse` walks either form from the end (the descending natural order).
    """

    frame: pl.DataFrame
    lo: int
    hi: int
    rows: pl.Series | None
    reverse: bool

    @property
    def count(self) -> int:
        """How many rows are selected."""
        return self.hi - self.lo if self.rows is None else self.rows.len()

    def json(self, offset: int, n: int) -> pl.Series:
        """The JSON texts of `n` selected rows starting at `offset`, in page order."""
        texts = self.frame.get_column("json")
        if self.rows is None:
            start = self.hi - offset - n if self.reverse else self.lo + offset
            piece = texts.slice(start, n)
        else:
            start = self.count - offset - n if self.reverse else offset
            piece = texts.gather(self.rows.slice(start, n))
        return piece.reverse() if self.reverse else piece


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _sort_args(keys: Iterable[SortKey]) -> dict[str, Any]:
    """Sort keys -> polars sort arguments; null sorts as the largest value."""
    keys = list(keys)
    return {
        "by": [k.field for k in keys],
        "descending": [k.descending for k in keys],
        "nulls_last": [not k.descending for k in keys],
        "maintain_order": False,
    }


def _money(value: Decimal | None) -> str:
    """A decimal sum -> the API's decimal string with 6 places (half-up)."""
    return format((value or Decimal(0)).quantize(_COST_PLACES, rounding=ROUND_HALF_UP), "f")


class Reports:
    """Listing pages and usage aggregates of a world, as of a given instant."""

    def __init__(
        self,
        world: World,
        *,
        pinned: bool,
        view_cache: int = 64,
        count_cache: int = 65_536,
        rows_cache: int = 256,
        window_cache: int = 4,
        usage_cache: int = 32,
    ) -> None:
        self.world = world
        self.pinned = pinned
        self._views: LRU[tuple[str, date, object], pl.DataFrame] = LRU(view_cache)
        self._counts: LRU[tuple[str, str, date, object], int] = LRU(count_cache)
        self._rows: LRU[tuple[str, str, date, object], DayRows] = LRU(rows_cache)
        self._windows: LRU[tuple[object, ...], pl.DataFrame] = LRU(window_cache)
        self._usage: LRU[tuple[object, ...], pl.DataFrame] = LRU(usage_cache)

    # --- days and their state -----------------------------------------------------------

    def _state(self, day: date, now: datetime) -> object | None:
        """What a day's view depends on: a cache key part, or None when it must be recomputed."""
        if self.pinned:
            return now
        if now >= _day_start(day) + timedelta(days=1) + SETTLED_AFTER:
            return "settled"
        return None

    def _view(self, kind: RecordType, day: date, now: datetime) -> pl.DataFrame:
        state = self._state(day, now)
        if state is None:
            return self.world.view(kind, day, now)
        key = (kind, day, state)
        frame = self._views.get(key)
        if frame is None:
            frame = self.world.view(kind, day, now)
            self._views.put(key, frame)
        return frame

    def _bounds(self, frame: pl.DataFrame, selection: Selection) -> tuple[int, int]:
        """The slice [lo, hi) of a presorted day view inside the selection's created_at bounds."""
        created = frame.get_column(CREATED_AT)
        lo = 0 if selection.created_from is None else int(created.search_sorted(selection.created_from, "left"))
        hi = frame.height if selection.created_to is None else int(created.search_sorted(selection.created_to, "left"))
        return lo, max(lo, hi)

    def _day_rows(
        self, selection: Selection, within: tuple[SortKey, ...] | None, reverse: bool, day: date, now: datetime
    ) -> DayRows:
        """The rows of one day a selection picks; `within` re-sorts them (None: natural order)."""
        state = self._state(day, now)
        order = "natural" if within is None else ",".join(("-" if k.descending else "") + k.field for k in within)
        key = (selection.key(), f"{order}|{reverse}", day, state)
        if state is not None:
            cached = self._rows.get(key)
            if cached is not None:
                return cached
        frame = self._view(selection.kind, day, now)
        lo, hi = self._bounds(frame, selection)
        expr = selection.expr()
        rows: pl.Series | None = None
        if expr is not None or within is not None:
            picked = frame.lazy().slice(lo, hi - lo).with_row_index(_ROW, offset=lo)
            if expr is not None:
                picked = picked.filter(expr)
            if within is not None:
                picked = picked.sort(**_sort_args(within))
            rows = picked.select(_ROW).collect().get_column(_ROW)
        result = DayRows(frame, lo, hi, rows, reverse)
        if state is not None:
            self._rows.put(key, result)
            self._counts.put((selection.key(), "", day, state), result.count)
        return result

    def _count(self, selection: Selection, day: date, now: datetime) -> int:
        """How many records of a day a selection picks (cached per selection and day state)."""
        state = self._state(day, now)
        if state is not None:
            cached = self._counts.get((selection.key(), "", day, state))
            if cached is not None:
                return cached
        if selection.expr() is None:
            lo, hi = self._bounds(self._view(selection.kind, day, now), selection)
            count = hi - lo
            if state is not None:
                self._counts.put((selection.key(), "", day, state), count)
            return count
        return self._day_rows(selection, None, False, day, now).count

    # --- listings ------------------------------------------------------------------------

    def listing(self, query: Listing, now: datetime) -> bytes:
        """A parsed listing request at `now` -> the response body (envelope bytes)."""
        days = query.selection.days(self.world.start, now)
        if query.created_primary():
            texts, total = self._created_page(query, days, now)
        else:
            texts, total = self._sorted_page(query, days, now)
        meta = {
            "page_number": query.page_number,
            "page_size": query.page_size,
            "total_pages": math.ceil(total / query.page_size),
            "total_results": total,
        }
        data = ",".join([text for piece in texts for text in piece.to_list()])
        return b'{"data":[' + data.encode() + b'],"meta":' + orjson.dumps(meta) + b"}"

    def _created_page(self, query: Listing, days: list[date], now: datetime) -> tuple[list[pl.Series], int]:
        """A page sorted by created_at first: walk the per-day counts to the page's days."""
        descending = query.sort[0].descending
        ordered = days[::-1] if descending else days
        selection = query.selection
        counts = [self._count(selection, day, now) for day in ordered]
        total = sum(counts)
        offset = (query.page_number - 1) * query.page_size
        need = query.page_size
        texts: list[pl.Series] = []
        if offset >= total:
            return texts, total
        # The natural order is the view's own; any other order re-sorts within the day.
        within = None if query.natural_order() else query.sort
        for day, count in zip(ordered, counts):
            if offset >= count:
                offset -= count
                continue
            rows = self._day_rows(selection, within, descending and within is None, day, now)
            take = min(need, rows.count - offset)
            texts.append(rows.json(offset, take))
            need -= take
            offset = 0
            if need == 0:
                break
        return texts, total

    def _sorted_page(self, query: Listing, days: list[date], now: datetime) -> tuple[list[pl.Series], int]:
        """A page in any other order: sort the selected window's keys once, then cut."""
        selection = query.selection
        states = tuple(self._state(day, now) for day in days)
        key = (selection.key(), query.sort_key(), tuple(days), states)
        cacheable = all(state is not None for state in states)
        window = self._windows.get(key) if cacheable else None
        if window is None:
            fields = list(dict.fromkeys(k.field for k in query.sort))
            parts = []
            for index, day in enumerate(days):
                rows = self._day_rows(selection, None, False, day, now)
                part = rows.frame.select(fields).with_row_index(_ROW)
                part = part.slice(rows.lo, rows.count) if rows.rows is None else part[rows.rows]
                parts.append(part.with_columns(pl.lit(index, dtype=pl.Int32).alias(_DAY)))
            window = (
                pl.concat(parts).sort(**_sort_args(query.sort)).select(_DAY, _ROW)
                if parts
                else pl.DataFrame({_DAY: [], _ROW: []}, schema={_DAY: pl.Int32, _ROW: pl.UInt32})
            )
            if cacheable:
                self._windows.put(key, window)
        total = window.height
        offset = (query.page_number - 1) * query.page_size
        if offset >= total:  # also keeps huge page numbers away from polars' 64-bit offsets
            return [], total
        page = window.slice(offset, query.page_size)
        out: list[str] = [""] * page.height
        positions = page.with_row_index("__pos").group_by(_DAY).agg(pl.col("__pos"), pl.col(_ROW))
        for day_index, pos, rows in positions.iter_rows():
            frame = self._view(selection.kind, days[day_index], now)
            for at, text in zip(pos, frame.get_column("json").gather(rows).to_list()):
                out[at] = text
        return [pl.Series("json", out, dtype=pl.String)], total

    # --- usage ---------------------------------------------------------------------------

    def usage(self, query: Usage, now: datetime) -> bytes:
        """A parsed usage request at `now` -> the response body (envelope bytes)."""
        table = self._usage_table(query, now)
        total = table.height
        offset = (query.page_number - 1) * query.page_size
        page = table.slice(offset, query.page_size) if offset < total else table.clear()
        data = []
        for row in page.iter_rows(named=True):
            item: dict[str, object] = {}
            for name in query.dimensions:
                value = row[name]
                item[name] = value.isoformat() if isinstance(value, date) else value
            for name in query.metrics:
                item[name] = _money(row[name]) if name == "cost" else int(row[name] or 0)
            data.append(item)
        meta = {
            "page_number": query.page_number,
            "page_size": query.page_size,
            "total_pages": math.ceil(total / query.page_size),
            "total_results": total,
        }
        return orjson.dumps({"data": data, "meta": meta})

    def _usage_table(self, query: Usage, now: datetime) -> pl.DataFrame:
        """The aggregate over the whole window, one row per dimension tuple, sorted by them."""
        selection = query.selection
        days = selection.days(self.world.start, now)
        states = tuple(self._state(day, now) for day in days)
        key = (selection.key(), query.dimensions, query.metrics, tuple(days), states)
        cacheable = all(state is not None for state in states)
        if cacheable:
            cached = self._usage.get(key)
            if cached is not None:
                return cached
        groups = [pl.col(CREATED_AT).dt.date().alias("date") if d == "date" else pl.col(d) for d in query.dimensions]
        sums = [pl.col(m).sum() for m in query.metrics if m != "count"]
        partials = []
        expr = selection.expr()
        for day in days:
            frame = self._view(selection.kind, day, now)
            lo, hi = self._bounds(frame, selection)
            picked = frame.lazy().slice(lo, hi - lo)
            if expr is not None:
                picked = picked.filter(expr)
            aggregates = [pl.len().cast(pl.Int64).alias("count"), *sums]
            partials.append(picked.group_by(groups).agg(aggregates) if groups else picked.select(aggregates))
        names = list(query.dimensions)
        totals = [pl.col("count").sum(), *sums]
        if partials:
            combined = pl.concat(pl.collect_all(partials))
            table = combined.group_by(names).agg(totals).sort(names) if names else combined.select(totals)
        elif names:
            table = pl.DataFrame(schema=[*names, *query.metrics])
        else:
            # No day in the window: the one total row still exists, with nothing counted.
            table = pl.DataFrame({"count": [0], **{m: [None] for m in query.metrics if m != "count"}})
        if cacheable:
            self._usage.put(key, table)
        return table


# --- HTTP ------------------------------------------------------------------------------

ROUTES: dict[str, str] = {path: name for name, path in PATHS.items()}


def error_body(status: int, detail: str, *, code: str | None = None, parameter: str | None = None,
               header: str | None = None) -> bytes:
    """An error response body in the API's shape."""
    error: dict[str, object] = {
        "code": code or ERROR_CODES.get(status, str(10000 + status)),
        "title": ERROR_TITLES.get(status, "Error"),
        "detail": detail,
    }
    if parameter is not None:
        error["source"] = {"parameter": parameter}
    elif header is not None:
        error["source"] = {"header": header}
    return orjson.dumps({"errors": [error]})


class Account:
    """One served API key: its own world's Reports and its own fault state.

    Nothing is generated until a request asks for it (a world makes its days on demand),
    so each further account costs a few small objects until a client uses it.
    """

    def __init__(self, api_key: str, world: World, faults: Faults, *, pinned: bool) -> None:
        if not api_key:
            raise ValueError("the sandbox needs a non-empty API key")
        self.digest = hashlib.sha256(api_key.encode()).digest()
        # Rate-limit windows are per key; they are kept under a digest, never the key.
        self.principal = self.digest.hex()[:16]
        self.reports = Reports(world, pinned=pinned)
        self.faults = faults

    def __repr__(self) -> str:
        return f"Account(world={self.reports.world!r}, faults={self.faults.config!r})"


class SandboxApp:
    """The raw ASGI application: routing, auth, faults, and the Reports behind them.

    Each account (API key) sees its own world and meets its own faults; the first
    account also answers the rate-limit headers of requests that carry no valid key.
    """

    def __init__(self, accounts: Sequence[Account], *, clock: Clock) -> None:
        if not accounts:
            raise ValueError("the sandbox needs at least one account")
        self.accounts = tuple(accounts)
        self._by_digest = {account.digest: account for account in self.accounts}
        if len(self._by_digest) != len(self.accounts):
            raise ValueError("two accounts have the same API key")
        self.clock = clock
        self._date_second = -1
        self._date_value = b""

    def __repr__(self) -> str:
        first = self.accounts[0].faults.config
        return f"SandboxApp(clock={self.clock!r}, accounts={len(self.accounts)}, faults={first!r})"

    def _date(self, now: datetime) -> bytes:
        """The IMF-fixdate of the server's instant (cached per second)."""
        second = math.floor(now.timestamp())
        if second != self._date_second:
            self._date_second = second
            self._date_value = formatdate(second, usegmt=True).encode()
        return self._date_value

    def _account(self, headers: list[tuple[bytes, bytes]]) -> Account | Literal[False] | None:
        """The account whose key was sent, False for a wrong key, None when no Bearer key was sent."""
        for name, value in headers:
            if name == b"authorization":
                scheme, _, token = value.strip().partition(b" ")
                if scheme.lower() != b"bearer" or not token.strip():
                    return None
                # By digest: how long the lookup takes tells nothing about a key, however many there are.
                return self._by_digest.get(hashlib.sha256(token.strip()).digest(), False)
        return None

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        """The ASGI entry point."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        found = self._account(scope["headers"])
        account = found if isinstance(found, Account) else self.accounts[0]
        faults = account.faults
        if faults.config.latency_ms:
            await asyncio.sleep(faults.config.latency_ms / 1000)
        now = self.clock.now()
        path: str = scope["path"]
        query_string: bytes = scope.get("query_string", b"")
        route = ROUTES.get(path.rstrip("/") or "/")
        draw: Draw | None = None
        rate = faults.peek(account.principal)
        extra: list[tuple[bytes, bytes]] = []

        if route is None:
            status, body = 404, error_body(404, f"no such endpoint {path!r}; the endpoints are {', '.join(PATHS.values())}")
        elif scope["method"] != "GET":
            status, body = 405, error_body(405, f"{path} answers GET only")
            extra.append((b"allow", b"GET"))
        elif not isinstance(found, Account):
            reason = "missing Authorization header" if found is None else "invalid API key"
            detail = f"{reason}: send 'Authorization: Bearer <API key>'"
            status, body = 401, error_body(401, detail, header="Authorization")
        else:
            draw = faults.draw(path, query_string)
            rate = faults.admit(account.principal)
            status, body = self._serve(account.reports, route, query_string, now, draw, rate)
            if status == 429 and not draw.omit_retry_after:
                extra.append((b"retry-after", str(rate.reset_secs).encode()))

        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"date", self._date(now)),
            (b"x-ratelimit-limit", str(rate.limit).encode()),
            (b"x-ratelimit-remaining", str(rate.remaining).encode()),
            (b"x-ratelimit-reset", str(rate.reset_secs).encode()),
            *extra,
        ]
        if draw is not None and draw.drop is not None:
            await self._drop(scope, receive, send, draw, status, headers, body)
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _serve(
        self, reports: Reports, route: str, query_string: bytes, now: datetime, draw: Draw, rate: RateState
    ) -> tuple[int, bytes]:
        """An authorised request past its account's faults -> (status, body) from its account's Reports."""
        if not rate.allowed:
            detail = f"rate limit of {rate.limit} requests per second exceeded; retry in {rate.reset_secs}s"
            return 429, error_body(429, detail)
        if draw.fail_status is not None:
            return draw.fail_status, error_body(draw.fail_status, "injected fault: the request may be retried")
        try:
            if route == "usage":
                return 200, reports.usage(parse_usage(query_string, now), now)
            return 200, reports.listing(parse_listing(route, query_string, now), now)  # type: ignore[arg-type]
        except QueryError as exc:
            return 400, error_body(400, exc.detail, code=exc.code, parameter=exc.parameter)
        except Exception:
            logger.exception("sandbox failed to serve %s", route)
            return 500, error_body(500, "the sandbox failed to serve this request (a bug: see its stderr)")

    async def _drop(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any],
                    draw: Draw, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Reset the connection, or send the headers and part of the body and close."""
        transport = scope.get("extensions", {}).get(TRANSPORT_EXTENSION)
        if transport is None:
            raise RuntimeError("dropping a connection needs the sandbox's HTTP protocol (serve())")
        if draw.drop == "reset":
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # Linger 0: close() sends RST, the peer sees a reset rather than a clean EOF.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            cut = min(int(len(body) * draw.truncate_at), len(body) - 1)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body[:cut], "more_body": True})
            transport.close()
        # Let uvicorn see the disconnect, so it neither answers 500 nor logs an error.
        while (await receive())["type"] != "http.disconnect":
            pass

    async def _lifespan(self, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


class SandboxProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, handing each request its transport (for drop faults)."""

    def on_message_begin(self) -> None:
        """Start a request's scope with the transport in its extensions."""
        super().on_message_begin()
        self.scope["extensions"] = {TRANSPORT_EXTENSION: self.transport}  # type: ignore[typeddict-unknown-key]


class _Server(uvicorn.Server):
    """uvicorn's server, announcing readiness and exiting quietly on SIGINT/SIGTERM."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start listening, then announce it."""
        await super().startup(sockets)
        if self.started:
            self._on_ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Stop gracefully on SIGINT/SIGTERM and return normally (uvicorn would re-raise them)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on host:port (port 0: a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def base_url(sock: socket.socket) -> str:
    """A bound socket -> the base URL clients on this machine use: one bound to every interface (`--host 0.0.0.0`)
    is reached at loopback, the only host the client takes plain http:// for."""
    host, port = sock.getsockname()[:2]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(app: SandboxApp, sock: socket.socket, on_ready: Callable[[], None]) -> None:
    """Serve the app on a bound socket until SIGINT/SIGTERM; `on_ready` runs once listening."""
    config = uvicorn.Config(
        app,
        http=SandboxProtocol,
        loop="uvloop",
        lifespan="off",
        interface="asgi3",
        access_log=False,
        log_config=None,
        log_level="warning",
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=2,
    )
    _Server(config, on_ready).run(sockets=[sock])
