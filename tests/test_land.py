"""Landing: exact replace-by-window in day partitions, latest version wins, usage, quarantine."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import orjson
import polars as pl
import pytest

from pipelines.dates import Window
from pipelines.land import (
    QUARANTINE_SCHEMA,
    DayStats,
    UsageConflictError,
    land_usage,
    land_windows,
    quarantine,
    window_days,
)
from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.lake import AccountLake, Lake
from pipelines.opentact import api
from tests.fixtures.lake import Reject, read_quarantine

UTC = timezone.utc
D1 = date(2026, 3, 1)
D2 = date(2026, 3, 2)
D3 = date(2026, 3, 3)


def at(day: date, hour: int, minute: int = 0, ms: int = 0) -> datetime:
    """A UTC instant on a day."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) + timedelta(milliseconds=ms)


def cdr(record_id: str, created_at: datetime, updated_at: datetime | None = None, cost: str = "0.012", **fields: object) -> dict:
    """One landed-shape CDR with every field set; only what a test varies is named."""
    record = {
        "id": record_id,
        "record_type": "call",
        "call_session_id": f"session-{record_id}",
        "direction": "outbound",
        "cli": "+447700900123",
        "cld": "+14155550100",
        "country_code": "US",
        "country_calling_code": "1",
        "number_type": "mobile",
        "connection_id": "conn-1",
        "connection_name": 'Main "Trunk" <b>',
        "tags": ["vip", "ünïcode"],
        "status": "answered",
        "hangup_cause": "normal_clearing",
        "sip_response_code": 200,
        "started_at": created_at,
        "answered_at": created_at,
        "ended_at": created_at + timedelta(seconds=60),
        "created_at": created_at,
        "updated_at": updated_at or created_at,
        "duration_secs": 60,
        "billed_duration_secs": 60,
        "billing_initial_secs": 60,
        "billing_increment_secs": 60,
        "rate": Decimal("0.012"),
        "cost": Decimal(cost),
        "currency": "USD",
    }
    record.update(fields)
    return record


def cdrs(*records: dict) -> pl.DataFrame:
    """Records -> a frame in the exact CDR lake schema (no extras unless a record has them)."""
    return pl.DataFrame(list(records), schema=api.LAKE_SCHEMAS["cdrs"])


def partition(lake: AccountLake, day: date, kind: str = "cdrs") -> pl.DataFrame | None:
    """A day partition as landed."""
    return lake.read_partition(kind, day, api.LAKE_SCHEMAS[kind])


def ids_costs(frame: pl.DataFrame | None) -> list[tuple[str, str]]:
    """A frame -> its (id, cost) pairs in stored order."""
    assert frame is not None
    return [(row["id"], str(row["cost"].normalize())) for row in frame.iter_rows(named=True)]


@pytest.fixture
def lake(tmp_path: Path) -> AccountLake:
    """An empty local lake."""
    return Lake(tmp_path / "data").for_account(DEFAULT_ACCOUNT)


def whole_day(day: date) -> Window:
    """The UTC day as a window."""
    return Window(at(day, 0), at(day + timedelta(days=1), 0))


def test_window_days_are_the_utc_days_touched() -> None:
    assert window_days(whole_day(D1)) == [D1]
    assert window_days(Window(at(D1, 23), at(D3, 0, ms=1))) == [D1, D2, D3]
    assert window_days(Window(at(D1, 5), at(D1, 5))) == []
    plus_two = timezone(timedelta(hours=2))
    assert window_days(Window(datetime(2026, 3, 2, 1, tzinfo=plus_two), datetime(2026, 3, 2, 3, tzinfo=plus_two))) == [D1, D2]


def test_first_landing_writes_sorted_partitions_per_utc_day(lake: AccountLake) -> None:
    window = Window(at(D1, 0), at(D3, 0))
    frame = cdrs(cdr("b", at(D2, 1)), cdr("c", at(D1, 9)), cdr("a", at(D1, 9)), cdr("d", at(D1, 8)))
    stats = land_windows(lake, "cdrs", [window], frame)
    assert ids_costs(partition(lake, D1)) == [("d", "0.012"), ("a", "0.012"), ("c", "0.012")]
    assert ids_costs(partition(lake, D2)) == [("b", "0.012")]
    assert partition(lake, D1).equals(frame.filter(pl.col("created_at").dt.date() == D1).sort("created_at", "id"))
    assert [(d.day, d.new, d.updated, d.unchanged, d.removed, d.records) for d in stats.days] == [
        (D1, 3, 0, 0, 0, 3),
        (D2, 1, 0, 0, 0, 1),
    ]
    assert stats.new == 4 and stats.records_written == 4
    assert stats.bytes_written == sum(d.bytes_written for d in stats.days) > 0
    assert lake.partition_days("cdrs") == [D1, D2]


