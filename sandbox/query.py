"""Sandbox query engine: an API query string -> a typed `Listing`/`Usage` -> polars filters.

The sandbox's second stage (after the world): it reads the query syntax of the reference
sheet (`page[...]`, `sort`/`sort[]`, `filter[FIELD]`, `filter[FIELD][]`, `filter[FIELD][OP]`,
`filter[date_range]`) exactly as the contract states it, and turns it into typed predicates,
created_at bounds (which choose the days the server touches) and a complete sort order.
Anything it does not understand is a `QueryError` naming the offending parameter, never a
silent empty result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Literal
from urllib.parse import parse_qsl

import polars as pl

from pipelines.dates import parse_datetime, resolve_literal
from pipelines.errors import UsageError
from pipelines.opentact.api import (
    CREATED_AT,
    MAX_PAGE_SIZE,
    MAX_USAGE_PAGE_SIZE,
    NESTED,
    RECORD_TYPES,
    SCHEMAS,
    USAGE_METRICS,
    USAGE_PRODUCTS,
    RecordType,
)

FieldType = Literal["string", "int", "decimal", "datetime", "tags", "errors"]

OPERATORS: tuple[str, ...] = (
    "eq", "ne", "gt", "gte", "lt", "lte", "starts_with", "ends_with", "contains",
)
_ORDERED_OPS = ("eq", "ne", "gt", "gte", "lt", "lte")
# Which operators apply to which kind of field; tags compare by membership only.
_OPS_BY_TYPE: dict[FieldType, tuple[str, ...]] = {
    "string": OPERATORS,
    "int": _ORDERED_OPS,
    "decimal": _ORDERED_OPS,
    "datetime": _ORDERED_OPS,
    "tags": ("eq", "ne"),
    "errors": (),
}

DEFAULT_PAGE_SIZE = 20
DATE_RANGE = "date_range"
NULL = "null"
ID = "id"

# The grid of the money columns (Decimal(38, 9)): filter values are mapped onto it exactly.
_MONEY_SCALE = 9
_MONEY_QUANTUM = Decimal(1).scaleb(-_MONEY_SCALE)
_MONEY_LIMIT = Decimal(10) ** (38 - _MONEY_SCALE)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_ONE_MICROSECOND = timedelta(microseconds=1)
UTC = timezone.utc

# `name`, `name[a]`, `name[a][b]`, `name[a][]`...; brackets hold anything but brackets.
_KEY_RE = re.compile(r"([A-Za-z_]+)((?:\[[^\[\]]*\])*)")
_PART_RE = re.compile(r"\[([^\[\]]*)\]")
_INT_RE = re.compile(r"[+-]?[0-9]+")

USAGE_PRODUCT_KINDS: dict[str, RecordType] = {product: kind for kind, product in USAGE_PRODUCTS.items()}
USAGE_DIMENSIONS: dict[RecordType, tuple[str, ...]] = {
    "cdrs": ("date", "country_code", "direction", "connection.id", "currency"),
    "mdrs": ("date", "country_code", "direction", "messaging_profile.id", "currency"),
}
# Error codes: one stable code per kind of 400, so clients can branch on them.
CODE_INVALID_VALUE = "10011"
CODE_UNKNOWN_PARAMETER = "10012"
CODE_UNKNOWN_FIELD = "10013"
CODE_UNKNOWN_OPERATOR = "10014"
CODE_OPERATOR_NOT_APPLICABLE = "10015"


class QueryError(UsageError):
    """A bad query parameter: becomes a 400 whose `source.parameter` names it."""

    def __init__(self, parameter: str, detail: str, code: str = CODE_INVALID_VALUE) -> None:
        super().__init__(f"{parameter}: {detail}")
        self.parameter = parameter
        self.detail = detail
        self.code = code


def _field_types(kind: RecordType) -> dict[str, FieldType]:
    """The API fields of a record type (nested ones dotted) -> their kind of value."""
    dotted = {f"{parent}_{child}": f"{parent}.{child}" for parent, children in NESTED[kind].items() for child in children}
    types: dict[str, FieldType] = {}
    for column, dtype in SCHEMAS[kind].items():
        name = dotted.get(column, column)
        if dtype == pl.String:
            types[name] = "string"
        elif dtype.is_integer():
            types[name] = "int"
        elif isinstance(dtype, pl.Decimal):
            types[name] = "decimal"
        elif isinstance(dtype, pl.Datetime):
            types[name] = "datetime"
        elif isinstance(dtype, pl.List) and dtype.inner == pl.String:
            types[name] = "tags"
        else:
            types[name] = "errors"
    return types


FIELDS: dict[RecordType, dict[str, FieldType]] = {kind: _field_types(kind) for kind in RECORD_TYPES}


@dataclass(frozen=True, slots=True)
class Predicate:
    """One typed filter condition; `None` in `values` stands for the API's `null`."""

    field: str
    field_type: FieldType
    op: str
    values: tuple[object, ...]

    def expr(self) -> pl.Expr:
        """The condition as a polars boolean expression over the world's columns."""
        column = pl.col(self.field)
        if self.field_type == "tags":
            return self._tags_expr(column)
        if self.op in ("eq", "ne") and len(self.values) != 1 or self.values == (None,):
            return self._set_expr(column)
        (value,) = self.values
        if self.field_type == "decimal":
            return _decimal_expr(column, self.op, value)  # type: ignore[arg-type]
        literal = pl.lit(value)
        match self.op:
            case "eq":
                return column == literal
            case "ne":
                # An unset value is not equal to any value (as with the array form).
                return (column != literal).fill_null(True)
            case "gt":
                return column > literal
            case "gte":
                return column >= literal
            case "lt":
                return column < literal
            case "lte":
                return column <= literal
            case "starts_with":
                return column.str.starts_with(value)  # type: ignore[arg-type]
            case "ends_with":
                return column.str.ends_with(value)  # type: ignore[arg-type]
            case _:
                return column.str.contains(value, literal=True)  # type: ignore[arg-type]

    def _set_expr(self, column: pl.Expr) -> pl.Expr:
        """eq/ne against a set of values that may include null (IN / NOT IN)."""
        present = [v for v in self.values if v is not None]
        if self.field_type == "decimal":
            present = [v for v in present if _on_money_grid(v)]  # type: ignore[arg-type]
        wants_null = None in self.values
        member = column.is_in(pl.Series(present, dtype=_dtype_of(self.field_type)).implode()) if present else pl.lit(False)
        if self.op == "eq":
            return (member.fill_null(False) | column.is_null()) if wants_null else member.fill_null(False)
        # ne: null never equals a value, so it is "not equal" unless null itself is excluded
        outside = ~member.fill_null(False)
        return (outside & column.is_not_null()) if wants_null else outside

    def _tags_expr(self, column: pl.Expr) -> pl.Expr:
        """Tags compare by membership; `null` means no tags at all."""
        hits = [
            column.list.len() == 0 if value is None else column.list.contains(pl.lit(value, dtype=pl.String))
            for value in self.values
        ]
        any_hit = pl.any_horizontal(hits)
        return any_hit if self.op == "eq" else ~any_hit

    def key(self) -> str:
        """A canonical text of the condition, for cache keys."""
        return f"{self.field}\x1f{self.op}\x1f" + "\x1e".join(_value_key(v) for v in self.values)


