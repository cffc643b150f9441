"""Page validation: typed frames in the lake schema, and every kind of malformed record set aside.

Every page validated here is also read record by record in plain Python (`_reference`): the
column-wise checks must keep exactly the records it reads, with exactly its values.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import orjson
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipelines.dates import Window, parse_datetime
from pipelines.opentact import api
from pipelines.opentact.records import (
    Rejected,
    _api_form_stamps,
    _parse_each,
    extra_fields,
    money_text,
    validate_records,
)
from sandbox.world import World
from tests.opentact.factories import T0, cdr, mdr

DAY = Window(T0, T0 + timedelta(days=1))


def _reference(kind: api.RecordType, records: list[dict]) -> pl.DataFrame:
    """Valid records read one at a time with the rules' own parsers: what `validate_records` must keep."""
    nested = {f"{parent}_{child}": (parent, child) for parent, children in api.NESTED[kind].items() for child in children}
    fields = {nested[name][0] if name in nested else name for name in api.SCHEMAS[kind]}
    rows = []
    for record in records:
        row = {}
        extras = {key: value for key, value in record.items() if key not in fields}
        for parent, children in api.NESTED[kind].items():
            if unknown := {key: value for key, value in record[parent].items() if key not in children}:
                extras[parent] = unknown
        for name, dtype in api.SCHEMAS[kind].items():
            value = record[nested[name][0]][nested[name][1]] if name in nested else record[name]
            if dtype == api.TIMESTAMP and value is not None:
                moment = parse_datetime(value)
                value = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
            elif dtype == api.MONEY:
                value = Decimal(money_text(value))  # type: ignore[arg-type]
            elif isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct):
                known = dtype.inner.to_schema()
                if any(set(item) - set(known) for item in value):
                    extras[name] = [{key: v for key, v in item.items() if key not in known} for item in value]
                value = [{field: item[field] for field in known} for item in value]
            row[name] = value
        row[api.EXTRAS] = orjson.dumps(extras, option=orjson.OPT_SORT_KEYS).decode() if extras else None
        rows.append(row)
    return pl.DataFrame(rows, schema=api.LAKE_SCHEMAS[kind])


def _validate(kind: api.RecordType, records: list) -> tuple[pl.DataFrame, list[Rejected]]:
    """Validate as the client does, checking on the way that every record kept reads as `_reference` reads it."""
    # Round-trip through JSON as the client does, so records are exactly what orjson decodes.
    decoded = orjson.loads(orjson.dumps(records))
    frame, rejects = validate_records(kind, decoded, DAY, 3)
    rejected = {reject.raw_json for reject in rejects}
    assert_frame_equal(frame, _reference(kind, [r for r in decoded if orjson.dumps(r).decode() not in rejected]))
    return frame, rejects


def _only_reject(kind: api.RecordType, bad: dict, good: int = 4) -> Rejected:
    make = cdr if kind == "cdrs" else mdr
    records = [make(n) for n in range(good)]
    records.insert(2, bad)
    frame, rejects = _validate(kind, records)
    assert frame.height == good
    assert frame["id"].to_list() == [r["id"] for r in records if r is not bad]
    assert len(rejects) == 1
    return rejects[0]


def test_valid_cdr_page_becomes_a_frame_in_the_lake_schema() -> None:
    records = [cdr(n) for n in range(3)]
    frame, rejects = _validate("cdrs", records)
    assert rejects == []
    assert frame.schema == pl.Schema(api.LAKE_SCHEMAS["cdrs"])
    first = frame.row(0, named=True)
    assert first["id"] == records[0]["id"]
    assert first["connection_id"] == records[0]["connection"]["id"]
    assert first["connection_name"] == 'Main "Trunk" <b>é</b>'
    assert first["tags"] == ["sales", "q4"]
    assert first["created_at"] == T0
    assert first["answered_at"] == T0 - timedelta(seconds=90)
    assert first["rate"] == Decimal("0.0125")
    assert first["cost"] == Decimal("0.025")
    assert first["sip_response_code"] == 200


