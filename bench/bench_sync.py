"""Benchmark: the sync of a 1M-record month against the sandbox's serving ceiling and dlt.

In one run, against one sandbox (`cdr sandbox serve`: --calls-per-day 33334 over 30 days,
~1M call records, clock pinned an hour after the month, no faults):

  warm-up   the client reads the month once, untimed: it fills the sandbox's caches, and its
            requests are recorded; they are the sync's own (UTC-day slices, hour by hour).
  Then, side by side in each round:
  (a) bare      those requests replayed over raw keep-alive sockets (`bench.bench_client`'s
                bare pass) by as many threads as the sync keeps requests in flight, bodies
                discarded: the serving ceiling as this machine reaches it;
      client    `OpentactClient.read_window` alone, pages validated and dropped: what the
                sync's reader can do, so that the rest is the sync's own cost;
  (b) sync      the plain `pipelines.sync.sync()` (no Prefect) into a fresh data dir;
      cdr sync  the whole command `cdr sync --start --end --types cdrs --now --data-dir`,
                Prefect included: its sync rate (records / sync duration, as it prints them)
                and the wall time of the command, start-up included.
  (c) dlt       dlt's `rest_api` source (page_number paginator on page[number], page[size]
                250, the same filters and sort, its default parallelism) writing Parquet to a
                local filesystem destination, once (it is the slow one).

Then a second sandbox of the same daily volume over more days serves the peak-RSS ladder
(--rss-records): its caches hold at most 64 days, so its own memory stays bounded at 5M.
The ladder's 1M point is the plain sync of the rounds (same seed, start and daily volume:
the same records). Every measured run is a child process, so its CPU seconds and peak RSS
are its own. Each lake written is checked: as many records as the sandbox announced.

With `--baseline REV`, each round also runs the plain sync with pipelines/sync.py, land.py
and lake.py as they were at git revision REV (the rest of the tree as it is now), the two in
alternating order: before/after figures of the sync's own changes under the same load.

    .venv/bin/python -m bench.bench_sync [--rounds 2] [--rss-records 100000,5000000] [--no-dlt]
        [--no-cdr] [--baseline REV]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from bench.bench_sandbox import machine
from pipelines.dates import Window, format_utc, parse_datetime
from sandbox.testing import TEST_API_KEY, running_sandbox

UTC = timezone.utc
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
KIND = "cdrs"
# The files of the sync's own work, which --baseline takes from an earlier revision.
BASELINE_FILES = ("sync.py", "land.py", "lake.py")
_SYNCED = re.compile(r"synced ([0-9,]+) records in ([0-9,.]+) s")


@dataclass
class Measured:
    """One measured run: records, seconds of the work itself, wall seconds of the process, CPU, memory."""

    label: str
    records: int
    seconds: float
    wall: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mib: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Records per second of the work."""
        return self.records / self.seconds if self.seconds > 0 else 0.0


# --- children: each measured run in its own process --------------------------------------------


def _child_main(args: argparse.Namespace) -> None:
    """Run one measurement in this (child) process and print its figures as one JSON line."""
    window = Window(parse_datetime(args.window_start), parse_datetime(args.window_end))
    now = parse_datetime(args.now)
    cpu = time.process_time()
    if args.child == "read":
        figures = _read(window, args.record)
    elif args.child == "sync":
        figures = asyncio.run(_sync(window, now, args.data_dir))
    else:
        figures = _dlt(window, args.data_dir)
    figures["cpu_seconds"] = time.process_time() - cpu
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def _read(window: Window, record: Path | None) -> dict[str, object]:
    """The client alone, pages dropped (`bench.bench_client`'s pass), optionally recording its requests."""
    from bench.bench_client import client_pass
    from pipelines.settings import load_settings

    # The pass freezes the window at its end plus an hour: the sandbox's clock, as --now gives it.
    run = asyncio.run(client_pass(os.environ["OPENTACT_BASE_URL"], window, load_settings().opentact_concurrency))
    if record is not None:
        record.write_text("\n".join(run.targets) + "\n")
    return {"records": run.records + run.rejects, "seconds": run.seconds, "requests": len(run.targets)}


async def _sync(window: Window, now: datetime, data_dir: Path) -> dict[str, object]:
    """The plain sync (no Prefect) of one window into a data dir, as `cdr sync` configures it."""
    from pipelines.opentact.client import ClientConfig, OpentactClient
    from pipelines.settings import load_settings
    from pipelines.sync import sync

    settings = load_settings(data_dir=data_dir)
    async with OpentactClient(ClientConfig.from_settings(settings)) as client:
        report = await sync([KIND], window, settings, client, now, run_id="bench-sync")
    if not report.ok:
        raise SystemExit(f"sync failed: {report.failures}")
    return {"records": report.records, "seconds": report.duration_secs}


