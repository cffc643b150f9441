"""The Opentact Reports API's shape: paths, query syntax, record fields and their lake types.

The one module that knows how the API spells things. Nested objects flatten with `_`
(`connection.id` -> `connection_id`), timestamps become UTC datetimes (ms), money exact decimals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import orjson
import polars as pl

from pipelines.dates import Window, format_utc
from pipelines.errors import UsageError, choice, did_you_mean, hinted

RecordType = Literal["cdrs", "mdrs"]
RECORD_TYPES: tuple[RecordType, ...] = ("cdrs", "mdrs")


def record_types(names: str | Iterable[str], *, what: str = "record types") -> list[RecordType]:
    """Record type names (or one) -> each once, in order; UsageError unless every one is in RECORD_TYPES."""
    named = [(name, choice(name, RECORD_TYPES)) for name in ([names] if isinstance(names, str) else names)]
    unknown = [name for name, found in named if found is None]
    chosen = list(dict.fromkeys(found for _, found in named if found is not None))
    if unknown or not chosen:
        got = ", ".join(f"{name!r}{hinted(did_you_mean(name, RECORD_TYPES))}" for name in unknown) or "none"
        raise UsageError(f"{what} must be some of {', '.join(RECORD_TYPES)}; got {got}")
    return chosen  # type: ignore[return-value]


def known_record_type(kind: str) -> RecordType:
    """A record type named by the code -> itself; ValueError (a programming error) for any other name."""
    if kind not in RECORD_TYPES:
        raise ValueError(f"unknown record type {kind!r}; expected one of {', '.join(RECORD_TYPES)}")
    return kind  # type: ignore[return-value]


PATHS: dict[str, str] = {
    "cdrs": "/v2/reports/cdrs",
    "mdrs": "/v2/reports/mdrs",
    "usage": "/v2/reports/usage",
}
USAGE_PRODUCTS: dict[RecordType, str] = {"cdrs": "calls", "mdrs": "messages"}

MAX_PAGE_SIZE = 250
MAX_USAGE_PAGE_SIZE = 5000

# Money: exact decimals wide enough for any sum we report; more decimals than this
# in a record is a validation error, never a silent rounding.
MONEY = pl.Decimal(38, 9)
TIMESTAMP = pl.Datetime("ms", "UTC")

CDR_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "record_type": pl.String(),
    "call_session_id": pl.String(),
    "direction": pl.String(),
    "cli": pl.String(),
    "cld": pl.String(),
    "country_code": pl.String(),
    "country_calling_code": pl.String(),
    "number_type": pl.String(),
    "connection_id": pl.String(),
    "connection_name": pl.String(),
    "tags": pl.List(pl.String()),
    "status": pl.String(),
    "hangup_cause": pl.String(),
    "sip_response_code": pl.Int32(),
    "started_at": TIMESTAMP,
    "answered_at": TIMESTAMP,
    "ended_at": TIMESTAMP,
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
    "duration_secs": pl.Int64(),
    "billed_duration_secs": pl.Int64(),
    "billing_initial_secs": pl.Int32(),
    "billing_increment_secs": pl.Int32(),
    "rate": MONEY,
    "cost": MONEY,
    "currency": pl.String(),
}

MDR_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "record_type": pl.String(),
    "direction": pl.String(),
    "cli": pl.String(),
    "cld": pl.String(),
    "country_code": pl.String(),
    "message_type": pl.String(),
    "encoding": pl.String(),
    "parts": pl.Int32(),
    "status": pl.String(),
    "carrier": pl.String(),
    "messaging_profile_id": pl.String(),
    "messaging_profile_name": pl.String(),
    "tags": pl.List(pl.String()),
    "errors": pl.List(pl.Struct({"code": pl.String(), "title": pl.String()})),
    "created_at": TIMESTAMP,
    "sent_at": TIMESTAMP,
    "completed_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
    "rate": MONEY,
    "cost": MONEY,
    "carrier_fee": MONEY,
    "currency": pl.String(),
}

SCHEMAS: dict[RecordType, dict[str, pl.DataType]] = {"cdrs": CDR_SCHEMA, "mdrs": MDR_SCHEMA}

# Fields a record holds that its schema above does not name (the API added them after this
# release): kept per record as one JSON object, so an API change loses nothing and `cdr sql`
# reads them (`extras->>'field'`). Null when a record has none.
EXTRAS = "extras"
# The lake's columns per record type: the record's fields, then its extras. Adding a field
# above is an upgrade like any other: partitions written before it read it as null.
LAKE_SCHEMAS: dict[RecordType, dict[str, pl.DataType]] = {
    kind: {**schema, EXTRAS: pl.String()} for kind, schema in SCHEMAS.items()
}

# Nested objects in the API's records and the flat lake columns they become.
NESTED: dict[RecordType, dict[str, tuple[str, ...]]] = {
    "cdrs": {"connection": ("id", "name")},
    "mdrs": {"messaging_profile": ("id", "name")},
}

# Columns that may be null in a valid record; every other column is required.
NULLABLE: dict[RecordType, frozenset[str]] = {
    "cdrs": frozenset({"answered_at"}),
    "mdrs": frozenset({"sent_at", "completed_at"}),
}

ID = "id"
CREATED_AT = "created_at"
UPDATED_AT = "updated_at"

# `/v2/reports/usage` as landed for reconciliation: one row per UTC date, country,
# direction and currency of one product. `billed_duration_secs` is for calls only,
# `parts` for messages only.
USAGE_DIMENSIONS: tuple[str, ...] = ("date", "country_code", "direction", "currency")
USAGE_METRICS: dict[RecordType, tuple[str, ...]] = {
    "cdrs": ("count", "billed_duration_secs", "cost"),
    "mdrs": ("count", "parts", "cost"),
}
USAGE_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "product": pl.String(),
    "country_code": pl.String(),
    "direction": pl.String(),
    "currency": pl.String(),
    "count": pl.Int64(),
    "billed_duration_secs": pl.Int64(),
    "parts": pl.Int64(),
    "cost": MONEY,
}

# --- Value rules of the records (checked by `pipelines.opentact.records`) ---------------

RECORD_TYPE_VALUES: dict[RecordType, str] = {"cdrs": "call", "mdrs": "message"}

ENUMS: dict[RecordType, dict[str, frozenset[str]]] = {
    "cdrs": {
        "direction": frozenset({"inbound", "outbound"}),
        "number_type": frozenset({"local", "mobile", "toll_free", "premium"}),
        "status": frozenset({"answered", "busy", "no_answer", "failed", "cancelled"}),
    },
    "mdrs": {
        "direction": frozenset({"inbound", "outbound"}),
        "message_type": frozenset({"sms", "mms"}),
        "encoding": frozenset({"gsm7", "ucs2"}),
        "status": frozenset(
            {"queued", "sent", "delivered", "delivery_failed", "delivery_unconfirmed", "received", "gateway_rejected"}
        ),
    },
}

# String columns with a fixed form, by lake column; the forms are defined in records.py.
FORMATS: dict[RecordType, dict[str, str]] = {
    "cdrs": {
        "id": "uuid",
        "call_session_id": "uuid",
        "connection_id": "uuid",
        "cli": "e164",
        "cld": "e164",
        "country_code": "country",
        "country_calling_code": "calling_code",
        "hangup_cause": "snake_case",
        "currency": "currency",
    },
    "mdrs": {
        "id": "uuid",
        "messaging_profile_id": "uuid",
        "cli": "e164",
        "cld": "e164",
        "country_code": "country",
        "currency": "currency",
    },
}

# Inclusive bounds of integer columns (beyond their lake type's own range).
INT_BOUNDS: dict[RecordType, dict[str, tuple[int, int]]] = {
    "cdrs": {
        "sip_response_code": (100, 699),
        "duration_secs": (0, 2**63 - 1),
        "billed_duration_secs": (0, 2**63 - 1),
        "billing_initial_secs": (0, 2**31 - 1),
        "billing_increment_secs": (0, 2**31 - 1),
    },
    "mdrs": {"parts": (1, 2**31 - 1)},
}

# --- Query syntax ------------------------------------------------------------------------

AUTHORIZATION = "Authorization"
RETRY_AFTER = "retry-after"
RATELIMIT_REMAINING = "x-ratelimit-remaining"
RATELIMIT_RESET = "x-ratelimit-reset"  # seconds until the rate-limit window resets

# Oldest first, ties by id: a stable order for paging a frozen window.
LISTING_SORT: tuple[str, ...] = (CREATED_AT, "id")


def bearer(api_key: str) -> str:
    """An API key -> the value of the Authorization header."""
    return f"Bearer {api_key}"


def _created_between(window: Window) -> list[tuple[str, str]]:
    return [
        (f"filter[{CREATED_AT}][gte]", format_utc(window.start)),
        (f"filter[{CREATED_AT}][lt]", format_utc(window.end)),
    ]


def _page(page_number: int, page_size: int) -> list[tuple[str, str]]:
    return [("page[number]", str(page_number)), ("page[size]", str(page_size))]


def listing_params(window: Window, page_number: int, page_size: int) -> list[tuple[str, str]]:
    """A window and page -> query parameters listing records created in it, oldest first."""
    return [*_created_between(window), *(("sort[]", name) for name in LISTING_SORT), *_page(page_number, page_size)]


def usage_params(
    kind: RecordType, window: Window, dimensions: tuple[str, ...], page_number: int, page_size: int
) -> list[tuple[str, str]]:
    """A product, window and dimensions -> query parameters of the usage aggregate."""
    return [
        ("product", USAGE_PRODUCTS[kind]),
        ("dimensions", ",".join(dimensions)),
        ("metrics", ",".join(USAGE_METRICS[kind])),
        *_created_between(window),
        *_page(page_number, page_size),
    ]


@dataclass(frozen=True, slots=True)
class PageMeta:
    """The `meta` of a listing response."""

    page_number: int
    page_size: int
    total_pages: int
    total_results: int


def parse_envelope(body: object) -> tuple[list[object], PageMeta]:
    """A decoded response body -> its records and meta; ValueError if it is not an envelope."""
    if not isinstance(body, dict):
        raise ValueError("response body is not a JSON object")
    data, meta = body.get("data"), body.get("meta")
    if not isinstance(data, list) or not isinstance(meta, dict):
        raise ValueError("response body has no `data` list and `meta` object")
    numbers = []
    for name in ("page_number", "page_size", "total_pages", "total_results"):
        value = meta.get(name)
        if type(value) is not int or value < 0:
            raise ValueError(f"response meta.{name} is not a non-negative integer: {value!r}")
        numbers.append(value)
    return data, PageMeta(*numbers)


def error_summary(body: bytes) -> str:
    """An error response body -> 'detail (parameter: ...)' of its first error, or its text."""
    try:
        first = orjson.loads(body)["errors"][0]
        detail = str(first.get("detail") or first.get("title") or "")
        parameter = (first.get("source") or {}).get("parameter")
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return body[:200].decode("utf-8", "replace").strip() or "(empty body)"
    return f"{detail} (parameter: {parameter})" if parameter else detail