def test_valid_mdr_page_keeps_nulls_errors_and_zero_money() -> None:
    records = [mdr(0), mdr(1, errors=[{"code": "30007", "title": "Carrier \"blocked\""}], completed_at=None)]
    records[0]["completed_at"] = "2026-10-01T00:00:05.250Z"
    frame, rejects = _validate("mdrs", records)
    assert rejects == []
    assert frame.schema == pl.Schema(api.LAKE_SCHEMAS["mdrs"])
    assert frame["errors"].to_list() == [[], [{"code": "30007", "title": 'Carrier "blocked"'}]]
    assert frame["completed_at"].to_list() == [T0 + timedelta(seconds=5, milliseconds=250), None]
    assert frame["carrier_fee"].to_list() == [Decimal(0), Decimal(0)]
    assert frame["messaging_profile_name"].to_list() == ["Alerts", "Alerts"]


def test_all_null_nullable_column_still_has_the_lake_type() -> None:
    frame, rejects = _validate("mdrs", [mdr(n, sent_at=None) for n in range(3)])
    assert rejects == []
    assert frame.schema == pl.Schema(api.LAKE_SCHEMAS["mdrs"])
    assert frame["sent_at"].null_count() == 3


def test_empty_page_is_an_empty_frame_in_the_lake_schema() -> None:
    frame, rejects = _validate("cdrs", [])
    assert (frame.height, rejects) == (0, [])
    assert frame.schema == pl.Schema(api.LAKE_SCHEMAS["cdrs"])


def test_unknown_fields_are_kept_in_extras() -> None:
    records = [cdr(0, brand_new_field={"x": 1}, region="eu"), cdr(1), cdr(2, region="us")]
    records[1]["connection"]["region"] = "eu"
    del records[2]["record_type"]  # a missing field as well: the record goes, its extras with it
    frame, rejects = _validate("cdrs", records)
    assert [r.reason for r in rejects] == ["missing field 'record_type'"]
    assert frame[api.EXTRAS].to_list() == ['{"brand_new_field":{"x":1},"region":"eu"}', '{"connection":{"region":"eu"}}']
    assert frame.drop(api.EXTRAS).equals(_reference("cdrs", records[:2]).drop(api.EXTRAS))
    assert extra_fields("cdrs", frame[api.EXTRAS]) == ["brand_new_field", "connection.region", "region"]


def test_a_page_without_unknown_fields_has_null_extras() -> None:
    frame, _ = _validate("cdrs", [cdr(n) for n in range(3)])
    assert frame[api.EXTRAS].to_list() == [None, None, None]
    assert extra_fields("cdrs", frame[api.EXTRAS]) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-01T12:34:56.789Z", datetime(2026, 10, 1, 12, 34, 56, 789000, tzinfo=timezone.utc)),
        ("2026-10-01T12:34:56Z", datetime(2026, 10, 1, 12, 34, 56, tzinfo=timezone.utc)),
        ("2026-10-01T12:34Z", datetime(2026, 10, 1, 12, 34, tzinfo=timezone.utc)),
        ("2026-10-01T12:34:56.789-00", datetime(2026, 10, 1, 12, 34, 56, 789000, tzinfo=timezone.utc)),
        ("2026-10-01T12:34:56-0000", datetime(2026, 10, 1, 12, 34, 56, tzinfo=timezone.utc)),
        ("2026-10-01T12:34-00:00", datetime(2026, 10, 1, 12, 34, tzinfo=timezone.utc)),
        ("2026-10-01T12:34:56.789999999Z", datetime(2026, 10, 1, 12, 34, 56, 789000, tzinfo=timezone.utc)),
        ("2026-10-01T14:34:56.5+02:00", datetime(2026, 10, 1, 12, 34, 56, 500000, tzinfo=timezone.utc)),
        ("2026-10-01T07:04-0530", datetime(2026, 10, 1, 12, 34, tzinfo=timezone.utc)),
    ],
)
def test_every_accepted_date_time_form_parses_to_utc_milliseconds(text: str, expected: datetime) -> None:
    frame, rejects = _validate("cdrs", [cdr(0, ended_at=text)])
    assert rejects == []
    assert frame["ended_at"].to_list() == [expected]
    # The per-value slow path (for what polars' format inference misses) agrees.
    assert _parse_each(pl.Series([text])).to_list() == [expected]


