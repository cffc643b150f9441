"""Session-wide test set-up: no telemetry, no stray environment, no real API."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

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


# -- which worker runs which file, and in what order ----------------------------------------------

# The files that use `prefect_harness` run on one worker, one after another: each worker would
# otherwise start (and migrate) an API server of its own for them.
PREFECT_SCOPE = "tests using prefect_harness"


@cache
def _requests_prefect_harness(path: Path) -> bool:
    """A test file -> whether its tests ask for the session's Prefect API (by the fixture's name)."""
    return path.is_file() and "prefect_harness" in path.read_text("utf-8")


def scope_of(rootpath: Path, nodeid: str) -> str:
    """A test's node id -> the unit of work a worker takes whole: its file, or the Prefect files together."""
    file = nodeid.split("::", 1)[0]
    return PREFECT_SCOPE if _requests_prefect_harness(rootpath / file) else file


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order the units of work longest first, as the workers take them in this order: those holding a
    test marked `slow`, then those of more tests; otherwise as collected. A long file taken last
    would leave the other worker idle until it ends."""
    scopes: dict[str, list[pytest.Item]] = {}
    for item in items:
        scopes.setdefault(scope_of(config.rootpath, item.nodeid), []).append(item)
    ordered = sorted(
        scopes.values(),
        key=lambda unit: (not any(item.get_closest_marker("slow") for item in unit), -len(unit)),
    )
    items[:] = [item for unit in ordered for item in unit]


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # xdist's hook: known only with xdist loaded
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`--dist loadfile`, with the Prefect files as one unit and the units in the collection's order."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class UnitScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(self.config.rootpath, nodeid)

    config.option.loadscopereorder = False  # the collection's order is already the one wanted
    return UnitScheduling(config, log)


@pytest.fixture(scope="session")
def prefect_harness():
    """ONE ephemeral Prefect API (SQLite) for the whole session: it takes 10-25 s to start."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


# -- a local S3 server (SeaweedFS) for the lake on object storage ---------------------------------


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    """A SeaweedFS S3 server on loopback (tests/s3_server.py) -> its URL."""
    from contextlib import ExitStack

    from tests.s3_server import S3ServerError, running_s3_server

    with ExitStack() as stack:
        try:
            url = stack.enter_context(running_s3_server(tmp_path_factory.mktemp("seaweedfs")))
        except S3ServerError as exc:
            pytest.fail(str(exc))
        yield url


@pytest.fixture
def s3_data_dir(s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> str:
    """A fresh data dir on the S3 server (a prefix of its own), the AWS_* variables pointing at it, and a
    cache folder of the test's own -> its s3:// URL."""
    import uuid

    from tests.s3_server import S3_BUCKET, s3_environment

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in s3_environment(s3_server).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return f"s3://{S3_BUCKET}/{uuid.uuid4().hex[:12]}"
