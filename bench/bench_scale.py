"""Benchmark: the sync past one machine, side by side: local disk against an S3 server, in-process
against a 2-worker Dask cluster.

One sandbox serves one week; each contender syncs it into a fresh data dir through the sync flow
(what `cdr sync` runs) in a child process of its own, in rotating order, with one Prefect API
for all of them (started once here, so no contender pays for Prefect's start-up). The S3 server is
SeaweedFS on loopback (the one the tests use). A sampler follows each child's process tree, so the
peak RSS of the sync's own process and of each Dask worker is known apart.

    .venv/bin/python -m bench.bench_scale [--calls-per-day 20000] [--messages-per-day 10000]
        [--days 7] [--rounds 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psutil

from bench.bench_accounts import add_child_arguments
from bench.bench_sandbox import machine
from pipelines.dates import format_utc
from sandbox.testing import running_sandbox
from tests.s3_server import S3_BUCKET, running_s3_server, s3_environment

UTC = timezone.utc
ROOT = Path(__file__).resolve().parent.parent
START = date(2026, 10, 5)
KEY = "bench-scale-key-0001"
# (storage, task runner) in the order of the first round.
CONTENDERS = (("disk", "thread"), ("s3", "thread"), ("disk", "dask"), ("s3", "dask"))


def _child(args: argparse.Namespace) -> None:
    """Sync the window into the data dir through the sync flow; print its figures as JSON."""
    from pipelines.flows.sync import sync_flow

    cpu = time.process_time()
    started = time.perf_counter()
    result = asyncio.run(sync_flow(start=args.window_start, end=args.window_end, now=args.now, data_dir=args.data_dir))
    print(json.dumps({
        "records": result["records"], "seconds": time.perf_counter() - started,
        "sync_seconds": result["duration_secs"], "cpu_seconds": time.process_time() - cpu,
        "task_runner": result.get("task_runner"),
    }))


class _TreePeaks:
    """Samples a process and its descendants: each one's peak RSS (MiB), until stopped."""

    def __init__(self, pid: int) -> None:
        self.root = pid
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.root)
                for process in [root, *root.children(recursive=True)]:
                    try:
                        rss = process.memory_info().rss / 2**20
                    except psutil.Error:
                        continue
                    self.peaks[process.pid] = max(self.peaks.get(process.pid, 0.0), rss)
            except psutil.Error:
                pass
            self._stop.wait(0.1)

    def stop(self) -> tuple[float, float]:
        """-> (the root's peak, the largest descendant's peak; 0 without one)."""
        self._stop.set()
        self._thread.join()
        others = [peak for pid, peak in self.peaks.items() if pid != self.root]
        return self.peaks.get(self.root, 0.0), max(others, default=0.0)


def _measure(storage: str, runner: str, env: dict[str, str], window: tuple[str, str, str], work: Path,
             workers: int) -> dict[str, object]:
    data_dir = str(work / uuid.uuid4().hex[:12]) if storage == "disk" else f"s3://{S3_BUCKET}/{uuid.uuid4().hex[:12]}"
    start, end, now = window
    child_env = {**env, "CDR_TASK_RUNNER": runner, "CDR_DASK_WORKERS": str(workers),
                 "XDG_CACHE_HOME": str(work / "cache")}
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_scale", "--child", "--data-dir", data_dir,
         "--window-start", start, "--window-end", end, "--now", now],
        env=child_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    peaks = _TreePeaks(process.pid)
    out, err = process.communicate()
    own, worker = peaks.stop()
    if process.returncode != 0:
        raise SystemExit(f"{storage}/{runner} sync failed (exit {process.returncode}): {err.strip()[-2000:]}")
    figures = json.loads(out.strip().splitlines()[-1])
    figures.update(storage=storage, runner=runner, rss_mib=own, worker_rss_mib=worker, load=os.getloadavg()[0])
    return figures


