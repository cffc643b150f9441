"""API client stage: one page of decoded records -> a typed polars frame in `api.LAKE_SCHEMAS`, plus rejects.

One set of rules, derived from `api`'s schema tables, each checked on whole columns at once;
only a column that fails is read record by record, to name each bad record's first problem.
A bad record is set aside with that reason and its JSON text; the rest is kept. Fields the
schema does not name are kept too, in the record's `api.EXTRAS` JSON object.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from itertools import chain, compress, repeat
from operator import is_not, itemgetter
from typing import Any, Literal

import numpy as np
import orjson
import polars as pl

from pipelines.dates import Window, parse_datetime
from pipelines.opentact import api
from pipelines.opentact.slices import floor_ms


class _Form:
    """A value form: `one` matches a value, `all_match` a whole column's distinct values in one C-level pass."""

    def __init__(self, pattern: str, name: str = "") -> None:
        # None of the forms can match a newline, so values joined by newlines match
        # `(form\n)*form` exactly when each does (the count guards values holding one).
        self.one = re.compile(pattern)
        self._many = re.compile(f"(?:{pattern}\n)*{pattern}")
        self.name = name

    def all_match(self, values: Sequence[str]) -> bool:
        distinct = list(set(values))  # countries, causes and trunks repeat
        if not distinct:
            return True
        joined = "\n".join(distinct)
        return joined.count("\n") == len(distinct) - 1 and self._many.fullmatch(joined) is not None


class _UuidForm(_Form):
    """UUIDs are nearly all distinct: proved by position (dashes at 8, 13, 18, 23, hex digits elsewhere)."""

    def all_match(self, values: Sequence[str]) -> bool:
        joined = "".join(values)
        if set(map(len, values)) - {36} or not joined.isascii():
            return False
        if any(joined[at::36] != "-" * len(values) for at in (8, 13, 18, 23)):
            return False
        return joined.encode().translate(None, b"0123456789abcdefABCDEF") == b"----" * len(values)