def test_mixed_date_time_forms_in_one_page_all_parse() -> None:
    forms = ["2026-10-01T00:00Z", "2026-10-01T00:00:01.5-00:00", "2026-10-01T00:00:02-0000", "2026-10-01T00:00:03Z"]
    frame, rejects = _validate("cdrs", [cdr(n, at=T0, updated_at=form) for n, form in enumerate(forms)])
    assert rejects == []
    assert frame["updated_at"].to_list() == [
        T0,
        T0 + timedelta(seconds=1, milliseconds=500),
        T0 + timedelta(seconds=2),
        T0 + timedelta(seconds=3),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", "0"),
        ("0.0", "0.0"),
        ("1.666E-4", "0.0001666"),
        ("1.5e-8", "0.000000015"),
        ("2E+3", "2000"),
        ("-0.25", "-0.25"),
        ("12.123456789", "12.123456789"),
    ],
)
def test_money_forms_are_read_exactly(text: str, expected: str) -> None:
    frame, rejects = _validate("cdrs", [cdr(0, cost=text)])
    assert rejects == []
    assert frame["cost"].to_list() == [Decimal(expected)]


@pytest.mark.parametrize("text", ["0.0000000001", "1.5E-10", "12.1234567891", "NaN", "Infinity", "1,5", "", " 1", "1_0", "0x1", "1e999"])
def test_money_that_is_not_exact_in_nine_decimals_is_rejected_never_rounded(text: str) -> None:
    reject = _only_reject("cdrs", cdr(9, cost=text))
    assert reject.reason == f"field 'cost' is not an exact decimal with at most 9 decimals: {text!r}"


