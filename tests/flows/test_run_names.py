"""Run names say what a run does."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from pipelines.flows.alerts import alerts_run_name
from pipelines.flows.build import build_run_name
from pipelines.flows.nightly import nightly_run_name
from pipelines.flows.sync import sync_run_name


@pytest.mark.parametrize(
    ("parameters", "name"),
    [
        # Windows as they resolve, end exclusive: 2026-11-10 is a Tuesday, weeks start on Monday.
        ({"date_range": "last_week", "now": "2026-11-10T09:00:00Z"}, "sync 2026-11-02..2026-11-09 cdrs,mdrs"),
        ({"date_range": "yesterday", "now": "2026-11-10T03:00:00Z", "tz": "America/New_York", "types": ["mdrs"]},
         "sync 2026-11-08..2026-11-09 mdrs"),
        ({"start": "2026-11-01", "end": "2026-11-08", "types": ["cdrs"]}, "sync 2026-11-01..2026-11-08 cdrs"),
        # Bounds that are not midnights in the run's zone are instants.
        ({"start": "2026-11-01T06:30:00Z", "end": "2026-11-02"}, "sync 2026-11-01T06:30:00.000Z..2026-11-02 cdrs,mdrs"),
        ({}, "sync incremental cdrs,mdrs"),
        # Arguments the flow will refuse name the run as given.
        ({"date_range": "last_fortnight"}, "sync last_fortnight cdrs,mdrs"),
        ({"start": "2026-11-01", "types": ["calls"]}, "sync 2026-11-01.. calls"),
    ],
)
def test_a_sync_run_is_named_for_its_window_and_record_types(parameters, name) -> None:
    assert sync_run_name(parameters) == name


def test_build_and_nightly_runs_are_named_for_what_they_do() -> None:
    assert build_run_name({}) == "build warehouse and dashboards"
    assert build_run_name({"dashboards": False}) == "build warehouse"
    scheduled = datetime(2026, 11, 8, 2, 30, tzinfo=timezone.utc)
    assert nightly_run_name({}, scheduled) == "nightly 2026-11-08 cdrs,mdrs"
    assert nightly_run_name({"types": ["cdrs"]}, scheduled) == "nightly 2026-11-08 cdrs"


def test_an_alerts_run_is_named_for_where_its_alerts_go() -> None:
    assert alerts_run_name({"notify_block": "slack-webhook/ops"}) == "alerts to slack-webhook/ops"
    assert alerts_run_name({}) == "alerts, none sent (no notify_block)"
