"""Benchmark: `cdr dashboards` over a reseller's many small accounts, and how its time grows with them.

Each of --accounts accounts holds its own small generated world (bench_models' generator, seed + i, so
no two accounts draw the same figures) over --days days; the data dir is built once by the models
(`pipelines.models.build`) and cached under bench/out/. Each round renders the whole site (the
all-accounts pages and every account's) with `cdr dashboards --out` in a child process of its own, so
its wall and CPU seconds and peak RSS are its own. `--baseline REV` renders the same data dir with the
code of a git revision too (its `git archive`, cached under bench/out/, run in this venv), alternating
with today's; the pages of both are then compared figure by figure (data and layout, key order aside).

    .venv/bin/python -m bench.bench_dashboards [--accounts 150] [--days 5] [--rounds 2] [--baseline REV]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_models import OUT, _run_line as _line, generate_lake, revision_tree  # noqa: E402
from bench.bench_sandbox import machine  # noqa: E402
from tests.dashboards.dashboard_fixtures import page_figures  # noqa: E402

FIRST_SEED = 20260101
# `cdr` in a child, printing its peak RSS on the way out: the kernel's ru_maxrss would count the forking bench's own.
CLI = """import atexit, sys
def peak():
    with open("/proc/self/status") as status:
        print(next(line for line in status if line.startswith("VmHWM:")), end="", file=sys.stderr)
atexit.register(peak)
from cdr_app.cli import main
sys.exit(main())"""
PEAK = re.compile(r"^VmHWM:\s+(\d+) kB$", re.MULTILINE)


def data_dir(accounts: int, days: int, calls: int, messages: int) -> Path:
    """A data dir of `accounts` accounts, each its own generated lake (hard links), built once -> its path."""
    target = OUT / f"dashboards-a{accounts}-d{days}-c{calls}-m{messages}"
    marker = target / ".complete"
    if marker.exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    for index in range(accounts):
        lake = generate_lake(calls, messages, days, seed=FIRST_SEED + index)
        for source in sorted((lake / "lake").glob("*/account=default/date=*/data.parquet")):
            dataset, day = source.parts[-4], source.parts[-2]
            link = target / "lake" / dataset / f"account=a{index:04d}" / day / "data.parquet"
            link.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, link)
    from pipelines.models import build

    build(target)
    marker.write_text(json.dumps({"accounts": accounts, "days": days, "calls": calls, "messages": messages}))
    return target


def render(code: Path, data: Path, out: Path) -> dict[str, float]:
    """`cdr dashboards` of the code in `code` over `data` into `out` (replaced), in a child process -> its figures."""
    shutil.rmtree(out, ignore_errors=True)
    # no accounts file or settings of the caller's: the data dir's accounts as they are
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDR_", "OPENTACT_"))} | {"PYTHONPATH": str(code)}
    command = [sys.executable, "-c", CLI, "dashboards", "--data-dir", str(data), "--out", str(out)]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=OUT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    errors = child.stderr.read().decode() if child.stderr else ""
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    peak = PEAK.search(errors)
    if os.waitstatus_to_exitcode(status) != 0 or peak is None:
        raise SystemExit(f"cdr dashboards failed ({code}): {errors.strip()}")
    return {
        "seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mib": int(peak[1]) / 1024,
        "pages": sum(1 for _ in out.rglob("*.html")),
    }


def figures_of(site: Path) -> dict[tuple[str, str], tuple[object, object]]:
    """A site -> {(page, figure id): (data, layout)} as each page hands them to Plotly.newPlot."""
    return {
        (str(page.relative_to(site)), key): (figure["data"], figure["layout"])
        for page in sorted(site.rglob("*.html"))
        for key, figure in page_figures(page.read_text("utf-8")).items()
    }


def main(argv: list[str] | None = None) -> None:
    """Build (or reuse) the data dir, then render its site round by round; print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=150)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3000, help="each account's CDRs over the days (default 3000)")
    parser.add_argument("--messages", type=int, default=1500, help="each account's MDRs over the days (default 1500)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", metavar="REV", help="also render with the code of this git revision, alternating")
    args = parser.parse_args(argv)
    if args.accounts < 2:
        parser.error("--accounts must be at least 2 (one account has no all-accounts pages)")
    started = time.perf_counter()
    data = data_dir(args.accounts, args.days, args.calls, args.messages)
    print(f"machine: {machine()}")
    print(f"data dir: {data} ({args.accounts} accounts, each {args.calls:,} CDRs and {args.messages:,} MDRs over "
          f"{args.days} days; ready in {time.perf_counter() - started:.1f}s)")
    contenders = {"today": ROOT}
    if args.baseline:
        contenders = {f"baseline {args.baseline}": revision_tree(args.baseline), **contenders}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    for number in range(1, args.rounds + 1):
        for name, code in contenders.items():
            runs[name].append(render(code, data, OUT / f"site-{name.replace(' ', '-')}"))
        print(f"round {number}: " + ", ".join(f"{name} {_line(r[-1])}" for name, r in runs.items())
              + f", load average {os.getloadavg()[0]:.1f}")
    for name, measured in runs.items():
        best = min(measured, key=lambda run: run["seconds"])
        print(f"{name}: {best['pages']:,.0f} pages, best {_line(best)}, "
              f"{best['seconds'] / (args.accounts + 1) * 1000:.0f} ms a page set (start-up included)")
    if args.baseline:
        before, after = (figures_of(OUT / f"site-{name.replace(' ', '-')}") for name in contenders)
        differing = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
        print(f"figures: {len(after):,} today, {len(differing)} differing from the baseline's"
              + (f" (first: {differing[0]})" if differing else ""))


if __name__ == "__main__":
    main()
