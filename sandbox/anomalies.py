"""Sandbox anomalies: the known incidents a world can carry on top of its normal traffic.

`load_anomalies` reads the `--anomalies FILE` of `cdr sandbox serve|export`: a JSON array
of objects, each `{"kind": ..., "start": ISO, "end": ISO, ...}`, checked field by field
against the catalog so that a bad item is one line naming the item and the field. The
world (`sandbox.world`) turns the parsed items into records; this module only knows what
each kind means and which fields it takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import orjson

from pipelines.dates import format_utc, parse_datetime
from pipelines.errors import UsageError, clip, one_line
from sandbox import catalog

Product = Literal["voice", "sms", "mms"]
PRODUCTS: tuple[Product, ...] = ("voice", "sms", "mms")
# Bounds that keep one day's generation in memory; far beyond any test scope.
MAX_COUNT = 1_000_000
MAX_FACTOR = 100.0


@dataclass(frozen=True, slots=True)
class CostSpike:
    """A product's traffic multiplied by `factor` in the window (same mix, normal rates)."""

    start: datetime
    end: datetime
    product: Product
    factor: float


@dataclass(frozen=True, slots=True)
class Irsf:
    """`calls` outbound calls to a country's high-risk or premium ranges, long and costly."""

    start: datetime
    end: datetime
    country_code: str
    calls: int


@dataclass(frozen=True, slots=True)
class ShortCallBurst:
    """`calls` answered outbound calls to a country, each at most `max_secs` long."""

    start: datetime
    end: datetime
    country_code: str
    calls: int
    max_secs: int


@dataclass(frozen=True, slots=True)
class AsrDrop:
    """Outbound calls to a country, or over a connection, answered at `answer_rate`."""

    start: datetime
    end: datetime
    answer_rate: float
    country_code: str | None = None
    connection_id: str | None = None


@dataclass(frozen=True, slots=True)
class SmsPumping:
    """`messages` outbound SMS to a country's mobiles, delivered at `delivery_rate`."""

    start: datetime
    end: datetime
    country_code: str
    messages: int
    delivery_rate: float


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """Outbound messages via a carrier, or to a country, failing at `failure_rate`."""

    start: datetime
    end: datetime
    failure_rate: float
    carrier: str | None = None
    country_code: str | None = None


Anomaly = CostSpike | Irsf | ShortCallBurst | AsrDrop | SmsPumping | DeliveryFailure

# Per kind: its class, required fields and the pair of which exactly one is given (if any).
_KINDS: dict[str, tuple[type, tuple[str, ...], tuple[str, str] | None]] = {
    "cost_spike": (CostSpike, ("product", "factor"), None),
    "irsf": (Irsf, ("country_code", "calls"), None),
    "short_call_burst": (ShortCallBurst, ("country_code", "calls", "max_secs"), None),
    "asr_drop": (AsrDrop, ("answer_rate",), ("country_code", "connection_id")),
    "sms_pumping": (SmsPumping, ("country_code", "messages", "delivery_rate"), None),
    "delivery_failure": (DeliveryFailure, ("failure_rate",), ("carrier", "country_code")),
}
KINDS = tuple(_KINDS)

_COUNTRIES = {country.code for country in catalog.DESTINATIONS}
_CONNECTIONS = {party.id for party in catalog.CONNECTIONS}
_CARRIERS = {carrier for country in catalog.DESTINATIONS for carrier in country.carriers}


class _ItemError(Exception):
    """One bad field of one item: the message after the item's name."""


def load_anomalies(path: Path) -> tuple[Anomaly, ...]:
    """An anomalies file -> its items, in file order; UsageError naming the item and field."""
    name = clip(str(path))
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"anomalies file {name}: cannot read it ({exc.strerror or one_line(exc)})") from None
    return parse_anomalies(text, name)


