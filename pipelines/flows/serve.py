"""`cdr serve`: run prefect.yaml's deployments and schedules in this process (no work pool needed).

The schedules are read from prefect.yaml so that cron and time zone live in one place.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow, aserve
from prefect.schedules import Cron

PROJECT_FILE = Path(__file__).resolve().parents[2] / "prefect.yaml"


def load_flow(entrypoint: str) -> Flow[Any, Any]:
    """`pipelines/flows/x.py:flow_name` -> the flow object (entrypoints live in this package)."""
    path, _, name = entrypoint.partition(":")
    module = importlib.import_module(".".join(Path(path).with_suffix("").parts))
    flow = getattr(module, name)
    if not isinstance(flow, Flow):
        raise TypeError(f"{entrypoint} is not a Prefect flow")
    return flow


def deployments(project_file: Path = PROJECT_FILE) -> list[Any]:
    """prefect.yaml -> runner deployments with the same names, parameters and schedules."""
    spec = yaml.safe_load(project_file.read_text("utf-8"))
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
    """Serve the deployments until cancelled (`cdr serve` runs this in `console.stoppable`)."""
    await aserve(*built)