# The forms named in `api.FORMATS` ([0-9], not \d: \d is any Unicode digit).
_FORMS: dict[str, _Form] = {
    "uuid": _UuidForm(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "a UUID"),
    "e164": _Form(r"\+[1-9][0-9]{6,14}", "an E.164 number"),
    "country": _Form(r"[A-Z]{2}", "an ISO 3166 alpha-2 country code"),
    "calling_code": _Form(r"[1-9][0-9]{0,3}", "a country calling code (digits)"),
    "snake_case": _Form(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*", "a snake_case string"),
    "currency": _Form(r"[A-Z]{3}", "an ISO 4217 currency code"),
}
# Date-times as `pipelines.dates.parse_datetime` takes them: the reference sheet's forms and, being
# unambiguous, other UTC offsets; up to 9 fractional digits; no year 0 (datetime starts at year 1).
_TIMESTAMP_FORM = _Form(
    r"(?!0000)[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,9})?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)"
)
# Plain decimal text that fits `api.MONEY` exactly.
MONEY_SCALE = api.MONEY.scale
_MONEY_FORM = _Form(rf"-?[0-9]{{1,{api.MONEY.precision - MONEY_SCALE}}}(?:\.[0-9]{{1,{MONEY_SCALE}}})?")


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record set aside: why, its JSON text, and the request (kind, window, page) it came from."""

    reason: str
    raw_json: str
    kind: api.RecordType
    slice: Window
    page_number: int


_MISSING = object()  # a key absent from a record
_STR = frozenset({str})

_Shape = Literal["str", "int", "timestamp", "money", "str_list", "struct_list"]
# Each shape's JSON type (int is not bool: type(True) is bool), and its name in a reason.
_JSON_TYPES: dict[_Shape, tuple[type, str]] = {
    "str": (str, "a string"),
    "int": (int, "an integer"),
    "timestamp": (str, "a date-time string"),
    "money": (str, "a decimal string"),
    "str_list": (list, "an array of strings"),
    "struct_list": (list, "an array of objects"),
}


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


# A record is rejected for its first problem in this order, whatever order the checks run in:
# not an object, a nested object missing, then column by column in schema order (its JSON type,
# then its value), then a date-time that does not exist, then a created_at outside the window.
_NOT_OBJECT, _NO_PARENT, _FIRST_COLUMN = 0, 1, 2
_NOT_A_DATE_TIME = "is not a date-time in an accepted form"
_NOT_MONEY = f"is not an exact decimal with at most {MONEY_SCALE} decimals"


@dataclass(frozen=True, slots=True)
class _Column:
    """A lake column and its rules; `rank` orders its problems (type at `rank`, value at `rank + 1`)."""

    name: str
    label: str  # as the API spells it: `connection.id`
    shape: _Shape
    dtype: pl.DataType
    allowed: frozenset[type]
    nullable: bool
    rank: int
    enum: frozenset[str] | None
    form: _Form | None
    bounds: tuple[int, int] | None  # inclusive, of an integer column


@dataclass(frozen=True, slots=True)
class _Rules:
    """One record type's columns, grouped the way they are checked and built."""

    columns: tuple[_Column, ...]
    top_keys: tuple[str, ...]
    by_shape: dict[_Shape, tuple[_Column, ...]]
    ints: tuple[tuple[pl.DataType, tuple[_Column, ...]], ...]  # by lake type
    unparsed_rank: int
    outside_rank: int


def _rules(kind: api.RecordType) -> _Rules:
    nested = api.NESTED[kind].items()
    flat = {f"{parent}_{child}": f"{parent}.{child}" for parent, children in nested for child in children}
    enums = {**api.ENUMS[kind], "record_type": frozenset({api.RECORD_TYPE_VALUES[kind]})}
    columns = []
    for index, (name, dtype) in enumerate(api.SCHEMAS[kind].items()):
        shape = _shape(dtype)
        nullable = name in api.NULLABLE[kind]
        bounds = None
        if shape == "int":
            bits = {pl.Int32(): 31, pl.Int64(): 63}[dtype]
            bounds = api.INT_BOUNDS[kind].get(name, (-(2**bits), 2**bits - 1))
        columns.append(
            _Column(
                name=name,
                label=flat.get(name, name),
                shape=shape,
                dtype=dtype,
                allowed=frozenset({_JSON_TYPES[shape][0], *([type(None)] if nullable else [])}),
                nullable=nullable,
                rank=_FIRST_COLUMN + 2 * index,
                enum=enums.get(name),
                form=_FORMS[api.FORMATS[kind][name]] if name in api.FORMATS[kind] else None,
                bounds=bounds,
            )
        )
    by_shape: dict[_Shape, tuple[_Column, ...]] = {
        shape: tuple(c for c in columns if c.shape == shape) for shape in _JSON_TYPES
    }
    ints: dict[pl.DataType, tuple[_Column, ...]] = {}
    for column in by_shape["int"]:
        ints[column.dtype] = (*ints.get(column.dtype, ()), column)
    last = _FIRST_COLUMN + 2 * len(columns)
    return _Rules(
        columns=tuple(columns),
        top_keys=tuple(dict.fromkeys(c.label.split(".")[0] for c in columns)),
        by_shape=by_shape,
        ints=tuple(ints.items()),
        unparsed_rank=last,
        outside_rank=last + len(columns),
    )


_RULES: dict[api.RecordType, _Rules] = {kind: _rules(kind) for kind in api.RECORD_TYPES}


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
    return plain if _MONEY_FORM.one.fullmatch(plain) else None


def _describe(value: object) -> str:
    text = "missing" if value is _MISSING else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Page:
    """One page's validation under way: its records' values by column, each bad record's first problem,
    and the fields each record holds that its schema does not name (`extras`, None while none has any)."""

    def __init__(self, kind: api.RecordType, records: Sequence[object]) -> None:
        self.size = len(records)
        self.problems: dict[int, tuple[int, str]] = {}
        self.changed: set[str] = set()
        self.extras: list[dict[str, Any] | None] | None = None
        rows: list[Any] = list(records)
        if set(map(type, rows)) - {dict}:
            for row, record in enumerate(rows):
                if type(record) is not dict:
                    self.reject(row, _NOT_OBJECT, f"record is not a JSON object: {_describe(record)}")
                    rows[row] = {}
        self.values = self._gathered(rows, _RULES[kind].top_keys, None)
        for parent, children in api.NESTED[kind].items():
            objects = list(self.values.pop(parent))
            if set(map(type, objects)) != {dict}:
                for row, value in enumerate(objects):
                    if type(value) is not dict:
                        reason = f"field '{parent}' must be an object, got {_describe(value)}"
                        self.reject(row, _NO_PARENT, f"missing field '{parent}'" if value is _MISSING else reason)
                        objects[row] = {}
            for child, values in self._gathered(objects, children, parent).items():
                self.values[f"{parent}_{child}"] = values

    def _gathered(self, rows: list[Any], keys: tuple[str, ...], parent: str | None) -> dict[str, Sequence[Any]]:
        """`_gather`, keeping each row's keys not among `keys` as its extras (under `parent`, if given)."""
        values, complete = _gather(rows, keys)
        # Every row holding every key, and no more keys than that, holds no other key: the
        # common page is proved clean without looking at any key.
        if complete and set(map(len, rows)) <= {len(keys)}:
            return values
        known = frozenset(keys)
        for row, record in enumerate(rows):
            if len(record) != len(known) or not known.issuperset(record):
                unknown = {key: value for key, value in record.items() if key not in known}
                if unknown:
                    self.keep(row, parent, unknown)
        return values

    def keep(self, row: int, parent: str | None, unknown: dict[str, Any] | list[Any]) -> None:
        """Keep a record's fields that its schema does not name: top-level ones, or those inside `parent`."""
        if self.extras is None:
            self.extras = [None] * self.size
        kept = self.extras[row] = self.extras[row] or {}
        if parent is None:
            kept.update(unknown)
        else:
            kept[parent] = unknown

    def extras_column(self) -> pl.Series:
        """The records' extras -> the `api.EXTRAS` column: one JSON object each (keys sorted), null where none."""
        if self.extras is None:
            return _no_extras(self.size)
        texts = [None if kept is None else orjson.dumps(kept, option=orjson.OPT_SORT_KEYS).decode() for kept in self.extras]
        return pl.Series(api.EXTRAS, texts, dtype=pl.String())

    def reject(self, row: int, rank: int, reason: str) -> None:
        if row not in self.problems or rank < self.problems[row][0]:
            self.problems[row] = (rank, reason)

    def writable(self, column: _Column) -> list[Any]:
        """The column's values as a list that a check may change."""
        self.changed.add(column.name)
        values = self.values[column.name] = list(self.values[column.name])
        return values

    def present(self, column: _Column) -> Sequence[Any]:
        """The column's values less nulls (sent as null, or blanked by a check that rejected them)."""
        values = self.values[column.name]
        return [v for v in values if v is not None] if column.nullable or column.name in self.changed else values

    def flag(self, column: _Column, bad: Callable[[Any], object], reason: str) -> None:
        """Reject every present value of the column for which `bad(value)` is true, and blank it for later checks."""
        values = self.writable(column)
        for row, value in enumerate(values):
            if value is not None and bad(value):
                self.reject(row, column.rank + 1, f"field '{column.label}' {reason}: {_describe(value)}")
                values[row] = None

    def stacked(self, columns: Sequence[_Column]) -> list[Any]:
        """The columns' values end to end, in one list."""
        stacked: list[Any] = []
        for column in columns:
            stacked += self.values[column.name]
        return stacked


@lru_cache(maxsize=4)
def _no_extras(size: int) -> pl.Series:
    """An all-null extras column: the common page's, made once per page size (polars shares it, never changes it)."""
    return pl.Series(api.EXTRAS, [None] * size, dtype=pl.String())


def _gather(rows: list[Any], keys: tuple[str, ...]) -> tuple[dict[str, Sequence[Any]], bool]:
    """Each key's values across the rows (dicts), `_MISSING` where a row lacks the key -> (them, whether no row lacks one)."""
    if len(keys) > 1 and rows:
        try:
            # One C-level itemgetter call per row and a transpose: the common, complete page.
            return dict(zip(keys, zip(*map(itemgetter(*keys), rows)))), True
        except KeyError:
            pass
    values = {key: [row.get(key, _MISSING) for row in rows] for key in keys}
    return values, not any(_MISSING in column for column in values.values())


def _check_type(page: _Page, column: _Column) -> None:
    """Reject values of the wrong JSON type (or missing), blanking them so later checks skip them."""
    if column.allowed == _STR:
        try:
            "".join(page.values[column.name])  # a C-level pass, faster than collecting the types
            return
        except TypeError:
            pass
    elif set(map(type, page.values[column.name])) <= column.allowed:
        return
    values = page.writable(column)
    for row, value in enumerate(values):
        if type(value) not in column.allowed:
            if value is _MISSING:
                reason = f"missing field '{column.label}'"
            elif value is None:
                reason = f"field '{column.label}' is null"
            else:
                reason = f"field '{column.label}' must be {_JSON_TYPES[column.shape][1]}, got {_describe(value)}"
            page.reject(row, column.rank, reason)
            values[row] = None


def _check_value(page: _Page, column: _Column) -> None:
    """A column's enum, form, bounds, money or array rule, on its present values (types already checked)."""
    present = page.present(column)
    if column.enum is not None:
        enum = column.enum
        if not set(present) <= enum:
            page.flag(column, lambda v: v not in enum, f"is not one of {', '.join(sorted(enum))}")
    elif (form := column.form) is not None:
        if not form.all_match(present):
            page.flag(column, lambda v: not form.one.fullmatch(v), f"is not {form.name}")
    elif column.bounds is not None:
        low, high = column.bounds
        if present and (min(present) < low or max(present) > high):
            page.flag(column, lambda v: not low <= v <= high, f"is outside [{low}, {high}]")
    elif column.shape == "money":
        joined = "\n".join(present)
        if "E" in joined or "e" in joined:  # exponent forms: rare, and made plain one by one
            values = page.writable(column)
            for row, value in enumerate(values):
                if value is not None and ("E" in value or "e" in value):
                    values[row] = money_text(value) or value
            present = page.present(column)
        if not _MONEY_FORM.all_match(present):
            page.flag(column, lambda v: not _MONEY_FORM.one.fullmatch(v), _NOT_MONEY)
    elif column.shape == "str_list":
        if set(map(type, chain.from_iterable(present))) - {str}:
            page.flag(column, lambda v: set(map(type, v)) - {str}, "must hold only strings")
    elif column.shape == "struct_list":
        _check_objects(page, column, present)


def _check_objects(page: _Page, column: _Column, present: Sequence[Any]) -> None:
    """Arrays of objects: each with the lake's fields as strings; other keys go to the record's extras."""
    fields = tuple(column.dtype.inner.to_schema())  # type: ignore[attr-defined]
    items = list(chain.from_iterable(present))
    if set(map(type, items)) <= {dict} and set(map(len, items)) <= {len(fields)}:
        if {type(item.get(f)) for item in items for f in fields} <= _STR:
            return

    def bad(objects: list[Any]) -> bool:
        return any(type(item) is not dict or any(type(item.get(f)) is not str for f in fields) for item in objects)

    page.flag(column, bad, f"must hold objects with string {', '.join(fields)}")
    values = page.writable(column)
    for row, value in enumerate(values):
        if value and any(len(item) != len(fields) for item in value):
            # Item by item, so each item's extras stay beside it.
            page.keep(row, column.label, [{k: v for k, v in item.items() if k not in fields} for item in value])
            values[row] = [{f: item[f] for f in fields} for item in value]


def _split(stacked: pl.Series, columns: Sequence[_Column], size: int) -> dict[str, pl.Series]:
    """A series of columns stacked end to end -> each column, named (zero-copy slices)."""
    return {c.name: stacked.slice(index * size, size).alias(c.name) for index, c in enumerate(columns)}


# The API's own date-time form, `YYYY-MM-DDThh:mm:ss.fffZ`: punctuation at these offsets, digits elsewhere.
_STAMP_WIDTH = 24
_STAMP_MARKS = ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "."), (23, "Z"))
_STAMP_PUNCTUATION = "".join(mark for _, mark in _STAMP_MARKS).encode()


