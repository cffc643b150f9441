"""Landing (API pages -> Parquet lake): replace windows' records in their UTC day partitions.

`land_windows` makes the lake hold exactly the given records for the windows: rows created outside
them stay, and per `id` the latest `updated_at` wins, against the lake's version too (a re-sync never
undoes a newer re-rating). `land_usage` does the same for the usage aggregates, by whole UTC days;
`quarantine` files the malformed records. Memory stays within one day partition plus the landed frame.
A day is written in this release's schema; one an older release wrote reads its new columns as null.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Protocol

import orjson
import polars as pl

from pipelines.dates import Window, days_from, format_utc
from pipelines.errors import CdrError, clip, counted
from pipelines.lake import AccountLake, WriteBatch, readable_as, with_schema
from pipelines.opentact import api
from pipelines.opentact.records import empty_frame, extra_fields
from pipelines.state import merge_windows

ID = "id"
_ORDER = (api.CREATED_AT, ID)
_OLD_UPDATED = "__old_updated_at"
_OLD_COST = "__old_cost"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

# One quarantined record as stored (a JSON line, timestamps as text) and as the build reads it.
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "kind": pl.String(),
    "run_id": pl.String(),
    "seen_at": api.TIMESTAMP,
    "slice_start": api.TIMESTAMP,
    "slice_end": api.TIMESTAMP,
    "page_number": pl.Int64(),
    "reason": pl.String(),
    "raw_json": pl.String(),
}


@dataclass(frozen=True, slots=True)
class DayCounts:
    """What happened to one UTC day's records.

    `new`, `updated`, `unchanged` and `stale` partition the day's incoming records (`stale`: the
    lake's version was newer and kept); `removed` counts lake records in the window no longer sent.
    """

    day: date
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    removed: int = 0


@dataclass(frozen=True, slots=True)
class DayStats(DayCounts):
    """What landing did to one day partition; `records` and `bytes_written` describe the file written.

    Both are 0 when the file was already exactly right, or the day became empty and its file went;
    `changed` tells these apart: the partition was written or removed.
    """

    records: int = 0
    bytes_written: int = 0
    changed: bool = False


def _total(count: str, doc: str) -> property:
    return property(lambda self: sum(getattr(day, count) for day in self.days), doc=doc)


class DayTotals:
    """The per-day counts of `days`, summed over the days."""

    __slots__ = ()
    days: tuple[DayCounts, ...]

    new = _total("new", "Records new to the lake.")
    updated = _total("updated", "Records whose `updated_at` or `cost` changed.")
    unchanged = _total("unchanged", "Records already in the lake as they came.")
    stale = _total("stale", "Incoming records older than the lake's version (the lake's was kept).")
    removed = _total("removed", "Lake records in the window the new data no longer has.")


@dataclass(frozen=True, slots=True)
class LandStats(DayTotals):
    """What landing did, per UTC day partition touched; `windows` are the replaced windows, merged.

    `extra_fields`: the fields the records held that the lake has no column for (kept in their extras).
    """

    kind: str
    windows: tuple[Window, ...]
    days: tuple[DayStats, ...]
    extra_fields: tuple[str, ...] = ()

    records_written = _total("records", "Rows in the partition files written.")
    bytes_written = _total("bytes_written", "Bytes of the partition files written.")

    @property
    def changed_days(self) -> tuple[date, ...]:
        """The days whose partition landing wrote or removed."""
        return tuple(day.day for day in self.days if day.changed)


class Rejected(Protocol):
    """A record the client could not accept (the client's own type satisfies this)."""

    reason: str
    raw_json: str
    kind: str
    slice: Window
    page_number: int


class UsageConflictError(CdrError):
    """The API's usage report repeats a dimension combination."""


def window_days(window: Window) -> list[date]:
    """A window -> the UTC days it touches (none for an empty window)."""
    if window.end <= window.start:
        return []
    first = window.start.astimezone(timezone.utc).date()
    last = (window.end.astimezone(timezone.utc) - timedelta(microseconds=1)).date()
    return days_from(first, last + timedelta(days=1))


def land_windows(lake: AccountLake, kind: api.RecordType, windows: Sequence[Window], frame: pl.DataFrame) -> LandStats:
    """Records of several windows at once -> each day partition rewritten once, replaced for every window."""
    schema = api.LAKE_SCHEMAS[api.known_record_type(kind)]
    frame = _in_schema(frame, schema, f"{kind} frame", optional=set(schema) - set(api.SCHEMAS[kind]))
    for column in (ID, api.CREATED_AT, api.UPDATED_AT):
        if frame[column].null_count():
            raise ValueError(f"programming error: {kind} frame has null {column!r}; such records belong in quarantine")
    merged = merge_windows(windows)
    inside = _inside(merged)
    outside = frame.filter(~inside)
    if outside.height:
        shown = ", ".join(str(w) for w in merged) or "(no window)"
        raise ValueError(
            f"programming error: {outside.height} {kind} record(s) created outside {shown} were passed to "
            f"land_windows, e.g. id {outside[ID][0]} created {format_utc(outside[api.CREATED_AT][0])}"
        )
    # Sorted once, not day by day: each day's part keeps the order.
    latest = _latest_per_id(frame).sort(_ORDER)
    touched = sorted({day for window in merged for day in window_days(window)})
    if len(touched) == 1:
        # Every record passed the window check, so all are that day's.
        incoming = {touched[0]: latest}
    else:
        by_day = latest.with_columns(pl.col(api.CREATED_AT).dt.date().alias("__day")).partition_by(
            "__day", as_dict=True, include_key=False, maintain_order=True
        )
        incoming = {key[0]: part for key, part in by_day.items()}
    del latest
    empty = empty_frame(kind)
    # The days' files are made durable together, once all are written.
    with lake.batch() as batch:
        days = [_replace_day(lake, batch, kind, day, incoming.get(day, empty), inside, schema) for day in touched]
    extra = tuple(extra_fields(kind, frame[api.EXTRAS]))
    return LandStats(kind=kind, windows=merged, days=tuple(days), extra_fields=extra)


# The fields an extras note names; the rest are counted (the API's names are not ours to bound).
NOTE_MAX_FIELDS = 10
NOTE_FIELD_MAX_CHARS = 40


def extras_note(kind: str, fields: Sequence[str]) -> str:
    """A record type and the fields its records held that the lake has no column for -> one short line saying so.

    The names come from the API: control characters show escaped (a newline or a terminal escape
    never reaches the log as such), a long name is cut, and past `NOTE_MAX_FIELDS` the rest are counted.
    """
    shown = [clip(_printable(name), NOTE_FIELD_MAX_CHARS) for name in fields[:NOTE_MAX_FIELDS]]
    more = len(fields) - len(shown)
    listed = ", ".join(shown) + (f" and {more} more" if more else "")
    return f"{kind}: kept {counted(len(fields), 'field')} the lake does not know in extras: {listed}"


def _printable(name: str) -> str:
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in name)


