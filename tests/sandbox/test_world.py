"""The sandbox world: every contract invariant on every record of a generated month,
realistic distributions, determinism, re-rating visibility and malformed records."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import orjson
import polars as pl
import pytest

from pipelines.errors import UsageError
from sandbox import catalog
from sandbox.world import VIEW_COLUMNS, World

START = date(2026, 3, 1)  # a Sunday
DAYS = 30
MONTH_END = datetime(2026, 3, 31, tzinfo=UTC)
LATER = datetime(2026, 5, 1, tzinfo=UTC)  # every record created and every re-rating done
PARAMS = dict(seed=42, start=START, calls_per_day=2000, messages_per_day=1000, rerate_rate=0.05, malformed_rate=0.01)

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
MONEY = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?(E-[0-9]+)?")
MICRO = Decimal("0.000001")

CDR_KEYS = [
    "id", "record_type", "call_session_id", "direction", "cli", "cld", "country_code",
    "country_calling_code", "number_type", "connection", "tags", "status", "hangup_cause",
    "sip_response_code", "started_at", "answered_at", "ended_at", "created_at", "updated_at",
    "duration_secs", "billed_duration_secs", "billing_initial_secs", "billing_increment_secs",
    "rate", "cost", "currency",
]
MDR_KEYS = [
    "id", "record_type", "direction", "cli", "cld", "country_code", "message_type", "encoding",
    "parts", "status", "carrier", "messaging_profile", "tags", "errors", "created_at", "sent_at",
    "completed_at", "updated_at", "rate", "cost", "carrier_fee", "currency",
]
# Independent ground truth (ITU-T E.164 assignments) for the catalog's countries.
CALLING_CODES = {
    "US": "1", "CA": "1", "MX": "52", "BR": "55", "AR": "54", "CO": "57", "CL": "56", "PE": "51",
    "GB": "44", "IE": "353", "DE": "49", "FR": "33", "ES": "34", "IT": "39", "PT": "351", "NL": "31",
    "BE": "32", "CH": "41", "AT": "43", "SE": "46", "NO": "47", "DK": "45", "FI": "358", "PL": "48",
    "CZ": "420", "RO": "40", "GR": "30", "TR": "90", "UA": "380", "IL": "972", "AE": "971",
    "SA": "966", "ZA": "27", "NG": "234", "KE": "254", "EG": "20", "IN": "91", "PK": "92",
    "PH": "63", "ID": "62", "TH": "66", "VN": "84", "JP": "81", "KR": "82", "CN": "86", "HK": "852",
    "SG": "65", "AU": "61", "NZ": "64",
    # The anomaly-only destinations (named by the high-risk list).
    "CU": "53", "LV": "371", "LT": "370", "EE": "372", "LI": "423", "SO": "252", "SL": "232",
    "GN": "224", "GW": "245", "GM": "220", "TV": "688", "CK": "682", "NR": "674",
}
CALL_OUTCOMES = {
    "answered": {("normal_clearing", 200)},
    "busy": {("user_busy", 486)},
    "no_answer": {("no_answer", 480), ("no_answer", 408)},
    "failed": {("call_rejected", 603), ("network_out_of_order", 503), ("unallocated_number", 404)},
    "cancelled": {("originator_cancel", 487)},
}
BILLING_SCHEMES = {(60, 60), (6, 6), (1, 1), (30, 6)}
OUTBOUND_MESSAGE_STATUSES = {
    "queued", "sent", "delivered", "delivery_failed", "delivery_unconfirmed", "gateway_rejected",
}
COUNTRIES = {c.code: c for c in catalog.DESTINATIONS}
CONNECTIONS = {p.id: p.name for p in catalog.CONNECTIONS}
PROFILES = {p.id: p.name for p in catalog.MESSAGING_PROFILES}


def month(world: World, kind: str, now: datetime = LATER) -> pl.DataFrame:
    """The whole generated month of one kind as the API shows it at `now`."""
    return pl.concat([world.view(kind, START + timedelta(days=i), now) for i in range(DAYS)])


@pytest.fixture(scope="module")
def world() -> World:
    return World(**PARAMS)


@pytest.fixture(scope="module")
def cdrs(world: World) -> pl.DataFrame:
    return month(world, "cdrs")


@pytest.fixture(scope="module")
def mdrs(world: World) -> pl.DataFrame:
    return month(world, "mdrs")


def valid(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col("malformed").is_null())


def instant(text: str) -> datetime:
    assert TIMESTAMP.fullmatch(text), text
    return datetime.fromisoformat(text)


def money(text: str) -> Decimal:
    assert isinstance(text, str) and MONEY.fullmatch(text), text
    return Decimal(text)


def ceil_secs(delta: timedelta) -> int:
    millis = delta // timedelta(milliseconds=1)
    return -(-millis // 1000)


def check_remote_number(record: dict) -> None:
    """The remote party's number is E.164 in its country's plan; our side is a US/UK DID."""
    remote, ours = (record["cld"], record["cli"]) if record["direction"] == "outbound" else (record["cli"], record["cld"])
    assert E164.fullmatch(remote) and E164.fullmatch(ours), record
    country = COUNTRIES[record["country_code"]]
    assert country.calling_code == CALLING_CODES[country.code]
    assert remote.startswith("+" + country.calling_code), record
    national = remote[1 + len(country.calling_code):]
    number_type = record.get("number_type")
    plans = [country.plans[number_type]] if number_type else [country.plans["local"], country.plans["mobile"]]
    assert any(len(national) == p.length and national.startswith(p.prefixes) for p in plans), record
    assert ours.startswith(("+1", "+44")), record


def check_cdr(record: dict) -> None:
    """Every contract rule for one call detail record."""
    assert list(record) == CDR_KEYS
    assert UUID.fullmatch(record["id"]) and UUID.fullmatch(record["call_session_id"])
    assert record["record_type"] == "call"
    assert record["direction"] in ("inbound", "outbound")
    assert record["number_type"] in catalog.NUMBER_TYPES
    if record["direction"] == "inbound":
        assert record["number_type"] in ("local", "mobile")
    assert record["country_calling_code"] == CALLING_CODES[record["country_code"]]
    check_remote_number(record)
    assert list(record["connection"]) == ["id", "name"]
    assert CONNECTIONS[record["connection"]["id"]] == record["connection"]["name"]
    tags = record["tags"]
    assert len(tags) <= 3 and len(set(tags)) == len(tags) and set(tags) <= set(catalog.TAGS)
    assert (record["hangup_cause"], record["sip_response_code"]) in CALL_OUTCOMES[record["status"]]
    started, ended = instant(record["started_at"]), instant(record["ended_at"])
    created, updated = instant(record["created_at"]), instant(record["updated_at"])
    answered = record["status"] == "answered"
    assert (record["answered_at"] is not None) == answered
    answered_at = instant(record["answered_at"]) if answered else started
    assert started <= answered_at <= ended <= created <= updated
    assert record["duration_secs"] == ceil_secs(ended - started)
    initial, increment = record["billing_initial_secs"], record["billing_increment_secs"]
    assert (initial, increment) in BILLING_SCHEMES
    if answered:
        talk = ceil_secs(ended - answered_at)
        billed = initial if talk <= initial else initial + -(-(talk - initial) // increment) * increment
    else:
        billed = 0
    assert record["billed_duration_secs"] == billed
    rate, cost = money(record["rate"]), money(record["cost"])
    assert cost == (rate * billed / 60).quantize(MICRO, rounding=ROUND_HALF_UP)
    assert record["currency"] in ("USD", "EUR")


def check_mdr(record: dict) -> None:
    """Every contract rule for one message detail record."""
    assert list(record) == MDR_KEYS
    assert UUID.fullmatch(record["id"])
    assert record["record_type"] == "message"
    assert record["direction"] in ("inbound", "outbound")
    check_remote_number(record)
    assert record["message_type"] in ("sms", "mms")
    assert record["encoding"] in ("gsm7", "ucs2")
    parts = record["parts"]
    assert isinstance(parts, int) and 1 <= parts <= -(-1600 // 67)
    if record["message_type"] == "mms":
        assert parts == 1
    if record["encoding"] == "gsm7":
        assert parts <= -(-1600 // 153)
    status = record["status"]
    if record["direction"] == "inbound":
        assert status == "received"
    else:
        assert status in OUTBOUND_MESSAGE_STATUSES
    assert record["carrier"] in COUNTRIES[record["country_code"]].carriers
    assert list(record["messaging_profile"]) == ["id", "name"]
    assert PROFILES[record["messaging_profile"]["id"]] == record["messaging_profile"]["name"]
    tags = record["tags"]
    assert len(tags) <= 3 and len(set(tags)) == len(tags) and set(tags) <= set(catalog.TAGS)
    errors = record["errors"]
    if status in ("delivery_failed", "gateway_rejected"):
        assert len(errors) == 1 and list(errors[0]) == ["code", "title"]
        assert errors[0]["code"].isdigit() and errors[0]["title"]
    else:
        assert errors == []
    created, updated = instant(record["created_at"]), instant(record["updated_at"])
    sent = instant(record["sent_at"]) if record["sent_at"] is not None else None
    completed = instant(record["completed_at"]) if record["completed_at"] is not None else None
    assert (sent is None) == (status in ("queued", "gateway_rejected", "received"))
    assert (completed is None) == (status in ("queued", "sent"))
    chain = [t for t in (created, sent, completed) if t is not None]
    assert chain == sorted(chain) and chain[-1] <= updated
    rate, cost, fee = money(record["rate"]), money(record["cost"]), money(record["carrier_fee"])
    assert cost == rate * parts
    assert fee >= 0
    assert record["currency"] in ("USD", "EUR")


def typed(record: dict, kind: str) -> dict:
    """A parsed JSON record in the typed-column form of `World.view`."""
    row: dict = {}
    for key, value in record.items():
        if isinstance(value, dict) and key != "errors":
            for sub, inner in value.items():
                row[f"{key}.{sub}"] = inner
        elif key.endswith("_at"):
            row[key] = instant(value) if value is not None else None
        elif key in ("rate", "cost", "carrier_fee"):
            row[key] = Decimal(value)
        else:
            row[key] = value
    return row


@pytest.mark.parametrize("kind", ["cdrs", "mdrs"])
def test_every_valid_record_keeps_every_contract_invariant(kind, cdrs, mdrs):
    frame = valid(cdrs if kind == "cdrs" else mdrs)
    check = check_cdr if kind == "cdrs" else check_mdr
    ids = set()
    for text in frame.get_column("json"):
        record = orjson.loads(text)
        check(record)
        ids.add(record["id"])
    assert len(ids) == frame.height
    assert frame.height > (50_000 if kind == "cdrs" else 25_000)


@pytest.mark.parametrize("kind", ["cdrs", "mdrs"])
def test_typed_columns_hold_exactly_what_the_json_says(kind, cdrs, mdrs):
    frame = valid(cdrs if kind == "cdrs" else mdrs)
    assert frame.schema == pl.Schema(VIEW_COLUMNS[kind])
    columns = [c for c in frame.columns if c not in ("json", "malformed")]
    for row, text in zip(frame.select(columns).iter_rows(named=True), frame.get_column("json")):
        expected = typed(orjson.loads(text), kind)
        if kind == "mdrs":
            row["errors"] = [dict(e) for e in row["errors"]]
        assert row == expected


@pytest.mark.parametrize("kind", ["cdrs", "mdrs"])
def test_views_are_sorted_by_created_at_then_id_with_unique_ids(kind, cdrs, mdrs):
    frame = cdrs if kind == "cdrs" else mdrs
    assert frame.equals(frame.sort("created_at", "id"))
    assert frame.get_column("id").n_unique() == frame.height


def test_every_record_of_a_day_is_created_on_that_day(world):
    for kind in ("cdrs", "mdrs"):
        for offset in (0, 13):
            day = START + timedelta(days=offset)
            dates = world.day_frame(kind, day).get_column("created_at").dt.date().unique().to_list()
            assert dates == [day]


def test_answer_seizure_ratio_is_realistic_and_varies_by_country(cdrs):
    calls = valid(cdrs)
    asr = (calls.get_column("status") == "answered").mean()
    assert 0.4 <= asr <= 0.8
    by_country = (
        calls.group_by("country_code")
        .agg(pl.len().alias("calls"), (pl.col("status") == "answered").mean().alias("asr"))
        .filter(pl.col("calls") >= 500)
    )
    assert by_country.height >= 5
    assert by_country.get_column("asr").max() - by_country.get_column("asr").min() > 0.08


def test_volumes_follow_the_week_and_the_day(world, cdrs):
    counts = {START + timedelta(days=i): world.count("cdrs", START + timedelta(days=i)) for i in range(DAYS)}
    weekday = [n for d, n in counts.items() if d.weekday() < 5]
    weekend = [n for d, n in counts.items() if d.weekday() >= 5]
    assert sum(weekday) / len(weekday) > 1.2 * sum(weekend) / len(weekend)
    assert 0.9 * 2000 <= sum(counts.values()) / DAYS <= 1.1 * 2000
    assert cdrs.height == sum(counts.values())
    hours = Counter(cdrs.get_column("created_at").dt.hour().to_list())
    assert hours[3] * 4 < hours[11]


def test_destinations_cover_the_catalog_weighted_to_big_markets(cdrs, mdrs):
    countries = Counter(valid(cdrs).get_column("country_code").to_list())
    assert len(countries) >= 35
    assert [code for code, _ in countries.most_common(2)] == ["US", "GB"]
    assert not set(countries) & {c.code for c in catalog.HIGH_RISK_COUNTRIES}
    assert len(set(valid(mdrs).get_column("country_code"))) >= 35


def test_call_mixes_cover_every_kind_of_value(cdrs):
    calls = valid(cdrs)
    assert set(calls.get_column("number_type")) == set(catalog.NUMBER_TYPES)
    assert set(calls.get_column("status")) == set(CALL_OUTCOMES)
    assert set(calls.get_column("sip_response_code")) == {200, 486, 480, 408, 603, 503, 404, 487}
    assert set(calls.get_column("direction")) == {"inbound", "outbound"}
    assert set(calls.get_column("currency")) == {"USD", "EUR"}
    assert (calls.get_column("currency") == "USD").mean() > 0.6
    schemes = set(calls.select("billing_initial_secs", "billing_increment_secs").iter_rows())
    assert schemes == BILLING_SCHEMES
    assert set(calls.get_column("connection.name")) == set(CONNECTIONS.values())
    assert calls.get_column("tags").list.len().max() == 3
    assert (calls.get_column("tags").list.len() == 0).any()


def test_some_calls_have_two_legs_sharing_a_session(cdrs):
    legs = valid(cdrs).group_by("call_session_id").len().get_column("len")
    assert legs.max() == 2
    assert 0.03 < (legs == 2).mean() < 0.25


def test_talk_times_are_long_tailed_with_short_calls(cdrs):
    answered = valid(cdrs).filter(pl.col("status") == "answered")
    talk = (answered.get_column("ended_at") - answered.get_column("answered_at")).dt.total_seconds()
    assert (talk < 6).mean() > 0.05
    assert (talk > 600).any()
    assert talk.median() < talk.mean()
    premium = answered.filter(pl.col("number_type") == "premium").get_column("rate").mean()
    local = answered.filter(pl.col("number_type") == "local").get_column("rate").mean()
    mobile = answered.filter(pl.col("number_type") == "mobile").get_column("rate").mean()
    assert premium > mobile > local


def test_money_comes_in_every_spelling_the_clients_must_parse(cdrs, mdrs):
    texts = [
        value
        for frame in (valid(cdrs), valid(mdrs))
        for record in map(orjson.loads, frame.get_column("json").head(20_000))
        for key, value in record.items()
        if key in ("rate", "cost", "carrier_fee")
    ]
    spellings = Counter(
        "zero:" + t if Decimal(t) == 0 else "exponent" if "E" in t else "plain6" if re.fullmatch(r"\d+\.\d{6}", t)
        else "trimmed"
        for t in texts
    )
    assert {"zero:0", "zero:0.0", "zero:0.000000", "exponent", "plain6", "trimmed"} <= set(spellings)
    assert spellings["plain6"] + spellings["trimmed"] > spellings["exponent"]


def test_message_mixes_cover_every_kind_of_value(mdrs):
    messages = valid(mdrs)
    assert set(messages.get_column("status")) == OUTBOUND_MESSAGE_STATUSES | {"received"}
    assert 0.03 < (messages.get_column("message_type") == "mms").mean() < 0.15
    assert set(messages.get_column("encoding")) == {"gsm7", "ucs2"}
    assert (messages.get_column("parts") > 1).any()
    ucs2 = messages.filter(pl.col("encoding") == "ucs2", pl.col("message_type") == "sms")
    assert ucs2.get_column("parts").mean() > messages.filter(pl.col("encoding") == "gsm7").get_column("parts").mean()
    assert set(messages.get_column("messaging_profile.name")) == set(PROFILES.values())
    errors = messages.filter(pl.col("errors").list.len() > 0)
    assert set(errors.get_column("status")) == {"delivery_failed", "gateway_rejected"}
    assert "30003" in set(errors.get_column("errors").list.first().struct.field("code"))
    assert (messages.get_column("carrier_fee") > 0).any()


def test_same_parameters_give_identical_records_and_another_seed_does_not(world):
    day = START + timedelta(days=9)
    again = World(**PARAMS)
    for kind in ("cdrs", "mdrs"):
        assert again.view(kind, day, LATER).equals(world.view(kind, day, LATER))
        assert again.day_frame(kind, day).equals(world.day_frame(kind, day))
    other = World(**{**PARAMS, "seed": 43}).view("cdrs", day, LATER)
    assert set(other.get_column("id")).isdisjoint(world.view("cdrs", day, LATER).get_column("id"))


def test_rerate_and_malformed_rates_change_only_those_records(world):
    day = START + timedelta(days=4)
    plain = World(**{**PARAMS, "rerate_rate": 0.0, "malformed_rate": 0.0}).view("cdrs", day, LATER)
    base = world.day_frame("cdrs", day)
    untouched = base.filter(pl.col("malformed").is_null(), pl.col("rerated_at").is_null()).get_column("json")
    assert set(untouched) <= set(plain.get_column("json"))
    assert base.get_column("id").equals(plain.get_column("id"))


def test_rerating_shows_only_once_its_time_has_come(world):
    day = START + timedelta(days=2)
    base = world.day_frame("cdrs", day)
    rerated = base.filter(pl.col("rerated_at").is_not_null())
    assert 0.02 < rerated.height / base.height < 0.09
    delay = (rerated.get_column("rerated_at") - rerated.get_column("created_at")).dt.total_seconds()
    assert delay.min() >= 600 and delay.max() <= 3 * 86_400 + 1
    assert (rerated.get_column("rerated_rate") != rerated.get_column("rate")).all()

    now = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(days=1, hours=6)
    shown = world.view("cdrs", day, now)
    assert shown.height == base.height
    due = base.filter(pl.col("rerated_at") <= now)
    pending = base.filter(pl.col("rerated_at") > now)
    assert due.height > 10 and pending.height > 10
    by_id = {row["id"]: row for row in shown.iter_rows(named=True)}
    for row in due.iter_rows(named=True):
        record = orjson.loads(by_id[row["id"]]["json"])
        assert by_id[row["id"]]["json"] == row["rerated_json"]
        assert instant(record["updated_at"]) == row["rerated_at"] == by_id[row["id"]]["updated_at"]
        assert Decimal(record["cost"]) == row["rerated_cost"] == by_id[row["id"]]["cost"]
        assert by_id[row["id"]]["rate"] == row["rerated_rate"]
        if row["malformed"] is None:
            check_cdr(record)
    for row in pending.iter_rows(named=True):
        assert by_id[row["id"]]["json"] == row["json"]
        assert by_id[row["id"]]["cost"] == row["cost"]
    # The cached day is never changed by a view.
    assert world.day_frame("cdrs", day).equals(base)


def test_a_view_shows_only_records_created_before_now(world):
    day = START + timedelta(days=5)
    now = datetime(2026, 3, 6, 13, 37, 0, 123_456, tzinfo=UTC)
    full = world.day_frame("mdrs", day)
    shown = world.view("mdrs", day, now)
    assert 0 < shown.height < full.height
    assert shown.get_column("created_at").max() < now
    assert shown.get_column("id").equals(full.get_column("id").head(shown.height))
    assert full.get_column("created_at")[shown.height] >= now


def test_before_the_start_and_before_the_day_there_is_nothing(world):
    for kind in ("cdrs", "mdrs"):
        before = world.view(kind, START - timedelta(days=1), LATER)
        assert before.height == 0 and before.schema == pl.Schema(VIEW_COLUMNS[kind])
        assert world.count(kind, START - timedelta(days=1)) == 0
        future = world.view(kind, START + timedelta(days=3), datetime(2026, 3, 4, tzinfo=UTC))
        assert future.height == 0 and future.schema == pl.Schema(VIEW_COLUMNS[kind])


def test_a_window_spans_days_and_cuts_at_its_bounds(world):
    start = datetime(2026, 3, 7, 18, tzinfo=UTC)
    end = datetime(2026, 3, 9, 6, 30, tzinfo=UTC)
    frames = list(world.window("cdrs", start, end, LATER))
    assert len(frames) == 3
    created = pl.concat(frames).get_column("created_at")
    assert created.min() >= start and created.max() < end
    expected = sum(
        world.view("cdrs", d, LATER).filter(pl.col("created_at").is_between(start, end, closed="left")).height
        for d in (date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9))
    )
    assert created.len() == expected


@pytest.mark.parametrize("kind", ["cdrs", "mdrs"])
def test_malformed_records_come_at_the_rate_asked_with_a_real_defect(kind, cdrs, mdrs):
    frame = cdrs if kind == "cdrs" else mdrs
    bad = frame.filter(pl.col("malformed").is_not_null())
    assert 0.005 < bad.height / frame.height < 0.016
    assert set(bad.get_column("malformed")) == set(catalog.MALFORMED_REASONS[kind])
    for row in bad.iter_rows(named=True):
        record = orjson.loads(row["json"])
        assert UUID.fullmatch(row["id"]) and row["created_at"].date() >= START
        reason = row["malformed"]
        if reason == "missing_id":
            assert "id" not in record
        else:
            assert record["id"] == row["id"]
        if reason == "bad_timestamp":
            assert not TIMESTAMP.fullmatch(record["created_at"])
        if reason == "bad_number":
            assert not E164.fullmatch(record["cld"])
        if reason == "negative_duration":
            assert record["duration_secs"] < 0
        with pytest.raises(AssertionError):
            (check_cdr if kind == "cdrs" else check_mdr)(record)


def test_zero_malformed_rate_gives_no_malformed_records():
    plain = World(**{**PARAMS, "malformed_rate": 0.0})
    assert plain.view("cdrs", START, LATER).get_column("malformed").null_count() == plain.count("cdrs", START)


def test_catalog_calling_codes_and_number_lengths_are_right():
    assert set(COUNTRIES) == set(CALLING_CODES)
    for country in catalog.DESTINATIONS:
        assert country.calling_code == CALLING_CODES[country.code]
        for plan in country.plans.values():
            assert 6 <= len(country.calling_code) + plan.length <= 15
            assert all(len(p) < plan.length and p.isdigit() for p in plan.prefixes)
    assert COUNTRIES["GB"].plans["mobile"].length == 10
    assert COUNTRIES["DE"].plans["mobile"].length == 11
    assert COUNTRIES["FR"].plans["local"].length == 9
    assert COUNTRIES["US"].plans["toll_free"].prefixes[0] == "800"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"seed": -1}, "seed"),
        ({"calls_per_day": -5}, "volumes"),
        ({"rerate_rate": 1.5}, "rerate_rate"),
        ({"malformed_rate": -0.1}, "malformed_rate"),
    ],
)
def test_bad_parameters_are_usage_errors(changes, message):
    with pytest.raises(UsageError, match=message):
        World(**{**PARAMS, **changes})


def test_views_need_an_aware_clock(world):
    with pytest.raises(ValueError, match="timezone-aware"):
        world.view("cdrs", START, datetime(2026, 4, 1))


def test_the_day_cache_is_bounded_per_kind():
    small = World(**{**PARAMS, "cache_days": 2})
    first = small.day_frame("cdrs", START)
    assert small.day_frame("cdrs", START) is first
    for offset in (1, 2):
        small.day_frame("cdrs", START + timedelta(days=offset))
        small.day_frame("mdrs", START + timedelta(days=offset))
    regenerated = small.day_frame("cdrs", START)
    assert regenerated is not first and regenerated.equals(first)
