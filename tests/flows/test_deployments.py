"""prefect.yaml: every entrypoint imports, every parameter is one its flow takes, crons state a zone."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml
from prefect.schedules import Cron

from pipelines.flows.serve import PROJECT_FILE, deployments, load_flow

SPEC = yaml.safe_load(Path(PROJECT_FILE).read_text("utf-8"))


def test_the_schedules_people_rely_on_exist():
    names = {d["name"]: d for d in SPEC["deployments"]}
    assert names["nightly-sync"]["schedules"] == [{"cron": "30 2 * * *", "timezone": "UTC"}]
    assert names["monthly-finance"]["schedules"] == [{"cron": "0 6 1 * *", "timezone": "UTC"}]


@pytest.mark.parametrize("deployment", SPEC["deployments"], ids=lambda d: d["name"])
def test_entrypoint_imports_and_parameters_match_its_signature(deployment):
    flow = load_flow(deployment["entrypoint"])
    signature = inspect.signature(flow.fn)
    for name, value in (deployment.get("parameters") or {}).items():
        assert name in signature.parameters, f"{deployment['name']}: {flow.name} takes no parameter {name!r}"
        signature.bind_partial(**{name: value})
    for schedule in deployment["schedules"]:
        assert schedule["timezone"], "every cron states its time zone"
        Cron(schedule["cron"], timezone=schedule["timezone"])


def test_serve_builds_the_same_deployments_from_the_file():
    built = deployments()
    assert [d.name for d in built] == [d["name"] for d in SPEC["deployments"]]
    assert all(d.schedules for d in built)