def _prefect_api(home: Path) -> tuple[object, str]:
    """One Prefect API server for every child (so none pays for an ephemeral one), its database in
    `home` (never the user's own) -> (server, its URL)."""
    os.environ.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start(timeout=300)
    return server, server.api_url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls-per-day", type=int, default=20_000)
    parser.add_argument("--messages-per-day", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    add_child_arguments(parser)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return
    begin = datetime(START.year, START.month, START.day, tzinfo=UTC)
    end = begin + timedelta(days=args.days)
    window = (format_utc(begin), format_utc(end), format_utc(end + timedelta(hours=1)))
    print(f"machine: {machine()}")
    print(f"{args.days} days from {START}: {args.calls_per_day:,} calls + {args.messages_per_day:,} messages a day; "
          f"Dask: a local cluster of {args.workers} worker processes")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        server, api_url = _prefect_api(Path(scratch) / "prefect")
        try:
            runs = _rounds(args, window, Path(scratch), api_url)
        finally:
            server.stop()
    _table(runs)


def _rounds(args: argparse.Namespace, window: tuple[str, str, str], work: Path,
            api_url: str) -> dict[tuple[str, str], list[dict[str, object]]]:
    """Every contender's syncs, round by round in rotating order."""
    with running_s3_server(work / "s3") as s3_url, running_sandbox(
        start=START.isoformat(), now=window[2], seed=7, api_key=[KEY],
        calls_per_day=args.calls_per_day, messages_per_day=args.messages_per_day,
    ) as base_url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CDR_", "OPENTACT_", "AWS_", "PREFECT_"))},
            **s3_environment(s3_url), "OPENTACT_API_KEY": KEY, "OPENTACT_BASE_URL": base_url,
            "PREFECT_API_URL": api_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
        }
        # untimed: the sandbox fills its cache and the S3 server its first volume
        _measure("s3", "thread", env, window, work, args.workers)
        runs: dict[tuple[str, str], list[dict[str, object]]] = {c: [] for c in CONTENDERS}
        for number in range(args.rounds):
            shift = number % len(CONTENDERS)
            for storage, runner in CONTENDERS[shift:] + CONTENDERS[:shift]:
                runs[(storage, runner)].append(_measure(storage, runner, env, window, work, args.workers))
            print(f"round {number + 1}: " + "; ".join(
                f"{s}/{r} {f[-1]['seconds']:.2f}s (sync {f[-1]['sync_seconds']:.2f}s, "
                f"{f[-1]['rss_mib']:,.0f} MiB, workers {_mib(float(f[-1]['worker_rss_mib']))}, load {f[-1]['load']:.1f})"
                for (s, r), f in runs.items() if f
            ), flush=True)
    return runs


def _table(runs: dict[tuple[str, str], list[dict[str, object]]]) -> None:
    records = {int(f["records"]) for figures in runs.values() for f in figures}
    if len(records) != 1:
        raise SystemExit(f"the contenders synced different record counts: {sorted(records)}")
    base = runs[CONTENDERS[0]]
    print(f"records per sync: {records.pop():,}")
    print("| storage / task runner | flow seconds (median) | sync's own seconds | records/s | x disk, in-process | "
          "peak RSS, sync process | peak RSS, largest worker |")
    print("|---|---|---|---|---|---|---|")
    for (storage, runner), figures in runs.items():
        seconds = statistics.median(float(f["seconds"]) for f in figures)
        sync_seconds = statistics.median(float(f["sync_seconds"]) for f in figures)
        ratio = statistics.median(float(f["seconds"]) / float(b["seconds"]) for f, b in zip(figures, base))
        rate = statistics.median(int(f["records"]) / float(f["sync_seconds"]) for f in figures)
        print(f"| {storage} / {runner} | {seconds:.2f} | {sync_seconds:.2f} | {rate:,.0f} | {ratio:.2f}x | "
              f"{max(float(f['rss_mib']) for f in figures):,.0f} MiB | "
              f"{_mib(max(float(f['worker_rss_mib']) for f in figures))} |")


def _mib(value: float) -> str:
    return f"{value:,.0f} MiB" if value else "none"


if __name__ == "__main__":
    main()