def land_usage(lake: AccountLake, kind: api.RecordType, window: Window, frame: pl.DataFrame) -> LandStats:
    """Usage rows (`api.USAGE_SCHEMA`) of a whole-UTC-day window -> usage day partitions replaced."""
    api.known_record_type(kind)
    frame = _in_schema(frame, api.USAGE_SCHEMA, f"usage_{kind} frame", optional=set())
    if any(bound.astimezone(timezone.utc).time() != time(0) for bound in (window.start, window.end)):
        raise ValueError(f"programming error: usage is landed by whole UTC days; {window} is not day-aligned")
    product = api.USAGE_PRODUCTS[kind]
    wrong = frame.filter(pl.col("product").ne_missing(product))
    if wrong.height:
        raise ValueError(f"programming error: usage_{kind} frame has product {wrong['product'][0]!r}, expected {product!r}")
    days = window_days(window)
    dates = frame["date"]
    if dates.len() and (dates.null_count() or not (days and days[0] <= dates.min() <= dates.max() <= days[-1])):
        raise ValueError(f"programming error: usage_{kind} frame has dates outside the window {window}")
    keys = list(api.USAGE_DIMENSIONS)
    repeated = frame.filter(pl.struct(keys).is_duplicated())
    if repeated.height:
        row = repeated.row(0, named=True)
        raise UsageConflictError(
            f"the API's {product} usage report repeats "
            + ", ".join(f"{k}={row[k]}" for k in keys)
            + "; it changed while being paged: run the sync again"
        )
    dataset = f"usage_{kind}"
    metrics = [c for c in api.USAGE_SCHEMA if c not in keys and c != "product"]
    empty = empty_frame("usage")
    # Sorted once: each day's part keeps the order. The days are compared all at once, each
    # incoming row only with the rows of its own day's partition.
    incoming = {key[0]: part for key, part in frame.sort(keys).partition_by("date", as_dict=True, maintain_order=True).items()}
    olds = {day: old for day in days if (old := lake.read_partition(dataset, day, api.USAGE_SCHEMA)) is not None}
    tallies: dict[date, dict[str, int]] = {}
    if olds:
        part = "__partition"
        old_rows = pl.concat([old.with_columns(pl.lit(day).alias(part)) for day, old in olds.items()], how="vertical")
        compared = frame.with_columns(pl.col("date").alias(part)).join(
            old_rows, on=[*keys, part], how="left", suffix="__old", nulls_equal=True
        )
        had = pl.col("product__old").is_not_null()
        differs = pl.any_horizontal(pl.col(m).ne_missing(pl.col(f"{m}__old")) for m in metrics)
        per_day = compared.group_by(part).agg(kept=had.sum(), updated=(had & differs).sum())
        tallies = {row[part]: row for row in per_day.iter_rows(named=True)}
    stats = []
    with lake.batch() as batch:
        for day in days:
            new, old = incoming.get(day, empty), olds.get(day, empty)
            kept, updated = (int(tallies[day]["kept"]), int(tallies[day]["updated"])) if day in tallies else (0, 0)
            counts = {"new": new.height - kept, "updated": updated, "unchanged": kept - updated, "removed": old.height - kept}
            stats.append(_write_day(lake, batch, dataset, day, new, old, counts))
    return LandStats(kind=dataset, windows=(window,), days=tuple(stats))


