"""Sandbox world: the deterministic synthetic CDRs and MDRs the sandbox serves and exports.

Records are a pure function of (seed, volumes, re-rate and malformed rates, kind, UTC day):
each day is generated whole, vectorised with numpy and polars, from generators seeded with
(seed, kind, day ordinal, stream), and cached in a small LRU. `World.view` then shows a day
as the API would at a given clock: only records created before `now`, with their re-rated
rate/cost/updated_at once the re-rating has happened. Each row carries the exact JSON text
the API returns for it, so the server builds pages by joining texts.

Anomalies (`sandbox.anomalies`) ride on the same days: an asr_drop or delivery_failure
changes the outcome of the normal records it covers, a cost_spike adds (or removes) a share
of them, and irsf, short_call_burst and sms_pumping add records of their own. Each item
draws from its own generators, so the normal records never move and, without anomalies,
the world is exactly what it was.

Money is integer micro-units of the currency throughout generation (never floats), so the
contract's `cost = rate x billed / 60` rounded half-up to 6 places holds exactly.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

import numpy as np
import orjson
import polars as pl

from pipelines.errors import UsageError
from sandbox import catalog
from sandbox.anomalies import Anomaly, AsrDrop, CostSpike, DeliveryFailure, Irsf, ShortCallBurst, SmsPumping

Kind = Literal["cdrs", "mdrs"]
KINDS: tuple[Kind, ...] = ("cdrs", "mdrs")
_KIND_CODE: dict[str, int] = {"cdrs": 1, "mdrs": 2}

DAY_MS = 86_400_000
# Days kept per kind: a 35k-record day is ~40 MB with its JSON texts.
DEFAULT_CACHE_DAYS = 12

# Generator streams per (seed, kind, day): independent, so changing the re-rate or malformed
# rate changes only those records' re-ratings or defects, never the base records.
_COUNT_STREAM, _RECORD_STREAM, _RERATE_STREAM, _MALFORMED_STREAM = 0, 1, 2, 3
_WORLD_STREAM = 99
# Anomalies draw from streams of their own: item i from [seed, kind, day, 100, i, stream], the
# overrides of a day's normal records from [seed, kind, day, 98]. The normal draws never move.
_ANOMALY_STREAM = 100
_OVERRIDE_STREAM = 98
_THIN_STREAM = 4

SECOND_LEG_SHARE = 0.12
SHORT_CALL_SHARE = 0.12
DAILY_NOISE_SIGMA = 0.04
RERATE_MIN_MS = 10 * 60 * 1000
RERATE_MAX_MS = 3 * DAY_MS

TIMESTAMP = pl.Datetime("us", "UTC")
MONEY = pl.Decimal(38, 9)

ERROR = pl.Struct({"code": pl.String, "title": pl.String})
CDR_COLUMNS: dict[str, pl.DataType] = {
    "id": pl.String(),
    "record_type": pl.String(),
    "call_session_id": pl.String(),
    "direction": pl.String(),
    "cli": pl.String(),
    "cld": pl.String(),
    "country_code": pl.String(),
    "country_calling_code": pl.String(),
    "number_type": pl.String(),
    "connection.id": pl.String(),
    "connection.name": pl.String(),
    "tags": pl.List(pl.String),
    "status": pl.String(),
    "hangup_cause": pl.String(),
    "sip_response_code": pl.Int64(),
    "started_at": TIMESTAMP,
    "answered_at": TIMESTAMP,
    "ended_at": TIMESTAMP,
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
    "duration_secs": pl.Int64(),
    "billed_duration_secs": pl.Int64(),
    "billing_initial_secs": pl.Int64(),
    "billing_increment_secs": pl.Int64(),
    "rate": MONEY,
    "cost": MONEY,
    "currency": pl.String(),
    "json": pl.String(),
    "malformed": pl.String(),
}
MDR_COLUMNS: dict[str, pl.DataType] = {
    "id": pl.String(),
    "record_type": pl.String(),
    "direction": pl.String(),
    "cli": pl.String(),
    "cld": pl.String(),
    "country_code": pl.String(),
    "message_type": pl.String(),
    "encoding": pl.String(),
    "parts": pl.Int64(),
    "status": pl.String(),
    "carrier": pl.String(),
    "messaging_profile.id": pl.String(),
    "messaging_profile.name": pl.String(),
    "tags": pl.List(pl.String),
    "errors": pl.List(ERROR),
    "created_at": TIMESTAMP,
    "sent_at": TIMESTAMP,
    "completed_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
    "rate": MONEY,
    "cost": MONEY,
    "carrier_fee": MONEY,
    "currency": pl.String(),
    "json": pl.String(),
    "malformed": pl.String(),
}
# The columns of `view()`, in order, per kind.
VIEW_COLUMNS: dict[Kind, dict[str, pl.DataType]] = {"cdrs": CDR_COLUMNS, "mdrs": MDR_COLUMNS}
# The extra columns of `day_frame()` that hold a re-rating's new values.
RERATE_COLUMNS: dict[str, pl.DataType] = {
    "rerated_at": TIMESTAMP,
    "rerated_rate": MONEY,
    "rerated_cost": MONEY,
    "rerated_json": pl.String(),
}


class World:
    """The synthetic Opentact account: records per UTC day, shown as of any clock."""

    def __init__(
        self,
        *,
        seed: int,
        start: date,
        calls_per_day: int,
        messages_per_day: int,
        rerate_rate: float = 0.0,
        malformed_rate: float = 0.0,
        cache_days: int = DEFAULT_CACHE_DAYS,
        anomalies: Sequence[Anomaly] = (),
    ) -> None:
        if seed < 0:
            raise UsageError(f"seed must be a non-negative integer, got {seed}")
        if calls_per_day < 0 or messages_per_day < 0:
            raise UsageError(
                f"volumes must be >= 0, got calls_per_day={calls_per_day}, messages_per_day={messages_per_day}"
            )
        for name, value in (("rerate_rate", rerate_rate), ("malformed_rate", malformed_rate)):
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"{name} must be a fraction between 0 and 1, got {value}")
        if cache_days < 1:
            raise UsageError(f"cache_days must be >= 1, got {cache_days}")
        self.seed = seed
        self.start = start
        self.calls_per_day = calls_per_day
        self.messages_per_day = messages_per_day
        self.rerate_rate = rerate_rate
        self.malformed_rate = malformed_rate
        self.cache_days = cache_days
        self._volumes: dict[str, int] = {"cdrs": calls_per_day, "mdrs": messages_per_day}
        self._cache: OrderedDict[tuple[str, date], _Day] = OrderedDict()
        self._lock = threading.Lock()
        self._dids = _did_pool(np.random.default_rng([seed, _WORLD_STREAM]))
        self.anomalies = tuple(anomalies)
        self._spans = [(_ms(a.start), _ms(a.end)) for a in self.anomalies]
        # Per item, drawn once from its own stream: the trunk its calls use, and how many of its
        # records fall on each day (so every day is generated alone and still sums to the count).
        self._trunks: list[int] = []
        self._per_day: list[dict[date, int]] = []
        for index, (item, (lo, hi)) in enumerate(zip(self.anomalies, self._spans)):
            rng = np.random.default_rng([seed, _ANOMALY_STREAM, index])
            self._trunks.append(int(rng.choice(len(_T.connections.p), p=_T.connections.p)))
            total = (
                item.calls if isinstance(item, Irsf | ShortCallBurst)
                else item.messages if isinstance(item, SmsPumping) else 0
            )
            self._per_day.append(_spread(rng, total, lo, hi) if total else {})

    def __repr__(self) -> str:
        return (
            f"World(seed={self.seed}, start={self.start.isoformat()}, calls_per_day={self.calls_per_day}, "
            f"messages_per_day={self.messages_per_day}, rerate_rate={self.rerate_rate}, "
            f"malformed_rate={self.malformed_rate}"
            + (f", anomalies={len(self.anomalies)})" if self.anomalies else ")")
        )

    def count(self, kind: Kind, day: date) -> int:
        """How many normal records of `kind` are created on a UTC day (cheap: nothing is generated).

        Anomalies come on top of (or, for a cost_spike factor below 1, out of) this count.
        """
        _check_kind(kind)
        volume = self._volumes[kind]
        if day < self.start or volume == 0:
            return 0
        rng = np.random.default_rng([self.seed, _KIND_CODE[kind], day.toordinal(), _COUNT_STREAM])
        shape = catalog.WEEKDAY_SHAPE[day.weekday()] * float(np.exp(rng.normal(0.0, DAILY_NOISE_SIGMA)))
        return max(0, round(volume * shape))

    def days(self, start: datetime, end: datetime) -> list[date]:
        """The UTC days on or after `self.start` that overlap the half-open window [start, end)."""
        _check_aware(start, "start")
        _check_aware(end, "end")
        if end <= start:
            return []
        first = max(start.astimezone(UTC).date(), self.start)
        last = (end.astimezone(UTC) - timedelta(microseconds=1)).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def day_frame(self, kind: Kind, day: date) -> pl.DataFrame:
        """Every record created on a UTC day, in its original state, plus its re-rating columns.

        Columns: those of `view()` (original values) followed by `rerated_at`, `rerated_rate`,
        `rerated_cost`, `rerated_json` (null for records that are never re-rated).
        Sorted by created_at then id. Cached (bounded LRU); do not mutate.
        """
        return self._day(kind, day).frame

    def view(self, kind: Kind, day: date, now: datetime) -> pl.DataFrame:
        """The day's records as the API shows them at `now` (created before now, re-rated if due)."""
        _check_aware(now, "now")
        _check_kind(kind)
        day_start = datetime.combine(day, time(), tzinfo=UTC)
        if now <= day_start or day < self.start:
            return empty_view(kind)
        cached = self._day(kind, day)
        frame = cached.frame
        now_utc = now.astimezone(UTC)
        if now_utc < day_start + timedelta(days=1):
            # Sorted by created_at: the visible rows are a prefix.
            visible = frame.get_column("created_at").search_sorted(now_utc, side="left")
            frame = frame.slice(0, visible)
        due_count = int(np.searchsorted(cached.rerate_at_sorted, _epoch_us(now_utc), side="right"))
        # With a pinned clock every request sees the same state: reuse the last view built.
        key = (frame.height, due_count)
        memo = cached.memo
        if memo is not None and memo[0] == key:
            return memo[1]
        due = cached.rerate_rows[cached.rerate_order[:due_count]]
        due = np.sort(due[due < frame.height])
        view = frame.select(VIEW_COLUMNS[kind].keys())
        if len(due):
            # Scatter into copies: only the re-rated rows change, the cached day stays intact.
            view = view.with_columns(
                view.get_column(name).clone().scatter(due, frame.get_column(source).gather(due)).alias(name)
                for name, source in _RERATE_SOURCES.items()
            )
        cached.memo = (key, view)
        return view

    def window(self, kind: Kind, start: datetime, end: datetime, now: datetime) -> Iterator[pl.DataFrame]:
        """The records with created_at in [start, end) as of `now`, one frame per UTC day."""
        start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
        for day in self.days(start_utc, end_utc):
            frame = self.view(kind, day, now)
            day_start = datetime.combine(day, time(), tzinfo=UTC)
            if start_utc > day_start or end_utc < day_start + timedelta(days=1):
                created = pl.col("created_at")
                frame = frame.filter(
                    (created >= pl.lit(start_utc, dtype=TIMESTAMP)) & (created < pl.lit(end_utc, dtype=TIMESTAMP))
                )
            if frame.height:
                yield frame

    def _day(self, kind: str, day: date) -> _Day:
        _check_kind(kind)
        key = (kind, day)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        # Generated outside the lock: two threads may build the same day once each, which
        # is harmless (pure function) and keeps other days' requests unblocked.
        cached = _Day(self._generate(kind, day))
        with self._lock:
            self._cache[key] = cached
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_days * len(KINDS):
                self._cache.popitem(last=False)
        return cached

    def _generate(self, kind: str, day: date) -> pl.DataFrame:
        empty = pl.DataFrame(schema={**VIEW_COLUMNS[kind], **RERATE_COLUMNS})  # type: ignore[index]
        if day < self.start:
            return empty
        n = self.count(kind, day)  # type: ignore[arg-type]
        ordinal = day.toordinal()
        day_ms = int(datetime.combine(day, time(), tzinfo=UTC).timestamp()) * 1000
        build_kw = self._overrides(kind, day)
        parts = []
        if n:
            streams = [
                np.random.default_rng([self.seed, _KIND_CODE[kind], ordinal, stream])
                for stream in (_RECORD_STREAM, _RERATE_STREAM, _MALFORMED_STREAM)
            ]
            build = _calls if kind == "cdrs" else _messages
            raw = build(streams[0], n, day_ms, self._dids, **build_kw)  # type: ignore[operator]
            raw = _add_rerating(raw, streams[1], self.rerate_rate, kind)
            raw = _add_malformed(raw, streams[2], self.malformed_rate, kind)
            parts.append(self._thinned(kind, day, raw))
        parts += self._injected(kind, day, day_ms, n, build_kw)
        parts = [part for part in parts if part.height]
        if not parts:
            return empty
        return _finish(pl.concat(parts), kind)

    # --- anomalies -----------------------------------------------------------------------

    def _items(self, kind: str, day: date, types: tuple[type, ...]) -> Iterator[tuple[int, Anomaly, int, int]]:
        """(index, item, start_ms, end_ms) of the anomalies of these types overlapping the day, in file order."""
        day_ms = (day.toordinal() - _EPOCH_ORDINAL) * DAY_MS
        for index, (item, (lo, hi)) in enumerate(zip(self.anomalies, self._spans)):
            if isinstance(item, types) and _touches(item, kind) and lo < day_ms + DAY_MS and hi > day_ms:
                yield index, item, lo, hi

    def _rng(self, kind: str, day: date, index: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, _KIND_CODE[kind], day.toordinal(), _ANOMALY_STREAM, index, stream])

    def _overrides(self, kind: str, day: date) -> dict[str, object]:
        """The generators' keyword arguments for the asr_drop or delivery_failure items of the day."""
        rules: list[Override] = []
        if kind == "cdrs":
            for _, item, lo, hi in self._items(kind, day, (AsrDrop,)):
                country = -1 if item.country_code is None else _T.country_index[item.country_code]
                connection = -1 if item.connection_id is None else _CONNECTION_INDEX[item.connection_id]
                rules.append(Override(lo, hi, item.answer_rate, country=country, connection=connection))
            return {"overrides": tuple(rules)} if rules else {}
        for _, item, lo, hi in self._items(kind, day, (DeliveryFailure,)):
            country = -1 if item.country_code is None else _T.country_index[item.country_code]
            carriers = () if item.carrier is None else _CARRIER_INDICES[item.carrier]
            rules.append(Override(lo, hi, item.failure_rate, country=country, carriers=carriers))
        if not rules:
            return {}
        override_rng = np.random.default_rng([self.seed, _KIND_CODE[kind], day.toordinal(), _OVERRIDE_STREAM])
        return {"overrides": tuple(rules), "override_rng": override_rng}

    def _thinned(self, kind: str, day: date, raw: pl.DataFrame) -> pl.DataFrame:
        """The normal records without those a cost_spike below factor 1 removes."""
        for index, item, lo, hi in self._items(kind, day, (CostSpike,)):
            if item.factor >= 1.0:
                continue
            drop = self._rng(kind, day, index, _THIN_STREAM).random(raw.height) >= item.factor
            raw = raw.filter(~(pl.Series(drop) & _in_spike(item, lo, hi)))
        return raw

    def _injected(
        self, kind: str, day: date, day_ms: int, n: int, build_kw: dict[str, object]
    ) -> list[pl.DataFrame]:
        """The records the day's anomalies add, each item from its own generators."""
        parts = []
        for index, item, lo, hi in self._items(kind, day, (CostSpike, Irsf, ShortCallBurst, SmsPumping)):
            rng = self._rng(kind, day, index, _RECORD_STREAM)
            if isinstance(item, CostSpike):
                extra = round((item.factor - 1.0) * n)
                if extra <= 0:
                    continue
                build = _calls if kind == "cdrs" else _messages
                kw = dict(build_kw)
                if "override_rng" in kw:
                    kw["override_rng"] = self._rng(kind, day, index, _OVERRIDE_STREAM)
                raw = build(rng, extra, day_ms, self._dids, **kw)  # type: ignore[operator]
                raw = raw.filter(_in_spike(item, lo, hi))
            else:
                count = self._per_day[index].get(day, 0)
                if not count:
                    continue
                created = np.sort(rng.integers(max(lo, day_ms), min(hi, day_ms + DAY_MS), size=count))
                country = _T.country_index[item.country_code]
                if isinstance(item, Irsf):
                    raw = _irsf_calls(rng, created, country, self._trunks[index], self._dids)
                elif isinstance(item, ShortCallBurst):
                    raw = _short_calls(rng, created, country, self._trunks[index], item.max_secs, self._dids)
                else:
                    raw = _pumped_messages(rng, created, country, item.delivery_rate, self._dids)
            raw = _add_rerating(raw, self._rng(kind, day, index, _RERATE_STREAM), self.rerate_rate, kind)
            # Injected records are never malformed: the incident is exactly what the file says.
            parts.append(_add_malformed(raw, self._rng(kind, day, index, _MALFORMED_STREAM), 0.0, kind))
        return parts


