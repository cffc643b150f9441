"""Alert messages count as the CLI's messages do: `1 call`, `2 calls`, never `1 calls` (macros/counted.sql)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from pipelines.errors import counted
from pipelines.models import QUERIES_DIR, build, warehouse_path
from tests.fixtures.lake import call, message, usage, write_lake


@pytest.mark.parametrize(
    ("amount", "singular", "plural"),
    [(0, "call", None), (1, "call", None), (2, "call", None), (1204, "record", None), (1, "country", "countries"),
     (11, "country", "countries"), (1, "recent day", None), (1_000_000, "outbound SMS message", None)],
)
def test_the_sql_macro_words_a_count_as_the_python_helper_does(amount: int, singular: str, plural: str | None) -> None:
    with duckdb.connect() as con:
        con.execute((QUERIES_DIR / "macros" / "counted.sql").read_text())
        args = [amount, singular] if plural is None else [amount, singular, plural]
        shown = con.execute(f"select counted({', '.join('?' * len(args))})", args).fetchone()[0]
    assert shown == counted(amount, singular, plural)


def one_call(id: str, day: str) -> dict[str, object]:
    return call(id, f"{day}T10:00:00Z", f"{day}T10:01:00Z", answered_at=f"{day}T10:00:05Z")


def messages_of(data_dir: Path, rule: str) -> list[str]:
    with duckdb.connect(str(warehouse_path(data_dir)), read_only=True) as con:
        rows = con.execute("select message from rpt_alerts where rule = ? order by window_start, product", [rule])
        return [text for (text,) in rows.fetchall()]


def test_a_reconciliation_gap_of_one_record_says_one_call_or_message(tmp_path: Path) -> None:
    calls = [one_call("c1", "2026-03-02"), one_call("c2", "2026-03-03")]
    messages = [message("m1", "2026-03-03T11:00:00Z", rate="0.0100")]
    usage_rows = [
        usage("2026-03-01", "calls", "USD", 1, "0.01", billed_duration_secs=60),  # the lake holds none
        usage("2026-03-02", "calls", "USD", 2, "0.02", billed_duration_secs=120),  # the lake holds one
        usage("2026-03-03", "calls", "USD", 1, "0.01", billed_duration_secs=60),  # it covers the message's day
    ]
    build(write_lake(tmp_path, calls, messages, usage_rows))

    assert messages_of(tmp_path, "reconciliation_gap") == [
        "The API reports 1 call (0.01 USD) on 2026-03-01 UTC but the lake holds none; re-sync that day.",
        "Calls on 2026-03-02 UTC differ from the API's usage with no quarantined record to explain it: the lake "
        "holds 1 call (0.01 USD), the API reports 2 calls (0.02 USD); re-sync that day.",
        "The lake holds 1 message (0.01 USD) on 2026-03-03 UTC that the API's usage does not report; re-sync its "
        "usage, then ask support.",
    ]


@pytest.mark.parametrize(
    ("build_at", "silence"),
    [(datetime(2026, 3, 2, 12), "1 hour"), (datetime(2026, 3, 4, 10), "47 hours"), (datetime(2026, 3, 5, 22), "3 days")],
)
def test_a_sync_silent_for_hours_says_hours_and_for_days_days(tmp_path: Path, build_at: datetime, silence: str) -> None:
    write_lake(tmp_path, [one_call("c1", "2026-03-02")])
    config = tmp_path / "alerts.toml"
    config.write_text("[sync_stale]\nmax_silence_hours = 1\n")
    # The newest call is in the hour to 11:00; the build runs an hour after it, just under two days, 3.5 days.
    build(tmp_path, alerts_config=config, now=build_at.replace(tzinfo=timezone.utc))

    assert messages_of(tmp_path, "sync_stale") == [
        f"No calls newer than 2026-03-02 11:00 UTC in the lake, {silence} before this build; check that the sync runs "
        "(cdr status) and that the account still sends traffic."
    ]


def test_the_finance_rest_of_one_country_says_one_country(tmp_path: Path) -> None:
    countries = ["GB", "US", "DE", "FR", "ES", "IT", "NL", "BE", "AT", "CH", "SE"]  # the 11th by cost is the rest
    calls = [
        call(f"c{rank}", "2026-03-02T10:00:00Z", "2026-03-02T10:01:00Z", answered_at="2026-03-02T10:00:05Z",
             country_code=country, rate=f"{len(countries) - rank}.0000")
        for rank, country in enumerate(countries)
    ]
    build(write_lake(tmp_path, calls))
    with duckdb.connect(str(warehouse_path(tmp_path)), read_only=True) as con:
        rest = con.execute("select country_label from rpt_finance_cost_by_country where country_rank = 11").fetchall()
    assert rest == [("Other (1 country)",)]