def test_a_one_day_slice_lands_exactly_as_through_a_wider_window(tmp_path: Path) -> None:
    # One UTC day into an empty day partition is the sync's common case and takes a shorter path.
    frame = cdrs(cdr("c", at(D1, 9)), cdr("a", at(D1, 9)), cdr("b", at(D1, 23, 59)), cdr("d", at(D1, 0)))
    day, wide = (Lake(tmp_path / name).for_account(DEFAULT_ACCOUNT) for name in ("day", "wide"))
    day_stats = land_windows(day, "cdrs", [whole_day(D1)], frame)
    wide_stats = land_windows(wide, "cdrs", [Window(at(D1, 0), at(D3, 0))], frame)
    assert partition(day, D1).equals(partition(wide, D1))
    assert ids_costs(partition(day, D1)) == [("d", "0.012"), ("a", "0.012"), ("c", "0.012"), ("b", "0.012")]
    assert day_stats.days == wide_stats.days[:1]
    assert (day_stats.new, day_stats.records_written) == (4, 4)


def test_replacing_a_window_keeps_rows_outside_it_untouched(lake: AccountLake) -> None:
    land_windows(
        lake,
        "cdrs",
        [whole_day(D1)],
        cdrs(cdr("early", at(D1, 5)), cdr("in-kept", at(D1, 10)), cdr("in-gone", at(D1, 11)), cdr("late", at(D1, 20))),
    )
    before = partition(lake, D1)
    hour_window = Window(at(D1, 10), at(D1, 12))
    stats = land_windows(
        lake,
        "cdrs",
        [hour_window],
        cdrs(cdr("in-kept", at(D1, 10), at(D1, 13), cost="0.024"), cdr("in-new", at(D1, 11, 30))),
    )
    after = partition(lake, D1)
    assert ids_costs(after) == [("early", "0.012"), ("in-kept", "0.024"), ("in-new", "0.012"), ("late", "0.012")]
    # The rows outside the window are the very same rows, every field.
    outside = (pl.col("created_at") < at(D1, 10)) | (pl.col("created_at") >= at(D1, 12))
    assert after.filter(outside).equals(before.filter(outside))
    assert stats.days == (DayStats(D1, new=1, updated=1, unchanged=0, stale=0, removed=1, records=4, bytes_written=stats.bytes_written, changed=True),)


def test_window_bounds_are_half_open(lake: AccountLake) -> None:
    land_windows(lake, "cdrs", [whole_day(D1)], cdrs(cdr("at-start", at(D1, 10)), cdr("at-end", at(D1, 11))))
    stats = land_windows(lake, "cdrs", [Window(at(D1, 10), at(D1, 11))], cdrs())
    assert ids_costs(partition(lake, D1)) == [("at-end", "0.012")]
    assert stats.removed == 1


def test_a_sub_millisecond_bound_is_respected_exactly(lake: AccountLake) -> None:
    start = at(D1, 10) + timedelta(microseconds=500)
    with pytest.raises(ValueError, match=r"programming error: 1 cdrs record.*outside \[2026-03-01T10:00:00"):
        land_windows(lake, "cdrs", [Window(start, at(D1, 11))], cdrs(cdr("x", at(D1, 10))))
    land_windows(lake, "cdrs", [whole_day(D1)], cdrs(cdr("x", at(D1, 10)), cdr("y", at(D1, 10, ms=1))))
    land_windows(lake, "cdrs", [Window(start, at(D1, 11))], cdrs())
    assert ids_costs(partition(lake, D1)) == [("x", "0.012")]