def _dtype_of(field_type: FieldType) -> pl.DataType:
    """The polars type the world uses for a kind of field."""
    return {
        "string": pl.String(),
        "int": pl.Int64(),
        "decimal": pl.Decimal(38, _MONEY_SCALE),
        "datetime": pl.Datetime("us", "UTC"),
    }.get(field_type, pl.String())


def _value_key(value: object) -> str:
    if value is None:
        return "\x00null"
    if isinstance(value, datetime):
        return value.isoformat()
    return f"{type(value).__name__}:{value}"


def _on_money_grid(value: Decimal) -> bool:
    return value == value.quantize(_MONEY_QUANTUM, rounding=ROUND_FLOOR)


def _decimal_expr(column: pl.Expr, op: str, value: Decimal) -> pl.Expr:
    """An exact comparison of a Decimal(38, 9) column with any decimal value.

    Column values lie on the 1e-9 grid; a value between two grid points compares like
    the grid point below it (for > and <=) or above it (for >= and <), which is exact.
    """
    floor = value.quantize(_MONEY_QUANTUM, rounding=ROUND_FLOOR)
    ceiling = value.quantize(_MONEY_QUANTUM, rounding=ROUND_CEILING)
    money = pl.Decimal(38, _MONEY_SCALE)
    match op:
        case "eq":
            return column == pl.lit(floor, dtype=money) if floor == value else pl.lit(False)
        case "ne":
            return (column != pl.lit(floor, dtype=money)).fill_null(True) if floor == value else pl.lit(True)
        case "gt":
            return column > pl.lit(floor, dtype=money)
        case "gte":
            return column >= pl.lit(ceiling, dtype=money)
        case "lt":
            return column < pl.lit(ceiling, dtype=money)
        case _:
            return column <= pl.lit(floor, dtype=money)


