"""Benchmark: how fast the sandbox serves a 1M-record month at page[size]=250.

Starts `cdr sandbox serve` (a subprocess, like every client of it) on a month of ~1M call
records with the clock pinned after the month, then pages the whole month oldest first,
the way the sync does (created_at window, sort created_at then id), with bare clients
that fetch pages over keep-alive connections and discard the bytes:

  - one client: every page in order;
  - eight concurrent clients: the pages dealt round-robin, so all eight move through the
    month together and the first and last pages are served under the same load.

For each run: records/s overall and over the first and the last 10% of pages (flatness),
plus the first, cold page (it counts every day of the month). Run:

    .venv/bin/python -m bench.bench_sandbox [--calls-per-day 33334] [--days 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlencode, urlsplit

from pipelines.dates import Window, format_utc
from pipelines.opentact.api import listing_params
from sandbox.testing import TEST_API_KEY, running_sandbox

UTC = timezone.utc
PATH = "/v2/reports/cdrs"
PAGE_SIZE = 250


class Connection:
    """A bare HTTP/1.1 keep-alive client: one GET at a time, the body returned as bytes."""

    def __init__(self, base_url: str) -> None:
        address = urlsplit(base_url)
        self.host = address.netloc
        self.sock = socket.create_connection((address.hostname, address.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def get(self, target: str) -> bytes:
        """GET a target; raises if the status is not 200."""
        self.sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {TEST_API_KEY}\r\n\r\n".encode()
        )
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        chunks = [rest]
        have = len(rest)
        while have < length:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection mid-body")
            chunks.append(chunk)
            have += len(chunk)
        body = b"".join(chunks)
        self.buffer = body[length:]
        if status != b"200":
            raise RuntimeError(f"GET {target} -> {status.decode()}: {body[:300]!r}")
        return body[:length]

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def page_target(window: Window, number: int) -> str:
    """The request the sync sends for one page of a window."""
    return f"{PATH}?{urlencode(listing_params(window, number, PAGE_SIZE))}"


@dataclass
class Run:
    """Per-page (request sent, response read) times of one run."""

    started: float
    pages: dict[int, tuple[float, float]]
    records: int

    def rate(self) -> float:
        """Records per second over the whole run."""
        return self.records / (max(end for _, end in self.pages.values()) - self.started)

    def slice_rate(self, first: int, last: int) -> float:
        """Records/s over pages first..last: their count over the span they were in flight."""
        spans = [self.pages[n] for n in range(first, last + 1)]
        return (last - first + 1) * PAGE_SIZE / (max(e for _, e in spans) - min(s for s, _ in spans))

    def median_latency(self) -> float:
        """The median time from sending a request to reading its whole response."""
        return statistics.median(end - begin for begin, end in self.pages.values())


def run_clients(base_url: str, window: Window, pages: int, total: int, clients: int) -> Run:
    """Fetch every page with `clients` concurrent connections, pages dealt round-robin."""
    finished: dict[int, tuple[float, float]] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def work(offset: int) -> None:
        connection = Connection(base_url)
        barrier.wait()
        try:
            for number in range(1 + offset, pages + 1, clients):
                begin = time.perf_counter()
                connection.get(page_target(window, number))
                with lock:
                    finished[number] = (begin, time.perf_counter())
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    if len(finished) != pages:
        raise RuntimeError(f"only {len(finished)} of {pages} pages were fetched")
    return Run(started, finished, total)


def decile_rates(run: Run, pages: int) -> tuple[float, float]:
    """Records/s over the first and the last 10% of full pages (by page number)."""
    tenth = max(1, pages // 10)
    # The very last page may be short; the slices compare full pages only.
    return run.slice_rate(1, tenth), run.slice_rate(pages - tenth, pages - 1)


def machine() -> str:
    """nproc, CPU model and RAM of this machine."""
    model = "unknown CPU"
    memory = "? GiB"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
        with open("/proc/meminfo") as meminfo:
            kib = int(next(line.split()[1] for line in meminfo if line.startswith("MemTotal")))
            memory = f"{kib / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        pass
    return f"nproc={os.cpu_count()}, {model}, {memory} RAM, Python {platform.python_version()}"


def main() -> None:
    """Parse the options, run both benchmarks, print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls-per-day", type=int, default=33334)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 11, 1))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    start = datetime(args.start.year, args.start.month, args.start.day, tzinfo=UTC)
    window = Window(start, start + timedelta(days=args.days))
    print(f"machine: {machine()}")
    with running_sandbox(
        seed=args.seed, start=args.start.isoformat(), calls_per_day=args.calls_per_day, messages_per_day=100,
        now=format_utc(window.end),
    ) as base_url:
        connection = Connection(base_url)
        cold = time.perf_counter()
        first = connection.get(page_target(window, 1))
        cold = time.perf_counter() - cold
        total = int(first.rsplit(b'"total_results":', 1)[1].rstrip(b"}"))
        pages = -(-total // PAGE_SIZE)
        warm = time.perf_counter()
        connection.get(page_target(window, pages))
        warm = time.perf_counter() - warm
        connection.close()
        print(f"month: {total} records, {pages} pages of {PAGE_SIZE}; cold first page {cold:.2f}s, warm last page {warm * 1000:.1f}ms")
        for clients in (1, args.clients):
            run = run_clients(base_url, window, pages, total, clients)
            head, tail = decile_rates(run, pages)
            print(
                f"{clients} client(s): {run.rate():,.0f} records/s; first 10% of pages {head:,.0f}/s, "
                f"last 10% {tail:,.0f}/s (last/first {tail / head:.2f}); median page latency "
                f"{run.median_latency() * 1000:.2f}ms"
            )


if __name__ == "__main__":
    main()
