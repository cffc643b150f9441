"""API client stage: one page of decoded records -> a typed polars frame in `api.SCHEMAS`, plus rejects.

Two paths, one result. Nearly every page is clean, so `validate_records` first tries the fast
path (`_clean_frame`): it proves every record clean with C-level passes over whole columns and
builds the frame from one series per lake type, and at the first doubt it gives up. The page
then takes the exact path (`_validate_exactly`): each field gathered into a list and checked
with C-level builtins (`set(map(type, ...))`, set inclusion for enums, `min`/`max` for integer
bounds, one regex pass over a column's joined values for string forms), and record by record
only where a column fails, to name each bad record's first problem. A bad record is set aside
with that reason and its JSON text; the rest is kept. Measured on a freshly decoded sandbox
page of 250 calls: ~2.5 ms the fast path, ~3.2 ms the exact one (bench/RESULTS.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from itertools import chain, compress, repeat
from operator import is_not, itemgetter
from typing import Literal

import numpy as np
import orjson
import polars as pl

from pipelines.dates import Window, parse_datetime
from pipelines.opentact import api

# Forms of the string columns named in `api.FORMATS` ([0-9], not \d: \d is any Unicode digit).
FORM_PATTERNS: dict[str, str] = {
    "uuid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    "e164": r"\+[1-9][0-9]{6,14}",
    "country": r"[A-Z]{2}",
    "calling_code": r"[1-9][0-9]{0,3}",
    "snake_case": r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*",
    "currency": r"[A-Z]{3}",
}
FORM_NAMES: dict[str, str] = {
    "uuid": "a UUID",
    "e164": "an E.164 number",
    "country": "an ISO 3166 alpha-2 country code",
    "calling_code": "a country calling code (digits)",
    "snake_case": "a snake_case string",
    "currency": "an ISO 4217 currency code",
}

# Date-times as `pipelines.dates.parse_datetime` takes them: the reference sheet's forms (...ss.fffZ,
# ...ssZ, ...mmZ, with -00, -0000 or -00:00 for Z) and, being unambiguous, other UTC offsets.
# Up to 9 fractional digits are accepted and truncated to milliseconds; no zone, no instant.
TIMESTAMP_PATTERN = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,9})?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)"
)
# Plain decimal text that fits `api.MONEY` (38 digits, 9 of them decimals) exactly.
MONEY_SCALE = 9
PLAIN_MONEY_PATTERN = rf"-?[0-9]{{1,{38 - MONEY_SCALE}}}(?:\.[0-9]{{1,{MONEY_SCALE}}})?"


class _Form:
    """A value form, checked for a whole column in one C-level regex pass over its joined values."""

    def __init__(self, pattern: str) -> None:
        # None of the forms can match a newline, so values joined by newlines match
        # `(form\n)*form` exactly when each does (the count guards values holding one).
        self.one = re.compile(pattern)
        self._many = re.compile(f"(?:{pattern}\n)*{pattern}")

    def all_match(self, values: list[str]) -> bool:
        if not values:
            return True
        joined = "\n".join(values)
        return joined.count("\n") == len(values) - 1 and self._many.fullmatch(joined) is not None


_FORMS: dict[str, _Form] = {name: _Form(pattern) for name, pattern in FORM_PATTERNS.items()}
_TIMESTAMP_FORM = _Form(TIMESTAMP_PATTERN)
_MONEY_FORM = _Form(PLAIN_MONEY_PATTERN)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record set aside: why, its JSON text, and the request (kind, window, page) it came from."""

    reason: str
    raw_json: str
    kind: api.RecordType
    slice: Window
    page_number: int


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()
_NONE = type(None)

_Shape = Literal["str", "int", "timestamp", "money", "str_list", "struct_list"]
_JSON_TYPES: dict[_Shape, frozenset[type]] = {
    "str": frozenset({str}),
    "timestamp": frozenset({str}),
    "money": frozenset({str}),
    "int": frozenset({int}),  # not bool: type(True) is bool
    "str_list": frozenset({list}),
    "struct_list": frozenset({list}),
}
_TYPE_WORDS: dict[_Shape, str] = {
    "str": "a string",
    "int": "an integer",
    "timestamp": "a date-time string",
    "money": "a decimal string",
    "str_list": "an array of strings",
    "struct_list": "an array of objects",
}


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    path: tuple[str, ...]
    shape: _Shape
    dtype: pl.DataType
    allowed: frozenset[type]
    enum: frozenset[str] | None
    form: str | None
    bounds: tuple[int, int] | None

    @property
    def label(self) -> str:
        return ".".join(self.path)


