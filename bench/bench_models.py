"""Benchmark of the models stage: `build` over a large synthetic lake vs a bare DuckDB scan.

The lake (10M CDRs + 5M MDRs by default, plus the API's usage aggregates) is generated
vectorised with numpy/polars straight into the lake layout, with the same schemas the sync
writes, and cached under `bench/out/` (git-ignored) keyed by its parameters.

Each measurement runs in its own child process so that its peak RSS is its own:

- `scan`: the yardstick of the target. One bare DuckDB aggregate query per record type over
  the same Parquet files, reading every column the build reads (grouped by UTC day, direction
  and currency), with no dedupe, no models and no writes.
- `floor` (on by default; `--no-floor`): the build's passes as bare queries over the same files
  (FLOOR_QUERIES): what the build costs with no views, no report calendar, no exact peak
  replay and nothing written. It tells the build's own overhead from the work it must do.
- `build`: `pipelines.models.build` into a fresh warehouse: every model and every data test.

Runs alternate (scan, floor, build, scan ...) so all see the same machine load; the ratios
are of the best times. `--baseline REV` adds a build of the `queries/` of a git revision (by
today's runner) to every round, for a before/after in one run. `--accounts N` spreads the lake
over N accounts (the nightly build of a reseller's many small accounts, with `--incremental`).
Usage: `python -m bench.bench_models [--cdrs N] [--mdrs N] [--rounds R] [--no-floor] [--baseline REV]
[--accounts N] [--incremental DAYS]`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.dates import Window  # noqa: E402
from pipelines.lake import Lake  # noqa: E402
from pipelines.land import quarantine  # noqa: E402
from pipelines.opentact import api  # noqa: E402
from pipelines.opentact.records import Rejected  # noqa: E402
from pipelines.settings import Settings  # noqa: E402

OUT = ROOT / "bench" / "out"
# What `cdr build` gives DuckDB unless CDR_BUILD_MEMORY_LIMIT says otherwise.
DEFAULT_MEMORY_LIMIT = str(Settings.model_fields["build_memory_limit"].default)
FIRST_DAY = date(2026, 1, 1)
DAY_MS = 86_400_000

# (country_code, calling code, share of traffic, voice rate per minute in 1e-4, sms rate in 1e-4)
COUNTRIES: tuple[tuple[str, str, float, int, int], ...] = (
    ("US", "1", 0.34, 70, 79),
    ("GB", "44", 0.14, 120, 350),
    ("DE", "49", 0.10, 140, 760),
    ("FR", "33", 0.07, 130, 690),
    ("CA", "1", 0.06, 80, 79),
    ("IN", "91", 0.06, 250, 160),
    ("BR", "55", 0.04, 300, 520),
    ("JP", "81", 0.04, 450, 710),
    ("AU", "61", 0.03, 200, 450),
    ("MX", "52", 0.03, 220, 310),
    ("ES", "34", 0.02, 150, 680),
    ("IT", "39", 0.02, 160, 640),
    ("NL", "31", 0.02, 140, 900),
    ("PL", "48", 0.01, 180, 300),
    ("UA", "380", 0.01, 900, 1200),
    ("ZA", "27", 0.01, 800, 420),
)
CONNECTIONS: tuple[tuple[str, str], ...] = (
    ("Main Trunk", "USD"), ('Bob\'s "Main" Trunk', "USD"), ("東京 トランク", "USD"),
    ("Київ", "EUR"), ("EU Carrier — Frankfurt", "EUR"), ("Support Line (backup)", "USD"),
)
PROFILES: tuple[tuple[str, str], ...] = (
    ("Marketing", "USD"), ('Alerts & "OTP"', "USD"), ("顧客サポート", "USD"), ("Оповіщення", "EUR"),
)
TAG_SETS: tuple[tuple[str, ...], ...] = ((), (), ("vip",), ("billing",), ("support", "vip"), ("campaign:spring-2026",))
# (status, hangup cause, SIP code, share)
OUTCOMES: tuple[tuple[str, str, int, float], ...] = (
    ("answered", "normal_clearing", 200, 0.58),
    ("busy", "user_busy", 486, 0.11),
    ("no_answer", "no_answer", 480, 0.12),
    ("failed", "call_rejected", 603, 0.05),
    ("failed", "network_out_of_order", 503, 0.04),
    ("cancelled", "originator_cancel", 487, 0.10),
)
BILLING: tuple[tuple[int, int], ...] = ((60, 60), (6, 6), (1, 1), (30, 6))
CARRIERS: tuple[str, ...] = ("Verizon", "AT&T", "T-Mobile", "Vodafone", "O2", "Orange", "Telekom", "NTT <docomo>")
# (status, share of outbound messages, possible error)
MESSAGE_OUTCOMES: tuple[tuple[str, float, tuple[str, str] | None], ...] = (
    ("delivered", 0.84, None),
    ("sent", 0.03, None),
    ("queued", 0.01, None),
    ("delivery_failed", 0.05, ("30003", "Unreachable handset")),
    ("delivery_unconfirmed", 0.05, None),
    ("gateway_rejected", 0.02, ("40002", 'Blocked as spam "content" <policy>')),
)
# Bump when the generated data changes: the cache directory is keyed by it.
GENERATOR_VERSION = 5


def _uuids(rng: np.random.Generator, n: int) -> pl.Series:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = pl.Series(np.ascontiguousarray(raw).view("S16").ravel()).bin.encode("hex")
    frame = pl.DataFrame({"h": hexed})
    return frame.select(
        pl.concat_str(
            [pl.col("h").str.slice(0, 8), pl.col("h").str.slice(8, 4), pl.col("h").str.slice(12, 4),
             pl.col("h").str.slice(16, 4), pl.col("h").str.slice(20, 12)],
            separator="-",
        )
    ).to_series()


def _numbers(codes: pl.Series, rng: np.random.Generator) -> pl.Series:
    """Calling codes -> random E.164 numbers in those countries."""
    subscriber = pl.Series(rng.integers(200_000_000, 999_999_999, size=len(codes)))
    frame = pl.DataFrame({"c": codes, "s": subscriber})
    return frame.select(pl.concat_str([pl.lit("+"), pl.col("c"), pl.col("s").cast(pl.String)])).to_series()


def _money(units: np.ndarray, exponent: int) -> pl.Series:
    """Integers in 10^-exponent units -> exact Decimal(38, 9)."""
    step = pl.lit(Decimal(1).scaleb(-exponent), dtype=pl.Decimal(38, exponent))
    return pl.DataFrame({"u": units}).select((pl.col("u").cast(pl.Decimal(38, 0)) * step).cast(api.MONEY)).to_series()


def _timestamps(ms: np.ndarray) -> pl.Series:
    return pl.Series(ms).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")


def _pick(rng: np.random.Generator, weights: list[float] | tuple[float, ...], n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def _with_duplicates(frame: pl.DataFrame, rng: np.random.Generator, reprice: list[str], share: float) -> pl.DataFrame:
    """Add older versions of a share of the records (same id and created_at, earlier updated_at, other price)."""
    n = int(len(frame) * share)
    if n == 0:
        return frame
    old = frame.sample(n, seed=int(rng.integers(1 << 31)))
    earlier = pl.col(api.UPDATED_AT) - pl.duration(hours=6)
    # Half the price: the re-rating moved both rate and cost, keeping the cost formula true.
    old = old.with_columns(earlier.alias(api.UPDATED_AT), *[(pl.col(c) * Decimal("0.5")).cast(api.MONEY) for c in reprice])
    return pl.concat([frame, old])


def _cdr_day(day: date, n: int, rng: np.random.Generator, duplicate_share: float) -> pl.DataFrame:
    start_ms = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)
    country = _pick(rng, [c[2] for c in COUNTRIES], n)
    codes = pl.Series([c[1] for c in COUNTRIES]).gather(country)
    outbound = rng.random(n) < 0.6
    outcome = _pick(rng, [o[3] for o in OUTCOMES], n)
    answered = outcome == 0
    connection = _pick(rng, [0.34, 0.16, 0.08, 0.10, 0.14, 0.18], n)
    billing = _pick(rng, [0.4, 0.3, 0.2, 0.1], n)
    initial = np.array([b[0] for b in BILLING])[billing]
    increment = np.array([b[1] for b in BILLING])[billing]

    # Busier in the daytime: created_at (the end of the call) follows a bell around 14:00 UTC,
    # wrapped around midnight so no instant collects the tails.
    created = start_ms + np.mod(rng.normal(0.58, 0.2, n), 1.0) * DAY_MS
    created = created.astype(np.int64)
    ring_ms = np.where(answered, rng.integers(2_000, 20_000, n), rng.integers(300, 40_000, n))
    talk_ms = np.where(answered, rng.exponential(110_000, n).astype(np.int64), 0)
    ended = created
    answered_at = ended - talk_ms
    started = answered_at - ring_ms
    talk_secs = -(-talk_ms // 1000)
    duration_secs = -(-(ended - started) // 1000)
    extra = np.maximum(talk_secs - initial, 0)
    billed = np.where(answered, initial + -(-extra // increment) * increment, 0)
    # Inbound minutes cost a quarter of outbound ones.
    base_e4 = np.array([c[3] for c in COUNTRIES])[country]
    rate_e4 = np.where(outbound, base_e4, np.maximum(base_e4 // 4, 1))
    # cost = rate * billed / 60 rounded half-up to 6 decimals, in integer micro-units.
    cost_e6 = (2 * rate_e4 * billed * 100 + 60) // 120
    connection_names = pl.Series([c[0] for c in CONNECTIONS])
    connection_ids = pl.Series([f"00000000-0000-4000-8000-{i:012d}" for i in range(len(CONNECTIONS))])
    currencies = pl.Series([c[1] for c in CONNECTIONS])
    ours = _numbers(pl.Series(["1"] * n), rng)
    theirs = _numbers(codes, rng)
    frame = pl.DataFrame(
        {
            "id": _uuids(rng, n),
            "record_type": pl.Series(["call"]).gather(np.zeros(n, dtype=np.int64)),
            "call_session_id": _uuids(rng, n),
            "direction": pl.Series(["inbound", "outbound"]).gather(outbound.astype(np.int64)),
            "cli": pl.select(pl.when(pl.lit(pl.Series(outbound))).then(pl.lit(ours)).otherwise(pl.lit(theirs))).to_series(),
            "cld": pl.select(pl.when(pl.lit(pl.Series(outbound))).then(pl.lit(theirs)).otherwise(pl.lit(ours))).to_series(),
            "country_code": pl.Series([c[0] for c in COUNTRIES]).gather(country),
            "country_calling_code": codes,
            "number_type": pl.Series(["local", "mobile", "toll_free", "premium"]).gather(_pick(rng, [0.45, 0.45, 0.06, 0.04], n)),
            "connection_id": connection_ids.gather(connection),
            "connection_name": connection_names.gather(connection),
            "tags": pl.Series(list(map(list, TAG_SETS)), dtype=pl.List(pl.String)).gather(rng.integers(0, len(TAG_SETS), n)),
            "status": pl.Series([o[0] for o in OUTCOMES]).gather(outcome),
            "hangup_cause": pl.Series([o[1] for o in OUTCOMES]).gather(outcome),
            "sip_response_code": pl.Series(np.array([o[2] for o in OUTCOMES], dtype=np.int32)[outcome]),
            "started_at": _timestamps(started),
            "answered_at": _timestamps(answered_at).set(pl.Series(~answered), None),
            "ended_at": _timestamps(ended),
            "created_at": _timestamps(created),
            "updated_at": _timestamps(created + 60_000),
            "duration_secs": pl.Series(duration_secs, dtype=pl.Int64),
            "billed_duration_secs": pl.Series(billed, dtype=pl.Int64),
            "billing_initial_secs": pl.Series(initial, dtype=pl.Int32),
            "billing_increment_secs": pl.Series(increment, dtype=pl.Int32),
            "rate": _money(rate_e4, 4),
            "cost": _money(cost_e6, 6),
            "currency": currencies.gather(connection),
        }
    )
    return _with_duplicates(frame, rng, [], duplicate_share).select(list(api.CDR_SCHEMA)).cast(api.CDR_SCHEMA)


def _mdr_day(day: date, n: int, rng: np.random.Generator, duplicate_share: float) -> pl.DataFrame:
    start_ms = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)
    country = _pick(rng, [c[2] for c in COUNTRIES], n)
    codes = pl.Series([c[1] for c in COUNTRIES]).gather(country)
    outbound = rng.random(n) < 0.7
    outcome = _pick(rng, [o[1] for o in MESSAGE_OUTCOMES], n)
    mms = rng.random(n) < 0.08
    ucs2 = rng.random(n) < 0.2
    parts = np.where(mms, 1, 1 + rng.geometric(0.7, n) - 1).astype(np.int32)
    profile = _pick(rng, [0.4, 0.3, 0.15, 0.15], n)
    created = (start_ms + np.mod(rng.normal(0.55, 0.22, n), 1.0) * DAY_MS).astype(np.int64)
    status_names = pl.Series(["received"] + [o[0] for o in MESSAGE_OUTCOMES])
    status = np.where(outbound, outcome + 1, 0)
    named = status_names.to_numpy()[status]
    sent = np.isin(named, ["sent", "delivered", "delivery_failed", "delivery_unconfirmed"])
    completed = np.isin(named, ["delivered", "delivery_failed", "received"])
    error_lists = [[]] + [[{"code": e[0], "title": e[1]}] if e else [] for _, _, e in MESSAGE_OUTCOMES]
    rate_e4 = np.array([c[4] for c in COUNTRIES])[country] * np.where(mms, 3, 1)
    rate_e4 = np.where(outbound, rate_e4, 40)
    profile_names = pl.Series([p[0] for p in PROFILES])
    profile_ids = pl.Series([f"00000000-0000-4000-9000-{i:012d}" for i in range(len(PROFILES))])
    ours = _numbers(pl.Series(["1"] * n), rng)
    theirs = _numbers(codes, rng)
    frame = pl.DataFrame(
        {
            "id": _uuids(rng, n),
            "record_type": pl.Series(["message"]).gather(np.zeros(n, dtype=np.int64)),
            "direction": pl.Series(["inbound", "outbound"]).gather(outbound.astype(np.int64)),
            "cli": pl.select(pl.when(pl.lit(pl.Series(outbound))).then(pl.lit(ours)).otherwise(pl.lit(theirs))).to_series(),
            "cld": pl.select(pl.when(pl.lit(pl.Series(outbound))).then(pl.lit(theirs)).otherwise(pl.lit(ours))).to_series(),
            "country_code": pl.Series([c[0] for c in COUNTRIES]).gather(country),
            "message_type": pl.Series(["sms", "mms"]).gather(mms.astype(np.int64)),
            "encoding": pl.Series(["gsm7", "ucs2"]).gather(ucs2.astype(np.int64)),
            "parts": pl.Series(parts, dtype=pl.Int32),
            "status": status_names.gather(status),
            "carrier": pl.Series(list(CARRIERS)).gather(rng.integers(0, len(CARRIERS), n)),
            "messaging_profile_id": profile_ids.gather(profile),
            "messaging_profile_name": profile_names.gather(profile),
            "tags": pl.Series(list(map(list, TAG_SETS)), dtype=pl.List(pl.String)).gather(rng.integers(0, len(TAG_SETS), n)),
            "errors": pl.Series(error_lists, dtype=api.MDR_SCHEMA["errors"]).gather(status),
            "created_at": _timestamps(created),
            "sent_at": _timestamps(created + 800).set(pl.Series(~sent), None),
            "completed_at": _timestamps(created + 4_000).set(pl.Series(~completed), None),
            "updated_at": _timestamps(created + 5_000),
            "rate": _money(rate_e4, 4),
            "cost": _money(rate_e4 * parts, 4),
            "carrier_fee": _money(np.where(outbound, 25, 0), 4),
            "currency": pl.Series([p[1] for p in PROFILES]).gather(profile),
        }
    )
    return _with_duplicates(frame, rng, ["rate", "cost"], duplicate_share).select(list(api.MDR_SCHEMA)).cast(
        api.MDR_SCHEMA
    )


def _usage(frame: pl.DataFrame, product: str, day: date) -> pl.DataFrame:
    """The API's own usage totals of one UTC day (latest versions only)."""
    latest = frame.sort(api.UPDATED_AT).unique("id", keep="last")
    measures = [pl.len().cast(pl.Int64).alias("count"), pl.col("cost").sum().cast(api.MONEY).alias("cost")]
    if product == "calls":
        measures += [pl.col("billed_duration_secs").sum().alias("billed_duration_secs"), pl.lit(None, pl.Int64).alias("parts")]
    else:
        measures += [pl.lit(None, pl.Int64).alias("billed_duration_secs"), pl.col("parts").cast(pl.Int64).sum().alias("parts")]
    grouped = latest.group_by("country_code", "direction", "currency").agg(measures)
    return grouped.with_columns(pl.lit(day).alias("date"), pl.lit(product).alias("product")).select(
        list(api.USAGE_SCHEMA)
    ).cast(api.USAGE_SCHEMA)


