"""Benchmark: the API client reading a 1M-record month from the sandbox, against a bare loop.

Starts `cdr sandbox serve` on a month of ~1M call records (clock pinned after the month),
warms its cache with one untimed pass, then, for each concurrency asked for, side by side:

  - client: `OpentactClient.read_window("cdrs", month)` at that concurrency, every page
    decoded, validated into a lake-typed polars frame and dropped;
  - previous: the same read with the page validation (`pipelines/opentact/records.py`) of an
    earlier git revision (`--baseline REV`, default HEAD: the uncommitted change against the last
    commit), so before and after are measured side by side under the same load (skipped when
    the file is the same at REV; `--no-previous` skips it always);
  - bare:   the very same requests (recorded from the client run), replayed over raw
    keep-alive HTTP/1.1 sockets by as many threads, each body read and discarded — the
    sandbox's raw serving rate as this machine can reach it;
  - httpx:  the same requests again through httpx at that concurrency, bodies discarded —
    what the transport alone costs, so the rest is the client's own work.

The ratio client/bare says how much of the ceiling the client keeps; client/httpx how much of
what the same HTTP stack alone reaches (target >= 0.8). The client's resident memory is
sampled at each slice end: it must stay flat over the month. The machine is shared and noisy:
`--repeat` runs every pass of every level again, and CPU seconds per page are the steadier
figure. Run:

    .venv/bin/python -m bench.bench_client [--days 30] [--calls-per-day 33334] [--concurrency 1,2,4,8] [--repeat 1]
        [--baseline REV | --no-previous]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType

import httpx
from pydantic import SecretStr

from bench.bench_sandbox import Connection, machine
from pipelines.dates import Window, format_utc
from pipelines.opentact import client as client_module
from pipelines.opentact.client import ClientConfig, OpentactClient
from sandbox.testing import TEST_API_KEY, running_sandbox

UTC = timezone.utc
ROOT = Path(__file__).resolve().parent.parent
RECORDS = "pipelines/opentact/records.py"


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests to a pooled transport and keeps each request target (path + query)."""

    def __init__(self, concurrency: int) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.inner = httpx.AsyncHTTPTransport(limits=limits)
        self.targets: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.targets.append(request.url.raw_path.decode())
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class ClientRun:
    """One client pass: records, seconds, the requests it made, RSS (MiB) at each slice end."""

    records: int
    rejects: int
    seconds: float
    cpu_seconds: float
    targets: list[str]
    rss_mib: list[float]

    @property
    def rate(self) -> float:
        return self.records / self.seconds