def test_a_multi_day_window_empties_days_and_removes_their_files(lake: AccountLake) -> None:
    land_windows(lake, "cdrs", [Window(at(D1, 0), at(D3, 0))], cdrs(cdr("a", at(D1, 23)), cdr("b", at(D2, 1)), cdr("c", at(D2, 2))))
    stats = land_windows(lake, "cdrs", [Window(at(D1, 12), at(D3, 0))], cdrs(cdr("c", at(D2, 2))))
    assert partition(lake, D1) is None
    assert ids_costs(partition(lake, D2)) == [("c", "0.012")]
    assert lake.partition_days("cdrs") == [D2]
    assert [(d.day, d.new, d.unchanged, d.removed, d.records, d.bytes_written > 0, d.changed) for d in stats.days] == [
        (D1, 0, 0, 1, 0, False, True),  # emptied: its file went
        (D2, 0, 1, 1, 1, True, True),
    ]


def test_landing_several_windows_at_once_equals_landing_them_in_turn(tmp_path: Path) -> None:
    base = cdrs(*(cdr(f"old-{h}", at(D1, h)) for h in range(0, 24, 2)), cdr("next-day", at(D2, 1)))
    hours = [Window(at(D1, 2), at(D1, 4)), Window(at(D1, 10), at(D1, 11)), Window(at(D1, 23), at(D2, 2))]
    new = cdrs(cdr("old-2", at(D1, 2), at(D1, 5), cost="0.5"), cdr("fresh", at(D1, 10, 30)), cdr("late", at(D2, 1, 30)))
    at_once, in_turn = (Lake(tmp_path / name).for_account(DEFAULT_ACCOUNT) for name in ("once", "turn"))
    for lake in (at_once, in_turn):
        land_windows(lake, "cdrs", [Window(at(D1, 0), at(D3, 0))], base)
    stats = land_windows(at_once, "cdrs", hours, new)
    for hour in hours:
        land_windows(in_turn, "cdrs", [hour], new.filter((pl.col("created_at") >= hour.start) & (pl.col("created_at") < hour.end)))
    for day in (D1, D2):
        assert partition(at_once, day).equals(partition(in_turn, day))
    assert [(d.day, d.new, d.updated, d.removed) for d in stats.days] == [(D1, 1, 1, 1), (D2, 1, 0, 1)]
    assert stats.windows == tuple(hours)
    assert ids_costs(partition(at_once, D1))[:3] == [("old-0", "0.012"), ("old-2", "0.5"), ("old-4", "0.012")]


def test_latest_updated_at_wins_within_the_new_data_in_either_order(lake: AccountLake) -> None:
    old, new = cdr("a", at(D1, 1), at(D1, 2), cost="0.1"), cdr("a", at(D1, 1), at(D1, 3), cost="0.2")
    for order in ((old, new), (new, old)):
        stats = land_windows(lake, "cdrs", [whole_day(D1)], cdrs(*order))
        assert ids_costs(partition(lake, D1)) == [("a", "0.2")]
    assert (stats.new, stats.updated, stats.unchanged) == (0, 0, 1)


def test_a_newer_lake_version_is_never_replaced_by_an_older_one(lake: AccountLake) -> None:
    land_windows(lake, "cdrs", [whole_day(D1)], cdrs(cdr("a", at(D1, 1), at(D1, 5), cost="0.5"), cdr("b", at(D1, 1), at(D1, 2))))
    stats = land_windows(
        lake,
        "cdrs",
        [whole_day(D1)],
        cdrs(cdr("a", at(D1, 1), at(D1, 4), cost="0.4"), cdr("b", at(D1, 1), at(D1, 3), cost="0.3")),
    )
    assert ids_costs(partition(lake, D1)) == [("a", "0.5"), ("b", "0.3")]
    assert (stats.new, stats.updated, stats.unchanged, stats.stale, stats.removed) == (0, 1, 0, 1, 0)
    assert partition(lake, D1)["updated_at"].to_list() == [at(D1, 5), at(D1, 3)]


def test_a_cost_change_with_the_same_updated_at_counts_as_updated(lake: AccountLake) -> None:
    land_windows(lake, "cdrs", [whole_day(D1)], cdrs(cdr("a", at(D1, 1), cost="0.1")))
    stats = land_windows(lake, "cdrs", [whole_day(D1)], cdrs(cdr("a", at(D1, 1), cost="0.10000001")))
    assert ids_costs(partition(lake, D1)) == [("a", "0.10000001")]
    assert stats.updated == 1


