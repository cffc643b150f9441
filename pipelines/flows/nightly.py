"""The nightly flow: incremental sync (high-water mark minus lookback) of every account, build, dashboards, alerts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from prefect import flow, runtime

from pipelines.flows import run_arguments
from pipelines.flows.alerts import alerts_flow, check_block_name
from pipelines.flows.build import build_flow
from pipelines.flows.sync import AccountsIncomplete, SyncIncomplete, sync_flow
from pipelines.opentact.client import ApiKeyRejected


def nightly_run_name(parameters: Mapping[str, Any], scheduled: datetime) -> str:
    """A nightly flow's parameters and scheduled start -> its run's name: `nightly 2026-11-08 cdrs,mdrs` (the UTC day)."""
    types = run_arguments(nightly_sync.fn, parameters)["types"]
    return f"nightly {scheduled.astimezone(timezone.utc).date().isoformat()} {','.join(types)}"


@flow(
    name="cdr-nightly",
    flow_run_name=lambda: nightly_run_name(runtime.flow_run.parameters, runtime.flow_run.scheduled_start_time),
)
async def nightly_sync(
    types: list[str] = ["cdrs", "mdrs"],  # noqa: B006 - Prefect parameters must be JSON-friendly
    data_dir: str | None = None,
    api_key_block: str | None = None,
    dashboards: bool = True,
    notify_block: str | None = None,
) -> dict[str, Any]:
    """Pick up new, late and re-rated records since the last night, rebuild reports and dashboards, then send the
    new alerts through the notification block `notify_block` (`<block type>/<block name>`; None: none sent).

    A sync that leaves slices or accounts unsynced (or whose only key is rejected) still builds and alerts on
    what landed, then fails the run."""
    if notify_block is not None:
        check_block_name(notify_block)  # refused before the sync, not after an hour of it
    # Every configured account, so the nightly run follows the accounts file as it changes.
    try:
        synced: dict[str, Any] | None = await sync_flow(
            types=types, data_dir=data_dir, api_key_block=api_key_block, all_accounts=True
        )
    except (SyncIncomplete, AccountsIncomplete, ApiKeyRejected) as exc:
        # What landed is built and alerted on (one account's revoked key must not silence the others' fraud
        # alerts, nor a dead API or the only account's revoked key its own sync_stale alert); the run still
        # fails, naming what did not land.
        unsynced, synced = exc, None
    else:
        unsynced = None
    built = build_flow(data_dir=data_dir, dashboards=dashboards)
    alerted = alerts_flow(data_dir=data_dir, notify_block=notify_block)
    if unsynced is not None:
        raise unsynced
    return {"sync": synced, "build": built, "alerts": alerted}
