"""The sandbox server against reports_api_contract.md, over a real socket.

One server per module (a small world with re-ratings and malformed records, clock pinned);
expected results come from the same world built in-process and filtered with polars.
"""

from __future__ import annotations

import email.utils
import re
import shutil
import signal
import subprocess
import time
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import httpx
import orjson
import polars as pl
import pytest

from pipelines.dates import Window, format_utc, resolve_literal
from pipelines.opentact.api import listing_params
from sandbox.query import parse_listing
from sandbox.server import SETTLED_AFTER, Reports
from sandbox.testing import TEST_API_KEY, running_sandbox, serve_command
from sandbox.world import RERATE_MAX_MS, World, empty_view

UTC = timezone.utc
SEED = 11
START = date(2026, 10, 1)
NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
WORLD = {"seed": SEED, "calls_per_day": 240, "messages_per_day": 120, "rerate_rate": 0.3, "malformed_rate": 0.05}
CDRS, MDRS, USAGE = "/v2/reports/cdrs", "/v2/reports/mdrs", "/v2/reports/usage"
# A small window (three days, ~700 calls) for filter and sort comparisons.
DAYS3 = Window(datetime(2026, 10, 3, tzinfo=UTC), datetime(2026, 10, 6, tzinfo=UTC))
IMF_FIXDATE = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT")


@pytest.fixture(scope="module")
def world() -> World:
    return World(start=START, **WORLD)


@pytest.fixture(scope="module")
def base_url() -> str:
    with running_sandbox(start=START.isoformat(), now=format_utc(NOW), **WORLD) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> httpx.Client:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {TEST_API_KEY}"}, timeout=60) as http:
        yield http


def visible(world: World, kind: str, window: Window | None = None) -> pl.DataFrame:
    """The world's records of a kind visible at NOW, optionally inside a created_at window."""
    start = window.start if window else datetime(START.year, START.month, START.day, tzinfo=UTC)
    end = min(window.end, NOW) if window else NOW
    frames = list(world.window(kind, start, end, NOW)) if start < end else []
    return pl.concat(frames) if frames else empty_view(kind)


def records(frame: pl.DataFrame) -> list[dict]:
    """A world frame -> its records as the API serves them."""
    return [orjson.loads(text) for text in frame.get_column("json")]


