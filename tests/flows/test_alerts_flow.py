"""The alerts flow under Prefect: new alerts sent once as one digest through a saved notification block."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from pipelines.errors import CdrError
from tests.fixtures.alerts import alert, make_warehouse, webhook_receiver


def test_new_alerts_go_out_once_through_the_block_and_a_failed_send_goes_out_next_run(prefect_harness, tmp_path):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from pipelines.flows.alerts import alerts_flow

    day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
    make_warehouse(tmp_path / "data", [
        alert("us1", day, severity="critical", message="Voice cost to US is 3x its usual."),
        alert("us2", day + timedelta(days=1), message="Voice cost to US is 2.6x its usual."),  # still on: snoozed
        alert("old", day - timedelta(days=20)),  # outside the last 7 days
    ])
    data_dir = str(tmp_path / "data")
    with webhook_receiver(fail_first=1) as receiver:
        CustomWebhookNotificationBlock(
            name="cdr", url=receiver.url, json_data={"subject": "{{subject}}", "body": "{{body}}"}
        ).save("cdr-ops-test", overwrite=True)

        with pytest.raises(CdrError, match=r"HTTPStatusError \(HTTP 500\)") as failed:
            alerts_flow(data_dir=data_dir, notify_block="custom-webhook/cdr-ops-test")
        first = alerts_flow(data_dir=data_dir, notify_block="custom-webhook/cdr-ops-test")
        again = alerts_flow(data_dir=data_dir, notify_block="custom-webhook/cdr-ops-test")

    assert "127.0.0.1" not in str(failed.value) and "T0KEN" not in str(failed.value)
    assert first == {"alerts": 2, "sent": 1, "snoozed": 1}
    assert again == {"alerts": 2, "sent": 0, "snoozed": 0}
    assert receiver.requests == 2 and receiver.received == [{
        "subject": "CDR alerts: 1 new alert (1 critical)",
        "body": f"[critical] cost_spike, {day:%Y-%m-%dT%H:%M}Z: Voice cost to US is 3x its usual.",
    }]


def test_an_alerts_run_is_named_for_where_its_alerts_go(prefect_harness, tmp_path):
    # As a subflow of the nightly run too: a random name ("naughty-lynx") said nothing on the runs page.
    import asyncio

    from prefect.client.orchestration import get_client

    from pipelines.flows.alerts import alerts_flow

    make_warehouse(tmp_path / "data", [alert("old", datetime(2026, 1, 1, tzinfo=timezone.utc))])
    state = alerts_flow(data_dir=str(tmp_path / "data"), return_state=True)

    async def name() -> str:
        async with get_client() as client:
            return (await client.read_flow_run(state.state_details.flow_run_id)).name

    assert state.is_completed() and asyncio.run(name()) == "alerts, none sent (no notify_block)"


HOSTILE_MESSAGE = "Voice cost via <!channel> <!here> <https://evil.example|click me> & !here> is 3x its usual."


def test_slack_gets_names_escaped_as_text_and_a_custom_webhook_gets_them_exact(prefect_harness, tmp_path, monkeypatch):
    import requests
    from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook

    from pipelines.flows.alerts import alerts_flow

    day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    for name in ("slack", "custom"):
        make_warehouse(tmp_path / name, [alert("k", day, severity="critical", message=HOSTILE_MESSAGE)])
    posted: list[dict[str, object]] = []

    def slack(method: str, url: str, **kwargs: object) -> requests.Response:
        posted.append(orjson.loads(kwargs["data"]))
        response = requests.Response()
        response.status_code, response._content = 200, b"ok"
        return response

    monkeypatch.setattr(requests, "request", slack)
    SlackWebhook(url="https://hooks.slack.com/services/T0/B0/S3CRET").save("cdr-slack-test", overwrite=True)
    with webhook_receiver() as receiver:
        CustomWebhookNotificationBlock(name="cdr", url=receiver.url, json_data={"body": "{{body}}"}).save(
            "cdr-custom-test", overwrite=True
        )
        assert alerts_flow(data_dir=str(tmp_path / "slack"), notify_block="slack-webhook/cdr-slack-test")["sent"] == 1
        assert alerts_flow(data_dir=str(tmp_path / "custom"), notify_block="custom-webhook/cdr-custom-test")["sent"] == 1

    line = f"[critical] cost_spike, {day:%Y-%m-%dT%H:%M}Z: {HOSTILE_MESSAGE}"
    (text,) = [attachment["text"] for message in posted for attachment in message["attachments"]]
    assert text == line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert receiver.received == [{"body": line}]


@pytest.mark.parametrize("target", ["discord", "mattermost"])
def test_discord_and_mattermost_get_mentions_in_names_as_text(prefect_harness, tmp_path, monkeypatch, target):
    import requests
    from prefect.blocks.notifications import DiscordWebhook, MattermostWebhook

    from pipelines.flows.alerts import alerts_flow

    day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    message = "Voice cost via @everyone @here @channel <@123456> is 3x its usual."
    make_warehouse(tmp_path / "data", [alert("k", day, severity="critical", message=message)])
    posted: list[dict[str, object]] = []

    def post(url: str, **kwargs: object) -> requests.Response:
        posted.append(orjson.loads(kwargs["data"]))
        response = requests.Response()
        response.status_code, response._content = 200 if target == "mattermost" else 204, b""
        return response

    monkeypatch.setattr(requests, "post", post)
    if target == "discord":
        DiscordWebhook(webhook_id="1234", webhook_token="T0KEN").save("cdr-chat-test", overwrite=True)
    else:
        MattermostWebhook(hostname="chat.example.com", token="T0KEN").save("cdr-chat-test", overwrite=True)
    assert alerts_flow(data_dir=str(tmp_path / "data"), notify_block=f"{target}-webhook/cdr-chat-test")["sent"] == 1

    (text,) = [payload["content" if target == "discord" else "text"] for payload in posted]
    line = f"[critical] cost_spike, {day:%Y-%m-%dT%H:%M}Z: {message}"
    # What a reader sees is the digest (its subject, then the line); no @ is followed by a name a mention could match.
    assert text.replace("\u200b", "").splitlines() == ["CDR alerts: 1 new alert (1 critical)", line]
    assert re.findall(r"@\w", text) == [] and text.count("@\u200b") == 4