@dataclass(frozen=True, slots=True)
class SortKey:
    """One sort field and its direction."""

    field: str
    descending: bool


@dataclass(frozen=True, slots=True)
class Selection:
    """What both endpoints filter on: typed predicates plus half-open created_at bounds.

    `created_from`/`created_to` hold every condition on created_at that is an interval
    (date_range, eq, gt, gte, lt, lte); they choose the days to read and are applied
    by binary search on the presorted column. `predicates` hold everything else.
    """

    kind: RecordType
    predicates: tuple[Predicate, ...]
    created_from: datetime | None
    created_to: datetime | None
    # The canonical text of all of the above, computed once: every cache lookup uses it.
    _key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bounds = "|".join(b.isoformat() if b else "-" for b in (self.created_from, self.created_to))
        conditions = "\x1d".join(sorted(p.key() for p in self.predicates))
        object.__setattr__(self, "_key", f"{self.kind}|{bounds}|{conditions}")

    def expr(self) -> pl.Expr | None:
        """The residual predicates as one polars expression (None when there are none)."""
        if not self.predicates:
            return None
        return pl.all_horizontal([p.expr() for p in self.predicates])

    def key(self) -> str:
        """A canonical text of the selection, for cache keys."""
        return self._key

    def is_empty(self) -> bool:
        """Whether the created_at bounds exclude everything."""
        return self.created_from is not None and self.created_to is not None and self.created_from >= self.created_to

    def days(self, first: date, now: datetime) -> list[date]:
        """The UTC days, ascending, that can hold selected records visible at `now`."""
        if self.is_empty():
            return []
        low = max(first, self.created_from.astimezone(UTC).date()) if self.created_from else first
        # Records are visible only when created before `now`.
        end = min(now, self.created_to) if self.created_to else now
        if end <= datetime(first.year, first.month, first.day, tzinfo=UTC):
            return []
        high = (end.astimezone(UTC) - _ONE_MICROSECOND).date()
        return [low + timedelta(days=i) for i in range((high - low).days + 1)]


@dataclass(frozen=True, slots=True)
class Listing:
    """A parsed `GET /v2/reports/{cdrs,mdrs}` request."""

    selection: Selection
    sort: tuple[SortKey, ...]
    page_number: int
    page_size: int

    @property
    def kind(self) -> RecordType:
        """The record type listed."""
        return self.selection.kind

    def created_primary(self) -> bool:
        """Whether created_at is the primary sort key (pages can then be cut day by day)."""
        return self.sort[0].field == CREATED_AT

    def natural_order(self) -> bool:
        """Whether the order is exactly (created_at, id) in one direction: the world's own order."""
        return (
            len(self.sort) == 2
            and self.sort[0].field == CREATED_AT
            and self.sort[1].field == ID
            and self.sort[0].descending == self.sort[1].descending
        )

    def sort_key(self) -> str:
        """A canonical text of the sort order, for cache keys."""
        return ",".join(("-" if k.descending else "") + k.field for k in self.sort)