def records_at(revision: str) -> ModuleType | None:
    """pipelines/opentact/records.py as of a git revision, imported on its own; None if the same as the working tree."""
    shown = subprocess.run(["git", "show", f"{revision}:{RECORDS}"], cwd=ROOT, capture_output=True, check=False)
    if shown.returncode != 0:
        raise SystemExit(f"--baseline {revision}: {shown.stderr.decode().strip()}")
    if shown.stdout == (ROOT / RECORDS).read_bytes():
        return None
    with tempfile.TemporaryDirectory(prefix="bench-client-") as folder:
        path = Path(folder) / "records_baseline.py"
        path.write_bytes(shown.stdout)
        spec = importlib.util.spec_from_file_location("records_baseline", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
        spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def previous_read_path(records: ModuleType) -> Iterator[None]:
    """The client validating its pages with another version of the records module."""
    current = client_module.validate_records
    client_module.validate_records = records.validate_records
    try:
        yield
    finally:
        client_module.validate_records = current


def rss_mib() -> float:
    """This process's resident memory in MiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def client_pass(base_url: str, window: Window, concurrency: int) -> ClientRun:
    """Read the window with the client, dropping every page once counted."""
    transport = RecordingTransport(concurrency)
    config = ClientConfig(base_url=base_url, api_key=SecretStr(TEST_API_KEY), concurrency=concurrency)
    records = rejects = 0
    memory = []
    started, cpu = time.perf_counter(), time.process_time()
    async with OpentactClient(config, transport=transport) as client:
        async for page in client.read_window("cdrs", window, now=window.end + timedelta(hours=1)):
            records += page.frame.height
            rejects += len(page.rejects)
            if page.last:
                memory.append(rss_mib())
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return ClientRun(records, rejects, seconds, cpu, transport.targets, memory)


def bare_pass(base_url: str, targets: list[str], concurrency: int) -> tuple[int, float]:
    """Fetch the targets with `concurrency` raw keep-alive connections, bodies discarded -> (bytes, seconds)."""
    received = [0] * concurrency
    barrier = threading.Barrier(concurrency + 1)

    def work(offset: int) -> None:
        connection = Connection(base_url)
        barrier.wait()
        try:
            for target in targets[offset::concurrency]:
                received[offset] += len(connection.get(target))
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(concurrency)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return sum(received), time.perf_counter() - started


async def httpx_pass(base_url: str, targets: list[str], concurrency: int) -> tuple[float, float]:
    """Fetch the targets with httpx (the client's own HTTP stack), bodies discarded -> (seconds, CPU seconds)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    async with httpx.AsyncClient(base_url=base_url, limits=limits, headers=headers, timeout=60) as http:

        async def work(offset: int) -> None:
            for target in targets[offset::concurrency]:
                (await http.get(target)).raise_for_status()

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(work(k) for k in range(concurrency)))
        return time.perf_counter() - started, time.process_time() - cpu


def describe(run: ClientRun) -> str:
    """A client pass -> its rate, wall and CPU seconds, CPU per page, and memory, in one phrase."""
    pages = len(run.targets)
    return (
        f"{run.rate:,.0f} records/s ({run.seconds:.1f}s, CPU {run.cpu_seconds:.1f}s = "
        f"{run.cpu_seconds / pages * 1e3:.2f} ms a request, {run.records / run.cpu_seconds:,.0f} records per CPU-second, "
        f"{pages} requests, {run.rejects} rejects, RSS first/last slice {run.rss_mib[0]:.0f}/{run.rss_mib[-1]:.0f} MiB "
        f"(max {max(run.rss_mib):.0f}))"
    )


def main() -> None:
    """Parse the options, run client and bare passes per concurrency, print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls-per-day", type=int, default=33334)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 11, 1))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", default="1,2,4,8", help="comma-separated levels to compare")
    parser.add_argument("--repeat", type=int, default=1, help="run every level's passes this many times")
    parser.add_argument(
        "--no-previous", dest="previous", action="store_false", help="skip the pass of the previous read path"
    )
    parser.add_argument(
        "--baseline", metavar="REV", default="HEAD", help=f"the previous read path: {RECORDS} at this git revision"
    )
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]
    baseline = records_at(args.baseline) if args.previous else None
    if args.previous and baseline is None:
        print(f"previous read path skipped: {RECORDS} is the same at {args.baseline} as in the working tree")

    start = datetime(args.start.year, args.start.month, args.start.day, tzinfo=UTC)
    window = Window(start, start + timedelta(days=args.days))
    print(f"machine: {machine()}")
    print(f"window: {window}, {args.calls_per_day} calls/day")
    with running_sandbox(
        seed=args.seed, start=args.start.isoformat(), calls_per_day=args.calls_per_day, messages_per_day=100,
        now=format_utc(window.end + timedelta(hours=1)),
    ) as base_url:
        warm = asyncio.run(client_pass(base_url, window, max(levels)))
        print(f"warm-up pass: {warm.records:,} records, {len(warm.targets)} requests, {warm.seconds:.1f}s")
        for repeat in range(args.repeat):
            for level in levels:
                previous = None
                # Every other repeat the previous read path goes first: load drifts over a run.
                if baseline is not None and repeat % 2:
                    with previous_read_path(baseline):
                        previous = asyncio.run(client_pass(base_url, window, level))
                run = asyncio.run(client_pass(base_url, window, level))
                if baseline is not None and not repeat % 2:
                    with previous_read_path(baseline):
                        previous = asyncio.run(client_pass(base_url, window, level))
                size, seconds = bare_pass(base_url, run.targets, level)
                bare_rate = run.records / seconds
                httpx_seconds, httpx_cpu = asyncio.run(httpx_pass(base_url, run.targets, level))
                httpx_rate = run.records / httpx_seconds
                before = (
                    f"previous read path ({RECORDS} at {args.baseline}) {describe(previous)}; " if previous is not None else ""
                )
                print(
                    f"concurrency {level}: client {describe(run)}; {before}"
                    f"bare sockets {bare_rate:,.0f} records/s ({seconds:.1f}s, {size / 2**20:,.0f} MiB); "
                    f"bare httpx {httpx_rate:,.0f} records/s (CPU {httpx_cpu:.1f}s = "
                    f"{httpx_cpu / len(run.targets) * 1e3:.2f} ms a request); "
                    f"ratio client/bare {run.rate / bare_rate:.2f}, client/httpx {run.rate / httpx_rate:.2f}"
                    + (
                        f", previous/bare {previous.rate / bare_rate:.2f}, previous/httpx {previous.rate / httpx_rate:.2f}, "
                        f"client/previous {run.rate / previous.rate:.2f} (CPU {previous.cpu_seconds / run.cpu_seconds:.2f}x less)"
                        if previous is not None
                        else ""
                    )
                )


if __name__ == "__main__":
    main()