def test_an_id_whose_created_at_moved_is_not_duplicated(lake: AccountLake) -> None:
    land_windows(lake, "cdrs", [whole_day(D1)], cdrs(cdr("a", at(D1, 9), at(D1, 9))))
    land_windows(lake, "cdrs", [Window(at(D1, 10), at(D1, 11))], cdrs(cdr("a", at(D1, 10), at(D1, 12))))
    landed = partition(lake, D1)
    assert landed["id"].to_list() == ["a"] and landed["created_at"].to_list() == [at(D1, 10)]


def test_re_landing_the_same_data_is_a_no_op_that_writes_nothing(lake: AccountLake) -> None:
    frame = cdrs(cdr("a", at(D1, 1)), cdr("b", at(D1, 2)))
    land_windows(lake, "cdrs", [whole_day(D1)], frame)
    path = Path(lake.path(lake.partition("cdrs", D1)))
    before = (path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_ino)
    stats = land_windows(lake, "cdrs", [whole_day(D1)], frame.reverse())
    assert stats.days == (DayStats(D1, unchanged=2),)
    assert (path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_ino) == before


def test_mdrs_round_trip_nested_lists_and_money_exactly(lake: AccountLake) -> None:
    record = {
        "id": "m1",
        "record_type": "message",
        "direction": "outbound",
        "cli": "+447700900123",
        "cld": "+14155550100",
        "country_code": "US",
        "message_type": "sms",
        "encoding": "ucs2",
        "parts": 2,
        "status": "delivery_failed",
        "carrier": "Carrier, \"Inc\"\n",
        "messaging_profile_id": "mp-1",
        "messaging_profile_name": "Profile ☃",
        "tags": [],
        "errors": [{"code": "40001", "title": "Unreachable"}],
        "created_at": at(D1, 3),
        "sent_at": None,
        "completed_at": None,
        "updated_at": at(D1, 3),
        "rate": Decimal("0.0001666"),
        "cost": Decimal("0.0003332"),
        "carrier_fee": Decimal("0"),
        "currency": "EUR",
    }
    frame = pl.DataFrame([record], schema=api.LAKE_SCHEMAS["mdrs"])
    land_windows(lake, "mdrs", [whole_day(D1)], frame)
    assert partition(lake, D1, "mdrs").equals(frame)
    assert partition(lake, D1, "mdrs").row(0, named=True)["cost"] == Decimal("0.0003332")


def test_programming_errors_are_named(lake: AccountLake) -> None:
    window = Window(at(D1, 10), at(D1, 11))
    with pytest.raises(ValueError, match=r"outside \[2026-03-01T10:00:00.000Z, .*e\.g\. id late created 2026-03-01T11:00:00\.000Z"):
        land_windows(lake, "cdrs", [window], cdrs(cdr("ok", at(D1, 10)), cdr("late", at(D1, 11))))
    with pytest.raises(ValueError, match="programming error: cdrs frame must have exactly the lake schema"):
        land_windows(lake, "cdrs", [window], cdrs(cdr("ok", at(D1, 10))).drop("tags"))
    with pytest.raises(ValueError, match="null 'id'"):
        land_windows(lake, "cdrs", [window], cdrs(cdr(None, at(D1, 10))))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown record type 'calls'"):
        land_windows(lake, "calls", [window], cdrs())  # type: ignore[arg-type]
    assert lake.partition_days("cdrs") == []


# -- usage -----------------------------------------------------------------------------------


def usage(*rows: tuple[date, str, str, int, str], product: str = "calls") -> pl.DataFrame:
    """(date, country, direction, count, cost) rows -> a usage frame."""
    return pl.DataFrame(
        [
            {
                "date": day,
                "product": product,
                "country_code": country,
                "direction": direction,
                "currency": "USD",
                "count": count,
                "billed_duration_secs": count * 60,
                "parts": None,
                "cost": Decimal(cost),
            }
            for day, country, direction, count, cost in rows
        ],
        schema=api.USAGE_SCHEMA,
    )