def newest_first(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(["created_at", "id"], descending=True)


def window_params(window: Window) -> list[tuple[str, str]]:
    return [("filter[created_at][gte]", format_utc(window.start)), ("filter[created_at][lt]", format_utc(window.end))]


def fetch_all(client: httpx.Client, path: str, params: list[tuple[str, str]], size: int = 250) -> list[dict]:
    """Every record of a listing, page by page, checking meta on the way."""
    out: list[dict] = []
    number = 1
    while True:
        response = client.get(path, params=[*params, ("page[number]", str(number)), ("page[size]", str(size))])
        assert response.status_code == 200, response.text
        body = response.json()
        meta = body["meta"]
        assert (meta["page_number"], meta["page_size"]) == (number, size)
        assert meta["total_pages"] == -(-meta["total_results"] // size)
        out.extend(body["data"])
        if number >= meta["total_pages"]:
            assert len(out) == meta["total_results"]
            return out
        assert len(body["data"]) == size
        number += 1


def assert_error(response: httpx.Response, status: int, parameter: str | None = None) -> dict:
    """An error response in the API's exact shape; returns its one error."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["errors"] and len(body["errors"]) == 1
    error = body["errors"][0]
    assert isinstance(error["code"], str) and error["code"].isdigit()
    assert error["title"] and error["detail"]
    if parameter is not None:
        assert error["source"] == {"parameter": parameter}
    assert TEST_API_KEY not in response.text
    return error


# --- transport -------------------------------------------------------------------------


def test_missing_key_is_401_with_an_error_body(base_url: str) -> None:
    response = httpx.get(base_url + CDRS)
    error = assert_error(response, 401)
    assert error["title"] == "Unauthorized"


@pytest.mark.parametrize("header", [f"Bearer {TEST_API_KEY}x", "Bearer wrong", f"Basic {TEST_API_KEY}", TEST_API_KEY])
def test_wrong_key_or_scheme_is_401(base_url: str, header: str) -> None:
    assert_error(httpx.get(base_url + MDRS, headers={"Authorization": header}), 401)


@pytest.mark.parametrize("path", ["/", "/v2/reports", "/v2/reports/cdr", "/v2/reports/cdrs/x", "/v1/reports/mdrs"])
def test_unknown_paths_are_404_with_an_error_body(client: httpx.Client, path: str) -> None:
    assert_error(client.get(path), 404)


def test_only_get_is_allowed(client: httpx.Client) -> None:
    response = client.post(CDRS, json={})
    assert_error(response, 405)
    assert response.headers["allow"] == "GET"


@pytest.mark.parametrize(
    ("path", "params", "status", "with_key"),
    [
        (CDRS, [], 200, True),
        (USAGE, [("product", "calls")], 200, True),
        (CDRS, [("filter[nope]", "1")], 400, True),
        (CDRS, [], 401, False),
        ("/nowhere", [], 404, True),
    ],
)
def test_every_response_has_an_imf_date_json_and_rate_limit_headers(
    base_url: str, path: str, params: list, status: int, with_key: bool
) -> None:
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"} if with_key else {}
    response = httpx.get(base_url + path, params=params, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert IMF_FIXDATE.fullmatch(response.headers["date"])
    # The Date header tells the server's clock, pinned here.
    assert email.utils.parsedate_to_datetime(response.headers["date"]) == NOW
    assert int(response.headers["x-ratelimit-limit"]) >= int(response.headers["x-ratelimit-remaining"]) >= 0
    assert int(response.headers["x-ratelimit-reset"]) >= 1
    assert int(response.headers["content-length"]) == len(response.content)


def test_curl_gets_a_page_with_raw_brackets(base_url: str) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    url = f"{base_url}{CDRS}?page[size]=3&sort=-created_at&filter[direction]=outbound"
    result = subprocess.run(
        [curl, "-sg", "-H", f"Authorization: Bearer {TEST_API_KEY}", "-w", "\n%{http_code}", url],
        capture_output=True, text=True, timeout=60, check=True,
    )
    body, status = result.stdout.rsplit("\n", 1)
    assert status == "200"
    page = orjson.loads(body)
    assert page["meta"]["page_size"] == 3
    assert [r["direction"] for r in page["data"]] == ["outbound"] * 3


# --- pagination ------------------------------------------------------------------------


def test_default_listing_is_the_20_newest_records(client: httpx.Client, world: World) -> None:
    expected = newest_first(visible(world, "cdrs"))
    body = client.get(CDRS).json()
    assert body["data"] == records(expected.head(20))
    assert body["meta"] == {
        "page_number": 1, "page_size": 20, "total_pages": -(-expected.height // 20), "total_results": expected.height,
    }


def test_page_size_is_clamped_at_250_and_meta_says_so(client: httpx.Client, world: World) -> None:
    expected = newest_first(visible(world, "mdrs"))
    body = client.get(MDRS, params={"page[size]": "1000", "page[number]": "2"}).json()
    assert body["meta"]["page_size"] == 250
    assert body["meta"]["total_pages"] == -(-expected.height // 250)
    assert body["data"] == records(expected.slice(250, 250))


def test_a_page_past_the_end_is_empty_with_correct_meta(client: httpx.Client, world: World) -> None:
    total = visible(world, "cdrs", DAYS3).height
    params = [*window_params(DAYS3), ("page[size]", "100"), ("page[number]", "999")]
    body = client.get(CDRS, params=params).json()
    assert body == {
        "data": [],
        "meta": {"page_number": 999, "page_size": 100, "total_pages": -(-total // 100), "total_results": total},
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [("page[number]", "0"), ("page[number]", "-1"), ("page[number]", "two"), ("page[number]", "1.5"),
     ("page[size]", "0"), ("page[size]", "-20"), ("page[size]", "")],
)
def test_bad_page_parameters_are_400_naming_them(client: httpx.Client, name: str, value: str) -> None:
    assert_error(client.get(CDRS, params={name: value}), 400, parameter=name)


def test_paging_a_window_oldest_first_returns_every_record_once_in_order(client: httpx.Client, world: World) -> None:
    window = Window(datetime(2026, 10, 10, 6, tzinfo=UTC), datetime(2026, 10, 13, 18, tzinfo=UTC))
    expected = visible(world, "cdrs", window).sort(["created_at", "id"])
    # The same parameters the pipeline's client sends.
    params = [p for p in listing_params(window, 1, 250) if not p[0].startswith("page")]
    assert fetch_all(client, CDRS, params) == records(expected)


def test_paging_newest_first_across_day_boundaries(client: httpx.Client, world: World) -> None:
    expected = newest_first(visible(world, "mdrs", DAYS3))
    assert fetch_all(client, MDRS, [*window_params(DAYS3), ("sort", "-created_at")], size=37) == records(expected)


# --- sorting ---------------------------------------------------------------------------

SORTS = [
    ("cdrs", [("sort", "cost")], [("cost", False), ("id", False)]),
    ("cdrs", [("sort", "-cost")], [("cost", True), ("id", True)]),
    ("cdrs", [("sort[]", "status"), ("sort[]", "-created_at")], [("status", False), ("created_at", True), ("id", False)]),
    ("cdrs", [("sort", "answered_at")], [("answered_at", False), ("id", False)]),
    ("cdrs", [("sort", "-answered_at")], [("answered_at", True), ("id", True)]),
    ("cdrs", [("sort[]", "created_at"), ("sort[]", "-duration_secs")], [("created_at", False), ("duration_secs", True), ("id", False)]),
    ("cdrs", [("sort[]", "-created_at"), ("sort[]", "id")], [("created_at", True), ("id", False)]),
    ("cdrs", [("sort", "connection.name")], [("connection.name", False), ("id", False)]),
    ("cdrs", [("sort", "-id")], [("id", True)]),
    ("mdrs", [("sort[]", "-parts"), ("sort[]", "carrier")], [("parts", True), ("carrier", False), ("id", True)]),
    ("mdrs", [("sort", "completed_at")], [("completed_at", False), ("id", False)]),
]


@pytest.mark.parametrize(("kind", "params", "keys"), SORTS)
def test_sort_orders_with_id_tie_break_in_the_first_direction(
    client: httpx.Client, world: World, kind: str, params: list, keys: list
) -> None:
    frame = visible(world, kind, DAYS3)
    # Null sorts as the largest value: last ascending, first descending.
    expected = frame.sort(
        [k for k, _ in keys], descending=[d for _, d in keys], nulls_last=[not d for _, d in keys]
    )
    served = fetch_all(client, f"/v2/reports/{kind}", [*window_params(DAYS3), *params], size=90)
    assert served == records(expected)


@pytest.mark.parametrize(
    ("path", "name", "value"),
    [(CDRS, "sort", "nope"), (CDRS, "sort", "tags"), (MDRS, "sort", "-errors"), (CDRS, "sort[]", "connection")],
)
def test_unknown_or_non_scalar_sort_fields_are_400(client: httpx.Client, path: str, name: str, value: str) -> None:
    assert_error(client.get(path, params={name: value}), 400, parameter=name)


# --- filtering -------------------------------------------------------------------------

DEC = pl.Decimal(38, 9)
FILTERS = [
    ("cdrs", [("filter[direction]", "inbound")], pl.col("direction") == "inbound"),
    ("cdrs", [("filter[status][]", "busy"), ("filter[status][]", "no_answer")], pl.col("status").is_in(["busy", "no_answer"])),
    ("cdrs", [("filter[answered_at]", "null")], pl.col("answered_at").is_null()),
    ("cdrs", [("filter[answered_at][ne]", "null")], pl.col("answered_at").is_not_null()),
    ("cdrs", [("filter[status][eq]", "answered")], pl.col("status") == "answered"),
    ("cdrs", [("filter[status][ne]", "answered")], pl.col("status") != "answered"),
    ("cdrs", [("filter[sip_response_code][gte]", "400")], pl.col("sip_response_code") >= 400),
    ("cdrs", [("filter[sip_response_code][lt]", "300")], pl.col("sip_response_code") < 300),
    ("cdrs", [("filter[duration_secs][gt]", "120"), ("filter[duration_secs][lte]", "300")],
     (pl.col("duration_secs") > 120) & (pl.col("duration_secs") <= 300)),
    ("cdrs", [("filter[cost][gt]", "0.05")], pl.col("cost") > pl.lit(Decimal("0.05"), dtype=DEC)),
    ("cdrs", [("filter[cost][gte]", "5E-2")], pl.col("cost") >= pl.lit(Decimal("0.05"), dtype=DEC)),
    ("cdrs", [("filter[cost]", "0.0")], pl.col("cost") == pl.lit(Decimal(0), dtype=DEC)),
    ("cdrs", [("filter[rate][lt]", "0.0100000001")], pl.col("rate") <= pl.lit(Decimal("0.01"), dtype=DEC)),
    ("cdrs", [("filter[cld][starts_with]", "+44")], pl.col("cld").str.starts_with("+44")),
    ("cdrs", [("filter[cli][ends_with]", "7")], pl.col("cli").str.ends_with("7")),
    ("cdrs", [("filter[hangup_cause][contains]", "busy")], pl.col("hangup_cause").str.contains("busy", literal=True)),
    ("cdrs", [("filter[country_code][gt]", "M")], pl.col("country_code") > "M"),
    ("cdrs", [("filter[tags]", "vip")], pl.col("tags").list.contains("vip")),
    ("cdrs", [("filter[tags][ne]", "vip")], ~pl.col("tags").list.contains("vip")),
    ("cdrs", [("filter[tags]", "null")], pl.col("tags").list.len() == 0),
    ("cdrs", [("filter[currency]", "EUR"), ("filter[direction]", "outbound")],
     (pl.col("currency") == "EUR") & (pl.col("direction") == "outbound")),
    ("cdrs", [("filter[updated_at][gt]", "2026-10-04T00:00:00.000Z")],
     pl.col("updated_at") > datetime(2026, 10, 4, tzinfo=UTC)),
    ("cdrs", [("filter[created_at][ne]", "2026-10-04T00:00:00.000Z")], pl.lit(True)),
    ("mdrs", [("filter[parts][gte]", "2")], pl.col("parts") >= 2),
    ("mdrs", [("filter[encoding]", "ucs2"), ("filter[message_type]", "sms")],
     (pl.col("encoding") == "ucs2") & (pl.col("message_type") == "sms")),
    ("mdrs", [("filter[sent_at]", "null")], pl.col("sent_at").is_null()),
    ("mdrs", [("filter[completed_at][lt]", "2026-10-04T12:00Z")], pl.col("completed_at") < datetime(2026, 10, 4, 12, tzinfo=UTC)),
    ("mdrs", [("filter[carrier_fee][gt]", "0")], pl.col("carrier_fee") > pl.lit(Decimal(0), dtype=DEC)),
    ("mdrs", [("filter[status][ne][]", "delivered"), ("filter[status][ne][]", "received")],
     ~pl.col("status").is_in(["delivered", "received"])),
]


@pytest.mark.parametrize(("kind", "params", "expr"), FILTERS, ids=[str(p) for _, p, _ in FILTERS])
def test_filters_match_a_direct_polars_filter(
    client: httpx.Client, world: World, kind: str, params: list, expr: pl.Expr
) -> None:
    expected = newest_first(visible(world, kind, DAYS3).filter(expr))
    served = fetch_all(client, f"/v2/reports/{kind}", [*window_params(DAYS3), *params])
    assert served == records(expected)
    # A filter that selects nothing would not test much.
    assert served


def test_nested_fields_filter_by_dot_notation_with_awkward_names(client: httpx.Client, world: World) -> None:
    frame = visible(world, "cdrs", DAYS3)
    for name in frame.get_column("connection.name").unique().sort().to_list():
        expected = newest_first(frame.filter(pl.col("connection.name") == name))
        assert fetch_all(client, CDRS, [*window_params(DAYS3), ("filter[connection.name]", name)]) == records(expected)
    connection_id = frame.get_column("connection.id")[0]
    expected = newest_first(frame.filter(pl.col("connection.id") == connection_id))
    assert fetch_all(client, CDRS, [*window_params(DAYS3), ("filter[connection.id]", connection_id)]) == records(expected)
    mdrs = visible(world, "mdrs", DAYS3)
    profile = mdrs.get_column("messaging_profile.name")[0]
    expected = newest_first(mdrs.filter(pl.col("messaging_profile.name").str.contains(profile[1:4], literal=True)))
    params = [*window_params(DAYS3), ("filter[messaging_profile.name][contains]", profile[1:4])]
    assert fetch_all(client, MDRS, params) == records(expected)


INSTANT = datetime(2026, 10, 3, 10, 0, tzinfo=UTC)
DATETIME_FORMS = [
    "2026-10-03T10:00:00.000Z",
    "2026-10-03T10:00:00Z",
    "2026-10-03T10:00Z",
    "2026-10-03T10:00:00.000-00",
    "2026-10-03T10:00:00.000-0000",
    "2026-10-03T10:00:00.000-00:00",
    "2026-10-03T10:00:00-00:00",
    "2026-10-03T10:00-0000",
]


@pytest.mark.parametrize("text", DATETIME_FORMS)
def test_every_accepted_date_time_form_means_the_same_instant(client: httpx.Client, world: World, text: str) -> None:
    frame = visible(world, "cdrs", Window(INSTANT, datetime(2026, 10, 4, tzinfo=UTC)))
    # The upper bound as a bare date: its 00:00:00Z.
    params = {"filter[created_at][gte]": text, "filter[created_at][lt]": "2026-10-04", "page[size]": "1"}
    body = client.get(CDRS, params=params).json()
    assert body["meta"]["total_results"] == frame.height > 0
    assert body["data"] == records(newest_first(frame).head(1))


@pytest.mark.parametrize("text", ["2026-10-03T10:00:00", "2026-10-03 10:00Z", "03/10/2026", "2026-10-03T25:00Z", "yesterday", ""])
def test_bad_date_times_are_400_naming_the_parameter(client: httpx.Client, text: str) -> None:
    assert_error(client.get(CDRS, params={"filter[created_at][gte]": text}), 400, parameter="filter[created_at][gte]")


LITERALS = [
    "today", "yesterday", "tomorrow", "this_week", "last_week", "next_week", "this_month", "last_month",
    "next_month", "last_6_hours", "next_2_hours", "last_3_days", "next_1_days", "last_2_weeks", "next_1_weeks",
]


@pytest.mark.parametrize("literal", LITERALS)
def test_date_range_literals_select_their_window_at_the_server_clock(
    client: httpx.Client, world: World, literal: str
) -> None:
    window = resolve_literal(literal, now=NOW, tz="UTC", week_start="monday")
    expected = newest_first(visible(world, "mdrs", window))
    body = client.get(MDRS, params={"filter[date_range]": literal, "page[size]": "5"}).json()
    assert body["meta"]["total_results"] == expected.height
    assert body["data"] == records(expected.head(5))


@pytest.mark.parametrize(
    "params",
    [
        {"filter[nope]": "1"},
        {"filter[connection]": "x"},
        {"filter[cost][approx]": "1"},
        {"filter[cost][starts_with]": "1"},
        {"filter[cost]": "cheap"},
        {"filter[sip_response_code]": "486.0"},
        {"filter[date_range]": "last_0_days"},
        {"filter[date_range]": "last_x_days"},
        {"filter[date_range]": "fortnight"},
        {"unknown": "1"},
    ],
)
def test_bad_filters_are_400_naming_the_parameter(client: httpx.Client, params: dict) -> None:
    assert_error(client.get(CDRS, params=params), 400, parameter=next(iter(params)))


# --- records the world shows -----------------------------------------------------------


def test_pages_carry_malformed_and_re_rated_records_as_the_world_shows_them(client: httpx.Client, world: World) -> None:
    frame = visible(world, "cdrs", DAYS3)
    served = fetch_all(client, CDRS, window_params(DAYS3))
    malformed = records(frame.filter(pl.col("malformed").is_not_null()))
    assert malformed and all(record in served for record in malformed)
    rerated = [r for r in served if "updated_at" in r and "created_at" in r and r["updated_at"] != r["created_at"]]
    assert rerated


# --- usage -----------------------------------------------------------------------------


def _aggregate(frame: pl.DataFrame, dimensions: list[str], metrics: list[str]) -> list[dict]:
    """The usage rows expected for a frame: a direct polars group-by, sorted by the dimensions."""
    frame = frame.with_columns(pl.col("created_at").dt.date().alias("date"))
    sums = [pl.col(m).sum() for m in metrics if m != "count"]
    aggregates = [pl.len().alias("count"), *sums]
    table = frame.group_by(dimensions).agg(aggregates).sort(dimensions) if dimensions else frame.select(aggregates)
    rows = []
    for row in table.iter_rows(named=True):
        item = {d: (row[d].isoformat() if isinstance(row[d], date) else row[d]) for d in dimensions}
        for m in metrics:
            value = row[m]
            item[m] = format(Decimal(value or 0).quantize(Decimal("0.000001"), ROUND_HALF_UP), "f") if m == "cost" else int(value or 0)
        rows.append(item)
    return rows


def _all_usage(client: httpx.Client, params: list[tuple[str, str]]) -> list[dict]:
    body = client.get(USAGE, params=[*params, ("page[size]", "5000")]).json()
    assert body["meta"]["total_pages"] <= 1
    return body["data"]


def test_usage_of_calls_equals_a_polars_aggregate_of_the_world(client: httpx.Client, world: World) -> None:
    window = resolve_literal("last_month", now=NOW)
    frame = visible(world, "cdrs", window)
    # Malformed records are real usage: the platform counts them.
    assert frame.filter(pl.col("malformed").is_not_null()).height > 0
    dimensions = ["date", "country_code", "direction"]
    params = [("product", "calls"), ("dimensions", ",".join(dimensions)), ("filter[date_range]", "last_month")]
    expected = _aggregate(frame, dimensions, ["count", "billed_duration_secs", "cost"])
    served = _all_usage(client, params)
    assert served == expected
    assert served[0]["date"] == "2026-10-01"
    assert list(served[0]) == [*dimensions, "count", "billed_duration_secs", "cost"]


def test_usage_of_messages_with_filters_and_an_explicit_window(client: httpx.Client, world: World) -> None:
    window = Window(datetime(2026, 10, 20, 6, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC))
    frame = visible(world, "mdrs", window).filter(pl.col("direction") == "outbound")
    dimensions = ["messaging_profile.id", "currency"]
    params = [
        ("product", "messages"), ("dimensions", ",".join(dimensions)), ("metrics", "count,parts,cost"),
        *window_params(window), ("filter[direction]", "outbound"),
    ]
    assert _all_usage(client, params) == _aggregate(frame, dimensions, ["count", "parts", "cost"])


def test_usage_without_dimensions_is_one_row_of_totals(client: httpx.Client, world: World) -> None:
    frame = visible(world, "cdrs")
    served = _all_usage(client, [("product", "calls"), ("metrics", "cost,count")])
    assert served == _aggregate(frame, [], ["cost", "count"])
    empty = _all_usage(client, [("product", "calls"), ("filter[date_range]", "next_month")])
    assert empty == [{"count": 0, "billed_duration_secs": 0, "cost": "0.000000"}]


def test_usage_pages_like_the_listings_up_to_5000(client: httpx.Client, world: World) -> None:
    dimensions = ["date", "country_code", "connection.id"]
    expected = _aggregate(visible(world, "cdrs"), dimensions, ["count", "billed_duration_secs", "cost"])
    params = [("product", "calls"), ("dimensions", ",".join(dimensions))]
    page = client.get(USAGE, params=[*params, ("page[size]", "7"), ("page[number]", "3")]).json()
    assert page["data"] == expected[14:21]
    assert page["meta"] == {"page_number": 3, "page_size": 7, "total_pages": -(-len(expected) // 7), "total_results": len(expected)}
    clamped = client.get(USAGE, params=[*params, ("page[size]", "99999")]).json()
    assert clamped["meta"]["page_size"] == 5000 and clamped["data"] == expected


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({}, "product"),
        ({"product": "faxes"}, "product"),
        ({"product": "calls", "dimensions": "date,city"}, "dimensions"),
        ({"product": "calls", "dimensions": "messaging_profile.id"}, "dimensions"),
        ({"product": "messages", "metrics": "count,billed_duration_secs"}, "metrics"),
        ({"product": "calls", "filter[date_range]": "someday"}, "filter[date_range]"),
        ({"product": "calls", "page[number]": "0"}, "page[number]"),
    ],
)
def test_bad_usage_parameters_are_400_naming_them(client: httpx.Client, params: dict, parameter: str) -> None:
    assert_error(client.get(USAGE, params=params), 400, parameter=parameter)


# --- the live clock ---------------------------------------------------------------------


def test_a_live_clock_reveals_records_as_their_created_at_passes(world: World) -> None:
    day = date(2026, 10, 7)
    daytime = world.view("cdrs", day, datetime(2026, 10, 7, 18, tzinfo=UTC))
    created = daytime.get_column("created_at")
    # Start the live clock just before a record that follows the longest gap of the day,
    # so that records keep appearing during the test.
    index = int(created.diff().dt.total_milliseconds().arg_max())
    start = created[index] - timedelta(milliseconds=600)
    with running_sandbox(start=START.isoformat(), now=format_utc(start), live=True, **WORLD) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TEST_API_KEY}"}, timeout=60) as http:
            params = {"filter[date_range]": "today", "sort": "created_at", "page[size]": "1"}
            first = http.get(CDRS, params=params)
            before = first.json()["meta"]["total_results"]
            deadline = time.monotonic() + 30
            while True:
                response = http.get(CDRS, params=params)
                after = response.json()["meta"]["total_results"]
                if after > before or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            # Oldest first, the first record to appear is number before + 1.
            appeared = http.get(CDRS, params={**params, "page[number]": str(before + 1)})
    assert after > before
    # The clock starts as the server process does, so a slow start-up may already show a few
    # records; whichever appeared is the day's next one, as shown seconds after its creation
    # (re-ratings come 10+ minutes later).
    expected = world.view("cdrs", day, start + timedelta(minutes=5)).row(before, named=True)
    shown = world.view("cdrs", day, expected["created_at"] + timedelta(seconds=1))
    assert appeared.json()["data"] == records(shown.filter(pl.col("id") == expected["id"]))
    assert email.utils.parsedate_to_datetime(response.headers["date"]) >= email.utils.parsedate_to_datetime(
        first.headers["date"]
    )


def test_huge_page_numbers_are_empty_pages_not_errors(client: httpx.Client) -> None:
    huge = "999999999999999999"
    for path, params in [(CDRS, {}), (CDRS, {"sort": "cost"}), (USAGE, {"product": "calls", "dimensions": "date"})]:
        body = client.get(path, params={**params, "page[number]": huge}).json()
        assert body["data"] == [] and body["meta"]["page_number"] == int(huge)


# --- caching under a moving clock (in-process) ----------------------------------------


def test_days_are_cached_as_settled_only_after_every_re_rating_is_due() -> None:
    # A record created at the very end of a day is re-rated at most RERATE_MAX_MS later.
    assert SETTLED_AFTER >= timedelta(milliseconds=RERATE_MAX_MS)


def test_a_moving_clock_never_gets_stale_pages_from_the_caches(world: World) -> None:
    reports = Reports(world, pinned=False)
    day = date(2026, 10, 9)
    original = world.day_frame("cdrs", day).filter(pl.col("rerated_at").is_not_null()).row(0, named=True)
    due = original["rerated_at"]
    query = f"filter[id]={original['id']}&filter[created_at][gte]=2026-10-09&filter[created_at][lt]=2026-10-10"

    def served(now: datetime) -> dict:
        return orjson.loads(reports.listing(parse_listing("cdrs", query, now), now))["data"][0]

    before, after = due - timedelta(milliseconds=1), due + timedelta(milliseconds=1)
    # Asked in this order, a cache keyed on anything coarser than the clock would go stale.
    assert served(before) == records(world.view("cdrs", day, before).filter(pl.col("id") == original["id"]))[0]
    assert served(after) == records(world.view("cdrs", day, after).filter(pl.col("id") == original["id"]))[0]
    assert served(before)["updated_at"] != served(after)["updated_at"]
    # Long after, the day is settled: later clocks see the same page (from the cache).
    settled = datetime(2026, 10, 10, tzinfo=UTC) + SETTLED_AFTER
    assert served(settled) == served(settled + timedelta(days=30)) == served(after)


# --- the command ------------------------------------------------------------------------


def test_serve_prints_only_its_base_url_and_stops_cleanly_on_sigterm() -> None:
    argv = serve_command(start=START.isoformat(), now=format_utc(NOW), api_key="secret-key-123", calls_per_day=10)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = process.stdout.readline().decode().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:[0-9]+", url) and not url.endswith(":0")
        assert httpx.get(url + CDRS, headers={"Authorization": "Bearer secret-key-123"}).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert out == b"" and b"secret-key-123" not in err


@pytest.mark.parametrize(
    ("changes", "mentions"),
    [
        ({"seed": "x"}, "--seed"),
        ({"start": "2026-13-01"}, "--start"),
        ({"now": "tomorrowish"}, "--now"),
        ({"now": None, "live": True}, "--live"),
        ({"fail_rate": "1.5"}, "--fail-rate"),
        ({"rate_limit": "0"}, "--rate-limit"),
        ({"port": "70000"}, "--port"),
        ({"calls_per_day": "-1"}, "volumes"),
    ],
)
def test_bad_serve_arguments_are_one_line_and_exit_2(changes: dict, mentions: str) -> None:
    argv = serve_command(**{"start": START.isoformat(), "now": format_utc(NOW), "api_key": "secret-key-123", **changes})
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and mentions in lines[0] and "secret-key-123" not in lines[0]


@pytest.mark.parametrize(("host", "announced"), [("0.0.0.0", "http://127.0.0.1:"), ("127.0.0.1", "http://127.0.0.1:")])
def test_a_sandbox_on_every_interface_announces_a_url_the_client_takes(host: str, announced: str) -> None:
    # `cdr sandbox serve --host 0.0.0.0`: the line a user copies into OPENTACT_BASE_URL must not be refused.
    from pipelines.settings import base_url_problem
    from sandbox.server import base_url, bind

    sock = bind(host, 0)
    try:
        url = base_url(sock)
    finally:
        sock.close()
    assert url.startswith(announced) and base_url_problem(url) is None