def _api_form_stamps(columns: Sequence[Sequence[Any]]) -> np.ndarray | None:
    """Date-time columns, all null or in the API's own form -> one stacked datetime64[ms] array; else None.

    The same rule as `_TIMESTAMP_FORM` and `parse_datetime` for the form nearly every page holds,
    proved by position on the values joined, and parsed by numpy, which refuses impossible dates.
    """
    size = len(columns[0])
    present = np.ones(size * len(columns), dtype=bool)
    texts: list[str] = []
    for index, column in enumerate(columns):
        if None in column:
            kept = list(map(is_not, column, repeat(None)))
            present[index * size : (index + 1) * size] = kept
            column = list(compress(column, kept))
        texts += column
    joined = "".join(texts)
    count = len(texts)
    if set(map(len, texts)) - {_STAMP_WIDTH} or not joined.isascii():
        return None
    if any(joined[at::_STAMP_WIDTH] != mark * count for at, mark in _STAMP_MARKS):
        return None
    if joined.encode().translate(None, b"0123456789") != _STAMP_PUNCTUATION * count:
        return None
    # Years from 1000 (as Python's datetime reads them); seconds below 60 (numpy takes 23:59:60).
    if min(joined[0::_STAMP_WIDTH], default="1") < "1" or max(joined[17::_STAMP_WIDTH], default="0") > "5":
        return None
    try:
        # Less the trailing Z: numpy warns on any time zone.
        fixed = np.frombuffer(joined.encode(), dtype=f"S{_STAMP_WIDTH}").astype(f"S{_STAMP_WIDTH - 1}")
        stamps = fixed.astype("datetime64[ms]")
    except ValueError:
        return None
    if len(stamps) == len(present):
        return stamps
    with_nulls = np.full(len(present), np.datetime64("NaT"), dtype="datetime64[ms]")
    with_nulls[present] = stamps
    return with_nulls


