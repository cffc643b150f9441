"""Sandbox test helper: run `cdr sandbox serve` as a subprocess for the length of a block.

Every suite that talks to the sandbox (contract, client, sync, end to end) starts it the
same way, over a real socket on a free loopback port:

    with running_sandbox(seed=7, now="2026-11-05T12:00:00Z") as base_url:
        ...

Keyword arguments are the serve command's options in snake_case (`calls_per_day=500`,
`fail_rate=0.2`, `live=True`); unset ones take the small defaults below. A list or tuple
repeats its option: `api_key=["a", "b"]` serves two accounts. The block gets the base
URL; the server is stopped (SIGTERM, then SIGKILL) when the block ends.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.errors import CdrError

# The key the sandbox accepts unless a test asks for another.
TEST_API_KEY = "sandbox-test-key"

DEFAULTS: dict[str, object] = {
    "host": "127.0.0.1",
    "port": 0,
    "seed": 1,
    "start": "2026-10-01",
    "calls_per_day": 200,
    "messages_per_day": 100,
    "api_key": TEST_API_KEY,
}
# Start-up imports polars and numpy; on a loaded 2-core machine that can take a while.
READY_TIMEOUT_SECS = 60.0
STOP_TIMEOUT_SECS = 10.0


def serve_command(**params: object) -> list[str]:
    """Serve options (snake_case keywords) -> the argv of `cdr sandbox serve`."""
    options = {**DEFAULTS, **params}
    script = Path(sys.executable).with_name("cdr")
    argv = [str(script)] if script.exists() else [sys.executable, "-c", "from cdr_app.cli import main; main()"]
    argv += ["sandbox", "serve"]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, list | tuple):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv


@contextmanager
def running_sandbox(**params: object) -> Iterator[str]:
    """Start `cdr sandbox serve` on a free port, yield its base URL, and stop it afterwards."""
    argv = serve_command(**params)
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            url = _ready_line(process, errors)
            yield url
        finally:
            _stop(process)


def _ready_line(process: subprocess.Popen[bytes], errors: object) -> str:
    """Wait for the server's one line (its base URL); CdrError with its stderr if it fails."""
    assert process.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT_SECS
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CdrError(f"sandbox did not report ready within {READY_TIMEOUT_SECS:.0f}s{_stderr(errors)}")
            if selector.select(timeout=min(remaining, 0.5)):
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    process.wait(timeout=STOP_TIMEOUT_SECS)
                    raise CdrError(f"sandbox exited with status {process.returncode} before it was ready{_stderr(errors)}")
                buffer += chunk
    line = buffer.split(b"\n", 1)[0].decode().strip()
    if not line.startswith("http://"):
        raise CdrError(f"sandbox printed {line!r} instead of its base URL{_stderr(errors)}")
    return line


def _stderr(errors: object) -> str:
    """The tail of the server's stderr, for error messages."""
    try:
        errors.seek(0)  # type: ignore[attr-defined]
        text = errors.read().decode("utf-8", "replace").strip()  # type: ignore[attr-defined]
    except (OSError, ValueError):
        return ""
    return f": {text[-2000:]}" if text else ""


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the server does not stop in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
