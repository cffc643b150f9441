"""Alert delivery without Prefect: the snooze per condition, the record of what was sent, a failed send retried."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pipelines.alerts import (
    ConditionState, Decision, deliver, digest, is_due, plan_delivery, read_sent, sent_path, write_sent, SentRecord,
)
from pipelines.errors import CdrError
from tests.fixtures.alerts import alert

UTC = timezone.utc
D1 = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 10, 9, 2, 30, tzinfo=UTC)
SNOOZE = timedelta(hours=24)


def day(n: int) -> datetime:
    return D1 + timedelta(days=n - 1)


def keys(plan: list[Decision]) -> list[tuple[str, bool]]:
    return [(decision.alert.alert_key, decision.send) for decision in plan]


def test_a_condition_that_stays_on_is_sent_once_per_snooze_past_the_window_last_sent():
    daily = [alert(f"d{n}", day(n)) for n in range(1, 6)]

    plan = plan_delivery(daily, SentRecord(), SNOOZE)

    # d1 sent; d2 starts as d1 ends (within the snooze): snoozed; d3 starts 24 h after d1 ends: sent again.
    assert keys(plan) == [("d1", True), ("d2", False), ("d3", True), ("d4", False), ("d5", True)]


def test_a_condition_that_clears_and_returns_is_sent_again_at_once():
    spells = [alert("d1", day(1)), alert("d2", day(2)), alert("d4", day(4)), alert("d5", day(5))]

    assert keys(plan_delivery(spells, SentRecord(), timedelta(hours=240))) == [
        ("d1", True), ("d2", False), ("d4", True), ("d5", False),
    ]


def test_each_condition_is_snoozed_on_its_own():
    mixed = [
        alert("us1", day(1)), alert("gb1", day(1), country_code="GB"),
        alert("us2", day(2)), alert("gb2", day(2), country_code="GB"), alert("burst2", day(2), rule="short_call_burst"),
    ]

    assert keys(plan_delivery(mixed, SentRecord(), SNOOZE)) == [
        ("us1", True), ("gb1", True), ("us2", False), ("gb2", False), ("burst2", True),
    ]


def test_zero_snooze_sends_every_window():
    hourly = [alert(f"h{n}", D1 + timedelta(hours=n), hours=1) for n in range(3)]

    assert keys(plan_delivery(hourly, SentRecord(), timedelta(0))) == [("h0", True), ("h1", True), ("h2", True)]


def test_the_snooze_carries_over_from_the_record_of_earlier_runs():
    earlier = SentRecord()
    earlier.note(alert("d1", day(1)), sent=True, now=NOW)

    plan = plan_delivery([alert("d1", day(1)), alert("d2", day(2)), alert("d3", day(3))], earlier, SNOOZE)

    assert keys(plan) == [("d2", False), ("d3", True)]


def test_is_due_for_a_late_alert_inside_a_window_already_seen_is_snoozed():
    state = ConditionState(sent_window_end=day(5), last_window_end=day(6))

    assert not is_due(state, alert("late-d3", day(3)), SNOOZE)
    assert is_due(state, alert("back-d8", day(8)), SNOOZE)  # a gap after day 6: cleared and returned
    assert is_due(None, alert("first", day(1)), SNOOZE)


def test_deliver_records_each_alert_as_its_send_succeeds_and_a_failed_one_is_sent_next_time(tmp_path):
    alerts = [alert("us1", day(1)), alert("us2", day(2)), alert("gb1", day(1), country_code="GB"), alert("fr1", day(3), country_code="FR")]
    alerts.sort(key=lambda a: a.window_start)
    posted: list[str] = []

    def flaky(batch):
        if batch[0].alert_key == "gb1" and "gb1" not in failed:
            failed.append("gb1")
            raise CdrError("HTTP 502")
        posted.extend(a.alert_key for a in batch)

    failed: list[str] = []
    with pytest.raises(CdrError, match=r"^sending to http://127.0.0.1 failed after 1 of 3 new alerts \(HTTP 502\); the next call sends the 2 left$"):
        deliver(alerts, tmp_path, flaky, snooze=SNOOZE, now=NOW, where="http://127.0.0.1")
    assert read_sent(tmp_path).alerts == {"us1": {"sent_at": "2026-10-09T02:30:00.000Z"}}

    later = NOW + timedelta(hours=1)
    done = deliver(alerts, tmp_path, flaky, snooze=SNOOZE, now=later, where="http://127.0.0.1")

    assert posted == ["us1", "gb1", "fr1"]
    assert [a.alert_key for a in done.sent] == ["gb1", "fr1"]
    assert [a.alert_key for a in done.snoozed] == ["us2"] and done.handled_before == 1
    assert read_sent(tmp_path).alerts == {
        "us1": {"sent_at": "2026-10-09T02:30:00.000Z"}, "gb1": {"sent_at": "2026-10-09T03:30:00.000Z"},
        "us2": {"snoozed_at": "2026-10-09T03:30:00.000Z"}, "fr1": {"sent_at": "2026-10-09T03:30:00.000Z"},
    }


def test_ctrl_c_mid_send_keeps_what_was_sent_and_says_so_in_one_line(tmp_path):
    from pipelines.alerts import DeliveryInterrupted

    alerts = [alert("us1", day(1)), alert("gb1", day(1), country_code="GB"), alert("de1", day(1), country_code="DE")]
    posted: list[str] = []

    def interrupted_at_the_second(batch):
        if posted:
            raise KeyboardInterrupt
        posted.extend(a.alert_key for a in batch)

    with pytest.raises(DeliveryInterrupted) as stopped:
        deliver(alerts, tmp_path, interrupted_at_the_second, snooze=SNOOZE, now=NOW, where="https://hooks.example.com")
    assert (stopped.value.exit_code, stopped.value.line) == (
        130, "interrupted: 1 of 3 new alerts sent to https://hooks.example.com and recorded; the next call sends the 2 left",
    )
    assert list(read_sent(tmp_path).alerts) == ["us1"]


def test_a_digest_is_sent_whole_or_not_recorded_at_all(tmp_path):
    alerts = [alert("us1", day(1)), alert("gb1", day(1), country_code="GB")]
    calls: list[list[str]] = []

    def down(batch):
        raise CdrError("Slack is down")

    with pytest.raises(CdrError, match="Slack is down"):
        deliver(alerts, tmp_path, down, snooze=SNOOZE, now=NOW, where="block slack-webhook/ops", one_by_one=False)
    assert not sent_path(tmp_path).exists()

    deliver(alerts, tmp_path, lambda batch: calls.append([a.alert_key for a in batch]), snooze=SNOOZE, now=NOW,
            where="block slack-webhook/ops", one_by_one=False)
    assert calls == [["us1", "gb1"]]


def test_the_sent_record_round_trips_and_a_corrupt_one_stops_delivery_instead_of_resending(tmp_path):
    record = SentRecord()
    record.note(alert("us1", day(1)), sent=True, now=NOW)
    record.note(alert("us2", day(2)), sent=False, now=NOW)
    write_sent(tmp_path, record)

    assert read_sent(tmp_path) == record

    sent_path(tmp_path).write_text('{"version": 1, "alerts": {}}')
    with pytest.raises(CdrError, match=r"has no 'conditions'.*move it aside to send every alert in the range again"):
        deliver([alert("us3", day(3))], tmp_path, lambda batch: None, snooze=SNOOZE, now=NOW, where="x")


def test_digest_names_each_alerts_account_but_the_default_one():
    from dataclasses import replace

    same = alert("a", day(1), message="Voice cost to US is 2.5x.")
    _, body = digest([replace(same, account="acme"), replace(same, alert_key="b", account="globex"), same])

    assert body == (
        "[warning] acme: cost_spike, 2026-10-01T00:00Z: Voice cost to US is 2.5x.\n"
        "[warning] globex: cost_spike, 2026-10-01T00:00Z: Voice cost to US is 2.5x.\n"
        "[warning] cost_spike, 2026-10-01T00:00Z: Voice cost to US is 2.5x."
    )


def test_digest_counts_by_severity_and_lists_each_message():
    subject, body = digest([
        alert("a", day(1), severity="warning", message="Voice cost to US is 2.5x."),
        alert("b", day(1) + timedelta(hours=3), hours=1, severity="critical", rule="short_call_burst", message="Burst."),
    ])

    assert subject == "CDR alerts: 2 new alerts (1 critical, 1 warning)"
    assert body == (
        "[warning] cost_spike, 2026-10-01T00:00Z: Voice cost to US is 2.5x.\n"
        "[critical] short_call_burst, 2026-10-01T03:00Z: Burst."
    )