def _parse_each(text: pl.Series) -> pl.Series:
    """Date-time text -> UTC datetimes (ms) one value at a time, null where invalid."""
    moments: list[datetime | None] = []
    for value in text.to_list():
        try:
            moments.append(floor_ms(parse_datetime(value)))
        except ValueError:
            moments.append(None)
    return pl.Series(text.name, moments, dtype=api.TIMESTAMP)


def _parse_stamps(page: _Page, rules: _Rules, columns: tuple[_Column, ...]) -> pl.Series:
    """Date-times in any accepted form -> one stacked series; values in no accepted form, or no instant, rejected."""
    for column in columns:
        if not _TIMESTAMP_FORM.all_match(page.present(column)):
            page.flag(column, lambda v: not _TIMESTAMP_FORM.one.fullmatch(v), _NOT_A_DATE_TIME)
    text = pl.Series(page.stacked(columns), dtype=pl.String())
    try:
        # Eager, format-inferring parsing: polars' fastest path for mixed forms (and it reads any offset).
        parsed = text.str.to_datetime(time_unit="ms", strict=False)
    except pl.exceptions.ComputeError:  # not one value to infer a format from: all go one by one
        parsed = pl.Series([None] * len(text), dtype=api.TIMESTAMP)
    if parsed.dtype != api.TIMESTAMP:
        parsed = parsed.dt.replace_time_zone("UTC")  # every value null: no offset to infer from
    if parsed.null_count() != text.null_count():
        # Inference settles on one format per series: values it missed go one by one, and
        # what still fails (a 30th of February) is rejected.
        missed = (text.is_not_null() & parsed.is_null()).arg_true()
        retried = _parse_each(text.gather(missed))
        parsed = parsed.scatter(missed, retried)
        for index in missed.gather(retried.is_null().arg_true()).to_list():
            at, row = divmod(index, page.size)
            reason = f"field '{columns[at].label}' {_NOT_A_DATE_TIME}: {_describe(text[index])}"
            page.reject(row, rules.unparsed_rank + at, reason)
    return parsed