def test_money_text_normalises_exponents_and_refuses_inexact_values() -> None:
    assert money_text("1.666E-4") == "0.0001666"
    assert money_text("1E-9") == "0.000000001"
    assert money_text("1E-10") is None
    assert money_text("sNaN") is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": None}, "field 'id' is null"),
        ({"id": "not-a-uuid"}, "field 'id' is not a UUID: 'not-a-uuid'"),
        ({"record_type": "message"}, "field 'record_type' is not one of call: 'message'"),
        ({"direction": "sideways"}, "field 'direction' is not one of inbound, outbound: 'sideways'"),
        ({"status": "ANSWERED"}, "field 'status' is not one of answered, busy, cancelled, failed, no_answer: 'ANSWERED'"),
        ({"cli": "+0441234567"}, "field 'cli' is not an E.164 number: '+0441234567'"),
        ({"cld": "14155550100"}, "field 'cld' is not an E.164 number: '14155550100'"),
        ({"cld": "+1 415 555 0100"}, "field 'cld' is not an E.164 number: '+1 415 555 0100'"),
        ({"cli": "+١٤١٥٥٥٥٠١٠٠"}, "field 'cli' is not an E.164 number: '+١٤١٥٥٥٥٠١٠٠'"),
        ({"country_code": "us"}, "field 'country_code' is not an ISO 3166 alpha-2 country code: 'us'"),
        ({"currency": "usd"}, "field 'currency' is not an ISO 4217 currency code: 'usd'"),
        ({"hangup_cause": "Normal Clearing"}, "field 'hangup_cause' is not a snake_case string: 'Normal Clearing'"),
        ({"duration_secs": -1}, "field 'duration_secs' is outside [0, 9223372036854775807]: -1"),
        ({"duration_secs": 1.5}, "field 'duration_secs' must be an integer, got 1.5"),
        ({"duration_secs": "95"}, "field 'duration_secs' must be an integer, got '95'"),
        ({"billed_duration_secs": True}, "field 'billed_duration_secs' must be an integer, got True"),
        ({"sip_response_code": 2000}, "field 'sip_response_code' is outside [100, 699]: 2000"),
        ({"billing_initial_secs": 2**40}, "field 'billing_initial_secs' is outside [0, 2147483647]: 1099511627776"),
        ({"started_at": None}, "field 'started_at' is null"),
        ({"started_at": "yesterday"}, "field 'started_at' is not a date-time in an accepted form: 'yesterday'"),
        ({"ended_at": "2026-10-01T12:00:00+24:00"}, "field 'ended_at' is not a date-time in an accepted form: '2026-10-01T12:00:00+24:00'"),
        ({"ended_at": "2026-10-01"}, "field 'ended_at' is not a date-time in an accepted form: '2026-10-01'"),
        ({"ended_at": "2026-13-45T99:00:00Z"}, "field 'ended_at' is not a date-time in an accepted form: '2026-13-45T99:00:00Z'"),
        ({"ended_at": "2026-10-01 12:00:00Z"}, "field 'ended_at' is not a date-time in an accepted form: '2026-10-01 12:00:00Z'"),
        ({"ended_at": "2026-10-01T12:00:00"}, "field 'ended_at' is not a date-time in an accepted form: '2026-10-01T12:00:00'"),
        ({"ended_at": "2026-02-30T12:00:00Z"}, "field 'ended_at' is not a date-time in an accepted form: '2026-02-30T12:00:00Z'"),
        ({"ended_at": "2026-10-01T23:59:60Z"}, "field 'ended_at' is not a date-time in an accepted form: '2026-10-01T23:59:60Z'"),
        ({"ended_at": "2026-10-01T23:59:60.000Z"}, "field 'ended_at' is not a date-time in an accepted form: '2026-10-01T23:59:60.000Z'"),
        ({"ended_at": "2026-10-01T24:00:00.000Z"}, "field 'ended_at' is not a date-time in an accepted form: '2026-10-01T24:00:00.000Z'"),
        ({"ended_at": "2026-10-01T12:61:00.000Z"}, "field 'ended_at' is not a date-time in an accepted form: '2026-10-01T12:61:00.000Z'"),
        ({"ended_at": "2026-10-01T1a:00:00.000Z"}, "field 'ended_at' is not a date-time in an accepted form: '2026-10-01T1a:00:00.000Z'"),
        ({"ended_at": "2026-10-32T10:00:00.000Z"}, "field 'ended_at' is not a date-time in an accepted form: '2026-10-32T10:00:00.000Z'"),
        ({"answered_at": 1759276800}, "field 'answered_at' must be a date-time string, got 1759276800"),
        ({"rate": 0.0125}, "field 'rate' must be a decimal string, got 0.0125"),
        ({"connection": None}, "field 'connection' must be an object, got None"),
        ({"connection": "Main Trunk"}, "field 'connection' must be an object, got 'Main Trunk'"),
        ({"connection": {"name": "x"}}, "missing field 'connection.id'"),
        ({"connection": {"id": "x", "name": "y"}}, "field 'connection.id' is not a UUID: 'x'"),
        ({"tags": "sales"}, "field 'tags' must be an array of strings, got 'sales'"),
        ({"tags": ["ok", 7]}, "field 'tags' must hold only strings: ['ok', 7]"),
        ({"created_at": "2026-10-02T00:00:00.000Z"}, "created_at '2026-10-02T00:00:00.000Z' is outside the requested window"),
        ({"created_at": "2026-09-30T23:59:59.999Z"}, "created_at '2026-09-30T23:59:59.999Z' is outside the requested window"),
    ],
)
def test_malformed_cdr_is_set_aside_with_its_reason_and_the_rest_is_kept(change: dict, reason: str) -> None:
    bad = cdr(9, **change)
    reject = _only_reject("cdrs", bad)
    assert reject.reason.startswith(reason)
    assert orjson.loads(reject.raw_json) == bad
    assert (reject.kind, reject.slice, reject.page_number) == ("cdrs", DAY, 3)


def test_window_reject_names_the_window() -> None:
    reject = _only_reject("cdrs", cdr(9, created_at="2026-10-02T00:00:00.000Z"))
    assert reject.reason.endswith(f"outside the requested window {DAY}")


