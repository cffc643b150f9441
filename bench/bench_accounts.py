"""Benchmark: many small accounts against one account of the same total volume, synced side by side.

The reseller case of issue 16. Two sandboxes serve the same week: one with a single key whose
world makes --calls-per-day and --messages-per-day, one with --accounts keys whose worlds each
make 1/N of that (the i-th key's world is seeded seed + i). Each round syncs both, in
alternating order, each into a fresh data dir by `pipelines.sync.sync_accounts` (the code
`cdr sync --all-accounts` runs, without Prefect's start-up) in a child process of its own, so
its CPU seconds and peak RSS are its own. Each lake is checked: as many records as were synced.

    .venv/bin/python -m bench.bench_accounts [--accounts 200] [--calls-per-day 20000]
        [--messages-per-day 10000] [--days 7] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from bench.bench_sandbox import machine
from pipelines.dates import Window, format_utc, parse_datetime
from sandbox.testing import running_sandbox

UTC = timezone.utc
ROOT = Path(__file__).resolve().parent.parent
START = date(2026, 10, 5)


def _key(index: int) -> str:
    return f"bench-account-key-{index:04d}"


def _accounts_file(path: Path, count: int) -> dict[str, str]:
    """Write an accounts file of `count` accounts -> the variables holding their keys."""
    variables = {f"BENCH_KEY_{i:04d}": _key(i) for i in range(count)}
    path.write_text("".join(f'[accounts.a{i:04d}]\napi_key_env = "BENCH_KEY_{i:04d}"\n' for i in range(count)))
    return variables


def _child(args: argparse.Namespace) -> None:
    """Sync every account of CDR_ACCOUNTS_FILE over the window into the data dir; print the figures as JSON."""
    import duckdb

    from pipelines.accounts import load_accounts
    from pipelines.settings import load_settings
    from pipelines.sync import sync_accounts

    settings = load_settings(data_dir=args.data_dir)
    accounts = load_accounts(settings).accounts
    window = Window(parse_datetime(args.window_start), parse_datetime(args.window_end))
    cpu = time.process_time()
    report = asyncio.run(sync_accounts(
        ["cdrs", "mdrs"], window, settings, accounts, parse_datetime(args.now), run_id="bench-accounts",
    ))
    if not report.ok:
        raise SystemExit(f"sync failed: {report.failure_line()}")
    with duckdb.connect() as con:
        landed = sum(
            con.execute(f"select count(*) from read_parquet('{args.data_dir}/lake/{kind}/account=*/date=*/data.parquet')")
            .fetchone()[0]
            for kind in ("cdrs", "mdrs")
        )
    if landed != report.records:
        raise SystemExit(f"{report.records} records synced, {landed} landed")
    print(json.dumps({
        "accounts": len(accounts), "records": report.records, "seconds": report.duration_secs,
        "cpu_seconds": time.process_time() - cpu,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def _measure(label: str, base_url: str, accounts_file: Path, variables: dict[str, str], window: Window,
             now: datetime, work: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory(dir=work) as data_dir:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CDR_", "OPENTACT_"))},
            **variables, "CDR_ACCOUNTS_FILE": str(accounts_file), "OPENTACT_BASE_URL": base_url,
        }
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_accounts", "--child", "--data-dir", data_dir,
             "--window-start", format_utc(window.start), "--window-end", format_utc(window.end),
             "--now", format_utc(now)],
            env=env, cwd=ROOT, check=True, capture_output=True, text=True,
        )
        figures = json.loads(out.stdout.strip().splitlines()[-1])
    figures.update(label=label, wall=time.perf_counter() - started, load=os.getloadavg()[0])
    return figures


def add_child_arguments(parser: argparse.ArgumentParser) -> None:
    """The options a sync bench passes its child process: the data dir, the window and the clock."""
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--data-dir")
    parser.add_argument("--window-start")
    parser.add_argument("--window-end")
    parser.add_argument("--now")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--calls-per-day", type=int, default=20_000)
    parser.add_argument("--messages-per-day", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    add_child_arguments(parser)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return
    many = args.accounts
    start = datetime(START.year, START.month, START.day, tzinfo=UTC)
    window = Window(start, start + timedelta(days=args.days))
    now = window.end + timedelta(hours=1)
    print(f"machine: {machine()}")
    print(f"{args.days} days from {START}: 1 account of {args.calls_per_day:,} calls + {args.messages_per_day:,} "
          f"messages a day against {many} accounts of 1/{many} of that each")
    with tempfile.TemporaryDirectory(prefix="bench-accounts-") as scratch:
        work = Path(scratch)
        one_file, many_file = work / "one.toml", work / "many.toml"
        one_vars, many_vars = _accounts_file(one_file, 1), _accounts_file(many_file, many)
        common = {"start": START.isoformat(), "now": format_utc(now), "seed": 7}
        with running_sandbox(
            **common, calls_per_day=args.calls_per_day, messages_per_day=args.messages_per_day, api_key=[_key(0)],
        ) as one_url, running_sandbox(
            **common, calls_per_day=max(1, args.calls_per_day // many),
            messages_per_day=max(1, args.messages_per_day // many), api_key=[_key(i) for i in range(many)],
        ) as many_url:
            contenders = {
                "1 account": (one_url, one_file, one_vars),
                f"{many} accounts": (many_url, many_file, many_vars),
            }
            runs: dict[str, list[dict[str, object]]] = {name: [] for name in contenders}
            # untimed: the sandboxes fill their caches, so no round pays for that
            for name, (url, file, variables) in contenders.items():
                _measure(name, url, file, variables, window, now, work)
            for number in range(1, args.rounds + 1):
                order = list(contenders) if number % 2 else list(reversed(contenders))
                for name in order:
                    runs[name].append(_measure(name, *contenders[name], window, now, work))
                print(f"round {number}: " + ", ".join(
                    f"{name} {r[-1]['records']:,} records in {r[-1]['seconds']:.2f}s "
                    f"({r[-1]['cpu_seconds']:.2f}s CPU, {r[-1]['peak_rss_mib']:,.0f} MiB, load {r[-1]['load']:.1f})"
                    for name, r in runs.items()
                ))
    one, several = runs["1 account"], runs[f"{many} accounts"]
    ratios = [float(b["seconds"]) / float(a["seconds"]) for a, b in zip(one, several)]
    print(f"{many} accounts / 1 account, sync seconds per round: " + ", ".join(f"{r:.2f}x" for r in ratios)
          + f" (median {statistics.median(ratios):.2f}x; target <= 1.5x)")
    rates = [(float(b["records"]) / float(b["seconds"])) / (float(a["records"]) / float(a["seconds"]))
             for a, b in zip(one, several)]
    print(f"{many} accounts / 1 account, records per second per round: " + ", ".join(f"{r:.2f}x" for r in rates))
    print(f"peak RSS: 1 account {max(float(r['peak_rss_mib']) for r in one):,.0f} MiB, "
          f"{many} accounts {max(float(r['peak_rss_mib']) for r in several):,.0f} MiB")


if __name__ == "__main__":
    main()