def _dlt(window: Window, data_dir: Path) -> dict[str, object]:
    """dlt's rest_api source reading the window into Parquet files under data_dir."""
    # No telemetry (it would leave the machine), and dlt's own files inside the data dir.
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ["DLT_DATA_DIR"] = str(data_dir / "dlt-home")
    import dlt
    import requests
    from dlt.sources.rest_api import rest_api_source

    from pipelines.opentact import api

    urls: list[str] = []
    send = requests.Session.send

    def counted(self: requests.Session, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
        urls.append(str(request.url))
        return send(self, request, **kwargs)

    requests.Session.send = counted  # type: ignore[method-assign]
    params: dict[str, object] = {
        f"filter[{api.CREATED_AT}][gte]": format_utc(window.start),
        f"filter[{api.CREATED_AT}][lt]": format_utc(window.end),
        "sort[]": list(api.LISTING_SORT),
        "page[size]": api.MAX_PAGE_SIZE,
    }
    source = rest_api_source({
        "client": {
            "base_url": os.environ["OPENTACT_BASE_URL"],
            "auth": {"type": "bearer", "token": os.environ["OPENTACT_API_KEY"]},
            "paginator": {
                "type": "page_number", "base_page": 1, "page_param": "page[number]", "total_path": "meta.total_pages",
            },
        },
        "resources": [{"name": KIND, "endpoint": {"path": api.PATHS[KIND], "params": params, "data_selector": "data"}}],
    })
    pipeline = dlt.pipeline(
        pipeline_name="bench_sync_dlt",
        destination=dlt.destinations.filesystem(bucket_url=(data_dir / "lake").as_uri()),
        dataset_name="opentact",
        pipelines_dir=str(data_dir / "dlt-pipelines"),
    )
    started = time.perf_counter()
    pipeline.run(source, loader_file_format="parquet")
    seconds = time.perf_counter() - started
    trace = pipeline.last_trace
    steps = {s.step: (s.finished_at - s.started_at).total_seconds() for s in trace.steps if s.finished_at}
    rows = trace.last_normalize_info.row_counts
    return {
        "records": rows.get(KIND, 0), "seconds": seconds, "steps": steps, "requests": len(urls),
        "first_request": urls[0] if urls else "", "tables": rows,
    }


# --- the parent: sandboxes, children, figures ---------------------------------------------------


class Children:
    """Starts measured child processes against one sandbox; the env carries its URL and key."""

    def __init__(self, base_url: str, now: datetime, prefect_home: Path, code: Path = ROOT) -> None:
        self.now = now
        self.code = code
        self.env = {
            **os.environ,
            "PYTHONPATH": str(code),
            "OPENTACT_BASE_URL": base_url,
            "OPENTACT_API_KEY": TEST_API_KEY,
            "PREFECT_HOME": str(prefect_home),
            "PYTHONUNBUFFERED": "1",
        }
        for name in [n for n in self.env if n.startswith("CDR_")]:
            del self.env[name]

    def child(self, mode: str, window: Window, data_dir: Path, label: str, record: Path | None = None) -> Measured:
        """Run `python -m bench.bench_sync --child MODE` -> its figures (wall, CPU and RSS of the child)."""
        argv = [
            sys.executable, "-m", "bench.bench_sync", "--child", mode, "--window-start", format_utc(window.start),
            "--window-end", format_utc(window.end), "--now", format_utc(self.now), "--data-dir", str(data_dir),
        ]
        if record is not None:
            argv += ["--record", str(record)]
        ran = _run(argv, self.env, self.code)
        figures = json.loads(ran.out.strip().splitlines()[-1])
        return Measured(
            label, int(figures.pop("records")), float(figures.pop("seconds")), wall=ran.wall,
            cpu_seconds=float(figures.pop("cpu_seconds")), peak_rss_mib=float(figures.pop("peak_rss_mib")),
            load=ran.load, extra={**figures, "process_cpu_seconds": ran.tree_cpu},
        )

    def cdr_sync(self, window: Window, data_dir: Path, label: str) -> Measured:
        """The `cdr sync` command, Prefect included -> its printed sync rate, its wall time and memory."""
        argv = [
            str(Path(sys.executable).with_name("cdr")), "sync", "--start", format_utc(window.start),
            "--end", format_utc(window.end), "--types", KIND, "--now", format_utc(self.now), "--data-dir", str(data_dir),
        ]
        ran = _run(argv, self.env, self.code)
        found = _SYNCED.search(ran.out)
        if found is None:
            raise RuntimeError(f"cdr sync printed no 'synced N records in S s' line: {ran.out[-500:]!r}")
        records, seconds = int(found.group(1).replace(",", "")), float(found.group(2).replace(",", ""))
        return Measured(
            label, records, seconds, wall=ran.wall, cpu_seconds=ran.own_cpu, peak_rss_mib=ran.own_peak_mib,
            load=ran.load, extra={"tree_peak_rss_mib": ran.tree_peak_mib, "tree_cpu_seconds": ran.tree_cpu},
        )


@dataclass(frozen=True)
class Ran:
    """A finished child: its stdout, wall seconds, CPU seconds and peak RSS (its own, and with its children's)."""

    out: str
    wall: float
    tree_cpu: float
    own_cpu: float
    own_peak_mib: float
    tree_peak_mib: float
    load: tuple[float, float]


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> Ran:
    """Run a child to its end -> what it printed and what it used (load average before and after)."""
    before = os.getloadavg()[0]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        watcher = _OwnUsage(process.pid)
        # wait4: this child's own rusage (and its reaped children's), not every child's of ours.
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        own_peak, own_cpu = watcher.stop()
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(), err.read().decode("utf-8", "replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:5])} ... exited {process.returncode}: {errors[-2000:]}")
    tree_peak = usage.ru_maxrss / 1024
    return Ran(
        text, wall, usage.ru_utime + usage.ru_stime, own_cpu, own_peak or tree_peak, tree_peak, (before, os.getloadavg()[0])
    )


class _OwnUsage:
    """Polls a process's own high-water RSS (VmHWM) and CPU time until stopped: its children's are not in them."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self.cpu = 0.0
        self._tick = os.sysconf("SC_CLK_TCK")
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._done.wait(0.1):
            try:
                with open(f"/proc/{self.pid}/status") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            self.peak = max(self.peak, int(line.split()[1]) / 1024)
                with open(f"/proc/{self.pid}/stat") as stat:
                    # Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
                    fields = stat.read().rsplit(")", 1)[1].split()
                self.cpu = max(self.cpu, (int(fields[11]) + int(fields[12])) / self._tick)
            except (OSError, ValueError, IndexError):
                return

    def stop(self) -> tuple[float, float]:
        """Stop polling -> the last (high-water RSS MiB, CPU seconds) seen (0 if never read)."""
        self._done.set()
        self._thread.join()
        return self.peak, self.cpu


def lake_records(data_dir: Path, pattern: str) -> int:
    """Rows in the Parquet files under data_dir matching a glob."""
    import polars as pl

    files = sorted(data_dir.glob(pattern))
    return int(pl.scan_parquet(files).select(pl.len()).collect().item()) if files else 0


def _checked(run: Measured, expected: int, data_dir: Path, pattern: str) -> Measured:
    landed = lake_records(data_dir, pattern)
    if run.records != expected or landed != expected:
        raise RuntimeError(f"{run.label}: {run.records} records read, {landed} landed, {expected} expected")
    return run


def month(start: date, days: int) -> Window:
    """The first day and a number of days -> the UTC window."""
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    return Window(first, first + timedelta(days=days))


def baseline_tree(revision: str, work: Path) -> Path:
    """A copy of today's pipelines/ with the sync's own files as of a git revision, beside bench/ and sandbox/."""
    tree = work / "baseline"
    shutil.copytree(ROOT / "pipelines", tree / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    for name in BASELINE_FILES:
        shown = subprocess.run(
            ["git", "show", f"{revision}:pipelines/{name}"], cwd=ROOT, capture_output=True, check=False,
        )
        if shown.returncode != 0:
            raise SystemExit(f"--baseline {revision}: {shown.stderr.decode().strip()}")
        (tree / "pipelines" / name).write_bytes(shown.stdout)
    differ = [n for n in BASELINE_FILES if (tree / "pipelines" / n).read_bytes() != (ROOT / "pipelines" / n).read_bytes()]
    _say(f"baseline {revision}: {', '.join(differ) or 'no file'} differ(s) from the working tree")
    for package in ("bench", "sandbox"):
        (tree / package).symlink_to(ROOT / package, target_is_directory=True)
    return tree


def measure_month(args: argparse.Namespace, work: Path) -> dict[str, list[Measured]]:
    """Warm-up, then per round bare / client / sync (/ baseline) / cdr sync side by side, then dlt once."""
    from bench.bench_client import bare_pass
    from pipelines.settings import load_settings

    window = month(args.start, args.days)
    now = window.end + timedelta(hours=1)
    concurrency = load_settings().opentact_concurrency
    runs: dict[str, list[Measured]] = {
        name: [] for name in ("warm-up", "prime", "bare", "client", "sync", "baseline", "cdr sync", "dlt")
    }
    baseline = baseline_tree(args.baseline, work) if args.baseline else None
    with running_sandbox(
        seed=args.seed, start=args.start.isoformat(), calls_per_day=args.calls_per_day, messages_per_day=100,
        now=format_utc(now),
    ) as base_url:
        children = Children(base_url, now, work / "prefect-home")
        targets_file = work / "targets.txt"
        warm = children.child("read", window, work, "warm-up", record=targets_file)
        total = warm.records
        targets = targets_file.read_text().split()
        runs["warm-up"].append(warm)
        _say(f"warm-up: {total:,} records, {len(targets):,} requests, {warm.seconds:.1f}s (sandbox caches filled)")
        if args.cdr:
            # Prefect creates its database on first use; a nightly run finds it there.
            with _fresh(work) as data_dir:
                first_hour = Window(window.start, window.start + timedelta(hours=1))
                runs["prime"].append(children.cdr_sync(first_hour, data_dir, "prime"))
                _say(f"Prefect home primed: `cdr sync` of one hour in {runs['prime'][0].wall:.1f}s wall")
        before = Children(base_url, now, work / "prefect-home", code=baseline) if baseline else None
        lake_files = f"lake/{KIND}/account=*/date=*/data.parquet"
        for number in range(1, args.rounds + 1):
            load = os.getloadavg()[0]
            size, seconds = bare_pass(base_url, targets, concurrency)
            runs["bare"].append(Measured("bare", total, seconds, wall=seconds, load=(load, os.getloadavg()[0]),
                                         extra={"mib": size / 2**20}))
            runs["client"].append(children.child("read", window, work, "client"))
            plain = [("sync", children)] + ([("baseline", before)] if before else [])
            for name, runner in plain if number % 2 else plain[::-1]:
                with _fresh(work) as data_dir:
                    runs[name].append(_checked(runner.child("sync", window, data_dir, name), total, data_dir, lake_files))
            if args.cdr:
                with _fresh(work) as data_dir:
                    runs["cdr sync"].append(_checked(children.cdr_sync(window, data_dir, "cdr sync"), total, data_dir,
                                                     lake_files))
            _say(f"round {number}: " + "; ".join(
                _line(runs[name][-1]) for name in ("bare", "client", "sync", "baseline", "cdr sync") if len(runs[name]) == number
            ))
        if args.dlt:
            with _fresh(work) as data_dir:
                dlt_run = children.child("dlt", window, data_dir, "dlt")
                runs["dlt"].append(_checked(dlt_run, total, data_dir, f"lake/opentact/{KIND}/*.parquet"))
            _say(f"dlt: {_line(dlt_run)}; steps {dlt_run.extra['steps']}; {dlt_run.extra['requests']} requests, "
                 f"first {dlt_run.extra['first_request']}")
    return runs


def measure_ladder(args: argparse.Namespace, work: Path) -> list[Measured]:
    """Peak RSS of the plain sync for each size in --rss-records, on a sandbox of enough days."""
    sizes = [n for n in args.rss_records if n != 0]
    if not sizes:
        return []
    days = {n: math.ceil(n / args.calls_per_day) for n in sizes}
    whole = month(args.start, max(days.values()))
    now = whole.end + timedelta(hours=1)
    runs = []
    with running_sandbox(
        seed=args.seed, start=args.start.isoformat(), calls_per_day=args.calls_per_day, messages_per_day=100,
        now=format_utc(now),
    ) as base_url:
        children = Children(base_url, now, work / "prefect-home")
        for n in sizes:
            window = month(args.start, days[n])
            with _fresh(work) as data_dir:
                run = children.child("sync", window, data_dir, f"sync {days[n]} days")
                landed = lake_records(data_dir, f"lake/{KIND}/account=*/date=*/data.parquet")
            if landed != run.records:
                raise RuntimeError(f"{run.label}: {run.records} records read, {landed} landed")
            run.extra["sandbox_rss_mib"] = _sandbox_rss_mib()
            runs.append(run)
            _say(f"ladder {days[n]} days: {_line(run)}; sandbox RSS {run.extra['sandbox_rss_mib']:,.0f} MiB")
    return runs


def _sandbox_rss_mib() -> float:
    """The resident memory of this process's children that serve the sandbox (MiB)."""
    total = 0.0
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"sandbox" in cmdline and b"serve" in cmdline:
                    total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
            except OSError:
                continue
    return total


class _fresh:
    """A fresh data dir under the work dir for one run, removed afterwards (a month is ~80 MB)."""

    def __init__(self, work: Path) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="run-", dir=work))

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _line(run: Measured) -> str:
    return (
        f"{run.label} {run.rate:,.0f}/s ({run.seconds:.1f}s, wall {run.wall:.1f}s, CPU {run.cpu_seconds:.1f}s, "
        f"peak RSS {run.peak_rss_mib:,.0f} MiB, load {run.load[0]:.1f}->{run.load[1]:.1f})"
    )