def test_usage_replaces_whole_days_and_counts_changes(lake: AccountLake) -> None:
    two_days = Window(at(D1, 0), at(D3, 0))
    first = land_usage(lake, "cdrs", two_days, usage((D2, "US", "outbound", 2, "1.5"), (D1, "GB", "inbound", 1, "0.1"), (D1, "DE", "outbound", 3, "0.3")))
    assert first.kind == "usage_cdrs" and first.new == 3
    second = land_usage(lake, "cdrs", whole_day(D1), usage((D1, "DE", "outbound", 4, "0.4"), (D1, "FR", "outbound", 1, "0.2")))
    landed = lake.read_partition("usage_cdrs", D1, api.USAGE_SCHEMA)
    assert landed.select("country_code", "count").rows() == [("DE", 4), ("FR", 1)]
    assert (second.new, second.updated, second.unchanged, second.removed) == (1, 1, 0, 1)
    assert lake.read_partition("usage_cdrs", D2, api.USAGE_SCHEMA)["count"].to_list() == [2]
    again = land_usage(lake, "cdrs", whole_day(D1), usage((D1, "FR", "outbound", 1, "0.2"), (D1, "DE", "outbound", 4, "0.4")))
    assert (again.unchanged, again.bytes_written) == (2, 0)
    emptied = land_usage(lake, "cdrs", whole_day(D2), usage())
    assert emptied.removed == 1 and lake.partition_days("usage_cdrs") == [D1]


def test_usage_rejects_misuse(lake: AccountLake) -> None:
    with pytest.raises(ValueError, match="not day-aligned"):
        land_usage(lake, "cdrs", Window(at(D1, 1), at(D2, 0)), usage())
    with pytest.raises(ValueError, match="product 'messages', expected 'calls'"):
        land_usage(lake, "cdrs", whole_day(D1), usage((D1, "US", "outbound", 1, "1"), product="messages"))
    with pytest.raises(ValueError, match="dates outside the window"):
        land_usage(lake, "cdrs", whole_day(D1), usage((D2, "US", "outbound", 1, "1")))
    with pytest.raises(UsageConflictError, match="repeats date=2026-03-01, country_code=US, direction=outbound, currency=USD"):
        land_usage(lake, "cdrs", whole_day(D1), usage((D1, "US", "outbound", 1, "1"), (D1, "US", "outbound", 2, "2")))
    assert lake.partition_days("usage_cdrs") == []


# -- quarantine --------------------------------------------------------------------------------


def test_quarantine_files_rejects_with_their_context_and_never_touches_the_lake(lake: AccountLake) -> None:
    hour = Window(at(D1, 10), at(D1, 11))
    seen = at(D2, 4, 30, ms=123)
    raw = '{"id": null, "cli": "not a number", "note": "quote \\" and ✓"}'
    first = quarantine(lake, "cdrs", "run-1", [Reject("missing id", raw, "cdrs", hour, 3)], now=seen)
    second = quarantine(lake, "cdrs", "run-1", [Reject("bad created_at", "{trunc", "cdrs", hour, 4)], now=seen)
    assert first != second
    assert first.startswith("quarantine/cdrs/account=default/date=2026-03-02/run-1-") and first.endswith(".jsonl")
    assert quarantine(lake, "cdrs", "run-1", [], now=seen) is None
    assert orjson.loads(lake.read_bytes(first)) == {
        "kind": "cdrs",
        "run_id": "run-1",
        "seen_at": "2026-03-02T04:30:00.123Z",
        "slice_start": "2026-03-01T10:00:00.000Z",
        "slice_end": "2026-03-01T11:00:00.000Z",
        "page_number": 3,
        "reason": "missing id",
        "raw_json": raw,
    }
    table = read_quarantine(lake, "cdrs")
    assert dict(table.schema) == QUARANTINE_SCHEMA
    assert table.select("reason", "raw_json", "page_number", "seen_at").rows() == [
        ("missing id", raw, 3, seen),
        ("bad created_at", "{trunc", 4, seen),
    ]
    assert read_quarantine(lake, "mdrs").height == 0
    assert lake.list_files("lake") == []


def test_quarantine_refuses_unsafe_run_ids_and_mixed_kinds(lake: AccountLake) -> None:
    hour = Window(at(D1, 10), at(D1, 11))
    with pytest.raises(ValueError, match="run id '../x'"):
        quarantine(lake, "cdrs", "../x", [Reject("r", "{}", "cdrs", hour, 1)])
    with pytest.raises(ValueError, match="a mdrs reject was quarantined as cdrs"):
        quarantine(lake, "cdrs", "run-1", [Reject("r", "{}", "mdrs", hour, 1)])