@dataclass(frozen=True, slots=True)
class Usage:
    """A parsed `GET /v2/reports/usage` request."""

    selection: Selection
    dimensions: tuple[str, ...]
    metrics: tuple[str, ...]
    page_number: int
    page_size: int

    @property
    def kind(self) -> RecordType:
        """The record type aggregated."""
        return self.selection.kind


def parse_pairs(query_string: str | bytes) -> list[tuple[str, str]]:
    """A raw query string -> its (key, value) pairs in order, percent- and plus-decoded."""
    # Clients should percent-encode, but curl users type raw UTF-8: accept both.
    text = query_string.decode("utf-8", "replace") if isinstance(query_string, bytes) else query_string
    return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace")


def canonical_query(query_string: str | bytes) -> str:
    """A query string -> a canonical text: pairs ordered by key, values in their given order."""
    pairs = sorted(parse_pairs(query_string), key=lambda pair: pair[0])
    return "&".join(f"{key}={value}" for key, value in pairs)


def _split_key(key: str) -> tuple[str, list[str]]:
    """`filter[cost][gte]` -> ('filter', ['cost', 'gte']); QueryError if not of that shape."""
    match = _KEY_RE.fullmatch(key)
    if match is None:
        raise QueryError(key, "not a parameter of this API: use page[...], sort, sort[] or filter[...]", CODE_UNKNOWN_PARAMETER)
    return match.group(1), _PART_RE.findall(match.group(2))


class _Params:
    """The request's parameters grouped by name, with helpers that raise QueryError."""

    def __init__(self, pairs: list[tuple[str, str]], allowed: frozenset[str], endpoint: str) -> None:
        self.filters: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        self.scalars: dict[str, str] = {}
        self.sort: list[tuple[str, str]] = []
        for key, value in pairs:
            name, parts = _split_key(key)
            if name == "filter" and parts:
                self.filters.setdefault(tuple(parts), []).append((key, value))
            elif name == "sort" and "sort" in allowed and parts in ([], [""]):
                self.sort.append((key, value))
            elif name == "page" and parts in (["number"], ["size"]):
                self._scalar(f"page[{parts[0]}]", key, value)
            elif name in allowed and name not in ("filter", "sort", "page") and parts in ([], [""]):
                self._scalar(name, key, value, array=parts == [""])
            else:
                raise QueryError(key, f"unknown parameter for {endpoint}", CODE_UNKNOWN_PARAMETER)

    def _scalar(self, name: str, key: str, value: str, array: bool = False) -> None:
        if name in self.scalars and not array:
            raise QueryError(key, "given more than once")
        self.scalars[name] = f"{self.scalars[name]},{value}" if name in self.scalars else value


def _page(params: _Params, max_size: int) -> tuple[int, int]:
    """page[number] and page[size] -> (number, clamped size)."""
    number = _positive_int(params.scalars.get("page[number]"), "page[number]", default=1)
    size = _positive_int(params.scalars.get("page[size]"), "page[size]", default=DEFAULT_PAGE_SIZE)
    return number, min(size, max_size)


def _positive_int(text: str | None, parameter: str, default: int) -> int:
    if text is None:
        return default
    if not re.fullmatch(r"[0-9]{1,18}", text.strip()):
        raise QueryError(parameter, f"must be a positive integer, got {text!r}")
    value = int(text)
    if value < 1:
        raise QueryError(parameter, f"must be at least 1, got {text!r}")
    return value