def _touches(item: Anomaly, kind: str) -> bool:
    """Whether an anomaly changes records of this kind."""
    if isinstance(item, CostSpike):
        return (item.product == "voice") == (kind == "cdrs")
    calls = isinstance(item, Irsf | ShortCallBurst | AsrDrop)
    return calls == (kind == "cdrs")


def _in_spike(item: CostSpike, lo: int, hi: int) -> pl.Expr:
    """A cost_spike's records among raw columns: created in its window, of its product."""
    inside = (pl.col("_created") >= lo) & (pl.col("_created") < hi)
    return inside if item.product == "voice" else inside & (pl.col("message_type") == item.product)


class _Day:
    """A generated day, where its re-ratings are, and the last view built from it."""

    __slots__ = ("frame", "rerate_rows", "rerate_order", "rerate_at_sorted", "memo")

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame
        rerated_at = frame.get_column("rerated_at")
        self.rerate_rows = np.flatnonzero(rerated_at.is_not_null().to_numpy())
        at_us = rerated_at.gather(self.rerate_rows).dt.epoch("us").to_numpy()
        # Re-ratings in time order: those due at `now` are a prefix of this order.
        self.rerate_order = np.argsort(at_us, kind="stable")
        self.rerate_at_sorted = at_us[self.rerate_order]
        self.memo: tuple[tuple[int, int], pl.DataFrame] | None = None


