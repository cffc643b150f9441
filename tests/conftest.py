"""Session-wide test set-up: no telemetry, no stray environment, no real API."""

from __future__ import annotations

import os

import pytest

# Set before anything imports prefect (collection imports test modules).
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING")

_OURS = ("OPENTACT_", "CDR_")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own OPENTACT_* / CDR_* variables out of every test."""
    for name in list(os.environ):
        if name.startswith(_OURS):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def prefect_harness():
    """ONE ephemeral Prefect API (SQLite) for the whole session: it takes 10-25 s to start."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