def _parse_value(field: str, field_type: FieldType, text: str, parameter: str) -> object:
    """A filter value's text -> a typed value for its field; QueryError if it does not parse."""
    if field_type in ("string", "tags"):
        return text
    if field_type == "int":
        if not _INT_RE.fullmatch(text):
            raise QueryError(parameter, f"{field} is an integer field, {text!r} is not an integer")
        value = int(text)
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise QueryError(parameter, f"{text!r} is outside the 64-bit integer range")
        return value
    if field_type == "decimal":
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            raise QueryError(parameter, f"{field} is a decimal field, {text!r} is not a decimal number") from None
        if not number.is_finite() or abs(number) >= _MONEY_LIMIT:
            raise QueryError(parameter, f"{text!r} is not a finite decimal below 10^{38 - _MONEY_SCALE}")
        return number
    try:
        return parse_datetime(text)
    except ValueError as exc:
        raise QueryError(parameter, str(exc)) from None


def _selection(kind: RecordType, params: _Params, now: datetime) -> Selection:
    """The filter[...] parameters -> a Selection (typed predicates plus created_at bounds)."""
    fields = FIELDS[kind]
    predicates: list[Predicate] = []
    low: datetime | None = None
    high: datetime | None = None

    def narrow(start: datetime | None, end: datetime | None) -> None:
        nonlocal low, high
        if start is not None:
            low = start if low is None else max(low, start)
        if end is not None:
            high = end if high is None else min(high, end)

    for parts, entries in params.filters.items():
        key = entries[0][0]
        field = parts[0]
        rest = list(parts[1:])
        is_array = bool(rest) and rest[-1] == ""
        if is_array:
            rest.pop()
        if len(rest) > 1 or "" in rest:
            raise QueryError(key, "use filter[FIELD], filter[FIELD][] or filter[FIELD][OPERATOR]", CODE_UNKNOWN_PARAMETER)
        op = rest[0] if rest else "eq"
        if not is_array and len(entries) > 1:
            raise QueryError(key, "given more than once: use the array form filter[FIELD][]=A&filter[FIELD][]=B for several values")

        if field == DATE_RANGE:
            if rest or is_array:
                raise QueryError(key, "takes one date literal: filter[date_range]=last_month", CODE_UNKNOWN_OPERATOR)
            try:
                window = resolve_literal(entries[0][1], now=now, tz="UTC", week_start="monday")
            except UsageError as exc:
                raise QueryError(key, str(exc)) from None
            narrow(window.start, window.end)
            continue
        field_type = fields.get(field)
        if field_type is None:
            raise QueryError(key, _unknown_field(kind, field), CODE_UNKNOWN_FIELD)
        if op not in OPERATORS:
            raise QueryError(key, f"unknown operator {op!r}; operators are {', '.join(OPERATORS)}", CODE_UNKNOWN_OPERATOR)
        if op not in _OPS_BY_TYPE[field_type]:
            allowed = ", ".join(_OPS_BY_TYPE[field_type]) or "none"
            raise QueryError(key, f"operator {op!r} does not apply to {field} ({field_type}); it takes: {allowed}", CODE_OPERATOR_NOT_APPLICABLE)
        if is_array and op not in ("eq", "ne"):
            raise QueryError(key, f"the array form takes eq or ne (IN / NOT IN), not {op!r}", CODE_OPERATOR_NOT_APPLICABLE)

        values: list[object] = []
        for entry_key, text in entries:
            if text == NULL:
                if op not in ("eq", "ne"):
                    raise QueryError(entry_key, f"null compares only with eq or ne, not {op!r}")
                values.append(None)
            else:
                values.append(_parse_value(field, field_type, text, entry_key))

        if field == CREATED_AT and len(values) == 1 and values[0] is not None and op != "ne":
            moment: datetime = values[0]  # type: ignore[assignment]
            bounds = {
                "eq": (moment, moment + _ONE_MICROSECOND),
                "gt": (moment + _ONE_MICROSECOND, None),
                "gte": (moment, None),
                "lt": (None, moment),
                "lte": (None, moment + _ONE_MICROSECOND),
            }[op]
            narrow(*bounds)
            continue
        predicates.append(Predicate(field, field_type, op, tuple(values)))
    return Selection(kind, tuple(predicates), low, high)


