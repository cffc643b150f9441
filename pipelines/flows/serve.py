"""`cdr serve`: run prefect.yaml's deployments and schedules in this process (no work pool needed).

The schedules are read from prefect.yaml so that cron and time zone live in one place.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from contextlib import suppress
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow
from prefect.runner import Runner
from prefect.schedules import Cron

from pipelines.errors import one_line

PROJECT_FILE = Path(__file__).resolve().parents[2] / "prefect.yaml"


def load_flow(entrypoint: str) -> Flow[Any, Any]:
    """`pipelines/flows/x.py:flow_name` -> the flow object (entrypoints live in this package)."""
    path, _, name = entrypoint.partition(":")
    module = importlib.import_module(".".join(Path(path).with_suffix("").parts))
    flow = getattr(module, name)
    if not isinstance(flow, Flow):
        raise TypeError(f"{entrypoint} is not a Prefect flow")
    return flow


def deployments() -> list[Any]:
    """prefect.yaml -> runner deployments with the same names, parameters and schedules."""
    spec = yaml.safe_load(PROJECT_FILE.read_text("utf-8"))
    built = []
    for entry in spec["deployments"]:
        flow = load_flow(entry["entrypoint"])
        built.append(
            flow.to_deployment(
                name=entry["name"],
                description=entry.get("description"),
                parameters=entry.get("parameters") or {},
                schedules=[Cron(s["cron"], timezone=s["timezone"]) for s in entry.get("schedules", [])],
                concurrency_limit=entry.get("concurrency_limit"),
            )
        )
    return built


async def serve_deployments(built: list[Any]) -> None:
    """Serve the deployments until cancelled (`cdr serve` runs this in `console.stoppable`).

    As `prefect.aserve`, but cancelled it stops the runner as Prefect's own SIGTERM handling does: the
    runs in flight are cancelled (their processes signalled, their states set) before the runner goes.
    Merely cancelled, the runner killed them unreported: a run stayed Running in Prefect, holding its
    deployment's one concurrency slot, and every later run of it waited for that slot for good.
    """
    runner = Runner(limit=None)  # as aserve: no cap of its own on concurrent runs
    for deployment in built:
        await runner.add_deployment(deployment)
    try:  # Prefect's own "being served" banner, as aserve prints it; a private name, so only if it is there
        from prefect.flows import _display_serve_start_message
    except ImportError:
        pass
    else:
        _display_serve_start_message(*built)
    serving = asyncio.ensure_future(runner.start())
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        if not runner.started:  # still starting: no run in flight yet
            serving.cancel()
        elif not serving.done():
            try:
                await runner.astop()
            except Exception as exc:  # the command still stops: say that runs may be left in flight
                logging.getLogger(__name__).warning(
                    "could not cancel the runs in flight (%s): cancel them in Prefect", one_line(exc, first=True)
                )
        with suppress(Exception, asyncio.CancelledError):
            await serving
        raise