def parse_anomalies(text: bytes | str, name: str) -> tuple[Anomaly, ...]:
    """The JSON text of an anomalies file named `name` -> its items; UsageError when bad."""
    try:
        items = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"anomalies file {name}: not valid JSON ({one_line(exc)})") from None
    if not isinstance(items, list):
        raise UsageError(f"anomalies file {name}: must hold a JSON array of objects, got {_type(items)}")
    parsed = []
    for number, item in enumerate(items, start=1):
        label = f"item {number}"
        if isinstance(item, dict) and isinstance(item.get("kind"), str) and item["kind"] in _KINDS:
            label += f" ({item['kind']})"
        try:
            parsed.append(_item(item))
        except _ItemError as exc:
            raise UsageError(f"anomalies file {name}: {label}: {exc}") from None
    return tuple(parsed)


def _item(item: object) -> Anomaly:
    if not isinstance(item, dict):
        raise _ItemError(f"must be an object, got {_type(item)}")
    kind = item.get("kind")
    if kind not in _KINDS:
        shown = "is missing" if kind is None else f"{clip(repr(kind), 40)} is not a kind"
        raise _ItemError(f'"kind" {shown}; the kinds are {", ".join(KINDS)}')
    cls, required, one_of = _KINDS[kind]
    allowed = {"kind", "start", "end", *required, *(one_of or ())}
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise _ItemError(f'unknown field "{clip(unknown[0], 40)}"; {kind} takes {", ".join(sorted(allowed))}')
    start, end = _moment(item, "start"), _moment(item, "end")
    if end <= start:
        raise _ItemError(f'"end" ({format_utc(end)}) must be after "start" ({format_utc(start)})')
    fields: dict[str, object] = {"start": start, "end": end}
    if one_of is not None:
        given = [field for field in one_of if field in item]
        if len(given) != 1:
            raise _ItemError(f'give exactly one of "{one_of[0]}" and "{one_of[1]}"')
        required = (*required, given[0])
    for field in required:
        if field not in item:
            raise _ItemError(f'"{field}" is missing')
        fields[field] = _CHECKS[field](field, item[field])
    return cls(**fields)


def _type(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _moment(item: dict[str, object], field: str) -> datetime:
    if field not in item:
        raise _ItemError(f'"{field}" is missing')
    value = item[field]
    if not isinstance(value, str):
        raise _ItemError(f'"{field}" must be an ISO date-time string, got {_type(value)}')
    try:
        return parse_datetime(value)
    except ValueError:
        raise _ItemError(
            f'"{field}" {clip(repr(value), 40)} is not an ISO date-time with Z or an offset (or a bare date)'
        ) from None


def _count(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise _ItemError(f'"{field}" must be a positive integer (at most {MAX_COUNT}), got {clip(repr(value), 40)}')
    return value


def _rate(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise _ItemError(f'"{field}" must be a number between 0 and 1, got {clip(repr(value), 40)}')
    return float(value)


def _factor(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value <= MAX_FACTOR:
        raise _ItemError(f'"{field}" must be a number above 0 (at most {MAX_FACTOR:g}), got {clip(repr(value), 40)}')
    return float(value)


def _one_of(known: set[str] | tuple[str, ...], what: str, listed: bool) -> object:
    def check(field: str, value: object) -> str:
        if not isinstance(value, str) or value not in known:
            hint = f"; the {what} are {', '.join(sorted(known))}" if listed else f" in the sandbox catalog ({what})"
            raise _ItemError(f'"{field}" {clip(repr(value), 60)} is not known{hint}')
        return value

    return check


_CHECKS = {
    "product": _one_of(PRODUCTS, "products", listed=True),
    "factor": _factor,
    "country_code": _one_of(_COUNTRIES, "ISO alpha-2 codes, e.g. GB, LV", listed=False),
    "connection_id": _one_of(_CONNECTIONS, "connection ids", listed=False),
    "carrier": _one_of(_CARRIERS, "carrier names, exactly as the records spell them", listed=False),
    "calls": _count,
    "messages": _count,
    "max_secs": _count,
    "answer_rate": _rate,
    "delivery_rate": _rate,
    "failure_rate": _rate,
}