def quarantine(
    lake: AccountLake, kind: api.RecordType, run_id: str, rejects: Iterable[Rejected], now: datetime | None = None
) -> str | None:
    """Rejected records -> one new JSON-lines file under quarantine/<kind>/account=<name>/date=<seen day>/ (its relative path), or None."""
    api.known_record_type(kind)
    check_run_id(run_id)
    seen_at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    lines = []
    for reject in rejects:
        if reject.kind != kind:
            raise ValueError(f"programming error: a {reject.kind} reject was quarantined as {kind}")
        row = {
            "kind": kind,
            "run_id": run_id,
            "seen_at": format_utc(seen_at),
            "slice_start": format_utc(reject.slice.start),
            "slice_end": format_utc(reject.slice.end),
            "page_number": reject.page_number,
            "reason": reject.reason,
            "raw_json": reject.raw_json,
        }
        lines.append(orjson.dumps(row))
    if not lines:
        return None
    # A fresh name per call: concurrent slices of one run never overwrite each other.
    relative = f"{lake.quarantine_dir(kind)}/date={seen_at.date().isoformat()}/{run_id}-{uuid.uuid4().hex[:12]}.jsonl"
    lake.write_bytes(relative, b"\n".join(lines) + b"\n")
    return relative


def check_run_id(run_id: str) -> str:
    """A run id -> itself; ValueError unless it is safe in file names (letters, digits, '.', '_', '-')."""
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r} must be letters, digits, '.', '_' or '-' (it names files)")
    return run_id


# -- internals ---------------------------------------------------------------------------------


