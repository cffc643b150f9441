"""The Opentact Reports API's shape: paths, query syntax, record fields and their lake types.

This is the one module that knows how the API spells things; pointing the pipeline at a
differently-shaped endpoint is a change here only. The lake schemas are derived from the
record fields: nested objects flatten with `_` (`connection.id` -> `connection_id`),
timestamps become UTC datetimes (ms), money becomes exact decimals.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

RecordType = Literal["cdrs", "mdrs"]
RECORD_TYPES: tuple[RecordType, ...] = ("cdrs", "mdrs")

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