@pytest.mark.parametrize("field", ["id", "answered_at", "connection", "cost", "tags"])
def test_missing_field_is_set_aside(field: str) -> None:
    bad = cdr(9)
    del bad[field]
    assert _only_reject("cdrs", bad).reason == f"missing field '{field}'"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"parts": 0}, "field 'parts' is outside [1, 2147483647]: 0"),
        ({"encoding": "utf8"}, "field 'encoding' is not one of gsm7, ucs2: 'utf8'"),
        ({"status": "lost"}, "field 'status' is not one of delivered, delivery_failed"),
        ({"errors": [{"code": 30007, "title": "x"}]}, "field 'errors' must hold objects with string code, title"),
        ({"errors": ["boom"]}, "field 'errors' must hold objects with string code, title"),
        ({"messaging_profile": {"id": "nope", "name": "x"}}, "field 'messaging_profile.id' is not a UUID: 'nope'"),
        ({"carrier": None}, "field 'carrier' is null"),
        ({"carrier_fee": "1.0000000001"}, "field 'carrier_fee' is not an exact decimal with at most 9 decimals"),
        ({"completed_at": "soon"}, "field 'completed_at' is not a date-time in an accepted form: 'soon'"),
    ],
)
def test_malformed_mdr_is_set_aside_with_its_reason(change: dict, reason: str) -> None:
    assert _only_reject("mdrs", mdr(9, **change)).reason.startswith(reason)


@pytest.mark.parametrize("record", ["a string", None, 42, ["a", "list"]])
def test_record_that_is_not_an_object_is_set_aside(record: object) -> None:
    reject = _only_reject("cdrs", record)  # type: ignore[arg-type]
    assert reject.reason.startswith("record is not a JSON object")
    assert orjson.loads(reject.raw_json) == record


def test_error_objects_keep_their_lake_fields_and_the_rest_in_extras() -> None:
    errors = [{"code": "1", "title": "t"}, {"code": "2", "title": "u", "detail": "extra"}]
    frame, rejects = _validate("mdrs", [mdr(0, errors=errors)])
    assert rejects == []
    assert frame["errors"].to_list() == [[{"code": "1", "title": "t"}, {"code": "2", "title": "u"}]]
    assert frame[api.EXTRAS].to_list() == ['{"errors":[{},{"detail":"extra"}]}']
    assert extra_fields("mdrs", frame[api.EXTRAS]) == ["errors.detail"]


def test_record_with_several_problems_is_rejected_once_for_the_first() -> None:
    reject = _only_reject("cdrs", cdr(9, id="x", cli="bad", duration_secs=-5))
    assert reject.reason == "field 'id' is not a UUID: 'x'"


def test_many_bad_records_in_one_page() -> None:
    records = [cdr(n) for n in range(10)]
    records[0]["cli"] = "nope"
    records[5]["cost"] = "1e-12"
    records[9]["updated_at"] = "never"
    frame, rejects = _validate("cdrs", records)
    assert frame["id"].to_list() == [records[n]["id"] for n in (1, 2, 3, 4, 6, 7, 8)]
    assert [orjson.loads(r.raw_json)["id"] for r in rejects] == [records[n]["id"] for n in (0, 5, 9)]


# --- whole pages: the API's usual form read in one pass, any other form read exactly as well ------


@pytest.mark.parametrize("kind", api.RECORD_TYPES)
def test_sandbox_pages_are_kept_whole_and_read_exactly(kind: api.RecordType) -> None:
    world = World(seed=5, start=T0.date(), calls_per_day=600, messages_per_day=600, rerate_rate=0.3)
    texts = world.view(kind, T0.date(), T0 + timedelta(days=30)).get_column("json").to_list()
    assert len(texts) > 500
    stamps = [name for name, dtype in api.SCHEMAS[kind].items() if dtype == api.TIMESTAMP]
    for first in range(0, len(texts), 250):
        records = orjson.loads("[" + ",".join(texts[first : first + 250]) + "]")
        # The API's own date-time form is proved and parsed for a whole page at once.
        assert _api_form_stamps([[r[name] for r in records] for name in stamps]) is not None
        frame, rejects = validate_records(kind, records, DAY, 1)
        assert rejects == []
        assert_frame_equal(frame, _reference(kind, records))