def _shape(dtype: pl.DataType) -> _Shape:
    if dtype == api.TIMESTAMP:
        return "timestamp"
    if isinstance(dtype, pl.Decimal):
        return "money"
    if dtype.is_integer():
        return "int"
    if dtype == pl.List(pl.String()):
        return "str_list"
    if isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct):
        return "struct_list"
    if dtype == pl.String():
        return "str"
    raise TypeError(f"no validation rule for lake type {dtype}")


def _int_range(dtype: pl.DataType) -> tuple[int, int]:
    bits = {pl.Int32(): 31, pl.Int64(): 63}[dtype]
    return -(2**bits), 2**bits - 1


def _columns(kind: api.RecordType) -> tuple[_Column, ...]:
    nested = {
        f"{parent}_{child}": (parent, child) for parent, children in api.NESTED[kind].items() for child in children
    }
    enums = dict(api.ENUMS[kind])
    enums["record_type"] = frozenset({api.RECORD_TYPE_VALUES[kind]})
    columns = []
    for name, dtype in api.SCHEMAS[kind].items():
        shape = _shape(dtype)
        allowed = _JSON_TYPES[shape] | ({_NONE} if name in api.NULLABLE[kind] else set())
        bounds = api.INT_BOUNDS[kind].get(name, _int_range(dtype)) if shape == "int" else None
        form = api.FORMATS[kind].get(name)
        columns.append(_Column(name, nested.get(name, (name,)), shape, dtype, allowed, enums.get(name), form, bounds))
    return tuple(columns)


_COLUMNS: dict[api.RecordType, tuple[_Column, ...]] = {kind: _columns(kind) for kind in api.RECORD_TYPES}
# The record's own keys: flat columns and the nested objects.
_TOP_KEYS: dict[api.RecordType, tuple[str, ...]] = {
    kind: tuple(dict.fromkeys(c.path[0] for c in columns)) for kind, columns in _COLUMNS.items()
}


def money_text(text: str) -> str | None:
    """Money as the API may send it ("0", "0.0", "1.666E-4") -> plain decimal text; None if not exact in 9 decimals."""
    # Decimal() also reads "NaN", "Infinity", " 1" and "1_000": none of them is money.
    if text.strip() != text or "_" in text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -MONEY_SCALE:
        return None
    plain = format(value, "f")
    return plain if re.fullmatch(PLAIN_MONEY_PATTERN, plain) else None


def _describe(value: object) -> str:
    text = "missing" if value is _MISSING else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Page:
    """Work state of one page's validation: the first reason per bad row."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.reasons: dict[int, str] = {}

    def reject(self, row: int, reason: str) -> None:
        self.reasons.setdefault(row, reason)


def _gather(rows: list[dict], keys: tuple[str, ...]) -> dict[str, list[object]]:
    """Each key's values across the rows, `_MISSING` where a row lacks the key."""
    if len(keys) > 1 and rows:
        try:
            # One C-level itemgetter call per row and a transpose: the common, complete page.
            return dict(zip(keys, map(list, zip(*map(itemgetter(*keys), rows)))))
        except KeyError:
            pass
    return {key: [row.get(key, _MISSING) for row in rows] for key in keys}


def _check_types(page: _Page, column: _Column, values: list[object]) -> None:
    """Flag values of the wrong JSON type (or missing) and blank them so later checks skip them."""
    if set(map(type, values)) <= column.allowed:
        return
    for row, value in enumerate(values):
        if type(value) not in column.allowed:
            if value is _MISSING:
                page.reject(row, f"missing field '{column.label}'")
            elif value is None:
                page.reject(row, f"field '{column.label}' is null")
            else:
                page.reject(row, f"field '{column.label}' must be {_TYPE_WORDS[column.shape]}, got {_describe(value)}")
            values[row] = None


def _flag(page: _Page, values: list[object], bad: object, reason: str) -> None:
    """Reject (and blank) every non-null value for which `bad(value)` is true."""
    for row, value in enumerate(values):
        if value is not None and bad(value):  # type: ignore[operator]
            page.reject(row, f"{reason}: {_describe(value)}")
            values[row] = None