def _replace_day(
    lake: AccountLake, batch: WriteBatch, kind: str, day: date, new: pl.DataFrame, in_window: pl.Expr,
    schema: Mapping[str, pl.DataType],
) -> DayStats:
    old = lake.read_partition(kind, day, schema)
    if old is None:
        # A day landed for the first time (every day of a first sync): nothing to compete with,
        # so no joins, filters or concatenation; `new` comes sorted.
        counts = {"new": new.height, "updated": 0, "unchanged": 0, "stale": 0, "removed": 0}
        return _write_day(lake, batch, kind, day, new, empty_frame(kind), counts)
    new_ids = new[ID]
    # Any lake row with an incoming id competes with it, even one created outside the window
    # (a moved `created_at`), so an id never appears twice in a partition.
    competing = old.filter(pl.col(ID).is_in(new_ids.implode()))
    versions = new.select(ID, api.UPDATED_AT, "cost").join(
        competing.select(ID, pl.col(api.UPDATED_AT).alias(_OLD_UPDATED), pl.col("cost").alias(_OLD_COST)),
        on=ID,
        how="left",
    )
    had = pl.col(_OLD_UPDATED).is_not_null()
    lake_newer = had & (pl.col(_OLD_UPDATED) > pl.col(api.UPDATED_AT))
    changed = had & ~lake_newer & (
        pl.col(api.UPDATED_AT).ne(pl.col(_OLD_UPDATED)) | pl.col("cost").ne_missing(pl.col(_OLD_COST))
    )
    tally = versions.select(
        new=(~had).sum(), stale=lake_newer.sum(), updated=changed.sum(), unchanged=(had & ~lake_newer & ~changed).sum()
    ).row(0, named=True)
    stale_ids = versions.filter(lake_newer)[ID].implode()
    untouched = old.filter(~in_window & ~pl.col(ID).is_in(new_ids.implode()))
    removed = old.filter(in_window & ~pl.col(ID).is_in(new_ids.implode())).height
    merged = pl.concat(
        [untouched, new.filter(~pl.col(ID).is_in(stale_ids)), competing.filter(pl.col(ID).is_in(stale_ids))],
        how="vertical",
    ).sort(_ORDER)
    counts = {key: int(value) for key, value in tally.items()}
    counts["removed"] = removed
    return _write_day(lake, batch, kind, day, merged, old, counts)


def _write_day(
    lake: AccountLake, batch: WriteBatch, dataset: str, day: date, result: pl.DataFrame, old: pl.DataFrame,
    counts: Mapping[str, int],
) -> DayStats:
    # Rewriting an identical partition would only cost time and churn readers' caches.
    if result.equals(old):
        return DayStats(day=day, **counts)
    if result.height == 0:
        return DayStats(day=day, changed=lake.delete_partition(dataset, day), **counts)
    size = batch.write_partition(dataset, day, result)
    return DayStats(day=day, records=result.height, bytes_written=size, changed=True, **counts)


def _latest_per_id(frame: pl.DataFrame) -> pl.DataFrame:
    # Ids are nearly always unique within a slice: checking is far cheaper than sorting and
    # deduplicating, and saves two copies of the slice.
    if frame[ID].n_unique() == frame.height:
        return frame
    # A stable sort keeps input order among equal `updated_at`, so the later copy wins a tie.
    return frame.sort(api.UPDATED_AT, maintain_order=True).unique(subset=ID, keep="last", maintain_order=True)


def _inside(windows: Sequence[Window]) -> pl.Expr:
    # Lake timestamps have millisecond precision: a record at t (ms) is inside [s, e) exactly
    # when it is inside [ceil_ms(s), ceil_ms(e)), so comparing at ms loses nothing.
    created = pl.col(api.CREATED_AT)
    tests = [(created >= _ceil_ms(w.start)) & (created < _ceil_ms(w.end)) for w in windows]
    return pl.any_horizontal(tests) if tests else pl.lit(False)


def _ceil_ms(moment: datetime) -> datetime:
    utc = moment.astimezone(timezone.utc)
    return utc + timedelta(microseconds=-utc.microsecond % 1000)


def _in_schema(frame: pl.DataFrame, schema: Mapping[str, pl.DataType], what: str, optional: set[str]) -> pl.DataFrame:
    # Records of the API's fields alone (no extras, no column a later release added to the lake)
    # land as a partition an older release wrote would read: those columns null.
    if not readable_as(frame.schema, schema) or set(schema) - set(frame.schema) - optional:
        found = ", ".join(f"{n}: {t}" for n, t in frame.schema.items())
        raise ValueError(f"programming error: {what} must have exactly the lake schema, extras aside; found {found}")
    return with_schema(frame, schema)