def _epoch_us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_RERATE_SOURCES = {"rate": "rerated_rate", "cost": "rerated_cost", "updated_at": "rerated_at", "json": "rerated_json"}


def empty_view(kind: Kind) -> pl.DataFrame:
    """A frame with the columns and types of `view()` and no rows."""
    return pl.DataFrame(schema=VIEW_COLUMNS[kind])


def _check_kind(kind: str) -> None:
    if kind not in _KIND_CODE:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def _check_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")


# ---------------------------------------------------------------------------------------
# Catalog as arrays: lookups by integer index keep generation vectorised.


class _Tables:
    """The catalog flattened into numpy arrays and polars Series indexed by integers."""

    def __init__(self) -> None:
        # The clean world's countries first, the anomaly-only ones after them with weight 0:
        # the normal draws never land there and never move.
        countries = catalog.DESTINATIONS
        self.country_index = {c.code: i for i, c in enumerate(countries)}
        self.country_codes = pl.Series([c.code for c in countries])
        self.calling_codes = pl.Series([c.calling_code for c in countries])
        weights = np.array([c.weight for c in countries])
        self.country_p = weights / weights.sum()
        self.asr = np.array([c.asr for c in countries])
        self.ucs2_share = np.array([c.ucs2_share for c in countries])
        self.billing_initial = np.array([c.billing[0] for c in countries], dtype=np.int64)
        self.billing_increment = np.array([c.billing[1] for c in countries], dtype=np.int64)
        self.sms_rate = np.array([c.sms_rate for c in countries], dtype=np.int64)
        self.number_types = pl.Series(catalog.NUMBER_TYPES)
        # Plans: plan_of[country, type] -> plan row; a missing type falls back to local.
        n_types = len(catalog.NUMBER_TYPES)
        self.plan_of = np.zeros((len(countries), n_types), dtype=np.int64)
        self.rate_of = np.zeros((len(countries), n_types), dtype=np.int64)
        plan_type: list[int] = []
        plan_len: list[int] = []
        prefix_offset: list[int] = []
        prefix_count: list[int] = []
        prefixes: list[str] = []
        for ci, country in enumerate(countries):
            local_plan = len(plan_len)
            for ti, number_type in enumerate(catalog.NUMBER_TYPES):
                plan = country.plans.get(number_type)
                if plan is None:
                    self.plan_of[ci, ti] = local_plan
                    self.rate_of[ci, ti] = catalog.outbound_rate(country, "local")
                    continue
                self.plan_of[ci, ti] = len(plan_len)
                self.rate_of[ci, ti] = catalog.outbound_rate(country, number_type)
                plan_type.append(ti)
                plan_len.append(plan.length)
                prefix_offset.append(len(prefixes))
                prefix_count.append(len(plan.prefixes))
                prefixes.extend(plan.prefixes)
        self.plan_type = np.array(plan_type, dtype=np.int64)
        self.plan_len = np.array(plan_len, dtype=np.int64)
        self.prefix_offset = np.array(prefix_offset, dtype=np.int64)
        self.prefix_count = np.array(prefix_count, dtype=np.int64)
        self.prefixes = pl.Series(prefixes)
        self.prefix_len = np.array([len(p) for p in prefixes], dtype=np.int64)
        carriers: list[str] = []
        carrier_offset: list[int] = []
        carrier_count: list[int] = []
        for country in countries:
            carrier_offset.append(len(carriers))
            carrier_count.append(len(country.carriers))
            carriers.extend(country.carriers)
        self.carriers = pl.Series(carriers)
        self.carriers_json = pl.Series([_json(c) for c in carriers])
        self.carrier_offset = np.array(carrier_offset, dtype=np.int64)
        self.carrier_count = np.array(carrier_count, dtype=np.int64)
        # Every ordered choice of 0-3 distinct tags, grouped by size: a record's tags are one
        # index, so both the typed list and its JSON text are a single gather.
        combos: list[tuple[str, ...]] = []
        self.tag_combo_offset = np.zeros(4, dtype=np.int64)
        self.tag_combo_size = np.zeros(4, dtype=np.int64)
        for size in range(4):
            self.tag_combo_offset[size] = len(combos)
            chosen = list(itertools.permutations(catalog.TAGS, size))
            self.tag_combo_size[size] = len(chosen)
            combos.extend(chosen)
        self.tag_lists = pl.Series([list(c) for c in combos], dtype=pl.List(pl.String))
        self.tag_json = pl.Series([orjson.dumps(list(c)).decode() for c in combos])
        self.connections = _PartyTable(catalog.CONNECTIONS)
        self.profiles = _PartyTable(catalog.MESSAGING_PROFILES)
        outcomes = [catalog.ANSWERED] + [row[:3] for row in catalog.UNANSWERED]
        self.outcome_status = pl.Series([o[0] for o in outcomes])
        self.outcome_cause = pl.Series([o[1] for o in outcomes])
        self.outcome_sip = np.array([o[2] for o in outcomes], dtype=np.int64)
        unanswered = np.array([row[3] for row in catalog.UNANSWERED])
        self.unanswered_p = unanswered / unanswered.sum()
        ring = [catalog.RING_SECS[o[0]] for o in outcomes[1:]]
        self.ring_lo = np.array([0.0] + [r[0] for r in ring])
        self.ring_hi = np.array([0.0] + [r[1] for r in ring])
        # Message statuses: index 0 is "received" (inbound), then the outbound mix.
        self.message_status = pl.Series(["received"] + [s for s, _ in catalog.MESSAGE_STATUSES])
        status_p = np.array([p for _, p in catalog.MESSAGE_STATUSES])
        self.message_status_p = status_p / status_p.sum()
        errors: list[tuple[str, str]] = []
        self.error_offset = np.zeros(len(self.message_status), dtype=np.int64)
        self.error_count = np.zeros(len(self.message_status), dtype=np.int64)
        for si, status in enumerate(self.message_status.to_list()):
            options = catalog.MESSAGE_ERRORS.get(status, ())
            self.error_offset[si] = len(errors)
            self.error_count[si] = len(options)
            errors.extend(options)
        self.error_codes = pl.Series([code for code, _ in errors], dtype=pl.String)
        self.error_titles = pl.Series([title for _, title in errors], dtype=pl.String)
        self.status_index = {name: i for i, name in enumerate(self.message_status.to_list())}
        # Outbound status mixes without a failure (a delivery_failure's non-failed draws) and
        # without a delivery but still charged (sms_pumping's undelivered messages).
        self.not_failed_p = _mix(lambda s: s != "delivery_failed")
        self.undelivered_p = _mix(lambda s: s in ("sent", "delivery_failed", "delivery_unconfirmed"))
        self.errors_json = pl.Series(
            [orjson.dumps([{"code": code, "title": title}]).decode() for code, title in errors], dtype=pl.String
        )
        # Inbound legs: rate by our DID's country (row 0 US, row 1 GB) and the caller's number type.
        self.inbound_rate = np.array(
            [[catalog.INBOUND_RATES[c].get(t, catalog.INBOUND_RATES[c]["local"]) for t in catalog.NUMBER_TYPES]
             for c in catalog.DID_COUNTRIES],
            dtype=np.int64,
        )


