"""`cdr alerts`: the alerts of a range from rpt_alerts, as table, csv or json; --fail-on, --notify and bad input."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pipelines.alerts import ALERT_COLUMNS
from tests.fixtures.alerts import alert, make_warehouse, webhook_receiver
from tests.fixtures.cli import run_cdr

UTC = timezone.utc
DAY = datetime(2026, 10, 3, tzinfo=UTC)
ALERTS = [
    alert("a-before", DAY - timedelta(days=1), severity="critical"),  # ends as the range starts: outside it
    alert("a-spans", DAY - timedelta(hours=12), severity="info", rule="new_destination"),
    alert("a-day", DAY, severity="warning"),
    alert("a-hour", DAY + timedelta(hours=22), hours=1, severity="critical", rule="short_call_burst"),
    alert("a-after", DAY + timedelta(days=1), severity="critical"),  # starts as the range ends: outside it
]
RANGE = ("--start", "2026-10-03T00:00:00Z", "--end", "2026-10-04T00:00:00Z")


@pytest.fixture()
def data_dir(tmp_path):
    make_warehouse(tmp_path / "data", ALERTS)
    return tmp_path / "data"


def test_json_is_one_array_of_the_alerts_overlapping_the_range_with_exactly_rpt_alerts_fields(capsys, monkeypatch, data_dir):
    code, out, err = run_cdr(capsys, monkeypatch, "alerts", *RANGE, "--format", "json", "--data-dir", str(data_dir))

    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert [row["alert_key"] for row in rows] == ["a-spans", "a-day", "a-hour"]
    assert all(list(row) == list(ALERT_COLUMNS) for row in rows)
    assert rows[1] == {
        "account": "default", "alert_key": "a-day", "rule": "cost_spike", "severity": "warning", "product": "voice",
        "direction": "outbound", "country_code": "US", "connection_id": None, "connection_name": None,
        "carrier": None, "currency": "USD", "window_start": "2026-10-03T00:00:00Z",
        "window_end": "2026-10-04T00:00:00Z", "observed": 250.0, "baseline": 100.0, "threshold": 200.0,
        "message": "cost_spike a-day: voice cost to US is 2.5x its usual",
    }


def test_min_severity_keeps_that_severity_and_worse(capsys, monkeypatch, data_dir):
    code, out, _ = run_cdr(
        capsys, monkeypatch, "alerts", *RANGE, "--min-severity", "warning", "--format", "csv", "--data-dir", str(data_dir)
    )

    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    assert [(row["alert_key"], row["severity"]) for row in rows] == [("a-day", "warning"), ("a-hour", "critical")]
    assert rows[0]["connection_id"] == "" and rows[0]["window_start"] == "2026-10-03T00:00:00+00:00"


HOSTILE = {"connection_name": '=HYPERLINK("https://evil","open")', "carrier": "@SUM(A1)", "connection_id": "-2+3",
           "country_code": "+1", "product": "\rvoice", "message": "\tcost to <!channel> & co"}


def test_csv_cells_open_as_text_in_a_spreadsheet_while_json_keeps_the_exact_names(capsys, monkeypatch, tmp_path):
    make_warehouse(tmp_path, [replace(alert("a", DAY), observed=-2.5, direction="out\r=1+1", **HOSTILE)])
    base = ("alerts", *RANGE, "--data-dir", str(tmp_path))
    code, out, _ = run_cdr(capsys, monkeypatch, *base, "--format", "csv")
    listed = run_cdr(capsys, monkeypatch, *base, "--format", "json")[1]

    (row,) = list(csv.DictReader(io.StringIO(out, newline="")))
    assert code == 0 and {name: row[name] for name in HOSTILE} == {name: "'" + text for name, text in HOSTILE.items()}
    assert (row["rule"], row["observed"], row["baseline"]) == ("cost_spike", "-2.5", "100.0")
    # a CR inside a cell is quoted: a spreadsheet would start a row there, with a formula first
    assert row["direction"] == "out\r=1+1"
    assert {name: json.loads(listed)[0][name] for name in HOSTILE} == HOSTILE


def test_the_table_shows_each_alert_with_its_message(capsys, monkeypatch, data_dir):
    code, out, _ = run_cdr(capsys, monkeypatch, "alerts", *RANGE, "--data-dir", str(data_dir))

    assert code == 0
    assert out.split("\n")[0].split() == ["window_start", "window_end", "severity", "rule", "message"]
    assert "short_call_burst a-hour: voice cost to US is 2.5x its usual" in out
    assert "a-before" not in out and "a-after" not in out
    assert out.rstrip().endswith("(3 rows)")


@pytest.mark.parametrize(
    ("fail_on", "expected"), [("info", 3), ("warning", 3), ("critical", 3), (None, 0)]
)
def test_fail_on_exits_3_when_an_alert_at_or_above_it_is_in_the_range(capsys, monkeypatch, data_dir, fail_on, expected):
    option = () if fail_on is None else ("--fail-on", fail_on)
    code, out, _ = run_cdr(capsys, monkeypatch, "alerts", *RANGE, *option, "--format", "json", "--data-dir", str(data_dir))

    assert code == expected
    assert len(json.loads(out)) == 3  # the alerts are printed either way


def test_fail_on_judges_the_alerts_min_severity_leaves_out_of_the_listing(capsys, monkeypatch, data_dir):
    morning = ("--start", "2026-10-03T00:00:00Z", "--end", "2026-10-03T12:00:00Z")  # a-spans (info), a-day (warning)
    listed = run_cdr(capsys, monkeypatch, "alerts", *morning, "--min-severity", "critical", "--fail-on", "warning",
                     "--format", "csv", "--data-dir", str(data_dir))
    quiet = run_cdr(capsys, monkeypatch, "alerts", *morning, "--min-severity", "warning", "--fail-on", "critical",
                    "--format", "csv", "--data-dir", str(data_dir))

    assert listed[:2] == (3, ",".join(ALERT_COLUMNS) + "\n")  # none listed, yet a warning is in the range
    assert quiet[0] == 0 and [row["alert_key"] for row in csv.DictReader(io.StringIO(quiet[1]))] == ["a-day"]


def test_fail_on_exits_0_when_every_alert_is_below_it(capsys, monkeypatch, tmp_path):
    make_warehouse(tmp_path / "data", [alert("only-info", DAY, severity="info"), alert("warn", DAY, severity="warning")])

    code, _, _ = run_cdr(capsys, monkeypatch, "alerts", *RANGE, "--fail-on", "critical", "--data-dir", str(tmp_path / "data"))

    assert code == 0


def test_the_default_range_is_the_last_7_days(capsys, monkeypatch, tmp_path):
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    make_warehouse(tmp_path / "data", [
        alert("recent", today - timedelta(days=2)), alert("old", today - timedelta(days=10)),
    ])

    code, out, _ = run_cdr(capsys, monkeypatch, "alerts", "--format", "json", "--data-dir", str(tmp_path / "data"))

    assert code == 0
    assert [row["alert_key"] for row in json.loads(out)] == ["recent"]


def test_bare_dates_are_local_days_of_the_settings_time_zone(capsys, monkeypatch, tmp_path):
    # 22:00 UTC on the 3rd is the 4th in Tokyo (UTC+9).
    make_warehouse(tmp_path / "data", [alert("late", DAY + timedelta(hours=22), hours=1)])
    args = ("alerts", "--start", "2026-10-03", "--end", "2026-10-04", "--format", "json", "--data-dir", str(tmp_path / "data"))

    _, utc_out, _ = run_cdr(capsys, monkeypatch, *args)
    monkeypatch.setenv("CDR_TIMEZONE", "Asia/Tokyo")
    _, tokyo_out, _ = run_cdr(capsys, monkeypatch, *args)

    assert [row["alert_key"] for row in json.loads(utc_out)] == ["late"]
    assert json.loads(tokyo_out) == []


def test_a_warehouse_built_before_alerts_existed_says_to_run_build(capsys, monkeypatch, tmp_path):
    make_warehouse(tmp_path / "data", None)

    code, out, err = run_cdr(capsys, monkeypatch, "alerts", "--data-dir", str(tmp_path / "data"))

    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and "has no rpt_alerts table" in err and "run `cdr build`" in err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--min-severity", "loud"), "--min-severity must be one of info, warning, critical"),
        (("--fail-on", "fatal"), "--fail-on must be one of info, warning, critical"),
        (("--format", "xml"), "--format must be one of table, csv, json"),
        (("--range", "last_fortnight"), "last_fortnight"),
        (("--range", "yesterday", "--start", "2026-10-01"), "not both"),
        (("--start", "2026-10-01"), "both --start and --end"),
        (("--notify", "ftp://hooks.example.com/T0KEN-s3cret"), "--notify must be an http:// or https:// URL"),
        (("--notify", "hooks.example.com/T0KEN-s3cret"), "--notify must be an http:// or https:// URL"),
        (("--notify", "https://ops:T0KEN@hooks.example.com:99999/T0KEN"), "--notify must be an http:// or https:// URL"),
        # a host name with an empty or over-long label, which fails only when the first alert is sent
        (("--notify", "https://hooks..example.com/T0KEN"), "--notify must be an http:// or https:// URL"),
        (("--notify", f"https://{'h' * 64}.example.com/T0KEN"), "--notify must be an http:// or https:// URL"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, monkeypatch, data_dir, args, says):
    code, out, err = run_cdr(capsys, monkeypatch, "alerts", *args, "--data-dir", str(data_dir))

    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and says in err
    assert "T0KEN" not in err
    assert not (data_dir / "alerts").exists()


def test_notify_posts_the_new_alerts_once_and_shows_only_the_webhooks_origin(capsys, monkeypatch, data_dir):
    with webhook_receiver() as receiver:
        args = ("alerts", *RANGE, "--notify", receiver.url, "--format", "json", "--data-dir", str(data_dir))
        first = run_cdr(capsys, monkeypatch, *args)
        again = run_cdr(capsys, monkeypatch, *args)

    origin = receiver.url.split("/hook/")[0]
    assert first[0] == 0 and again[0] == 0
    assert [body["alert_key"] for body in receiver.received] == ["a-spans", "a-day", "a-hour"]
    assert receiver.received[1] == json.loads(first[1])[1]
    assert first[2] == f"sent 3 new alerts to {origin}; 0 snoozed (condition still on), 0 handled before\n"
    assert again[2] == f"sent 0 new alerts to {origin}; 0 snoozed (condition still on), 3 handled before\n"
    assert sorted(json.loads((data_dir / "alerts" / "sent.json").read_text())["alerts"]) == ["a-day", "a-hour", "a-spans"]


def test_a_failed_post_exits_1_without_the_token_and_is_sent_by_the_next_call(capsys, monkeypatch, data_dir):
    with webhook_receiver(fail_first=1, status=503) as receiver:
        args = ("alerts", *RANGE, "--notify", receiver.url, "--format", "json", "--data-dir", str(data_dir))
        failed = run_cdr(capsys, monkeypatch, *args)
        retried = run_cdr(capsys, monkeypatch, *args)

    assert failed[0] == 1 and failed[2].count("\n") == 1
    # the receiver named once, by its origin alone; what it answered; what is left for the next call
    assert failed[2].startswith("error: sending to http://127.0.0.1:") and failed[2].count("http://") == 1
    assert failed[2].rstrip().endswith(
        "failed after 0 of 3 new alerts (answered HTTP 503 Service Unavailable); the next call sends the 3 left"
    )
    assert "T0KEN" not in failed[2]
    assert retried[0] == 0
    assert [body["alert_key"] for body in receiver.received] == ["a-spans", "a-day", "a-hour"]


def test_a_failed_delivery_exits_1_even_when_fail_on_would_exit_3_and_the_readme_says_every_exit_code(
    capsys, monkeypatch, data_dir
):
    with webhook_receiver(fail_first=1, status=503) as receiver:
        args = ("alerts", *RANGE, "--notify", receiver.url, "--fail-on", "critical", "--data-dir", str(data_dir))
        failed = run_cdr(capsys, monkeypatch, *args)
        delivered = run_cdr(capsys, monkeypatch, *args)

    assert (failed[0], delivered[0]) == (1, 3)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `cdr alerts "))
    documented = re.search(r"Exit codes: (.*?)\. ", row)
    assert documented is not None, "the README's `cdr alerts` row lists no exit codes"
    codes = dict(re.findall(r"(\d+) ([^;]+)", documented.group(1)))
    assert sorted(codes, key=int) == ["0", "1", "2", "3", "130"]
    assert "delivery" in codes["1"] and "--fail-on" in codes["1"]


def test_an_unreachable_webhook_is_a_one_line_failure_without_the_token(capsys, monkeypatch, data_dir):
    with webhook_receiver() as receiver:
        url = receiver.url  # the server is gone once the block ends: nothing listens on its port

    code, _, err = run_cdr(capsys, monkeypatch, "alerts", *RANGE, "--notify", url, "--data-dir", str(data_dir))

    assert code == 1 and err.count("\n") == 1
    assert "ConnectError" in err and "T0KEN" not in err
    assert not (data_dir / "alerts" / "sent.json").exists()


def test_a_webhook_host_that_does_not_resolve_is_said_in_words_as_the_object_stores_is(capsys, monkeypatch, data_dir):
    url = "https://cdr-no-such-host.invalid/hook/T0KEN"
    code, _, err = run_cdr(capsys, monkeypatch, "alerts", *RANGE, "--notify", url, "--data-dir", str(data_dir))

    assert code == 1 and err.count("\n") == 1
    assert err.startswith(
        "error: sending to https://cdr-no-such-host.invalid failed after 0 of 3 new alerts (host not found: "
    ), err
    assert "Errno" not in err and "ConnectError" not in err and "T0KEN" not in err


def test_an_https_webhook_on_a_plain_http_server_says_so_in_words_not_openssls(capsys, monkeypatch, data_dir):
    with webhook_receiver() as receiver:
        url = receiver.url.replace("http://", "https://")
        code, _, err = run_cdr(capsys, monkeypatch, "alerts", *RANGE, "--notify", url, "--data-dir", str(data_dir))

    assert code == 1 and err.count("\n") == 1 and receiver.requests == 0
    assert err.rstrip().endswith(
        "failed after 0 of 3 new alerts (the server answered plain HTTP, not HTTPS: check the URL's scheme (http://) "
        "and port); the next call sends the 3 left"
    ), err


def test_an_http_webhook_on_a_tls_server_says_it_closed_the_connection_and_to_check_the_scheme(
    capsys, monkeypatch, data_dir, tmp_path
):
    from tests.fixtures.tls import tls_only_server

    with tls_only_server(tmp_path) as address:
        url = f"http://{address}/hook/T0KEN"
        code, _, err = run_cdr(capsys, monkeypatch, "alerts", *RANGE, "--notify", url, "--data-dir", str(data_dir))

    assert code == 1 and err.count("\n") == 1 and "T0KEN" not in err
    assert re.search(
        r"failed after 0 of 3 new alerts \(the server (reset the connection|closed the connection without an answer), "
        r"as an HTTPS server does to plain HTTP: if it is one, use https://\); the next call sends the 3 left$",
        err.rstrip(),
    ), err


def test_end_to_end_an_injected_irsf_day_is_listed_and_fails_the_run(prefect_harness, capsys, monkeypatch, tmp_path):
    from sandbox.testing import TEST_API_KEY, running_sandbox

    anomalies = tmp_path / "anomalies.json"
    anomalies.write_text(json.dumps([
        {"kind": "irsf", "start": "2026-10-04T08:00Z", "end": "2026-10-04T16:00Z", "country_code": "LV", "calls": 100},
    ]))
    data_dir = str(tmp_path / "data")
    window = ("--start", "2026-10-01T00:00:00Z", "--end", "2026-10-06T00:00:00Z")
    with running_sandbox(now="2026-10-06T00:00:00Z", anomalies=str(anomalies)) as url:
        monkeypatch.setenv("OPENTACT_BASE_URL", url)
        monkeypatch.setenv("OPENTACT_API_KEY", TEST_API_KEY)
        monkeypatch.setenv("OPENTACT_SETTLE_LAG_SECS", "0")
        synced = run_cdr(capsys, monkeypatch, "sync", *window, "--now", "2026-10-06T00:00:00Z", "--data-dir", data_dir)
    built = run_cdr(capsys, monkeypatch, "build", "--data-dir", data_dir)
    day = ("--start", "2026-10-04T00:00:00Z", "--end", "2026-10-05T00:00:00Z")
    listed = run_cdr(capsys, monkeypatch, "alerts", *day, "--min-severity", "warning", "--format", "json", "--data-dir", data_dir)
    failing = run_cdr(capsys, monkeypatch, "alerts", *day, "--fail-on", "warning", "--data-dir", data_dir)
    quiet = run_cdr(capsys, monkeypatch, "alerts", "--start", "2026-10-02T00:00:00Z", "--end", "2026-10-04T00:00:00Z",
                    "--fail-on", "warning", "--data-dir", data_dir)

    assert synced[0] == 0 and built[0] == 0, (synced[2][-1500:], built[2])
    rows = json.loads(listed[1])
    assert [(r["rule"], r["country_code"], r["window_start"][:10]) for r in rows] == [
        ("high_risk_destination", "LV", "2026-10-04"),
    ]
    assert rows[0]["observed"] == 100.0 and "LV" in rows[0]["message"]
    assert failing[0] == 3 and quiet[0] == 0