def _check_values(page: _Page, column: _Column, values: list[object]) -> None:
    """Enums, forms, integer bounds and array elements: a C-level pass first, row by row on failure."""
    present = [v for v in values if v is not None] if None in values else values
    if column.enum is not None:
        if not set(present) <= column.enum:
            allowed = ", ".join(sorted(column.enum))
            _flag(page, values, lambda v: v not in column.enum, f"field '{column.label}' is not one of {allowed}")
    elif column.form is not None:
        form = _FORMS[column.form]
        if not form.all_match(present):  # type: ignore[arg-type]
            _flag(page, values, lambda v: not form.one.fullmatch(v), f"field '{column.label}' is not {FORM_NAMES[column.form]}")
    elif column.bounds is not None:
        low, high = column.bounds
        if present and (min(present) < low or max(present) > high):  # type: ignore[type-var, operator]
            _flag(page, values, lambda v: not low <= v <= high, f"field '{column.label}' is outside [{low}, {high}]")
    elif column.shape == "timestamp":
        # The API's own form (...ss.fffZ) is told by length and punctuation alone, its digits
        # by the parser; any other form goes through the full pattern.
        canonical = (
            set(map(len, present)) <= {24}
            and {v[10] + v[19] + v[23] for v in present} <= {"T.Z"}  # type: ignore[index]
            and max(map(_SECONDS_TENS, present), default="0") <= "5"  # the parser takes 23:59:60
        )
        if not canonical and not _TIMESTAMP_FORM.all_match(present):  # type: ignore[arg-type]
            _flag(page, values, lambda v: not _TIMESTAMP_FORM.one.fullmatch(v), f"field '{column.label}' {_NOT_A_DATE_TIME}")
    elif column.shape == "money":
        joined = "\n".join(present)  # type: ignore[arg-type]
        if "E" in joined or "e" in joined:
            # Exponent forms are rare: make them plain first.
            for row, value in enumerate(values):
                if value is not None and ("E" in value or "e" in value):  # type: ignore[operator]
                    values[row] = money_text(value) or value  # type: ignore[arg-type]
            present = [v for v in values if v is not None]
        if not _MONEY_FORM.all_match(present):  # type: ignore[arg-type]
            _flag(page, values, lambda v: not _MONEY_FORM.one.fullmatch(v), f"field '{column.label}' {_NOT_MONEY}")
    elif column.shape == "str_list":
        if set(map(type, chain.from_iterable(present))) - {str}:  # type: ignore[arg-type]
            _flag(page, values, lambda v: set(map(type, v)) - {str}, f"field '{column.label}' must hold only strings")
    elif column.shape == "struct_list":
        _check_struct_lists(page, column, values)


_NOT_A_DATE_TIME = "is not a date-time in an accepted form"
_SECONDS_TENS = itemgetter(17)
_NOT_MONEY = f"is not an exact decimal with at most {MONEY_SCALE} decimals"


def _check_struct_lists(page: _Page, column: _Column, values: list[object]) -> None:
    fields = tuple(column.dtype.inner.to_schema())  # type: ignore[attr-defined]
    for row, value in enumerate(values):
        if not value:
            continue
        items = value  # type: ignore[assignment]
        if any(type(item) is not dict or any(type(item.get(f)) is not str for f in fields) for item in items):
            page.reject(row, f"field '{column.label}' must hold objects with string {', '.join(fields)}: {_describe(value)}")
            values[row] = None
        elif any(len(item) != len(fields) for item in items):
            values[row] = [{f: item[f] for f in fields} for item in items]  # extra keys are not lake columns


def _nested_parents(page: _Page, top: dict[str, list[object]], kind: api.RecordType) -> dict[str, list[dict]]:
    parents: dict[str, list[dict]] = {}
    for parent in api.NESTED[kind]:
        objects = top[parent]
        if set(map(type, objects)) != {dict}:
            for row, value in enumerate(objects):
                if value is _MISSING:
                    page.reject(row, f"missing field '{parent}'")
                elif type(value) is not dict:
                    page.reject(row, f"field '{parent}' must be an object, got {_describe(value)}")
                if type(value) is not dict:
                    objects[row] = {}
        parents[parent] = objects  # type: ignore[assignment]
    return parents


def _stack(columns: list[_Column], data: dict[str, list[object]], dtype: pl.DataType) -> pl.Series:
    # One conversion for many columns: building a polars series has a fixed cost that
    # dwarfs the per-value cost at 250 rows.
    return pl.Series(list(chain.from_iterable(data[c.name] for c in columns)), dtype=dtype)