def test_api_form_stamps_reads_the_api_form_with_nulls_and_refuses_any_other() -> None:
    stamps = _api_form_stamps([["2026-10-01T00:00:01.250Z", None], [None, "2026-10-01T23:59:59.999Z"]])
    assert stamps is not None
    assert [str(s) for s in stamps] == ["2026-10-01T00:00:01.250", "NaT", "NaT", "2026-10-01T23:59:59.999"]
    assert _api_form_stamps([[None, None]]) is not None
    for other in ["2026-10-01T00:00:00Z", "2026-10-01T00:00:00.000+00:00", "0999-10-01T00:00:00.000Z", "2026-10-01T23:59:60.000Z"]:
        assert _api_form_stamps([["2026-10-01T00:00:00.000Z", other]]) is None, other


def test_nulls_empty_arrays_and_exponent_money_are_read_exactly() -> None:
    records = [
        mdr(0, sent_at=None, completed_at=None, rate="1.666E-4", cost="3.332e-4", carrier_fee="0"),
        mdr(1, errors=[{"code": "30007", "title": "Blocked"}], tags=["a", "b"], carrier_fee="0.0"),
    ]
    frame, rejects = _validate("mdrs", records)
    assert rejects == []
    assert frame["rate"].to_list() == [Decimal("0.0001666"), Decimal("0.004")]
    assert frame["sent_at"].to_list()[0] is None
    assert frame["errors"].to_list() == [[], [{"code": "30007", "title": "Blocked"}]]
    assert frame["tags"].to_list() == [[], ["a", "b"]]


@pytest.mark.parametrize(
    "change",
    [
        {"ended_at": "2026-10-01T00:00:00Z"},
        {"ended_at": "2026-10-01T00:00:00.000-00:00"},
        {"ended_at": "2026-10-01T02:00:00.000+02:00"},
        {"ended_at": "2026-10-01T00:00:00.123456Z"},
        {"started_at": "0999-10-01T00:00:00.000Z"},
        {"connection": {"id": "6f1c1a2e-2f0a-4f7e-9a51-0c1b2d3e4f50", "name": "x", "region": "eu"}},
    ],
)
def test_valid_records_outside_the_usual_forms_are_kept_and_read_exactly(change: dict) -> None:
    frame, rejects = _validate("cdrs", [cdr(0, **change), cdr(1)])
    assert (frame.height, rejects) == (2, [])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"connection": {"id": cdr(0)["connection"]["id"], "name": 5}}, "field 'connection.name' must be a string, got 5"),
        ({"record_type": 1}, "field 'record_type' must be a string, got 1"),
        ({"rate": None}, "field 'rate' is null"),
        ({"tags": ["ok", None]}, "field 'tags' must hold only strings: ['ok', None]"),
        ({"duration_secs": 2**63}, "field 'duration_secs' is outside [0, 9223372036854775807]: 9223372036854775808"),
        ({"id": "6F1C1A2E-2F0A-4F7E-9A51-0C1B2D3E4F5G"}, "field 'id' is not a UUID: '6F1C1A2E-2F0A-4F7E-9A51-0C1B2D3E4F5G'"),
        ({"id": "6f1c1a2e-2f0a-4f7e-9a51-0c1b2d3e4f5٠"}, "field 'id' is not a UUID: '6f1c1a2e-2f0a-4f7e-9a51-0c1b2d3e4f5٠'"),
        ({"id": "6f1c1a2e-2f0a-4f7e-9a51-0c1b2d3e4f5"}, "field 'id' is not a UUID: '6f1c1a2e-2f0a-4f7e-9a51-0c1b2d3e4f5'"),
        ({"id": "6f1c1a2e-2f0a4-f7e-9a51-0c1b2d3e4f50"}, "field 'id' is not a UUID: '6f1c1a2e-2f0a4-f7e-9a51-0c1b2d3e4f50'"),
        ({"ended_at": "2026-10-01T00:00:00.000z"}, "field 'ended_at' is not a date-time in an accepted form: '2026-10-01T00:00:00.000z'"),
        ({"ended_at": "2026-10-01T00:00:0a.000Z"}, "field 'ended_at' is not a date-time in an accepted form: '2026-10-01T00:00:0a.000Z'"),
        ({"ended_at": "２026-10-01T00:00:00.000Z"}, "field 'ended_at' is not a date-time in an accepted form: '２026-10-01T00:00:00.000Z'"),
        ({"ended_at": "0000-10-01T00:00:00.000Z"}, "field 'ended_at' is not a date-time in an accepted form: '0000-10-01T00:00:00.000Z'"),
        ({"created_at": "0000-10-01T00:00:00Z"}, "field 'created_at' is not a date-time in an accepted form: '0000-10-01T00:00:00Z'"),
    ],
)
def test_values_close_to_the_usual_forms_are_rejected(change: dict, reason: str) -> None:
    assert _only_reject("cdrs", cdr(9, **change)).reason == reason