class _PartyTable:
    """Connections or messaging profiles as arrays: pick weights, ids, names, EUR billing."""

    def __init__(self, parties: tuple[catalog.Party, ...]) -> None:
        weights = np.array([p.weight for p in parties])
        self.p = weights / weights.sum()
        self.id = pl.Series([p.id for p in parties])
        self.name = pl.Series([p.name for p in parties])
        self.name_json = pl.Series([_json(p.name) for p in parties])
        self.eur = np.array([p.currency == "EUR" for p in parties])


def _json(text: str) -> str:
    return orjson.dumps(text).decode()


def _mix(keep: Callable[[str], bool]) -> np.ndarray:
    """The outbound message-status weights restricted to the statuses `keep` accepts, normalised."""
    weights = np.array([w if keep(s) else 0.0 for s, w in catalog.MESSAGE_STATUSES])
    return weights / weights.sum()


_T = _Tables()
_CONNECTION_INDEX = {party.id: i for i, party in enumerate(catalog.CONNECTIONS)}
# A carrier name can serve several countries (e.g. "Claro"): all its catalog positions.
_CARRIER_INDICES = {
    name: tuple(int(i) for i in np.flatnonzero(_T.carriers.to_numpy() == name)) for name in set(_T.carriers)
}


class _Dids:
    """Our own numbers: a per-seed pool of US and UK DIDs."""

    def __init__(self, numbers: pl.Series, is_gb: np.ndarray) -> None:
        self.numbers = numbers
        self.is_gb = is_gb


def _did_pool(rng: np.random.Generator) -> _Dids:
    size = catalog.DID_POOL_SIZE
    is_gb = rng.random(size) < catalog.DID_SHARE_GB
    numbers = []
    for gb in is_gb:
        calling_code, plan = catalog.DID_PLANS["GB" if gb else "US"]
        prefix = plan.prefixes[int(rng.integers(len(plan.prefixes)))]
        rest = "".join(str(d) for d in rng.integers(0, 10, plan.length - len(prefix)))
        numbers.append(f"+{calling_code}{prefix}{rest}")
    return _Dids(pl.Series(numbers), is_gb)


# ---------------------------------------------------------------------------------------
# Generation: one day of one kind as a frame of raw columns (ints, indices, strings).


def _uuids(rng: np.random.Generator, n: int) -> pl.Series:
    """`n` random version-4 UUID strings, built from random bytes without a Python loop."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hex_digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    chars = np.empty((n, 32), dtype=np.uint8)
    chars[:, 0::2] = hex_digits[raw >> 4]
    chars[:, 1::2] = hex_digits[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    # 8-4-4-4-12 hex digits: (first digit, first column in the text, width) per group.
    for src, dst, width in ((0, 0, 8), (8, 9, 4), (12, 14, 4), (16, 19, 4), (20, 24, 12)):
        text[:, dst : dst + width] = chars[:, src : src + width]
    return pl.Series(text.view("S36").reshape(n)).cast(pl.String)


def _digits(rng: np.random.Generator, n: int, width: int = 15) -> pl.Series:
    """`n` strings of `width` random decimal digits."""
    chars = rng.integers(ord("0"), ord("9") + 1, size=(n, width), dtype=np.uint8)
    return pl.Series(chars.view(f"S{width}").reshape(n)).cast(pl.String)


def _created_ms(rng: np.random.Generator, n: int, day_ms: int) -> np.ndarray:
    """Creation instants (epoch ms) within the day, following the diurnal shape."""
    hourly = np.array(catalog.HOURLY_SHAPE)
    hours = rng.choice(24, size=n, p=hourly / hourly.sum())
    return day_ms + hours * 3_600_000 + rng.integers(0, 3_600_000, size=n)


@dataclass(frozen=True, slots=True)
class _Parties:
    """Both ends of each record: direction, the remote party (country, number type), cli/cld."""

    outbound: np.ndarray
    country: np.ndarray
    number_type: np.ndarray
    did_gb: np.ndarray
    direction: pl.Series
    cli: pl.Series
    cld: pl.Series
    calling_code: pl.Series


def _parties(rng: np.random.Generator, n: int, dids: _Dids, outbound_share: float, calls: bool) -> _Parties:
    """Direction, remote party (country, number type, E.164 in its plan), our DID, cli/cld."""
    outbound = rng.random(n) < outbound_share
    country = rng.choice(len(_T.country_p), size=n, p=_T.country_p)
    out_w = np.array(catalog.OUTBOUND_TYPE_WEIGHTS)
    in_w = np.array(catalog.INBOUND_TYPE_WEIGHTS)
    type_out = rng.choice(4, size=n, p=out_w / out_w.sum())
    type_in = rng.choice(4, size=n, p=in_w / in_w.sum())
    wanted_type = np.where(outbound, type_out, type_in)
    if not calls:
        # Messages go to mobiles and local (landline-texting) numbers only.
        wanted_type = np.where(wanted_type > 1, 1, wanted_type)
    plan = _T.plan_of[country, wanted_type]
    number_type = _T.plan_type[plan]
    prefix = _T.prefix_offset[plan] + (rng.random(n) * _T.prefix_count[plan]).astype(np.int64)
    rest_len = _T.plan_len[plan] - _T.prefix_len[prefix]
    random_digits = _digits(rng, n)
    did = rng.integers(0, len(dids.numbers), size=n)
    return _assemble_parties(
        outbound, country, number_type, _T.prefixes.gather(prefix), rest_len, random_digits, did, dids
    )


def _parties_to(
    rng: np.random.Generator, n: int, dids: _Dids, country: int, plans: tuple[tuple[str, catalog.Plan], ...]
) -> _Parties:
    """Outbound legs to one country's numbers in the given (number type, plan) ranges."""
    plan = rng.integers(0, len(plans), size=n)
    pick = rng.random(n)
    prefixes = [plans[i][1].prefixes[int(u * len(plans[i][1].prefixes))] for i, u in zip(plan.tolist(), pick.tolist())]
    lengths = np.array([p.length for _, p in plans], dtype=np.int64)[plan]
    rest_len = lengths - np.array([len(prefix) for prefix in prefixes], dtype=np.int64)
    types = np.array([catalog.NUMBER_TYPES.index(t) for t, _ in plans], dtype=np.int64)[plan]  # type: ignore[arg-type]
    random_digits = _digits(rng, n)
    did = rng.integers(0, len(dids.numbers), size=n)
    return _assemble_parties(
        np.ones(n, dtype=bool), np.full(n, country, dtype=np.int64), types,
        pl.Series(prefixes, dtype=pl.String), rest_len, random_digits, did, dids,
    )


