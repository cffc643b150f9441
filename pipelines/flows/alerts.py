"""The alerts flow: the last days' alerts from the warehouse, the new ones sent through a notification block."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from pipelines.alerts import DEFAULT_RANGE, Alert, Delivery, deliver, digest, read_alerts, read_sent
from pipelines.dates import Window, format_utc, resolve_literal
from pipelines.errors import CdrError, UsageError, clip
from pipelines.flows import run_arguments
from pipelines.settings import load_settings


def check_block_name(name: str) -> str:
    """A notify_block parameter -> itself if of Prefect's `<block type>/<block name>` form; else UsageError."""
    kind, _, block = name.partition("/")
    if not kind or not block:
        raise UsageError(
            f"notify_block {clip(repr(name))} must name a notification block as <block type>/<block name>, "
            "e.g. slack-webhook/ops or custom-webhook/ops (see `prefect block ls`)"
        )
    return name


@task(name="read-alerts", cache_policy=NO_CACHE, persist_result=False)
def read_recent_alerts(warehouse: Path, window: Window) -> list[Alert]:
    """The warehouse's alerts whose windows overlap `window`, oldest first."""
    return read_alerts(warehouse, window)


def plain_text(block: Any) -> None:
    """Declare the digest plain text to an Apprise-based block (Slack, Teams, e-mail ...), which then escapes it for
    its target's markup; a custom webhook gets the text as it is, its JSON exact.

    The digest holds names from the API (connections, carriers, accounts). Undeclared, Apprise hands it to Slack
    as mrkdwn and even turns `!here>` into a mention; declared, Slack gets `&`, `<`, `>` as `&amp;`, `&lt;`, `&gt;`,
    so `<!channel>` or `<https://evil|click me>` in a name shows as typed. The blocks do not pass a format on,
    so it goes on their Apprise client's asset (the format Apprise takes when none is passed).
    """
    from apprise import NotifyFormat
    from prefect.blocks.notifications import AbstractAppriseNotificationBlock

    if isinstance(block, AbstractAppriseNotificationBlock):
        block._apprise_client.asset.body_format = NotifyFormat.TEXT


def without_mentions(block: Any, text: str) -> str:
    """The digest as a Discord or Mattermost block is to post it: every `@` followed by a zero-width space.

    Both turn `@everyone`, `@here`, `@channel` or `<@id>` in plain text into a mention, and Apprise does not
    escape them; so a name from the API could ping a whole channel. The text reads the same.
    """
    from prefect.blocks.notifications import DiscordWebhook, MattermostWebhook

    return text.replace("@", "@\u200b") if isinstance(block, DiscordWebhook | MattermostWebhook) else text


@task(name="send-alerts", cache_policy=NO_CACHE, persist_result=False)
def send_alerts(alerts: list[Alert], data_dir: Path, notify_block: str, snooze: timedelta, now: datetime) -> Delivery:
    """The alerts never sent before, but those snoozed, sent as one digest through the notification block."""
    from prefect.blocks.abstract import NotificationBlock
    from prefect.blocks.core import Block

    try:
        block = Block.load(notify_block)
    except (ValueError, KeyError) as exc:
        raise CdrError(f"cannot load the notification block {clip(notify_block)}: {clip(str(exc))}") from None
    if not isinstance(block, NotificationBlock):
        raise CdrError(f"the block {clip(notify_block)} is a {type(block).__name__}, not a notification block")
    plain_text(block)

    def send(batch: Sequence[Alert]) -> None:
        subject, body = digest(batch)
        try:
            # Apprise-based blocks (Slack, Teams ...) only log a failure unless told to raise.
            with block.raise_on_failure():
                block.notify(without_mentions(block, body), subject)
        except Exception as exc:  # any block's failure; its text may quote the webhook URL, so only its kind
            status = getattr(getattr(exc, "response", None), "status_code", None)
            raise CdrError(type(exc).__name__ + (f" (HTTP {status})" if status else "")) from None

    return deliver(alerts, data_dir, send, snooze=snooze, now=now, where=f"block {notify_block}", one_by_one=False)


def alerts_run_name(parameters: Mapping[str, Any]) -> str:
    """An alerts flow's parameters -> its run's name: `alerts to slack-webhook/ops`, or
    `alerts, none sent (no notify_block)`."""
    block = run_arguments(alerts_flow.fn, parameters)["notify_block"]
    return "alerts, none sent (no notify_block)" if block is None else f"alerts to {block}"


@flow(name="cdr-alerts", flow_run_name=lambda: alerts_run_name(runtime.flow_run.parameters))
def alerts_flow(
    data_dir: str | None = None, notify_block: str | None = None, snooze_hours: float | None = None
) -> dict[str, Any]:
    """Read the alerts of the last 7 days to now; send the new ones through `notify_block` (if named) and leave
    a table artifact of them all."""
    from pipelines.models import warehouse_path

    logger = get_run_logger()
    if notify_block is not None:
        check_block_name(notify_block)
    settings = load_settings(data_dir=data_dir)
    now = datetime.now(timezone.utc)
    # Up to now, not to today's start as the literal ends: tonight's hourly alerts are sent tonight.
    window = Window(resolve_literal(DEFAULT_RANGE, now=now, tz=settings.timezone, week_start=settings.week_start).start, now)
    alerts = read_recent_alerts(warehouse_path(settings.data_dir), window)
    failure = None
    if notify_block is None:
        status = {alert.alert_key: "not sent (no notify_block)" for alert in alerts}
    else:
        snooze = timedelta(hours=settings.alerts_snooze_hours if snooze_hours is None else snooze_hours)
        try:
            delivery = send_alerts(alerts, settings.data_dir, notify_block, snooze, now)
        except CdrError as exc:
            failure = exc
            handled = read_sent(settings.data_dir).alerts
            status = {a.alert_key: "handled before" if a.alert_key in handled else "failed: next run" for a in alerts}
        else:
            status = {a.alert_key: "handled before" for a in alerts}
            status |= {a.alert_key: "sent" for a in delivery.sent} | {a.alert_key: "snoozed" for a in delivery.snoozed}
            logger.info(delivery.summary(f"block {notify_block}"))
    table = [
        {
            "account": a.account, "severity": a.severity, "rule": a.rule, "window_start": format_utc(a.window_start),
            "window_end": format_utc(a.window_end), "message": a.message, "delivery": status[a.alert_key],
        }
        for a in alerts
    ]
    create_table_artifact(
        table, key="cdr-alerts", description=f"Alerts {format_utc(window.start)} .. {format_utc(window.end)}: {len(alerts)}"
    )
    if failure is not None:
        raise failure
    return {
        "alerts": len(alerts),
        "sent": sum(value == "sent" for value in status.values()),
        "snoozed": sum(value == "snoozed" for value in status.values()),
    }
