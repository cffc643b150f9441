"""Session-wide test set-up: no telemetry, no stray environment, no real API."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

# Set before anything imports prefect (collection imports test modules).
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING")
# Each test process (an xdist worker, and the commands it starts) its own Prefect home: the
# ephemeral API servers that `cdr sync` starts would otherwise share ~/.prefect's SQLite
# database with the other worker and with anyone else's runs, and fail on its lock.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix=f"prefect-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-")
atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)

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