def test_page_whose_every_date_time_does_not_exist_is_rejected_record_by_record() -> None:
    # Not one value to infer a format from: each date-time is read on its own.
    stamps = ("started_at", "answered_at", "ended_at", "created_at", "updated_at")
    records = [cdr(n, **dict.fromkeys(stamps, "2026-02-30T12:00:00.000Z")) for n in range(2)]
    frame, rejects = _validate("cdrs", records)
    assert frame.height == 0
    assert [r.reason for r in rejects] == ["field 'started_at' is not a date-time in an accepted form: '2026-02-30T12:00:00.000Z'"] * 2


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        # Column by column in schema order, the JSON type before the value, whatever order the checks run in.
        ({"cli": "bad", "connection": {"id": cdr(0)["connection"]["id"], "name": 5}}, "field 'cli' is not an E.164 number"),
        ({"tags": "sales", "cli": "bad"}, "field 'cli' is not an E.164 number"),
        ({"id": 7, "cli": "bad"}, "field 'id' must be a string"),
        ({"status": "lost", "tags": 1}, "field 'tags' must be an array of strings"),
        ({"cost": "1e-12", "currency": 5}, "field 'cost' is not an exact decimal"),
        ({"answered_at": "never", "currency": "usd"}, "field 'answered_at' is not a date-time"),
        # A nested object missing comes first; a date that does not exist, and then the window, last.
        ({"connection": None, "id": "x"}, "field 'connection' must be an object"),
        ({"ended_at": "2026-02-30T12:00:00.000Z", "currency": "usd"}, "field 'currency' is not an ISO 4217"),
        ({"created_at": "2026-10-02T00:00:00.000Z", "currency": "usd"}, "field 'currency' is not an ISO 4217"),
        ({"created_at": "2026-10-02T00:00:00.000Z", "ended_at": "2026-02-30T12:00:00.000Z"}, "field 'ended_at' is not a date-time"),
    ],
)
def test_record_with_several_problems_is_rejected_for_the_first_in_schema_order(change: dict, reason: str) -> None:
    assert _only_reject("cdrs", cdr(9, **change)).reason.startswith(reason)


@pytest.mark.parametrize(
    "tags",
    [
        [["a", "b"], ["c"]],
        [[], []],
        [["a"], []],
        [[""], []],
        [["", "x"], ["y"]],
        [["", ""], [""], [], ["z", ""]],
        [["a\x1fb"], []],
        [['q"uote', "<b>é</b>", "😀", "\x00", "\u2028", "back\\slash"], ["tab\there"]],
    ],
)
def test_tag_arrays_of_any_strings_read_exactly(tags: list[list[str]]) -> None:
    records = [cdr(n, tags=t) for n, t in enumerate(tags)]
    frame, rejects = _validate("cdrs", records)
    assert rejects == []
    assert frame["tags"].to_list() == tags
