"""The sandbox's query engine on small hand-made frames with the world's columns."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import polars as pl
import pytest

from sandbox.query import (
    CODE_INVALID_VALUE,
    CODE_OPERATOR_NOT_APPLICABLE,
    CODE_UNKNOWN_FIELD,
    CODE_UNKNOWN_OPERATOR,
    CODE_UNKNOWN_PARAMETER,
    QueryError,
    SortKey,
    canonical_query,
    parse_listing,
    parse_usage,
)

UTC = timezone.utc
NOW = datetime(2026, 11, 5, 12, 30, tzinfo=UTC)


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


CALLS = pl.DataFrame(
    {
        "id": ["a", "b", "c", "d"],
        "direction": ["inbound", "outbound", "outbound", "inbound"],
        "cld": ["+447700900001", "+33123456789", "+4915112345678", "+447700900002"],
        "connection.name": ['Bob\'s "Main" Trunk', "中文线路", "<script>alert(1)</script>", "Backup"],
        "status": ["answered", "busy", "answered", "no_answer"],
        "sip_response_code": [200, 486, 200, 480],
        "answered_at": [_ts("2026-10-01T10:00:01"), None, _ts("2026-10-02T09:00:00"), None],
        "created_at": [_ts("2026-10-01T10:00:30"), _ts("2026-10-01T23:59:59.999"), _ts("2026-10-02T09:01:00"), _ts("2026-10-03T00:00:00")],
        "cost": [Decimal("0.000001"), Decimal("0"), Decimal("1.5"), Decimal("0")],
        "tags": [["vip"], [], ["vip", "trial"], ["trial"]],
    },
    schema_overrides={
        "cost": pl.Decimal(38, 9),
        "answered_at": pl.Datetime("us", "UTC"),
        "created_at": pl.Datetime("us", "UTC"),
        "sip_response_code": pl.Int64,
    },
)


def _ids(query: str) -> list[str]:
    """The ids of CALLS a listing query string selects, in CALLS order."""
    selection = parse_listing("cdrs", query, NOW).selection
    frame = CALLS
    if selection.created_from is not None:
        frame = frame.filter(pl.col("created_at") >= selection.created_from)
    if selection.created_to is not None:
        frame = frame.filter(pl.col("created_at") < selection.created_to)
    expr = selection.expr()
    return (frame.filter(expr) if expr is not None else frame).get_column("id").to_list()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("filter[direction]=inbound", ["a", "d"]),
        ("filter[status][]=busy&filter[status][]=no_answer", ["b", "d"]),
        ("filter[answered_at]=null", ["b", "d"]),
        ("filter[answered_at][ne]=null", ["a", "c"]),
        ("filter[answered_at][ne]=2026-10-01T10:00:01Z", ["b", "c", "d"]),
        ("filter[status][ne][]=busy&filter[status][ne][]=answered", ["d"]),
        ("filter[sip_response_code][gte]=480", ["b", "d"]),
        ("filter[sip_response_code][lt]=300", ["a", "c"]),
        ("filter[cld][starts_with]=%2B44", ["a", "d"]),
        ("filter[cld][ends_with]=789", ["b"]),
        ("filter[connection.name][contains]=%22Main%22", ["a"]),
        ("filter[connection.name]=<script>alert(1)</script>", ["c"]),
        ("filter[connection.name]=中文线路", ["b"]),
        ("filter[tags]=vip", ["a", "c"]),
        ("filter[tags][ne]=vip", ["b", "d"]),
        ("filter[tags]=null", ["b"]),
        ("filter[tags][]=trial&filter[tags][]=null", ["b", "c", "d"]),
        ("filter[cost]=0.0", ["b", "d"]),
        ("filter[cost][gt]=1E-6", ["c"]),
        ("filter[cost][gte]=0.0000005", ["a", "c"]),
        ("filter[cost][lt]=0.0000010000000001", ["a", "b", "d"]),
        ("filter[cost][eq]=0.0000010000000001", []),
        ("filter[cost][ne]=1.50", ["a", "b", "d"]),
        ("filter[created_at][gte]=2026-10-02", ["c", "d"]),
        ("filter[created_at][lt]=2026-10-01T23:59:59.999Z", ["a"]),
        ("filter[created_at][lte]=2026-10-01T23:59:59.999Z", ["a", "b"]),
        ("filter[created_at][gt]=2026-10-01T23:59:59.999-00:00", ["c", "d"]),
        ("filter[created_at]=2026-10-03T00:00-0000", ["d"]),
        ("filter[created_at][ne]=2026-10-03T00:00:00-00", ["a", "b", "c"]),
        ("filter[date_range]=last_month", ["a", "b", "c", "d"]),
        ("filter[date_range]=last_35_days&filter[created_at][gte]=2026-10-01T12:00Z", ["b", "c", "d"]),
        ("filter[date_range]=last_34_days&filter[created_at][lt]=2026-10-02T12:00Z", ["c"]),
        ("filter[date_range]=yesterday", []),
    ],
)
def test_filters_select_the_expected_rows(query: str, expected: list[str]) -> None:
    assert _ids(query) == expected


@pytest.mark.parametrize(
    ("query", "parameter", "code"),
    [
        ("filter[foo]=1", "filter[foo]", CODE_UNKNOWN_FIELD),
        ("filter[connection]=x", "filter[connection]", CODE_UNKNOWN_FIELD),
        ("filter[cost][between]=1", "filter[cost][between]", CODE_UNKNOWN_OPERATOR),
        ("filter[cost][contains]=1", "filter[cost][contains]", CODE_OPERATOR_NOT_APPLICABLE),
        ("filter[tags][gt]=a", "filter[tags][gt]", CODE_OPERATOR_NOT_APPLICABLE),
        ("filter[errors]=x", "filter[errors]", CODE_UNKNOWN_FIELD),
        ("filter[cost]=abc", "filter[cost]", CODE_INVALID_VALUE),
        ("filter[cost]=NaN", "filter[cost]", CODE_INVALID_VALUE),
        ("filter[sip_response_code]=2.0", "filter[sip_response_code]", CODE_INVALID_VALUE),
        ("filter[created_at][gte]=2026-10-01T10:00:00", "filter[created_at][gte]", CODE_INVALID_VALUE),
        ("filter[created_at][gte]=yesterday", "filter[created_at][gte]", CODE_INVALID_VALUE),
        ("filter[date_range]=last_0_days", "filter[date_range]", CODE_INVALID_VALUE),
        ("filter[date_range]=lastmonth", "filter[date_range]", CODE_INVALID_VALUE),
        ("filter[date_range][eq]=today", "filter[date_range][eq]", CODE_UNKNOWN_OPERATOR),
        ("filter[cost][gt]=null", "filter[cost][gt]", CODE_INVALID_VALUE),
        ("filter[direction]=inbound&filter[direction]=outbound", "filter[direction]", CODE_INVALID_VALUE),
        ("page[number]=0", "page[number]", CODE_INVALID_VALUE),
        ("page[number]=x", "page[number]", CODE_INVALID_VALUE),
        ("page[size]=0", "page[size]", CODE_INVALID_VALUE),
        ("page[size]=-5", "page[size]", CODE_INVALID_VALUE),
        ("page[offset]=5", "page[offset]", CODE_UNKNOWN_PARAMETER),
        ("sort=nope", "sort", CODE_UNKNOWN_FIELD),
        ("sort=tags", "sort", CODE_UNKNOWN_FIELD),
        ("sort[]=cost&sort[]=nope", "sort[]", CODE_UNKNOWN_FIELD),
        ("limit=5", "limit", CODE_UNKNOWN_PARAMETER),
    ],
)
def test_bad_parameters_name_themselves(query: str, parameter: str, code: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_listing("cdrs", query, NOW)
    assert (caught.value.parameter, caught.value.code) == (parameter, code)


def test_page_size_defaults_to_20_and_clamps_at_250() -> None:
    assert (parse_listing("cdrs", "", NOW).page_number, parse_listing("cdrs", "", NOW).page_size) == (1, 20)
    assert parse_listing("cdrs", "page[number]=3&page[size]=9999", NOW).page_size == 250
    assert parse_usage("product=calls&page[size]=9999", NOW).page_size == 5000


def test_sort_defaults_to_newest_first_and_breaks_ties_by_id_in_the_first_direction() -> None:
    assert parse_listing("cdrs", "", NOW).sort == (SortKey("created_at", True), SortKey("id", True))
    assert parse_listing("cdrs", "sort[]=-cost&sort[]=created_at", NOW).sort == (
        SortKey("cost", True), SortKey("created_at", False), SortKey("id", True),
    )
    assert parse_listing("mdrs", "sort=messaging_profile.name", NOW).sort == (
        SortKey("messaging_profile.name", False), SortKey("id", False),
    )
    assert parse_listing("cdrs", "sort[]=created_at&sort[]=-id", NOW).sort == (
        SortKey("created_at", False), SortKey("id", True),
    )


def test_created_at_conditions_become_bounds_that_choose_days() -> None:
    selection = parse_listing(
        "cdrs", "filter[date_range]=last_month&filter[created_at][gte]=2026-10-30T12:00Z", NOW
    ).selection
    assert (selection.created_from, selection.created_to) == (_ts("2026-10-30T12:00"), _ts("2026-11-01T00:00"))
    assert selection.predicates == ()
    assert selection.days(date(2026, 10, 1), NOW) == [date(2026, 10, 30), date(2026, 10, 31)]
    # Visibility: nothing at or after the server's instant, nothing before the world starts.
    assert parse_listing("cdrs", "filter[date_range]=this_week", NOW).selection.days(date(2026, 11, 4), NOW) == [
        date(2026, 11, 4), date(2026, 11, 5),
    ]
    assert parse_listing("cdrs", "filter[date_range]=tomorrow", NOW).selection.days(date(2026, 10, 1), NOW) == []


def test_usage_parses_product_dimensions_and_metrics() -> None:
    usage = parse_usage("product=messages&dimensions=date,messaging_profile.id&filter[date_range]=yesterday", NOW)
    assert (usage.kind, usage.dimensions, usage.metrics) == ("mdrs", ("date", "messaging_profile.id"), ("count", "parts", "cost"))
    for query, parameter in [
        ("dimensions=date", "product"),
        ("product=faxes", "product"),
        ("product=calls&dimensions=messaging_profile.id", "dimensions"),
        ("product=calls&metrics=parts", "metrics"),
        ("product=calls&sort=date", "sort"),
    ]:
        with pytest.raises(QueryError) as caught:
            parse_usage(query, NOW)
        assert caught.value.parameter == parameter


def test_canonical_query_orders_keys_but_keeps_array_order() -> None:
    assert canonical_query("sort[]=b&page[number]=2&sort[]=a") == "page[number]=2&sort[]=b&sort[]=a"
    assert canonical_query("a=1&b=2") == canonical_query("b=2&a=1")
