"""Valid API records and listing pages for client tests (no sandbox needed)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import orjson

from pipelines.dates import format_utc

T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)


def _uuid(n: int, salt: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{salt}-{n}"))


def cdr(n: int, at: datetime | None = None, **overrides: object) -> dict:
    """The n-th valid call detail record (answered, 60/60 billing), with field overrides."""
    created = at or T0 + timedelta(seconds=n)
    record = {
        "id": _uuid(n, "cdr"),
        "record_type": "call",
        "call_session_id": _uuid(n // 2, "session"),
        "direction": "outbound",
        "cli": "+442071234567",
        "cld": "+14155550100",
        "country_code": "US",
        "country_calling_code": "1",
        "number_type": "mobile",
        "connection": {"id": _uuid(1, "conn"), "name": 'Main "Trunk" <b>é</b>'},
        "tags": ["sales", "q4"],
        "status": "answered",
        "hangup_cause": "normal_clearing",
        "sip_response_code": 200,
        "started_at": format_utc(created - timedelta(seconds=95)),
        "answered_at": format_utc(created - timedelta(seconds=90)),
        "ended_at": format_utc(created),
        "created_at": format_utc(created),
        "updated_at": format_utc(created),
        "duration_secs": 95,
        "billed_duration_secs": 120,
        "billing_initial_secs": 60,
        "billing_increment_secs": 60,
        "rate": "0.0125",
        "cost": "0.025000",
        "currency": "USD",
    }
    record.update(overrides)
    return record


def mdr(n: int, at: datetime | None = None, **overrides: object) -> dict:
    """The n-th valid message detail record, with field overrides."""
    created = at or T0 + timedelta(seconds=n)
    record = {
        "id": _uuid(n, "mdr"),
        "record_type": "message",
        "direction": "outbound",
        "cli": "+442071234567",
        "cld": "+491701234567",
        "country_code": "DE",
        "message_type": "sms",
        "encoding": "gsm7",
        "parts": 2,
        "status": "delivered",
        "carrier": "Telekom 'D1' & <co>",
        "messaging_profile": {"id": _uuid(1, "profile"), "name": "Alerts"},
        "tags": [],
        "errors": [],
        "created_at": format_utc(created),
        "sent_at": format_utc(created + timedelta(seconds=1)),
        "completed_at": None,
        "updated_at": format_utc(created),
        "rate": "0.0040",
        "cost": "0.0080",
        "carrier_fee": "0",
        "currency": "EUR",
    }
    record.update(overrides)
    return record


def envelope(records: list, page_number: int = 1, page_size: int = 250, total_results: int | None = None) -> bytes:
    """A listing response body holding the given records."""
    total = len(records) if total_results is None else total_results
    pages = (total + page_size - 1) // page_size
    meta = {"page_number": page_number, "page_size": page_size, "total_pages": pages, "total_results": total}
    return orjson.dumps({"data": records, "meta": meta})