def _unstack(stacked: pl.Series, columns: list[_Column], size: int) -> dict[str, pl.Series]:
    return {c.name: stacked.slice(i * size, size).alias(c.name) for i, c in enumerate(columns)}


def _parse_timestamps(
    page: _Page, columns: list[_Column], data: dict[str, list[object]], window: Window
) -> dict[str, pl.Series]:
    """All timestamp columns (already in form) as one series through polars' fast ISO parser."""
    text = _stack(columns, data, pl.String())
    # Eager, format-inferring parsing takes polars' fastest path (and reads any offset).
    parsed = text.str.to_datetime(time_unit="ms", strict=False)
    if parsed.dtype.time_zone is None:  # type: ignore[attr-defined]
        parsed = parsed.dt.replace_time_zone("UTC")  # every value null: no offset to infer from
    if parsed.null_count() != text.null_count():
        # Inference settles on one format per series: values it missed go one by one, and
        # what still fails (a 30th of February) is rejected.
        missed = (text.is_not_null() & parsed.is_null()).arg_true()
        retried = _parse_each(text.gather(missed))
        parsed = parsed.scatter(missed, retried)
        for index in missed.gather(retried.is_null().arg_true()).to_list():
            name, row = columns[index // page.size].name, index % page.size
            page.reject(row, f"field '{name}' {_NOT_A_DATE_TIME}: {_describe(data[name][row])}")
    typed = _unstack(parsed, columns, page.size)
    # A record outside the window it was asked for would land in two slices, or in none.
    created = typed[api.CREATED_AT]
    if created.len() > created.null_count() and (created.min() < window.start or created.max() >= window.end):  # type: ignore[operator]
        for row in ((created < window.start) | (created >= window.end)).arg_true().to_list():
            page.reject(row, f"created_at {data[api.CREATED_AT][row]!r} is outside the requested window {window}")
    return typed


def _parse_each(text: pl.Series) -> pl.Series:
    """The slow path: date-time text -> UTC datetimes (ms) one value at a time, null where invalid."""
    moments: list[datetime | None] = []
    for value in text.to_list():
        try:
            moment = parse_datetime(value)
        except ValueError:
            moments.append(None)
            continue
        moments.append(moment.replace(microsecond=moment.microsecond // 1000 * 1000))
    return pl.Series(text.name, moments, dtype=api.TIMESTAMP)


def _parse_money(page: _Page, columns: list[_Column], data: dict[str, list[object]]) -> dict[str, pl.Series]:
    """All money columns (already plain decimal text of at most 9 decimals) as one exact cast."""
    return _unstack(_stack(columns, data, pl.String()).cast(api.MONEY), columns, page.size)


def _typed_frame(page: _Page, kind: api.RecordType, data: dict[str, list[object]], window: Window) -> pl.DataFrame:
    """The checked Python values -> a frame in `api.SCHEMAS[kind]` (bad rows still in it)."""
    columns = _COLUMNS[kind]
    by_shape: dict[_Shape, list[_Column]] = {}
    for column in columns:
        by_shape.setdefault(column.shape, []).append(column)
    series = _parse_timestamps(page, by_shape["timestamp"], data, window)
    series |= _parse_money(page, by_shape["money"], data)
    series |= _unstack(_stack(by_shape["str"], data, pl.String()), by_shape["str"], page.size)
    ints = _unstack(_stack(by_shape["int"], data, pl.Int64()), by_shape["int"], page.size)
    series |= {c.name: ints[c.name].cast(c.dtype) for c in by_shape["int"]}
    for column in by_shape.get("str_list", []) + by_shape.get("struct_list", []):
        # Polars builds nested values from Python objects one element at a time; decoding
        # their JSON text is an order of magnitude faster.
        text = pl.Series(column.name, [orjson.dumps(v).decode() for v in data[column.name]], dtype=pl.String())
        series[column.name] = text.str.json_decode(column.dtype)
    return pl.DataFrame([series[c.name] for c in columns])



# --- The fast path: a page whose every record is clean -------------------------------------
#
# It never rejects: at the first doubt it returns None and the page takes the exact path,
# which names every bad record. What it accepts, the exact path accepts with the same values
# (tests/opentact/test_records.py runs both on every page it validates). Where it saves:
# one series per lake type rather than per column group and shape, forms checked on a
# column's distinct values, date-times proved by position and parsed by numpy (polars'
# format-inferring parser was the exact path's largest single cost), no per-record work.

_ONLY: dict[type, frozenset[type]] = {t: frozenset({t}) for t in (str, int, dict, list)}
_STR_OR_NONE = frozenset({str, _NONE})
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
# The API's own date-time form, `YYYY-MM-DDThh:mm:ss.fffZ`, by position: punctuation at
# these offsets, digits everywhere else.
_STAMP_WIDTH = 24
_STAMP_MARKS: tuple[tuple[int, str], ...] = ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "."), (23, "Z"))
_STAMP_PUNCTUATION = "".join(mark for _, mark in _STAMP_MARKS).encode()
_YEAR_FIRST_DIGIT, _SECONDS_TENS_DIGIT = 0, 17
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"
_UUID_WIDTH, _UUID_DASHES = 36, (8, 13, 18, 23)
_NAT = np.datetime64("NaT", "ms")
# Joins the strings of an array into one text for polars to split: a control character
# (a page whose strings hold it takes the JSON route instead).
_LIST_SEPARATOR = "\x1f"


def _distinct_match(form: _Form) -> Callable[[list[str]], bool]:
    """A form's check of a column, run on its distinct values (countries, causes, trunks repeat)."""
    return lambda values: form.all_match(list(set(values)))


def _all_uuids(values: list[str]) -> bool:
    """Whether every value is a UUID: 36 ASCII characters, dashes at 8, 13, 18, 23, hex digits elsewhere."""
    count = len(values)
    joined = "".join(values)
    if set(map(len, values)) != {_UUID_WIDTH} or not joined.isascii():
        return False
    if any(joined[at::_UUID_WIDTH] != "-" * count for at in _UUID_DASHES):
        return False
    return joined.encode().translate(None, _HEX) == b"-" * (len(_UUID_DASHES) * count)


# Forms with a faster whole-column check than the joined regex (most values are unique).
_FORM_CHECKS: dict[str, Callable[[list[str]], bool]] = {"uuid": _all_uuids}


def _getter(keys: tuple[str, ...]) -> Callable[[dict], tuple[object, ...]]:
    """A dict -> its values at `keys`, always as a tuple (KeyError if one is missing)."""
    if len(keys) == 1:
        key = keys[0]
        return lambda record: (record[key],)
    return itemgetter(*keys)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class _Plan:
    """One record type's columns, grouped the way the fast path checks and converts them."""

    top_keys: tuple[str, ...]
    top: Callable[[dict], tuple[object, ...]]
    # (parent key, a getter of its children, the lake columns they become)
    nested: tuple[tuple[str, Callable[[dict], tuple[object, ...]], tuple[str, ...]], ...]
    nullable: tuple[str, ...]  # string-typed columns that may be null
    enums: tuple[_Column, ...]
    bounds: tuple[_Column, ...]
    # Each form's check of a column's values, and the columns that take the form.
    forms: tuple[tuple[Callable[[list[str]], bool], tuple[str, ...]], ...]
    strings: tuple[str, ...]
    timestamps: tuple[str, ...]
    money: tuple[str, ...]
    ints: tuple[tuple[pl.DataType, tuple[str, ...]], ...]  # by lake type
    nested_lists: tuple[_Column, ...]
    names: tuple[str, ...]  # the lake schema's column order


def _plan(kind: api.RecordType) -> _Plan:
    columns = _COLUMNS[kind]

    def named(*shapes: _Shape) -> tuple[str, ...]:
        return tuple(c.name for c in columns if c.shape in shapes)

    typed = [c for c in columns if c.shape in ("str", "timestamp", "money")]
    forms: dict[str, list[str]] = {}
    ints: dict[pl.DataType, list[str]] = {}
    for column in columns:
        if column.form is not None:
            forms.setdefault(column.form, []).append(column.name)
        if column.shape == "int":
            ints.setdefault(column.dtype, []).append(column.name)
    return _Plan(
        top_keys=_TOP_KEYS[kind],
        top=_getter(_TOP_KEYS[kind]),
        nested=tuple(
            (parent, _getter(children), tuple(f"{parent}_{child}" for child in children))
            for parent, children in api.NESTED[kind].items()
        ),
        nullable=tuple(c.name for c in typed if _NONE in c.allowed),
        enums=tuple(c for c in columns if c.enum is not None),
        bounds=tuple(c for c in columns if c.bounds is not None),
        forms=tuple((_FORM_CHECKS.get(form, _distinct_match(_FORMS[form])), tuple(names)) for form, names in forms.items()),
        strings=named("str"),
        timestamps=named("timestamp"),
        money=named("money"),
        ints=tuple((dtype, tuple(names)) for dtype, names in ints.items()),
        nested_lists=tuple(c for c in columns if c.shape in ("str_list", "struct_list")),
        names=tuple(c.name for c in columns),
    )


_PLANS: dict[api.RecordType, _Plan] = {kind: _plan(kind) for kind in api.RECORD_TYPES}

_Columns = dict[str, tuple[object, ...]]


def _clean_frame(kind: api.RecordType, rows: Sequence[object], window: Window) -> pl.DataFrame | None:
    """A page of decoded records -> its frame in `api.SCHEMAS[kind]` if every record is clean, else None."""
    plan = _PLANS[kind]
    size = len(rows)
    if not size:
        return None
    try:
        # One C-level itemgetter call per record, then a transpose: the page as columns.
        values: _Columns = dict(zip(plan.top_keys, zip(*map(plan.top, rows))))
        for parent, children, names in plan.nested:
            if set(map(type, values[parent])) != _ONLY[dict]:
                return None
            values.update(zip(names, zip(*map(children, values[parent]))))  # type: ignore[arg-type]
        if not (_clean_types(plan, values) and _clean_values(plan, values)):
            return None
        stamps = _clean_stamps(plan, values, size, window)
        money = _clean_money(plan, values)
        if stamps is None or money is None:
            return None
        return _assemble(plan, values, stamps, money, size)
    except KeyError:  # a record lacks a key
        return None
    except TypeError:  # a record that is not an object, or a value of the wrong type
        return None


def _clean_types(plan: _Plan, values: _Columns) -> bool:
    """Whether the nullable, integer and array columns hold their JSON types.

    Required string columns are checked on the way: joining them (forms, date-times, money)
    raises TypeError, enums hold only strings, and polars refuses anything else when it
    builds the string series (`_assemble`).
    """
    if not all(set(map(type, values[name])) <= _STR_OR_NONE for name in plan.nullable):
        return False
    for _, names in plan.ints:  # bool is its own type: True is not an integer here
        if set(map(type, chain.from_iterable(values[name] for name in names))) != _ONLY[int]:
            return False
    for column in plan.nested_lists:
        if set(map(type, values[column.name])) != _ONLY[list]:
            return False
        items = list(chain.from_iterable(values[column.name]))  # type: ignore[arg-type]
        if column.shape == "str_list" or not items:
            if not set(map(type, items)) <= _ONLY[str]:
                return False
            continue
        # Objects with exactly the lake's fields: the exact path drops any others.
        fields = tuple(column.dtype.inner.to_schema())  # type: ignore[attr-defined]
        if set(map(type, items)) != _ONLY[dict] or set(map(len, items)) != {len(fields)}:
            return False
        try:
            parts = list(zip(*map(_getter(fields), items)))
        except KeyError:
            return False
        if set(map(type, chain.from_iterable(parts))) != _ONLY[str]:
            return False
    return True


def _clean_values(plan: _Plan, values: _Columns) -> bool:
    """Whether every enum, bounded integer and formed string is in range (types already checked)."""
    for column in plan.enums:
        if not set(values[column.name]) <= column.enum:  # type: ignore[operator]
            return False
    for column in plan.bounds:
        low, high = column.bounds  # type: ignore[misc]
        if min(values[column.name]) < low or max(values[column.name]) > high:  # type: ignore[type-var, operator]
            return False
    for check, names in plan.forms:
        if not check(list(chain.from_iterable(values[name] for name in names))):  # type: ignore[arg-type]
            return False
    return True


def _clean_stamps(plan: _Plan, values: _Columns, size: int, window: Window) -> np.ndarray | None:
    """Timestamp columns, all in the API's `...ss.fffZ` form -> one stacked datetime64[ms] array (NaT for null); else None.

    The form is proved on the columns joined into one string (each value 24 characters,
    punctuation by position, digits at every other position); numpy's ISO parser then
    refuses impossible dates and times (a 30th of February, hour 24).
    """
    present: list[tuple[object, ...] | list[object]] = []
    kept: dict[int, list[bool]] = {}
    for index, name in enumerate(plan.timestamps):
        column = values[name]
        if name in plan.nullable and _NONE in set(map(type, column)):
            kept[index] = list(map(is_not, column, repeat(None)))
            column = list(compress(column, kept[index]))
        present.append(column)
    texts: list[str] = list(chain.from_iterable(present))  # type: ignore[arg-type]
    count = len(texts)
    if set(map(len, texts)) - {_STAMP_WIDTH}:
        return None
    joined = "".join(texts)
    if not joined.isascii() or any(joined[at::_STAMP_WIDTH] != mark * count for at, mark in _STAMP_MARKS):
        return None
    # With every mark where it belongs, only the digits may be left once they are removed.
    if joined.encode().translate(None, _DIGITS) != _STAMP_PUNCTUATION * count:
        return None
    # Years from 1000 (as Python's datetime reads them); seconds below 60 (no leap seconds).
    if min(joined[_YEAR_FIRST_DIGIT::_STAMP_WIDTH], default="1") < "1":
        return None
    if max(joined[_SECONDS_TENS_DIGIT::_STAMP_WIDTH], default="0") > "5":
        return None
    try:
        parsed = np.frombuffer(joined.encode(), dtype=f"S{_STAMP_WIDTH}").astype(f"S{_STAMP_WIDTH - 1}").astype("datetime64[ms]")
    except ValueError:
        return None
    stacked = np.empty(size * len(plan.timestamps), dtype="datetime64[ms]")
    offset = 0
    for index, column in enumerate(present):
        chunk = parsed[offset : offset + len(column)]
        offset += len(column)
        target = stacked[index * size : (index + 1) * size]
        if index in kept:
            target[:] = _NAT
            target[np.flatnonzero(kept[index])] = chunk
        else:
            target[:] = chunk
    # A record outside the window it was asked for would land in two slices, or in none.
    created = stacked[plan.timestamps.index(api.CREATED_AT) * size :][:size].view(np.int64) * 1000
    if created.min() < (window.start - _EPOCH) // _MICROSECOND or created.max() >= (window.end - _EPOCH) // _MICROSECOND:
        return None
    return stacked


def _clean_money(plan: _Plan, values: _Columns) -> list[str] | None:
    """Money columns stacked as plain decimal text ("1.666E-4" -> "0.0001666"); None if one is not exact in 9 decimals."""
    texts: list[str] = list(chain.from_iterable(values[name] for name in plan.money))  # type: ignore[arg-type]
    joined = "\n".join(texts)
    if "E" in joined or "e" in joined:  # exponent forms: rare, and made plain one by one
        for row, text in enumerate(texts):
            if "E" in text or "e" in text:
                plain = money_text(text)
                if plain is None:
                    return None
                texts[row] = plain
    return texts if _MONEY_FORM.all_match(list(set(texts))) else None


def _split(stacked: pl.Series, names: Sequence[str], size: int) -> dict[str, pl.Series]:
    """A series of columns stacked end to end -> each column, named (zero-copy slices)."""
    return {name: stacked.slice(index * size, size).alias(name) for index, name in enumerate(names)}


def _assemble(plan: _Plan, values: _Columns, stamps: np.ndarray, money: list[str], size: int) -> pl.DataFrame | None:
    """Checked columns -> the typed frame: one series per lake type, sliced into columns.

    None if a string column holds a null; TypeError if it holds another type.
    """
    strings = pl.Series(list(chain.from_iterable(values[name] for name in plan.strings)), dtype=pl.String(), strict=True)
    if strings.null_count():
        return None
    series = _split(strings, plan.strings, size)
    series |= _split(pl.Series(money, dtype=pl.String()).cast(api.MONEY), plan.money, size)
    series |= _split(pl.Series(values=stamps, dtype=api.TIMESTAMP), plan.timestamps, size)
    for dtype, names in plan.ints:  # values within bounds, so they fit their lake type
        series |= _split(pl.Series(list(chain.from_iterable(values[name] for name in names)), dtype=dtype), names, size)
    for column in plan.nested_lists:
        series[column.name] = _nested_column(column, values[column.name])  # type: ignore[arg-type]
    return pl.DataFrame([series[name] for name in plan.names])


def _nested_column(column: _Column, lists: tuple[list, ...]) -> pl.Series:
    """A column of arrays (of strings, or of objects with the lake's fields) -> its polars series.

    Polars builds nested values from Python objects one element at a time (~2 ms a page);
    arrays of strings go in as one text each, every string led by a separator no string
    holds, and come out split with the empty lead dropped (~0.15 ms): `[]` is "", `[""]` is
    one separator, so every array survives. Anything else goes through one JSON text for
    the whole column (~0.3 ms).
    """
    if column.shape == "str_list" and _LIST_SEPARATOR not in "".join(chain.from_iterable(lists)):
        texts = [_LIST_SEPARATOR + _LIST_SEPARATOR.join(items) if items else "" for items in lists]
        split = pl.col(column.name).str.split(_LIST_SEPARATOR).list.slice(1)
        return pl.DataFrame([pl.Series(column.name, texts, dtype=pl.String())]).select(split).to_series()
    return _decoded_column(column, lists)


def _decoded_column(column: _Column, lists: tuple[list, ...]) -> pl.Series:
    """A column of arrays -> its polars series, through one JSON text."""
    text = orjson.dumps(lists).decode()
    nested = pl.lit(text).str.json_decode(pl.List(column.dtype)).explode().alias(column.name)
    return pl.select(nested).to_series()


def validate_records(
    kind: api.RecordType, records: Sequence[object], window: Window, page_number: int
) -> tuple[pl.DataFrame, list[Rejected]]:
    """A page's decoded records -> (valid records in `api.SCHEMAS[kind]`, rejects with reasons).

    The records are values as a JSON decoder (orjson) gives them: dict, list, str, int,
    float, bool and None.
    """
    frame = _clean_frame(kind, records, window)
    if frame is not None:
        return frame, []
    return _validate_exactly(kind, records, window, page_number)


def _validate_exactly(
    kind: api.RecordType, records: Sequence[object], window: Window, page_number: int
) -> tuple[pl.DataFrame, list[Rejected]]:
    """Any page -> (valid records, rejects): column-wise checks, then record by record where one fails."""
    rows: list[dict] = list(records)  # type: ignore[arg-type]
    page = _Page(len(rows))
    if set(map(type, rows)) - {dict}:
        for row, record in enumerate(rows):
            if type(record) is not dict:
                page.reject(row, f"record is not a JSON object: {_describe(record)}")
                rows[row] = {}
    gathered = _gather(rows, _TOP_KEYS[kind])
    for parent, objects in _nested_parents(page, gathered, kind).items():
        for child, values in _gather(objects, api.NESTED[kind][parent]).items():
            gathered[f"{parent}.{child}"] = values
    data: dict[str, list[object]] = {}
    for column in _COLUMNS[kind]:
        values = gathered[column.label]
        _check_types(page, column, values)
        _check_values(page, column, values)
        data[column.name] = values
    frame = _typed_frame(page, kind, data, window)
    if page.reasons:
        frame = frame.filter(pl.Series([row not in page.reasons for row in range(page.size)], dtype=pl.Boolean()))
    rejects = [
        Rejected(reason, orjson.dumps(records[row]).decode(), kind, window, page_number)
        for row, reason in sorted(page.reasons.items())
    ]
    return frame, rejects


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def usage_frame(kind: api.RecordType, rows: Sequence[object], dimensions: Sequence[str]) -> pl.DataFrame:
    """Usage rows of one product -> a frame in `api.USAGE_SCHEMA`; ValueError naming the first bad row.

    Usage is the platform's own aggregate, a few thousand rows at most: checked row by row,
    and one bad row fails the whole read (reconciling against part of it would mislead).
    """
    metrics = api.USAGE_METRICS[kind]
    columns: dict[str, list[object]] = {name: [] for name in api.USAGE_SCHEMA}
    for number, row in enumerate(rows, start=1):
        if type(row) is not dict:
            raise ValueError(f"usage row {number} is not a JSON object: {_describe(row)}")
        for name in api.USAGE_SCHEMA:
            value = row.get(name)
            if name == "product":
                value = api.USAGE_PRODUCTS[kind]
            elif name not in dimensions and name not in metrics:
                value = None
            elif name == "date":
                if type(value) is not str or not _DATE.fullmatch(value):
                    raise ValueError(f"usage row {number}: date {_describe(value)} is not YYYY-MM-DD")
                value = date.fromisoformat(value)
            elif name == "cost":
                plain = money_text(value) if type(value) is str else None
                if plain is None:
                    raise ValueError(f"usage row {number}: cost {_describe(value)} is not an exact decimal string")
                value = Decimal(plain)
            elif name in metrics:
                if type(value) is not int or value < 0:
                    raise ValueError(f"usage row {number}: {name} {_describe(value)} is not a non-negative integer")
            elif type(value) is not str:
                raise ValueError(f"usage row {number}: {name} {_describe(value)} is not a string")
            columns[name].append(value)
    return pl.DataFrame(columns, schema=api.USAGE_SCHEMA)