def _say(text: str) -> None:
    print(text, flush=True)


def _spread(values: Sequence[float]) -> str:
    low, high = min(values), max(values)
    return f"{high:,.0f}/s" if len(values) == 1 else f"{low:,.0f}-{high:,.0f}/s (spread {(high - low) / high:.0%})"


def summary(runs: dict[str, list[Measured]], ladder: list[Measured], baseline: str | None = None) -> list[str]:
    """The figures and ratios as markdown lines (a table of the rounds, then ratios and the RSS ladder)."""
    before = f"sync at {baseline}" if baseline else ""
    head = ["round", "bare (a)", "client alone", "sync (b)"] + ([before, "sync CPU s now / before"] if baseline else [])
    head += ["`cdr sync` rate", "`cdr sync` wall", "sync / bare", "cdr sync / bare", "load avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, (bare, client, plain) in enumerate(zip(runs["bare"], runs["client"], runs["sync"])):
        cells = [str(i + 1), f"{bare.rate:,.0f}/s", f"{client.rate:,.0f}/s", f"{plain.rate:,.0f}/s ({plain.seconds:.1f}s)"]
        if baseline:
            old = runs["baseline"][i]
            cells += [f"{old.rate:,.0f}/s ({old.seconds:.1f}s)", f"{plain.cpu_seconds:.1f} / {old.cpu_seconds:.1f}"]
        cdr = runs["cdr sync"][i] if i < len(runs["cdr sync"]) else None
        cells += [
            f"{cdr.rate:,.0f}/s ({cdr.seconds:.1f}s)" if cdr else "-",
            f"{cdr.wall:.1f}s ({cdr.records / cdr.wall:,.0f}/s)" if cdr else "-",
            f"{plain.rate / bare.rate:.2f}", f"{cdr.rate / bare.rate:.2f}" if cdr else "-",
            f"{bare.load[0]:.1f}-{(cdr or plain).load[1]:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    plain, cdr, client = runs["sync"], runs["cdr sync"], runs["client"]
    if baseline and runs["baseline"]:
        lines.append(
            f"- Before/after (plain sync, best of rounds): {max(r.rate for r in runs['baseline']):,.0f}/s at {baseline} -> "
            f"{max(r.rate for r in plain):,.0f}/s now; CPU {_per_million(runs['baseline'])} -> {_per_million(plain)} "
            f"per 1M records; peak RSS {max(r.peak_rss_mib for r in runs['baseline']):,.0f} -> "
            f"{max(r.peak_rss_mib for r in plain):,.0f} MiB."
        )
    if plain:
        lines.append(
            f"- CPU seconds per 1M records: client alone {_per_million(client)}, sync {_per_million(plain)}"
            + (f", `cdr sync` (its own process, Prefect's start-up included) {_per_million(cdr)}." if cdr else ".")
        )
        lines.append(
            f"- Noise: over rounds, sync {_spread([r.rate for r in plain])}, client alone "
            f"{_spread([r.rate for r in client])}, bare {_spread([r.rate for r in runs['bare']])}."
        )
    if plain and cdr:
        best_plain = min(plain, key=lambda r: r.seconds)
        best_cdr = min(cdr, key=lambda r: r.seconds)
        lines.append(
            f"- Best of rounds: sync {best_plain.rate:,.0f}/s, `cdr sync` {best_cdr.rate:,.0f}/s: Prefect adds "
            f"{best_cdr.seconds / best_plain.seconds - 1:+.0%} to the sync's duration; the whole command takes "
            f"{min(r.wall for r in cdr):.1f}s wall against {min(r.wall for r in plain):.1f}s for the plain sync's "
            f"process ({min(r.wall for r in cdr) / min(r.wall for r in plain) - 1:+.0%}, start-up included)."
        )
        own = min(r.cpu_seconds for r in cdr)
        server = min(float(r.extra["tree_cpu_seconds"]) - r.cpu_seconds for r in cdr)
        bare_process = min(float(r.extra["process_cpu_seconds"]) for r in plain)
        lines.append(
            f"- CPU of the whole process (start-up included, least of rounds): `cdr sync` {own:.1f}s, plus "
            f"{server:.1f}s in Prefect's server subprocess, against {bare_process:.1f}s for the plain sync's "
            f"process: Prefect costs {own + server - bare_process:.1f} CPU-seconds a run "
            f"({(own + server) / bare_process - 1:+.0%})."
        )
        lines.append(
            f"- Peak RSS: sync {max(r.peak_rss_mib for r in plain):,.0f} MiB; `cdr sync` process "
            f"{max(r.peak_rss_mib for r in cdr):,.0f} MiB (process tree, Prefect's server included: "
            f"{max(float(r.extra['tree_peak_rss_mib']) for r in cdr):,.0f} MiB)."
        )
    if runs["dlt"]:
        dlt_run = runs["dlt"][0]
        steps = ", ".join(f"{k} {v:.1f}s" for k, v in dlt_run.extra["steps"].items() if k != "run")  # type: ignore[union-attr]
        best = max(r.rate for r in plain) if plain else 0.0
        lines.append(
            f"- dlt (c): {dlt_run.rate:,.0f}/s ({dlt_run.seconds:.1f}s: {steps}; {dlt_run.extra['requests']} requests, "
            f"CPU {dlt_run.cpu_seconds:.1f}s, peak RSS {dlt_run.peak_rss_mib:,.0f} MiB); sync / dlt "
            f"{best / dlt_run.rate:.1f}x (best sync round)."
        )
    if ladder or plain:
        points = [(r.records, r.peak_rss_mib, r.rate) for r in ladder]
        if plain:
            points.append((plain[0].records, max(r.peak_rss_mib for r in plain), plain[0].rate))
        points.sort()
        lines.append("- Peak RSS of the sync by records: " + ", ".join(
            f"{n:,}: {rss:,.0f} MiB ({rate:,.0f}/s)" for n, rss, rate in points) + ".")
    return lines


def _per_million(runs: Sequence[Measured]) -> str:
    return "/".join(f"{r.cpu_seconds / r.records * 1e6:.0f}" for r in runs) + " s" if runs else "-"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line -> options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--calls-per-day", type=int, default=33334)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 11, 1))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="side-by-side rounds of bare / client / sync / cdr sync")
    parser.add_argument("--no-dlt", dest="dlt", action="store_false", help="skip dlt (c)")
    parser.add_argument("--no-cdr", dest="cdr", action="store_false", help="skip the `cdr sync` command (Prefect)")
    parser.add_argument("--baseline", metavar="REV", help="also run the plain sync with pipelines/{sync,land,lake}.py at REV")
    parser.add_argument(
        "--rss-records", type=lambda text: [int(float(n)) for n in text.split(",") if n], default=[100_000, 5_000_000],
        help="comma-separated sizes for the peak-RSS ladder (the month's sync is the 1M point); empty: none",
    )
    parser.add_argument("--child", choices=("read", "sync", "dlt"), help=argparse.SUPPRESS)
    parser.add_argument("--window-start", help=argparse.SUPPRESS)
    parser.add_argument("--window-end", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the month's measurements and the RSS ladder; print every figure and a markdown summary."""
    args = parse_args(argv)
    if args.child:
        _child_main(args)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    _say(f"machine: {machine()}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    _say(f"month: {args.days} days from {args.start} at {args.calls_per_day:,} calls/day; rounds {args.rounds}")
    with tempfile.TemporaryDirectory(prefix="bench-sync-", dir=OUT) as scratch:
        work = Path(scratch)
        runs = measure_month(args, work)
        ladder = measure_ladder(args, work)
    _say(f"\nsummary (whole bench {time.perf_counter() - started:.0f}s):")
    for line in summary(runs, ladder, args.baseline):
        _say(line)
    (OUT / "bench_sync.json").write_text(json.dumps(
        {name: [asdict(r) for r in measured] for name, measured in {**runs, "ladder": ladder}.items()}, indent=1
    ))


if __name__ == "__main__":
    main()