def _unknown_field(kind: RecordType, field: str) -> str:
    """The detail for an unknown field, with a hint for nested objects."""
    if field in NESTED[kind]:
        children = ", ".join(f"{field}.{child}" for child in NESTED[kind][field])
        return f"{field!r} is an object: filter on {children}"
    return f"unknown field {field!r} for {kind}; fields are {', '.join(sorted(FIELDS[kind]))}, and date_range"


def _sort(kind: RecordType, params: _Params) -> tuple[SortKey, ...]:
    """sort / sort[] -> the complete order, ties broken by id in the first key's direction."""
    if not params.sort:
        return (SortKey(CREATED_AT, True), SortKey(ID, True))
    if len({key for key, _ in params.sort}) > 1:
        raise QueryError("sort", "use either sort=A,B or sort[]=A&sort[]=B, not both", CODE_UNKNOWN_PARAMETER)
    if params.sort[0][0] == "sort" and len(params.sort) > 1:
        raise QueryError("sort", "given more than once: use sort[]=A&sort[]=B for several fields")
    keys: list[SortKey] = []
    for key, value in params.sort:
        for item in value.split(","):
            descending = item.startswith("-")
            field = item[1:] if descending else item
            field_type = FIELDS[kind].get(field)
            if field_type is None or field_type in ("tags", "errors"):
                reason = "is not a scalar field" if field_type else "is not a field"
                raise QueryError(key, f"cannot sort by {item!r}: {field!r} {reason} of {kind}", CODE_UNKNOWN_FIELD)
            if any(k.field == field for k in keys):
                raise QueryError(key, f"{field!r} appears twice in the sort")
            keys.append(SortKey(field, descending))
    if not any(k.field == ID for k in keys):
        keys.append(SortKey(ID, keys[0].descending))
    return tuple(keys)


def parse_listing(kind: RecordType, query_string: str | bytes, now: datetime) -> Listing:
    """A listing's query string at the server's instant `now` -> a Listing; QueryError if bad."""
    params = _Params(parse_pairs(query_string), frozenset({"filter", "sort", "page"}), f"/{kind}")
    number, size = _page(params, MAX_PAGE_SIZE)
    return Listing(_selection(kind, params, now), _sort(kind, params), number, size)


def _names(params: _Params, name: str, allowed: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list parameter (dimensions, metrics) -> validated names."""
    text = params.scalars.get(name)
    if text is None:
        return default
    names = tuple(item.strip() for item in text.split(",") if item.strip())
    for item in names:
        if item not in allowed:
            raise QueryError(name, f"unknown {name[:-1]} {item!r}; valid: {', '.join(allowed)}", CODE_UNKNOWN_FIELD)
    if len(set(names)) != len(names):
        raise QueryError(name, "lists a name twice")
    return names


def parse_usage(query_string: str | bytes, now: datetime) -> Usage:
    """A usage query string at the server's instant `now` -> a Usage; QueryError if bad."""
    params = _Params(
        parse_pairs(query_string), frozenset({"filter", "page", "product", "dimensions", "metrics"}), "/usage"
    )
    product = params.scalars.get("product")
    if product is None:
        raise QueryError("product", f"is required: {' or '.join(USAGE_PRODUCT_KINDS)}")
    kind = USAGE_PRODUCT_KINDS.get(product)
    if kind is None:
        raise QueryError("product", f"unknown product {product!r}; valid: {', '.join(USAGE_PRODUCT_KINDS)}")
    dimensions = _names(params, "dimensions", USAGE_DIMENSIONS[kind], ())
    metrics = _names(params, "metrics", USAGE_METRICS[kind], USAGE_METRICS[kind])
    if not metrics:
        raise QueryError("metrics", f"names no metric; valid: {', '.join(USAGE_METRICS[kind])}")
    number, size = _page(params, MAX_USAGE_PAGE_SIZE)
    return Usage(_selection(kind, params, now), dimensions, metrics, number, size)