def _assemble_parties(
    outbound: np.ndarray,
    country: np.ndarray,
    number_type: np.ndarray,
    prefixes: pl.Series,
    rest_len: np.ndarray,
    random_digits: pl.Series,
    did: np.ndarray,
    dids: _Dids,
) -> _Parties:
    """Drawn parts -> both ends of each record: the remote E.164 number and our DID as cli/cld."""
    frame = pl.DataFrame(
        {
            "prefix": prefixes,
            "calling_code": _T.calling_codes.gather(country),
            "digits": random_digits,
            "rest_len": rest_len,
            "our": dids.numbers.gather(did),
        }
    ).select(
        remote=pl.concat_str(
            pl.lit("+"), "calling_code", "prefix", pl.col("digits").str.slice(0, pl.col("rest_len"))
        ),
        our=pl.col("our"),
        calling_code=pl.col("calling_code"),
    )
    remote, our = frame.get_column("remote"), frame.get_column("our")
    out_s = pl.Series(outbound)
    return _Parties(
        outbound=outbound,
        country=country,
        number_type=number_type,
        did_gb=dids.is_gb[did],
        direction=pl.Series(np.where(outbound, "outbound", "inbound")).cast(pl.String),
        cli=pl.select(pl.when(out_s).then(our).otherwise(remote)).to_series(),
        cld=pl.select(pl.when(out_s).then(remote).otherwise(our)).to_series(),
        calling_code=frame.get_column("calling_code"),
    )


def _tags(rng: np.random.Generator, n: int) -> np.ndarray:
    """0-3 distinct tags per record, as indices into the catalog's tag combinations."""
    weights = np.array(catalog.TAG_COUNT_WEIGHTS)
    count = rng.choice(len(weights), size=n, p=weights / weights.sum())
    return _T.tag_combo_offset[count] + (rng.random(n) * _T.tag_combo_size[count]).astype(np.int64)


def _half_up_div(numerator: np.ndarray, denominator: int) -> np.ndarray:
    """Non-negative integer division rounded half-up, exactly."""
    return (2 * numerator + denominator) // (2 * denominator)


def _calls(
    rng: np.random.Generator, n: int, day_ms: int, dids: _Dids, overrides: tuple[Override, ...] = ()
) -> pl.DataFrame:
    """`n` call legs created on the day starting at `day_ms`: raw columns, money in micro-units.

    `overrides` (asr_drop anomalies) replace the country's answer ratio where they apply.
    """
    created = np.sort(_created_ms(rng, n, day_ms))
    ids = _uuids(rng, n)
    sessions = _uuids(rng, n)
    # Some calls have a second leg: it shares the previous leg's session and is created
    # within seconds of it.
    second = rng.random(n) < SECOND_LEG_SHARE
    second[0] = False
    second[1:] &= ~second[:-1]
    parent = np.maximum.accumulate(np.where(second, 0, np.arange(n)))
    created = np.where(
        second,
        np.minimum(created[parent] + rng.integers(0, 3000, size=n), day_ms + DAY_MS - 1),
        created,
    )
    sessions = sessions.gather(parent)
    p = _parties(rng, n, dids, catalog.OUTBOUND_SHARE_CALLS, calls=True)
    country, outbound = p.country, p.outbound
    connection = rng.choice(len(_T.connections.p), size=n, p=_T.connections.p)
    tags = _tags(rng, n)

    # Outcome: answered with the country's ASR, else the unanswered mix.
    asr = _T.asr[country]
    for rule in overrides:
        asr = np.where(rule.applies(created, outbound, country, connection=connection), rule.rate, asr)
    answered = rng.random(n) < asr
    outcome = _outcomes(rng, answered)
    ring_ms = _ring_ms(rng, answered, outcome)
    # Talk time: long-tailed (log-normal, median ~75 s, capped at 4 h) with a share of
    # very short calls under 6 s, which exercise the billing minimums.
    long_talk = np.clip(rng.lognormal(np.log(75_000), 1.1, size=n), 6_000, 4 * 3_600_000).astype(np.int64)
    short_talk = rng.integers(400, 6000, size=n)
    talk_ms = np.where(answered, np.where(rng.random(n) < SHORT_CALL_SHARE, short_talk, long_talk), 0)
    return _call_frame(rng, ids, sessions, created, p, connection, tags, answered, outcome, ring_ms, talk_ms)


def _outcomes(rng: np.random.Generator, answered: np.ndarray) -> np.ndarray:
    """Outcome indices: 0 (answered) where answered, else drawn from the unanswered mix."""
    other = 1 + rng.choice(len(_T.unanswered_p), size=len(answered), p=_T.unanswered_p)
    return np.where(answered, 0, other)