def _timestamps(page: _Page, rules: _Rules, window: Window) -> dict[str, pl.Series]:
    """All date-time columns -> their series; records outside the window they were asked for rejected."""
    columns = rules.by_shape["timestamp"]
    stamps = _api_form_stamps([page.values[c.name] for c in columns])
    parsed = _parse_stamps(page, rules, columns) if stamps is None else pl.Series(values=stamps, dtype=api.TIMESTAMP)
    typed = _split(parsed, columns, page.size)
    # A record outside the window it was asked for would land in two slices, or in none.
    created = typed[api.CREATED_AT]
    first, last = created.min(), created.max()
    if first is not None and (first < window.start or last >= window.end):  # type: ignore[operator]
        for row in ((created < window.start) | (created >= window.end)).arg_true().to_list():
            text = page.values[api.CREATED_AT][row]
            page.reject(row, rules.outside_rank, f"created_at {text!r} is outside the requested window {window}")
    return typed


# Joins the strings of an array into one text for polars to split: a control character
# (a page whose strings hold it takes the JSON route instead).
_LIST_SEPARATOR = "\x1f"


def _list_column(column: _Column, lists: Sequence[Any]) -> pl.Series:
    """A column of arrays (of strings, or of objects with the lake's fields) -> its polars series.

    Not built from Python objects (polars goes one element at a time): arrays of strings go in
    as one text each, every string led by a separator no string holds, and are split with the
    empty lead dropped (`[]` is "", `[""]` one separator); anything else as one JSON text.
    """
    if column.shape == "str_list" and _LIST_SEPARATOR not in "".join(chain.from_iterable(filter(None, lists))):
        texts = [_LIST_SEPARATOR + _LIST_SEPARATOR.join(items) if items else "" for items in lists]
        split = pl.col(column.name).str.split(_LIST_SEPARATOR).list.slice(1)
        return pl.DataFrame([pl.Series(column.name, texts, dtype=pl.String())]).select(split).to_series()
    nested = pl.lit(orjson.dumps(lists).decode()).str.json_decode(pl.List(column.dtype)).explode().alias(column.name)
    return pl.select(nested).to_series()


