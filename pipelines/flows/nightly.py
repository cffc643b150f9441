"""The nightly flow: incremental sync (high-water mark minus lookback), build, dashboards."""

from __future__ import annotations

from typing import Any

from prefect import flow

from pipelines.flows.build import build_flow
from pipelines.flows.sync import sync_flow


@flow(name="cdr-nightly")
async def nightly_sync(
    types: list[str] = ["cdrs", "mdrs"],  # noqa: B006 - Prefect parameters must be JSON-friendly
    data_dir: str | None = None,
    api_key_block: str | None = None,
    dashboards: bool = True,
) -> dict[str, Any]:
    """Pick up new, late and re-rated records since the last night, then rebuild reports and dashboards."""
    synced = await sync_flow(types=types, data_dir=data_dir, api_key_block=api_key_block)
    built = build_flow(data_dir=data_dir, dashboards=dashboards)
    return {"sync": synced, "build": built}