def _ring_ms(rng: np.random.Generator, answered: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Milliseconds of ringing: a few seconds before an answer, else the outcome's range."""
    ring_ms = np.where(
        answered,
        rng.integers(2000, 20000, size=len(answered)),
        (rng.uniform(_T.ring_lo[outcome], _T.ring_hi[outcome]) * 1000).astype(np.int64),
    )
    return np.maximum(ring_ms, 1)


def _call_frame(
    rng: np.random.Generator,
    ids: pl.Series,
    sessions: pl.Series,
    created: np.ndarray,
    p: _Parties,
    connection: np.ndarray,
    tags: np.ndarray,
    answered: np.ndarray,
    outcome: np.ndarray,
    ring_ms: np.ndarray,
    talk_ms: np.ndarray,
) -> pl.DataFrame:
    """Drawn call legs -> raw columns: timestamps back from created, billing, rate and cost."""
    n = len(created)
    country, outbound = p.country, p.outbound
    settle_ms = rng.integers(200, 5000, size=n)
    ended = created - settle_ms
    answered_at = ended - talk_ms
    started = answered_at - ring_ms
    duration = (ended - started + 999) // 1000
    talk_secs = (talk_ms + 999) // 1000

    # Billing: the destination's scheme for outbound legs, our DID's country for inbound.
    did_gb = p.did_gb
    inbound_initial = np.where(did_gb, catalog.PER_MINUTE[0], catalog.SIX_SIX[0])
    inbound_increment = np.where(did_gb, catalog.PER_MINUTE[1], catalog.SIX_SIX[1])
    initial = np.where(outbound, _T.billing_initial[country], inbound_initial)
    increment = np.where(outbound, _T.billing_increment[country], inbound_increment)
    beyond = np.maximum(talk_secs - initial, 0)
    billed = np.where(talk_secs <= initial, initial, initial + -(-beyond // increment) * increment)
    billed = np.where(answered, billed, 0)

    number_type = p.number_type
    inbound_rate = _T.inbound_rate[did_gb.astype(np.int64), number_type]
    rate = np.where(outbound, _T.rate_of[country, number_type], inbound_rate)
    eur = _T.connections.eur[connection]
    rate = np.where(eur, _half_up_div(rate * catalog.EUR_PER_USD_PERCENT, 100), rate)
    cost = _half_up_div(rate * billed, 60)

    conn = _T.connections
    return pl.DataFrame(
        {
            "id": ids,
            "call_session_id": sessions,
            "direction": p.direction,
            "cli": p.cli,
            "cld": p.cld,
            "country_code": _T.country_codes.gather(country),
            "country_calling_code": p.calling_code,
            "number_type": _T.number_types.gather(number_type),
            "connection.id": conn.id.gather(connection),
            "connection.name": conn.name.gather(connection),
            "_connection_json": conn.name_json.gather(connection),
            "_tags": tags,
            "status": _T.outcome_status.gather(outcome),
            "hangup_cause": _T.outcome_cause.gather(outcome),
            "sip_response_code": _T.outcome_sip[outcome],
            "_started": started,
            "_answered": np.where(answered, answered_at, -1),
            "_ended": ended,
            "_created": created,
            "_updated": created,
            "duration_secs": duration,
            "billed_duration_secs": billed,
            "billing_initial_secs": initial,
            "billing_increment_secs": increment,
            "_rate": rate,
            "_cost": cost,
            "_units": billed,
            "currency": pl.Series(np.where(eur, "EUR", "USD")).cast(pl.String),
            "_forms": rng.integers(0, 20, size=(n, 3), dtype=np.int64),
        }
    ).with_columns(pl.col("_answered").replace(-1, None))


def _messages(
    rng: np.random.Generator,
    n: int,
    day_ms: int,
    dids: _Dids,
    overrides: tuple[Override, ...] = (),
    override_rng: np.random.Generator | None = None,
) -> pl.DataFrame:
    """`n` messages created on the day starting at `day_ms`: raw columns, money in micro-units.

    `overrides` (delivery_failure anomalies) set the failure share where they apply,
    drawing from `override_rng` so that the other records stay as they are.
    """
    created = np.sort(_created_ms(rng, n, day_ms))
    ids = _uuids(rng, n)
    p = _parties(rng, n, dids, catalog.OUTBOUND_SHARE_MESSAGES, calls=False)
    country, outbound = p.country, p.outbound
    profile = rng.choice(len(_T.profiles.p), size=n, p=_T.profiles.p)
    tags = _tags(rng, n)

    mms = rng.random(n) < catalog.MMS_SHARE
    ucs2 = rng.random(n) < _T.ucs2_share[country]
    # Body length in characters: mostly one segment, a tail of long concatenated texts.
    length = np.clip(rng.lognormal(np.log(90), 0.8, size=n), 1, 1600).astype(np.int64)
    single = np.where(ucs2, catalog.SEGMENTS["ucs2"][0], catalog.SEGMENTS["gsm7"][0])
    per_part = np.where(ucs2, catalog.SEGMENTS["ucs2"][1], catalog.SEGMENTS["gsm7"][1])
    parts = np.where(length <= single, 1, -(-length // per_part))
    parts = np.where(mms, 1, parts)

    status = np.where(outbound, 1 + rng.choice(len(_T.message_status_p), size=n, p=_T.message_status_p), 0)
    return _message_frame(
        rng, ids, created, p, profile, tags, mms, ucs2, parts, status, overrides, override_rng
    )


def _message_frame(
    rng: np.random.Generator,
    ids: pl.Series,
    created: np.ndarray,
    p: _Parties,
    profile: np.ndarray,
    tags: np.ndarray,
    mms: np.ndarray,
    ucs2: np.ndarray,
    parts: np.ndarray,
    status: np.ndarray,
    overrides: tuple[Override, ...] = (),
    override_rng: np.random.Generator | None = None,
) -> pl.DataFrame:
    """Drawn messages -> raw columns: carrier, send and completion times, errors, rate and fees."""
    n = len(created)
    country, outbound = p.country, p.outbound
    # Every draw comes before the status is read, so an override changes only its records.
    sent = created + rng.integers(50, 1500, size=n)
    slow = sent + rng.integers(60_000, 600_000, size=n)
    quick = sent + rng.integers(1_000, 20_000, size=n)
    rejected = created + rng.integers(20, 500, size=n)
    error_pick = rng.random(n)
    carrier = _T.carrier_offset[country] + (rng.random(n) * _T.carrier_count[country]).astype(np.int64)
    if overrides and override_rng is None:
        raise ValueError("message overrides need their own generator")
    for rule in overrides:
        hit = rule.applies(created, outbound, country, carrier=carrier)
        status = _fail_at(override_rng, status, hit, rule.rate)

    status_names = _T.message_status.gather(status)
    names = status_names.to_numpy()
    sent_needed = np.isin(names, ["sent", "delivered", "delivery_failed", "delivery_unconfirmed"])
    completed_after_send = np.isin(names, ["delivered", "delivery_failed", "delivery_unconfirmed"])
    completed = np.where(names == "delivery_unconfirmed", slow, quick)
    completed = np.where(names == "gateway_rejected", rejected, completed)
    completed = np.where(names == "received", created, completed)
    has_completed = completed_after_send | np.isin(names, ["gateway_rejected", "received"])
    updated = np.maximum(created, np.where(has_completed, completed, np.where(sent_needed, sent, created)))

    error_count = _T.error_count[status]
    error = np.where(
        error_count > 0, _T.error_offset[status] + (error_pick * np.maximum(error_count, 1)).astype(np.int64), -1
    )

    did_gb = p.did_gb
    inbound_rate = np.where(did_gb, catalog.INBOUND_SMS_RATES["GB"], catalog.INBOUND_SMS_RATES["US"])
    rate = np.where(outbound, _T.sms_rate[country], inbound_rate)
    rate = np.where(mms, rate * catalog.MMS_MULTIPLIER, rate)
    # A message the gateway rejected is not charged.
    rate = np.where(names == "gateway_rejected", 0, rate)
    is_us = _T.country_codes.gather(country).to_numpy() == "US"
    fee_per_part = np.where(mms, catalog.US_CARRIER_FEE["mms"], catalog.US_CARRIER_FEE["sms"])
    fee = np.where(outbound & is_us & (names != "gateway_rejected"), fee_per_part * parts, 0)
    eur = _T.profiles.eur[profile]
    rate = np.where(eur, _half_up_div(rate * catalog.EUR_PER_USD_PERCENT, 100), rate)
    fee = np.where(eur, _half_up_div(fee * catalog.EUR_PER_USD_PERCENT, 100), fee)
    cost = rate * parts

    prof = _T.profiles
    return pl.DataFrame(
        {
            "id": ids,
            "direction": p.direction,
            "cli": p.cli,
            "cld": p.cld,
            "country_code": _T.country_codes.gather(country),
            "message_type": pl.Series(np.where(mms, "mms", "sms")).cast(pl.String),
            "encoding": pl.Series(np.where(ucs2, "ucs2", "gsm7")).cast(pl.String),
            "parts": parts,
            "status": status_names,
            "carrier": _T.carriers.gather(carrier),
            "_carrier_json": _T.carriers_json.gather(carrier),
            "messaging_profile.id": prof.id.gather(profile),
            "messaging_profile.name": prof.name.gather(profile),
            "_profile_json": prof.name_json.gather(profile),
            "_tags": tags,
            "_error": error,
            "_created": created,
            "_sent": np.where(sent_needed, sent, -1),
            "_completed": np.where(has_completed, completed, -1),
            "_updated": updated,
            "_rate": rate,
            "_cost": cost,
            "_fee": fee,
            "_units": parts,
            "currency": pl.Series(np.where(eur, "EUR", "USD")).cast(pl.String),
            "_forms": rng.integers(0, 20, size=(n, 3), dtype=np.int64),
        }
    ).with_columns(pl.col("_sent", "_completed").replace(-1, None))


# ---------------------------------------------------------------------------------------
# Anomalies: known incidents on top of the normal traffic (`sandbox.anomalies` parses them).


@dataclass(frozen=True, slots=True)
class Override:
    """An asr_drop or delivery_failure as arrays see it: where it applies and the rate it sets."""

    start_ms: int
    end_ms: int
    rate: float
    country: int = -1
    connection: int = -1
    carriers: tuple[int, ...] = ()

    def applies(
        self,
        created: np.ndarray,
        outbound: np.ndarray,
        country: np.ndarray,
        *,
        connection: np.ndarray | None = None,
        carrier: np.ndarray | None = None,
    ) -> np.ndarray:
        """Which records it applies to: outbound, created in its window, its country/connection/carrier."""
        hit = outbound & (created >= self.start_ms) & (created < self.end_ms)
        if self.country >= 0:
            hit &= country == self.country
        if self.connection >= 0:
            hit &= connection == self.connection
        if self.carriers:
            hit &= np.isin(carrier, self.carriers)
        return hit


def _fail_at(rng: np.random.Generator, status: np.ndarray, hit: np.ndarray, rate: float) -> np.ndarray:
    """Where `hit`: delivery_failed with probability `rate`, else the record's own status
    (a failed one redrawn from the other outbound statuses), so the failure share is `rate`."""
    n = len(status)
    failed = _T.status_index["delivery_failed"]
    fail = rng.random(n) < rate
    redraw = 1 + rng.choice(len(_T.not_failed_p), size=n, p=_T.not_failed_p)
    kept = np.where(status == failed, redraw, status)
    return np.where(hit, np.where(fail, failed, kept), status)


# IRSF calls are mostly answered (the fraudster's number picks up) and held open to run up
# the bill: log-normal talk time around 12 minutes, from 3 minutes to 2 hours.
IRSF_ANSWER_SHARE = 0.9
IRSF_TALK_MEDIAN_MS = 12 * 60_000
IRSF_TALK_SIGMA = 0.7
IRSF_TALK_RANGE_MS = (3 * 60_000, 2 * 3_600_000)


def _irsf_calls(
    rng: np.random.Generator, created: np.ndarray, country: int, connection: int, dids: _Dids
) -> pl.DataFrame:
    """IRSF call legs: outbound to the country's high-risk (or premium) ranges, long and answered."""
    n = len(created)
    ids, sessions = _uuids(rng, n), _uuids(rng, n)
    p = _parties_to(rng, n, dids, country, catalog.high_risk_plans(catalog.DESTINATIONS[country]))
    tags = _tags(rng, n)
    answered = rng.random(n) < IRSF_ANSWER_SHARE
    outcome = _outcomes(rng, answered)
    ring_ms = _ring_ms(rng, answered, outcome)
    talk = np.clip(rng.lognormal(np.log(IRSF_TALK_MEDIAN_MS), IRSF_TALK_SIGMA, size=n), *IRSF_TALK_RANGE_MS)
    talk_ms = np.where(answered, talk.astype(np.int64), 0)
    return _call_frame(
        rng, ids, sessions, created, p, np.full(n, connection), tags, answered, outcome, ring_ms, talk_ms
    )


def _short_calls(
    rng: np.random.Generator, created: np.ndarray, country: int, connection: int, max_secs: int, dids: _Dids
) -> pl.DataFrame:
    """A burst's call legs: answered outbound calls to local and mobile numbers, ring and talk within max_secs."""
    n = len(created)
    ids, sessions = _uuids(rng, n), _uuids(rng, n)
    destination = catalog.DESTINATIONS[country]
    plans = (("local", destination.plans["local"]), ("mobile", destination.plans["mobile"]))
    p = _parties_to(rng, n, dids, country, plans)
    tags = _tags(rng, n)
    total_ms = rng.integers(500, max_secs * 1000, size=n, endpoint=True)
    ring_ms = np.maximum((total_ms * rng.uniform(0.1, 0.4, size=n)).astype(np.int64), 1)
    answered = np.ones(n, dtype=bool)
    return _call_frame(
        rng, ids, sessions, created, p, np.full(n, connection), tags, answered, np.zeros(n, dtype=np.int64),
        ring_ms, total_ms - ring_ms,
    )


def _pumped_messages(
    rng: np.random.Generator, created: np.ndarray, country: int, delivery_rate: float, dids: _Dids
) -> pl.DataFrame:
    """Pumped SMS: one-part GSM-7 texts (OTP codes) to the country's mobiles, few delivered."""
    n = len(created)
    ids = _uuids(rng, n)
    p = _parties_to(rng, n, dids, country, (("mobile", catalog.DESTINATIONS[country].plans["mobile"]),))
    profile = rng.choice(len(_T.profiles.p), size=n, p=_T.profiles.p)
    tags = _tags(rng, n)
    delivered = rng.random(n) < delivery_rate
    undelivered = 1 + rng.choice(len(_T.undelivered_p), size=n, p=_T.undelivered_p)
    status = np.where(delivered, _T.status_index["delivered"], undelivered)
    no = np.zeros(n, dtype=bool)
    return _message_frame(rng, ids, created, p, profile, tags, no, no, np.ones(n, dtype=np.int64), status)


def _spread(rng: np.random.Generator, total: int, start_ms: int, end_ms: int) -> dict[date, int]:
    """`total` events over [start_ms, end_ms) -> how many fall on each UTC day, by the days' overlap."""
    first = start_ms // DAY_MS
    last = (end_ms - 1) // DAY_MS
    bounds = np.arange(first, last + 2, dtype=np.int64) * DAY_MS
    overlap = np.minimum(bounds[1:], end_ms) - np.maximum(bounds[:-1], start_ms)
    counts = rng.multinomial(total, overlap / overlap.sum())
    epoch = date(1970, 1, 1)
    return {epoch + timedelta(days=int(first + i)): int(c) for i, c in enumerate(counts) if c}


def _ms(moment: datetime) -> int:
    return _epoch_us(moment) // 1000


def _add_rerating(raw: pl.DataFrame, rng: np.random.Generator, share: float, kind: str) -> pl.DataFrame:
    """Pick a share of records for a later re-rating: new rate and cost, at created + 10 min..3 days."""
    n = raw.height
    chosen = rng.random(n) < share
    factor = rng.uniform(0.8, 1.25, size=n)
    delay = rng.integers(RERATE_MIN_MS, RERATE_MAX_MS + 1, size=n)
    rate = raw.get_column("_rate").to_numpy()
    units = raw.get_column("_units").to_numpy()
    new_rate = np.maximum(np.rint(rate * factor).astype(np.int64), 1)
    new_rate = np.where(new_rate == rate, rate + 1, new_rate)
    new_cost = _half_up_div(new_rate * units, 60) if kind == "cdrs" else new_rate * units
    return raw.with_columns(
        _rerated=pl.Series(chosen),
        # Always after the record's own last update, so the newest updated_at is the re-rating.
        _rerate_at=pl.Series(
            np.maximum(raw.get_column("_created").to_numpy() + delay, raw.get_column("_updated").to_numpy() + 1000)
        ),
        _rerate_rate=pl.Series(new_rate),
        _rerate_cost=pl.Series(new_cost),
        _rerate_forms=pl.Series(rng.integers(0, 20, size=(n, 3), dtype=np.int64)),
    )


def _add_malformed(raw: pl.DataFrame, rng: np.random.Generator, share: float, kind: str) -> pl.DataFrame:
    """Mark a share of records malformed, with a reason and which defect variant to show."""
    n = raw.height
    reasons = catalog.MALFORMED_REASONS[kind]
    chosen = rng.random(n) < share
    reason = rng.integers(0, len(reasons), size=n)
    variant = rng.integers(0, 2, size=n)
    return raw.with_columns(
        malformed=pl.when(pl.Series(chosen)).then(pl.Series(reasons, dtype=pl.String).gather(reason)),
        _variant=pl.Series(variant),
    )


# ---------------------------------------------------------------------------------------
# Finishing: typed columns and the JSON text of every record, built as polars expressions.



Piece = str | pl.Expr

_TS_JSON_FORMAT = '"%Y-%m-%dT%H:%M:%S%.3fZ"'
# Spellings of zero, and of every amount below 0.001 (micro-units 1-999) in exponent form.
_ZERO_FORMS = pl.Series(["0", "0.0", "0.000000"])
_EXPONENT_FORMS = pl.Series(
    [""] + [f"{d[0]}{'.' + d[1:] if len(d) > 1 else ''}E-{7 - len(str(v))}" for v in range(1, 1000)
            for d in [str(v).rstrip("0")]]
)


def _ts(column: str) -> pl.Expr:
    """Epoch-ms integers -> the typed UTC timestamp column (microsecond unit, ms values)."""
    return pl.col(column).cast(pl.Datetime("ms", "UTC")).cast(TIMESTAMP)


def _ts_json(column: str) -> pl.Expr:
    """Epoch-ms integers -> JSON text: a quoted `...ss.fffZ` string, or null."""
    # A naive datetime formats faster than a zoned one; the values are UTC either way.
    return pl.col(column).cast(pl.Datetime("ms")).dt.to_string(_TS_JSON_FORMAT).fill_null(pl.lit("null"))


def _money(column: str) -> pl.Expr:
    """Integer micro-units -> exact Decimal(38, 9)."""
    return pl.col(column).cast(MONEY) / 1_000_000


def _money_text(value: pl.Expr, form: pl.Expr) -> pl.Expr:
    """Integer micro-units -> a decimal string in one of the spellings the API uses.

    `form` (0-19) picks it: zero as "0", "0.0" or "0.000000"; other amounts mostly plain
    with 6 decimals, some with trailing zeros trimmed, and amounts below 0.001 often in
    exponent form ("1.66E-4").
    """
    plain = (value.cast(MONEY) / 1_000_000).cast(pl.Decimal(38, 6)).cast(pl.String)
    return (
        pl.when(value == 0)
        .then(pl.lit(_ZERO_FORMS).gather(form % 3))
        .when((value < 1000) & (form >= 12))
        .then(pl.lit(_EXPONENT_FORMS).gather(value.clip(0, 999)))
        .when(form < 12)
        .then(plain)
        .otherwise(plain.str.strip_chars_end("0").str.strip_chars_end("."))
    )


def _defect(reason: str, good: pl.Expr, bad: tuple[str, str]) -> pl.Expr:
    """`good` JSON text, or one of two defective spellings for records malformed by `reason`."""
    return (
        pl.when(pl.col("malformed") == reason)
        .then(pl.when(pl.col("_variant") == 0).then(pl.lit(_json(bad[0]))).otherwise(pl.lit(_json(bad[1]))))
        .otherwise(good)
    )


def _record_json(kind: str, rate: str, cost: str, updated: str, forms: str) -> pl.Expr:
    """The record's JSON object text, keys in contract order, defects applied if malformed.

    Built as one `concat_str` over literal and column pieces: strings that can need
    escaping (names, carriers, tags, errors) come pre-encoded from the catalog.
    """
    form = pl.col(forms)
    created = _defect("bad_timestamp", _ts_json("_created"), catalog.BAD_TIMESTAMPS)
    cld = _defect("bad_number", pl.lit('"') + pl.col("cld") + pl.lit('"'), catalog.BAD_NUMBERS)
    tags = pl.lit(_T.tag_json).gather(pl.col("_tags"))
    fields: list[tuple[str, list[Piece]]]
    if kind == "cdrs":
        duration = (
            pl.when(pl.col("malformed") == "negative_duration")
            .then(-(pl.col("duration_secs") + 1))
            .otherwise(pl.col("duration_secs"))
        )
        fields = [
            ("record_type", ['"call"']),
            ("call_session_id", ['"', pl.col("call_session_id"), '"']),
            ("direction", ['"', pl.col("direction"), '"']),
            ("cli", ['"', pl.col("cli"), '"']),
            ("cld", [cld]),
            ("country_code", ['"', pl.col("country_code"), '"']),
            ("country_calling_code", ['"', pl.col("country_calling_code"), '"']),
            ("number_type", ['"', pl.col("number_type"), '"']),
            ("connection", ['{"id":"', pl.col("connection.id"), '","name":', pl.col("_connection_json"), "}"]),
            ("tags", [tags]),
            ("status", ['"', pl.col("status"), '"']),
            ("hangup_cause", ['"', pl.col("hangup_cause"), '"']),
            ("sip_response_code", [pl.col("sip_response_code")]),
            ("started_at", [_ts_json("_started")]),
            ("answered_at", [_ts_json("_answered")]),
            ("ended_at", [_ts_json("_ended")]),
            ("created_at", [created]),
            ("updated_at", [_ts_json(updated)]),
            ("duration_secs", [duration]),
            ("billed_duration_secs", [pl.col("billed_duration_secs")]),
            ("billing_initial_secs", [pl.col("billing_initial_secs")]),
            ("billing_increment_secs", [pl.col("billing_increment_secs")]),
            ("rate", ['"', _money_text(pl.col(rate), form.arr.get(0)), '"']),
            ("cost", ['"', _money_text(pl.col(cost), form.arr.get(1)), '"']),
            ("currency", ['"', pl.col("currency"), '"']),
        ]
    else:
        errors = (
            pl.when(pl.col("_error") >= 0)
            .then(pl.lit(_T.errors_json).gather(pl.col("_error").clip(0)))
            .otherwise(pl.lit("[]"))
        )
        fields = [
            ("record_type", ['"message"']),
            ("direction", ['"', pl.col("direction"), '"']),
            ("cli", ['"', pl.col("cli"), '"']),
            ("cld", [cld]),
            ("country_code", ['"', pl.col("country_code"), '"']),
            ("message_type", ['"', pl.col("message_type"), '"']),
            ("encoding", ['"', pl.col("encoding"), '"']),
            ("parts", [pl.col("parts")]),
            ("status", ['"', pl.col("status"), '"']),
            ("carrier", [pl.col("_carrier_json")]),
            ("messaging_profile", [
                '{"id":"', pl.col("messaging_profile.id"), '","name":', pl.col("_profile_json"), "}"
            ]),
            ("tags", [tags]),
            ("errors", [errors]),
            ("created_at", [created]),
            ("sent_at", [_ts_json("_sent")]),
            ("completed_at", [_ts_json("_completed")]),
            ("updated_at", [_ts_json(updated)]),
            ("rate", ['"', _money_text(pl.col(rate), form.arr.get(0)), '"']),
            ("cost", ['"', _money_text(pl.col(cost), form.arr.get(1)), '"']),
            ("carrier_fee", ['"', _money_text(pl.col("_fee"), form.arr.get(2)), '"']),
            ("currency", ['"', pl.col("currency"), '"']),
        ]
    opening = (
        pl.when(pl.col("malformed") == "missing_id")
        .then(pl.lit("{"))
        .otherwise(pl.lit('{"id":"') + pl.col("id") + pl.lit('",'))
    )
    pieces: list[Piece] = [opening]
    for i, (key, value) in enumerate(fields):
        pieces.append(("," if i else "") + f'"{key}":')
        pieces.extend(value)
    pieces.append("}")
    return pl.concat_str(_merge_literals(pieces))


def _merge_literals(pieces: list[Piece]) -> list[pl.Expr]:
    """Adjacent literal pieces -> one literal: fewer inputs to the one concatenation."""
    merged: list[pl.Expr] = []
    pending = ""
    for piece in pieces:
        if isinstance(piece, str):
            pending += piece
            continue
        if pending:
            merged.append(pl.lit(pending))
            pending = ""
        merged.append(piece)
    if pending:
        merged.append(pl.lit(pending))
    return merged


def _finish(raw: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Raw generated columns -> typed view columns, JSON texts and re-rating columns, sorted."""
    frame = raw.sort("_created", "id")
    rerated = pl.col("_rerated")
    typed: list[pl.Expr] = [
        pl.lit("call" if kind == "cdrs" else "message").alias("record_type"),
        pl.lit(_T.tag_lists).gather(pl.col("_tags")).alias("tags"),
        _ts("_created").alias("created_at"),
        _ts("_updated").alias("updated_at"),
        _money("_rate").alias("rate"),
        _money("_cost").alias("cost"),
        _record_json(kind, "_rate", "_cost", "_updated", "_forms").alias("json"),
        pl.when(rerated).then(_ts("_rerate_at")).alias("rerated_at"),
        pl.when(rerated).then(_money("_rerate_rate")).alias("rerated_rate"),
        pl.when(rerated).then(_money("_rerate_cost")).alias("rerated_cost"),
    ]
    if kind == "cdrs":
        typed += [
            _ts("_started").alias("started_at"),
            _ts("_answered").alias("answered_at"),
            _ts("_ended").alias("ended_at"),
        ]
    else:
        error = pl.col("_error").clip(0)
        errors = pl.struct(
            code=pl.lit(_T.error_codes).gather(error), title=pl.lit(_T.error_titles).gather(error)
        )
        typed += [
            _ts("_sent").alias("sent_at"),
            _ts("_completed").alias("completed_at"),
            _money("_fee").alias("carrier_fee"),
            pl.concat_list(errors).list.head((pl.col("_error") >= 0).cast(pl.Int64)).alias("errors"),
        ]
    frame = frame.with_columns(typed)
    # The re-rated JSON differs only in rate, cost and updated_at: built for those rows only.
    positions = np.flatnonzero(frame.get_column("_rerated").to_numpy())
    rerated_json = pl.Series("rerated_json", [None] * frame.height, dtype=pl.String)
    if len(positions):
        texts = frame[positions].select(
            _record_json(kind, "_rerate_rate", "_rerate_cost", "_rerate_at", "_rerate_forms")
        ).to_series()
        rerated_json = rerated_json.scatter(positions, texts)
    frame = frame.with_columns(rerated_json)
    columns = {**VIEW_COLUMNS[kind], **RERATE_COLUMNS}  # type: ignore[index]
    return frame.select(pl.col(name).cast(dtype) for name, dtype in columns.items())