def validate_records(
    kind: api.RecordType, records: Sequence[object], window: Window, page_number: int
) -> tuple[pl.DataFrame, list[Rejected]]:
    """A page's records as orjson decodes them -> (valid records in `api.LAKE_SCHEMAS[kind]`, rejects with reasons)."""
    if not records:
        return empty_frame(kind), []
    rules = _RULES[kind]
    page = _Page(kind, records)
    for column in rules.columns:
        _check_type(page, column)
    for column in rules.columns:
        if column.shape != "timestamp":
            _check_value(page, column)
    size = page.size
    series = _timestamps(page, rules, window)
    strings, money = rules.by_shape["str"], rules.by_shape["money"]
    series |= _split(pl.Series(page.stacked(strings), dtype=pl.String()), strings, size)
    series |= _split(pl.Series(page.stacked(money), dtype=pl.String()).cast(api.MONEY), money, size)
    for dtype, columns in rules.ints:  # values within bounds, so they fit their lake type
        series |= _split(pl.Series(page.stacked(columns), dtype=dtype), columns, size)
    for column in rules.by_shape["str_list"] + rules.by_shape["struct_list"]:
        series[column.name] = _list_column(column, page.values[column.name])
    frame = pl.DataFrame([*(series[c.name] for c in rules.columns), page.extras_column()])
    if not page.problems:
        return frame, []
    kept = pl.Series([row not in page.problems for row in range(size)], dtype=pl.Boolean())
    return frame.filter(kept), [
        Rejected(reason, orjson.dumps(records[row]).decode(), kind, window, page_number)
        for row, (_, reason) in sorted(page.problems.items())
    ]


@lru_cache(maxsize=None)
def empty_frame(dataset: str) -> pl.DataFrame:
    """A dataset (`cdrs`, `mdrs`, `usage`) -> a frame of no rows in its lake schema, made once.

    Polars frames never change in place, so one can be shared; building one column by column
    costs more than many a small page's other work.
    """
    return pl.DataFrame(schema=api.USAGE_SCHEMA if dataset == "usage" else api.LAKE_SCHEMAS[dataset])  # type: ignore[index]


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def usage_frame(kind: api.RecordType, rows: Sequence[object], dimensions: Sequence[str]) -> pl.DataFrame:
    """Usage rows of one product -> a frame in `api.USAGE_SCHEMA`; ValueError naming the first bad row.

    A small aggregate, checked row by row; one bad row fails it all (reconciling against part would mislead).
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


def extra_fields(kind: api.RecordType, extras: pl.Series) -> list[str]:
    """An `api.EXTRAS` column -> the names of the fields it holds, sorted; `parent.child` inside a known object or array."""
    if extras.null_count() == extras.len():
        return []
    known = frozenset(_RULES[kind].top_keys)
    names: set[str] = set()
    # Each distinct object once: records often share their extras whole.
    for text in extras.drop_nulls().unique():
        for name, value in orjson.loads(text).items():
            if name not in known:
                names.add(name)
            elif type(value) is dict:
                names.update(f"{name}.{child}" for child in value)
            else:
                names.update(f"{name}.{child}" for item in value for child in item)
    return sorted(names)