def _write(data_dir: Path, dataset: str, day: date, frame: pl.DataFrame) -> None:
    # Records land in the lake's own schema (the API's fields plus `extras`), as the sync writes them.
    if (lake_schema := api.LAKE_SCHEMAS.get(dataset)) is not None:
        missing = [pl.lit(None, dtype=lake_schema[c]).alias(c) for c in lake_schema if c not in frame.columns]
        frame = frame.with_columns(missing).select(list(lake_schema))
    target = data_dir / "lake" / dataset / "account=default" / f"date={day.isoformat()}" / "data.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(target, compression="zstd")


def generate_lake(cdrs: int, mdrs: int, days: int, seed: int = 20260101, duplicate_share: float = 0.0) -> Path:
    """Parameters -> a data dir holding the synthetic lake, generated once and cached in bench/out/.

    `duplicate_share` adds superseded versions of that share of the records (the sync never
    writes them; the models still dedupe them), to measure the dedupe's slow path.
    """
    data_dir = OUT / f"lake-v{GENERATOR_VERSION}-c{cdrs}-m{mdrs}-d{days}-s{seed}-dup{duplicate_share:g}"
    marker = data_dir / ".complete"
    if marker.exists():
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    rng = np.random.default_rng(seed)
    for i in range(days):
        day = FIRST_DAY + timedelta(days=i)
        calls = _cdr_day(day, cdrs // days + (1 if i < cdrs % days else 0), rng, duplicate_share)
        _write(data_dir, "cdrs", day, calls)
        _write(data_dir, "usage_cdrs", day, _usage(calls, "calls", day))
        messages = _mdr_day(day, mdrs // days + (1 if i < mdrs % days else 0), rng, duplicate_share)
        _write(data_dir, "mdrs", day, messages)
        _write(data_dir, "usage_mdrs", day, _usage(messages, "messages", day))
    marker.write_text(json.dumps({"cdrs": cdrs, "mdrs": mdrs, "days": days, "seed": seed, "duplicates": duplicate_share}))
    return data_dir


# Every lake column the build reads, per dataset: the bare scan reads exactly these.
BUILD_COLUMNS: dict[str, tuple[str, ...]] = {
    "cdrs": (
        "id", "direction", "country_code", "connection_id", "connection_name", "tags", "status", "hangup_cause",
        "sip_response_code", "started_at", "answered_at", "ended_at", "created_at", "updated_at",
        "billed_duration_secs", "billing_initial_secs", "billing_increment_secs", "rate", "cost", "currency",
    ),
    "mdrs": (
        "id", "direction", "country_code", "message_type", "encoding", "parts", "status", "carrier",
        "messaging_profile_id", "messaging_profile_name", "tags", "errors", "created_at", "updated_at", "rate",
        "cost", "carrier_fee", "currency",
    ),
}


def _aggregate_of(column: str) -> str:
    if column in ("tags", "errors"):
        return f"max(len({column}))"
    if column in ("rate", "cost", "carrier_fee", "billed_duration_secs", "parts"):
        return f"sum({column})"
    return f"max({column})"


def scan_queries(data_dir: Path, days: int | None = None) -> list[str]:
    """The bare scan: per record type, one aggregate over the same files reading the same columns
    (with `days`, over the newest that many days' files only: what an incremental build must read)."""
    queries = []
    for dataset, columns in BUILD_COLUMNS.items():
        files = f"{(data_dir / 'lake' / dataset).resolve().as_posix()}/account=*/date=*/data.parquet"
        if days is not None:
            files = "', '".join(p.as_posix() for p in newest_partitions(data_dir, dataset, days))
        measures = ", ".join(f"{_aggregate_of(c)} as {c}" for c in columns if c not in ("direction", "currency"))
        queries.append(
            f"select make_timestamp(epoch_us(created_at))::date as utc_date, direction, currency, count(*), {measures} "
            f"from read_parquet(['{files}'], hive_partitioning = false) group by all"
        )
    return queries


def _made_beside(data_dir: Path, suffix: str, make: Callable[[Path], None], **made: object) -> Path:
    """A data dir -> the one beside it named `<name>-<suffix>`, which `make` fills once: cached, and a
    marker (what it was made from and with) written only once it is whole."""
    target = data_dir.with_name(f"{data_dir.name}-{suffix}")
    marker = target / ".complete"
    if marker.exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    make(target)
    marker.write_text(json.dumps({"from": data_dir.name, **made}))
    return target


def spread_over_accounts(data_dir: Path, accounts: int) -> Path:
    """A generated one-account lake -> a data dir of that many accounts, each holding all its partitions
    (hard links, no copies), cached beside it: the reseller's lake of many small accounts. Each
    account's ids are its own, so the same records under every account are as many records."""
    if accounts == 1:
        return data_dir

    def spread(target: Path) -> None:
        for source in sorted((data_dir / "lake").glob("*/account=default/date=*/data.parquet")):
            dataset, day = source.parts[-4], source.parts[-2]
            for index in range(accounts):
                _link(source, target / "lake" / dataset / f"account=a{index:04d}" / day / "data.parquet")

    return _made_beside(data_dir, f"a{accounts}", spread, accounts=accounts)


def with_quarantine(data_dir: Path, files_per_day: int) -> Path:
    """A data dir -> one beside it (hard links to its lake, cached) whose every account also set aside
    that many malformed CDRs a day, each in a quarantine file of its own, as that many sync calls
    finding one would: the quarantine of many small files the build reads back."""
    if files_per_day == 0:
        return data_dir

    def quarantined(target: Path) -> None:
        for source in sorted((data_dir / "lake").glob("*/account=*/date=*/data.parquet")):
            _link(source, target / source.relative_to(data_dir))
        lake = Lake(target)
        for partition in sorted((target / "lake" / "cdrs").glob("account=*/date=*")):
            account, day = partition.parent.name.removeprefix("account="), date.fromisoformat(partition.name[5:])
            start = datetime.combine(day, datetime.min.time(), timezone.utc)
            window = Window(start, start + timedelta(days=1))
            for index in range(files_per_day):
                raw = {"id": f"q-{day}-{index}", "record_type": "call", "cli": "not a number",
                       "created_at": (start + timedelta(seconds=index)).isoformat(), "cost": "0.01", "currency": "USD"}
                rejected = Rejected("field 'cli' is not an E.164 number", json.dumps(raw), "cdrs", window, 1)
                quarantine(lake.for_account(account), "cdrs", "bench", [rejected], now=start + timedelta(days=1))

    return _made_beside(data_dir, f"q{files_per_day}", quarantined, files_per_day=files_per_day)


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(source, target)


def newest_partitions(data_dir: Path, dataset: str, days: int) -> list[Path]:
    """The newest `days` day partition files of a dataset, in every account."""
    by_account: dict[str, list[Path]] = {}
    for path in sorted((data_dir / "lake" / dataset).resolve().glob("account=*/date=*/data.parquet")):
        by_account.setdefault(path.parent.parent.name, []).append(path)
    return [path for paths in by_account.values() for path in paths[-days:]]


def resync_newest_days(data_dir: Path, days: int) -> None:
    """Replace the newest days' record partitions of every account with new files, as a nightly sync
    re-landing them does."""
    for dataset in ("cdrs", "mdrs"):
        for path in newest_partitions(data_dir, dataset, days):
            temp = path.with_suffix(".tmp")
            shutil.copyfile(path, temp)
            os.replace(temp, path)


# The floor: the least work each pass of the build must do, one bare query per pass over the same
# files, with no views, no dedupe, no report calendar and nothing written. Each is what the
# issue asks of the build reduced to its core: the dedupe by id needs every id's distinct count
# over the whole lake; the unique-id test reads every staged id once; the daily facts group the
# grain and judge the billing rules on every record; peak concurrency counts starts and ends
# per 10-second bucket (before any replay); the tag-set, hourly, delivery and error facts group
# their own grains. Their sum is that work done as plainly as DuckDB allows, one pass each;
# the build's time above it is the build's own (views, calendar, exact peak replay, writing).
FLOOR_QUERIES: dict[str, str] = {
    "cdrs: dedupe census (distinct ids)": "select count(distinct hash(id)) from {cdrs} where id is not null",
    "cdrs: unique-id test (read every id)": "select count(id), sum(hash(id)) from {cdrs}",
    "cdrs: daily facts + billing rules": """
        with calls as (
            select
                *,
                ((epoch_us(ended_at) - epoch_us(answered_at)) // 1000 + 999) // 1000 as talk_secs,
                rate * billed_duration_secs - 60 * cost as unrounded,
            from {cdrs}
        )
        select make_timestamp(epoch_us(created_at))::date as utc_date, direction, country_code, connection_id,
            currency, status, hangup_cause, sip_response_code,
            count(*), count(*) filter (where status = 'answered'), count(*) filter (where sip_response_code >= 500),
            sum(talk_secs), sum(billed_duration_secs), sum(cost), arg_max(connection_name, updated_at), max(updated_at),
            count(*) filter (where billed_duration_secs is distinct from case
                    when status <> 'answered' then 0
                    when talk_secs <= billing_initial_secs then billing_initial_secs
                    else billing_initial_secs + (talk_secs - billing_initial_secs + billing_increment_secs - 1)
                        // billing_increment_secs * billing_increment_secs
                end
                or coalesce(try_cast(cost as decimal(18, 9)) <> round(try_cast(cost as decimal(18, 9)), 6),
                            cost <> round(cost, 6))
                or unrounded < -0.00003 or unrounded >= 0.00003)
        from calls group by all""",
    "cdrs: concurrency bucket counts": """
        select coalesce(s.b, e.b), s.n, e.n
        from (select epoch_us(started_at) // 10000000 as b, count(*) as n from {cdrs} group by b) as s
        full join (select epoch_us(ended_at) // 10000000 as b, count(*) as n from {cdrs} group by b) as e on s.b = e.b""",
    "cdrs: tag-set facts": """
        select make_timestamp(epoch_us(created_at))::date, direction, currency, tags, count(*), sum(billed_duration_secs),
            sum(cost)
        from {cdrs} group by all""",
    "cdrs: hourly facts": """
        select make_timestamp(epoch_us(created_at))::date, hour(make_timestamp(epoch_us(created_at))), direction,
            count(*), count(*) filter (where status = 'answered')
        from {cdrs} group by all""",
    "mdrs: dedupe census (distinct ids)": "select count(distinct hash(id)) from {mdrs} where id is not null",
    "mdrs: unique-id test (read every id)": "select count(id), sum(hash(id)) from {mdrs}",
    "mdrs: daily facts + cost rule": """
        select make_timestamp(epoch_us(created_at))::date, direction, message_type, country_code, messaging_profile_id,
            currency, status, count(*), sum(parts), sum(cost), sum(carrier_fee),
            count(*) filter (where cost <> rate * parts), arg_max(messaging_profile_name, updated_at), max(updated_at)
        from {mdrs} group by all""",
    "mdrs: tag-set facts": """
        select make_timestamp(epoch_us(created_at))::date, direction, message_type, currency, tags, count(*), sum(parts),
            sum(cost)
        from {mdrs} group by all""",
    "mdrs: delivery facts": """
        select make_timestamp(epoch_us(created_at))::date, direction, carrier, message_type, encoding, parts, status,
            count(*)
        from {mdrs} group by all""",
    "mdrs: error facts": """
        select d, direction, error.code, error.title, count(*)
        from (select make_timestamp(epoch_us(created_at))::date as d, direction, unnest(list_distinct(errors)) as error
              from {mdrs} where len(errors) > 0)
        group by all""",
}


def floor_queries(data_dir: Path) -> dict[str, str]:
    """The floor's queries over this lake's files."""
    sources = {
        dataset: f"read_parquet('{(data_dir / 'lake' / dataset).resolve().as_posix()}/account=*/date=*/data.parquet', "
        "hive_partitioning = false)"
        for dataset in BUILD_COLUMNS
    }
    return {name: query.format(**sources) for name, query in FLOOR_QUERIES.items()}


def revision_tree(revision: str) -> Path:
    """A git revision -> its files (`git archive`), extracted once under bench/out/."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    tree = OUT / f"tree-{commit[:12]}"
    if not (tree / ".complete").exists():
        shutil.rmtree(tree, ignore_errors=True)
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tree, filter="data")
        (tree / ".complete").write_text(commit + "\n")
    return tree


def baseline_queries(revision: str) -> Path:
    """A git revision -> its `queries/` folder (built by today's runner)."""
    return revision_tree(revision) / "queries"


# What only the alert rules need: without them the build is the nightly build before alerts.
ALERT_ONLY = ("alerts", "marts/fct_call_traffic_hourly.sql", "marts/fct_message_traffic_hourly.sql",
              "marts/fct_traffic_days.sql",
              "reports/rpt_alerts.sql", "tests/alerts_*.sql",
              *(f"macros/{name}.sql" for name in ("alert_key", "alert_rows", "baseline_median", "baseline_spread",
                                                  "binomial_spread", "drop_threshold", "recent_history",
                                                  "report_day_window", "spike_threshold", "spike_windows",
                                                  "traffic_hourly", "trailing_history", "utc_hour_window")))


def queries_without_alerts() -> Path:
    """A copy of today's queries/ without the alert rules and what only they read (OUT/queries-no-alerts)."""
    target = OUT / "queries-no-alerts"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(ROOT / "queries", target)
    for pattern in ALERT_ONLY:
        for path in target.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return target


def _child(
    kind: str, data_dir: Path, queries_dir: Path | None, days: int | None = None, memory_limit: str | None = None
) -> dict[str, float]:
    """Run one measurement in this (child) process -> seconds and peak RSS."""
    import duckdb

    from pipelines.models import QUERIES_DIR, build

    started, cpu_started = time.perf_counter(), time.process_time()
    if kind == "scan":
        con = duckdb.connect()
        for query in scan_queries(data_dir, days):
            con.execute(query).fetchall()
        con.close()
        extra: dict[str, float] = {}
    elif kind == "floor":
        con = duckdb.connect()
        con.execute("set enable_progress_bar = false")
        extra = {}
        for name, query in floor_queries(data_dir).items():
            step = time.perf_counter()
            # into a (small) table, as a model would be: a count over it would let DuckDB drop aggregates
            con.execute(f"create or replace temp table floor_result as {query}")
            extra[f"pass:{name}"] = round(time.perf_counter() - step, 2)
        con.close()
    else:
        # "build" is always a whole one (the lake is shared by rounds and contenders); "incremental"
        # follows this round's build and `resync_newest_days`
        report = build(data_dir, queries_dir=queries_dir or QUERIES_DIR, full=kind == "build", memory_limit=memory_limit)
        if kind == "incremental" and report.mode != "incremental":
            raise SystemExit(f"the incremental build was a full one: {report.reason}")
        slowest = sorted(report.models, key=lambda m: -m.seconds)[:6]
        extra = {f"model:{m.name}": round(m.seconds, 2) for m in slowest}
        extra.update({f"test:{t.name}": round(t.seconds, 2) for t in sorted(report.tests, key=lambda t: -t.seconds)[:4]})
        # issue #14's budget: evaluating the alert rules (alert_* views, computed by rpt_alerts)
        # against the whole build; the hourly marts they read are shown apart
        alerts = [m for m in report.models if m.name == "rpt_alerts" or m.name.startswith("alert_")]
        extra["alerts:evaluation"] = round(sum(m.seconds for m in alerts), 2)
        extra["alerts:hourly_marts"] = round(sum(m.seconds for m in report.models if m.name.endswith("_traffic_hourly")), 2)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_mib": peak_mib, **extra}


def _measure(
    kind: str, data_dir: Path, queries_dir: Path | None = None, days: int | None = None, memory_limit: str | None = None
) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", kind, "--data-dir", str(data_dir), "--memory-limit", str(memory_limit)]
    if queries_dir is not None:
        command += ["--queries-dir", str(queries_dir)]
    if days is not None:
        command += ["--newest-days", str(days)]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _run_line(run: dict[str, float]) -> str:
    return f"{run['seconds']:.2f}s ({run['cpu_seconds']:.2f}s CPU, {run['peak_rss_mib']:,.0f} MiB)"


def main(argv: list[str] | None = None) -> None:
    """Generate (or reuse) the lake, then time the bare scan and the build(s) alternately; print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdrs", type=int, default=10_000_000)
    parser.add_argument("--mdrs", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=1,
                        help="spread the lake over this many accounts, each holding all of its records (the "
                             "reseller's many small accounts; --cdrs and --mdrs are then each account's; default 1)")
    parser.add_argument("--quarantine-files", type=int, default=0, metavar="N",
                        help="also give every account N quarantine files a day, one malformed CDR each (a "
                             "quarantine of many small files, read back by the build; default 0)")
    parser.add_argument("--duplicate-share", type=float, default=0.0,
                        help="add superseded versions of this share of the records (default 0, as the sync writes)")
    parser.add_argument("--baseline", metavar="REV",
                        help="also build the queries/ of this git revision (with today's runner), side by side")
    parser.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the floor: one bare query per pass the build makes (FLOOR_QUERIES; default on)")
    parser.add_argument("--alerts-apart", action=argparse.BooleanOptionalAction, default=True,
                        help="also build without the alert rules and the marts only they read: what alert "
                             "evaluation adds to the build, round by round (default on)")
    parser.add_argument("--incremental", type=int, default=0, metavar="DAYS",
                        help="also, after each round's build, re-land the newest DAYS days and time the incremental "
                             "build and a bare scan of those days (default 0: off)")
    parser.add_argument("--memory-limit", default=DEFAULT_MEMORY_LIMIT,
                        help=f"DuckDB's memory for the builds (default {DEFAULT_MEMORY_LIMIT}, as `cdr build`'s; "
                             "none: DuckDB's own default)")
    parser.add_argument("--memory-apart", action="store_true",
                        help="also time the full build with DuckDB's own memory default, side by side")
    parser.add_argument("--child", choices=("scan", "floor", "build", "incremental"))
    parser.add_argument("--newest-days", type=int, help="(child) scan only the newest this many days")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--queries-dir", type=Path)
    args = parser.parse_args(argv)
    if args.child:
        limit = None if args.memory_limit == "none" else args.memory_limit
        print(json.dumps(_child(args.child, args.data_dir, args.queries_dir, args.newest_days, limit)))
        return
    started = time.perf_counter()
    if args.accounts < 1:
        parser.error("--accounts must be at least 1")
    if args.quarantine_files < 0:
        parser.error("--quarantine-files must be 0 or more")
    data_dir = generate_lake(args.cdrs, args.mdrs, args.days, duplicate_share=args.duplicate_share)
    data_dir = with_quarantine(spread_over_accounts(data_dir, args.accounts), args.quarantine_files)
    size_mib = sum(p.stat().st_size for p in (data_dir / "lake").rglob("*.parquet")) / 2**20
    accounts = f" in each of {args.accounts} accounts" if args.accounts > 1 else ""
    accounts += f", {args.quarantine_files} quarantine files a day" if args.quarantine_files else ""
    print(f"lake: {data_dir} ({args.cdrs:,} CDRs, {args.mdrs:,} MDRs{accounts}, {args.days} days, "
          f"{args.duplicate_share:.2%} superseded versions, {size_mib:,.0f} MiB; "
          f"ready in {time.perf_counter() - started:.1f}s)")
    # each contender: its queries dir (None: today's) and DuckDB's memory limit
    contenders: dict[str, tuple[Path | None, str]] = {"build": (None, args.memory_limit)}
    if args.alerts_apart:
        contenders["build without alerts"] = (queries_without_alerts(), args.memory_limit)
    if args.memory_apart:
        contenders["build, DuckDB's memory default"] = (None, "none")
    if args.baseline:
        contenders = {f"baseline {args.baseline}": (baseline_queries(args.baseline), args.memory_limit), **contenders}
    runs: dict[str, list[dict[str, float]]] = {"scan": [], **{name: [] for name in contenders}}
    if args.floor:
        runs["floor"] = []
    changed = f"scan of the {args.incremental} changed days"
    if args.incremental:
        # the default queries last, so the incremental build follows a build of the same queries
        contenders = {name: c for name, c in contenders.items() if name != "build"} | {"build": contenders["build"]}
        runs |= {"incremental": [], changed: []}
    for round_number in range(1, args.rounds + 1):
        runs["scan"].append(_measure("scan", data_dir))
        if args.floor:
            runs["floor"].append(_measure("floor", data_dir))
        for name, (queries_dir, limit) in contenders.items():
            runs[name].append(_measure("build", data_dir, queries_dir, memory_limit=limit))
        if args.incremental:
            resync_newest_days(data_dir, args.incremental)
            runs["incremental"].append(_measure("incremental", data_dir, memory_limit=args.memory_limit))
            runs[changed].append(_measure("scan", data_dir, days=args.incremental))
        print(f"round {round_number}: " + ", ".join(f"{name} {_run_line(r[-1])}" for name, r in runs.items())
              + f", load average {os.getloadavg()[0]:.1f}")
    scans = runs["scan"]
    best_scan = min(scans, key=lambda r: r["seconds"])
    scan_cpu = min(r["cpu_seconds"] for r in scans)
    print(f"best: scan {best_scan['seconds']:.2f}s ({scan_cpu:.2f}s CPU), peak RSS {max(r['peak_rss_mib'] for r in scans):,.0f} MiB")
    for name in contenders:
        best = min(runs[name], key=lambda r: r["seconds"])
        cpu = min(r["cpu_seconds"] for r in runs[name])
        print(f"best: {name} {best['seconds']:.2f}s ({cpu:.2f}s CPU), ratio {best['seconds'] / best_scan['seconds']:.2f}x wall, "
              f"{cpu / scan_cpu:.2f}x CPU (target <= 3x); peak RSS {max(r['peak_rss_mib'] for r in runs[name]):,.0f} MiB")
        # each round's build against the same round's scan: what one run of `make bench` would say
        ratios = [run["seconds"] / scan["seconds"] for run, scan in zip(runs[name], scans)]
        print(f"{name} / scan per round: " + ", ".join(f"{r:.2f}x" for r in ratios)
              + f" (median {statistics.median(ratios):.2f}x)")
        print(f"slowest steps of the best {name}: " + ", ".join(
            f"{k.split(':', 1)[1]} {v:.2f}s" for k, v in best.items() if ":" in k))
    if args.alerts_apart:
        # paired within each round, so a noisy round moves both builds alike
        shares = [(full["seconds"] - bare["seconds"]) / full["seconds"]
                  for full, bare in zip(runs["build"], runs["build without alerts"])]
        print("alert evaluation (build - build without alerts) / build per round: "
              + ", ".join(f"{share:.2f}x" for share in shares) + f" (median {statistics.median(shares):.2f}x)")
    if args.incremental:
        shares = [inc["seconds"] / full["seconds"] for inc, full in zip(runs["incremental"], runs["build"])]
        print(f"incremental build ({args.incremental} changed days) / full build per round: "
              + ", ".join(f"{share:.3f}x" for share in shares) + f" (median {statistics.median(shares):.3f}x; "
              f"peak RSS {max(r['peak_rss_mib'] for r in runs['incremental']):,.0f} MiB)")
        print("slowest steps of the best incremental build: " + ", ".join(
            f"{k.split(':', 1)[1]} {v:.2f}s" for k, v in min(runs["incremental"], key=lambda r: r["seconds"]).items()
            if k.startswith(("model:", "test:"))))
        ratios = [inc["seconds"] / scan["seconds"] for inc, scan in zip(runs["incremental"], runs[changed])]
        print(f"incremental build / {changed} per round: " + ", ".join(f"{r:.1f}x" for r in ratios))
    if args.floor:
        best = min(runs["floor"], key=lambda r: r["seconds"])
        cpu = min(r["cpu_seconds"] for r in runs["floor"])
        print(f"best: floor {best['seconds']:.2f}s ({cpu:.2f}s CPU), ratio {best['seconds'] / best_scan['seconds']:.2f}x wall, "
              f"{cpu / scan_cpu:.2f}x CPU of the scan; peak RSS {max(r['peak_rss_mib'] for r in runs['floor']):,.0f} MiB")
        print("passes of the best floor: " + ", ".join(
            f"{k.split(':', 1)[1]} {v:.2f}s" for k, v in best.items() if k.startswith("pass:")))


if __name__ == "__main__":
    main()
