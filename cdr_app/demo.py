"""`cdr demo`: the whole pipeline on the embedded sandbox, start to finish, in one process.

Starts the sandbox on a free loopback port with a fixed seed and three months of traffic
(with a few injected faults, re-ratings and malformed records, as the real API has), syncs
them through the Prefect flow, builds the warehouse, renders the dashboards, exports last
month's finance statement, stops the sandbox and says where everything is.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from rich.console import Console

from pipelines.alerts import SEVERITIES
from pipelines.console import failures_told_by_command, quiet_prefect, stoppable, sync_progress
from pipelines.errors import counted
from pipelines.sql import connect_read_only
from sandbox.testing import running_sandbox

# A fixed world, so every demo run shows the same numbers.
SEED = 42
WORLD_START = "2026-08-01"
DEMO_NOW = "2026-11-01T00:00:00Z"
FINANCE_MONTH = "2026-10"
CALLS_PER_DAY = 2_000
MESSAGES_PER_DAY = 1_000
FAULTS = {"fail_rate": 0.01, "rerate_rate": 0.02, "malformed_rate": 0.0005}


@dataclass(frozen=True)
class DemoResult:
    """Where the demo left things, and the headline numbers."""

    data_dir: Path
    site: Path
    warehouse: Path
    finance: tuple[Path, ...]
    summary: tuple[str, ...]
    seconds: float
    # The alerts fired over the demo's months, by severity (worst first).
    alerts: tuple[tuple[str, int], ...] = ()


def world() -> str:
    """-> the demo's world as its first line names it: seed, days, volumes and fault rates, each rate named as
    `cdr sandbox serve` and `export` take it, so an export with the same values writes the demo's truth."""
    rates = ", ".join(f"{name.replace('_', ' ')} {value:g}" for name, value in FAULTS.items())
    return (
        f"seed {SEED}, {WORLD_START} .. {DEMO_NOW[:10]}, {CALLS_PER_DAY:,} calls and {MESSAGES_PER_DAY:,} "
        f"messages a day, {rates}"
    )


def run_demo(data_dir: Path) -> DemoResult:
    """A data dir -> the sandbox synced, modelled, rendered and exported there."""
    started = time.perf_counter()
    quiet_prefect()
    key = secrets.token_urlsafe(24)  # a throwaway key: the sandbox and this process only
    console = Console(stderr=True)
    console.print(f"starting the sandbox: {world()}", soft_wrap=True)  # one line also in a log, however long
    # Ctrl-C stops the sync as it stops `cdr sync` (what landed stays checkpointed), then the
    # sandbox; the block leaving with Stopped says so in one line.
    with stoppable("the demo stopped; run it again to resume") as runner:
        with running_sandbox(
            seed=SEED, start=WORLD_START, now=DEMO_NOW, calls_per_day=CALLS_PER_DAY,
            messages_per_day=MESSAGES_PER_DAY, api_key=key, **FAULTS,
        ) as base_url:
            os.environ["OPENTACT_BASE_URL"] = base_url
            os.environ["OPENTACT_API_KEY"] = key
            os.environ.setdefault("OPENTACT_SETTLE_LAG_SECS", "0")  # the sandbox clock is pinned
            try:
                from pipelines.flows.build import build_flow
                from pipelines.flows.finance import monthly_finance
                from pipelines.flows.sync import sync_flow

                with sync_progress(console) as progress, failures_told_by_command():
                    synced = runner.run(
                        sync_flow(start=WORLD_START, end=DEMO_NOW, now=DEMO_NOW, data_dir=str(data_dir), progress=progress)
                    )
            finally:
                del os.environ["OPENTACT_API_KEY"]
        console.print("building the warehouse and the dashboards")
        # in worker threads too, so a signal stops them as it stops the sync
        with failures_told_by_command():
            # as of the sandbox's pinned clock, as the sync: by the real one, its data would be weeks stale
            built = runner.run(asyncio.to_thread(build_flow, data_dir=str(data_dir), now=DEMO_NOW))
            # The month is whole in the sandbox's UTC calendar; a reporting zone west of UTC ends it
            # after the synced span, and the statement then says how much it covers rather than
            # failing the demo.
            finance = runner.run(asyncio.to_thread(
                monthly_finance, month=FINANCE_MONTH, data_dir=str(data_dir), build=False, allow_partial=True
            ))
    warehouse = Path(built["warehouse"])
    return DemoResult(
        data_dir=data_dir,
        site=Path(built["site"]),
        warehouse=warehouse,
        finance=tuple(Path(p) for p in finance["files"]),
        summary=tuple(headline(warehouse, synced, built, partial=finance["partial"])),
        seconds=time.perf_counter() - started,
        alerts=alert_counts(warehouse),
    )


def alert_counts(warehouse: Path) -> tuple[tuple[str, int], ...]:
    """The warehouse -> how many alerts fired, per severity, worst first (severities with none left out)."""
    con = connect_read_only(warehouse)
    try:
        found = dict(con.execute("select severity, count(*) from rpt_alerts group by severity").fetchall())
    finally:
        con.close()
    return tuple((severity, found[severity]) for severity in reversed(SEVERITIES) if severity in found)


def alerts_line(counts: Sequence[tuple[str, int]], cdr: str, data_dir: Path) -> str:
    """The demo's alerts per severity, how this shell runs `cdr`, the data dir -> the command listing them: over
    the demo's months, which `cdr alerts`' default range (the last 7 days of today) does not reach."""
    command = f"{cdr} alerts --data-dir {data_dir} --start {WORLD_START} --end {DEMO_NOW[:10]}"
    if not counts:
        return f"no alert fired (try: {command})"
    by = ", ".join(f"{count:,} {severity}" for severity, count in counts)
    return f"{counted(sum(count for _, count in counts), 'alert')} fired, {by} (try: {command})"


def headline(warehouse: Path, synced: dict, built: dict, *, partial: str = "") -> list[str]:
    """The warehouse and the runs' results -> five lines a person reads first."""
    con = connect_read_only(warehouse)
    try:
        costs = con.execute(
            "select currency, sum(cost) from rpt_finance_monthly_statement where month = ? group by 1 order by 1",
            [FINANCE_MONTH],
        ).fetchall()
        asr, acd = con.execute(
            "select sum(answered_calls)::double / nullif(sum(calls), 0), "
            "sum(acd_secs * answered_calls)::double / nullif(sum(answered_calls), 0) from rpt_voice_quality_daily"
        ).fetchone()
        delivered = con.execute(
            "select sum(delivered)::double / nullif(sum(messages), 0) from rpt_message_delivery_by_country"
        ).fetchone()[0]
        matched, explained, held, unexplained = con.execute(
            "select count(*) filter (where status = 'match'), "
            "count(*) filter (where status = 'explained_by_quarantine'), "
            "coalesce(sum(quarantined_records) filter (where status = 'explained_by_quarantine'), 0), "
            "count(*) filter (where status not in ('match', 'explained_by_quarantine')) "
            "from rpt_reconciliation_daily"
        ).fetchone()
    finally:
        con.close()
    types = synced["types"]
    money = ", ".join(f"{currency} {Decimal(total):,.2f}" for currency, total in costs) or "no charges"
    return [
        f"synced {counted(types['cdrs']['records'], 'CDR')} and {counted(types['mdrs']['records'], 'MDR')} "
        f"({sum(t['quarantined'] for t in types.values()):,} malformed, quarantined) "
        f"at {synced['records_per_sec']:,.0f} records/s",
        f"built {built['models']} models; {built['tests']} data tests passed",
        f"{FINANCE_MONTH} statement: {money}" + (f" ({partial})" if partial else ""),
        f"voice ASR {asr:.1%}, ACD {acd:,.0f} s; SMS/MMS delivery rate {delivered:.1%}",
        reconciliation_line(matched, explained, held, unexplained),
    ]


def reconciliation_line(matched: int, explained: int, held: int, unexplained: int) -> str:
    """Day/product/currency rows by reconciliation status -> one line that says plainly what is not explained."""
    by = f" by {counted(held, 'quarantined record')}" if explained else ""
    line = f"reconciliation vs the API's usage: {matched:,} match, {explained:,} explained{by}, {unexplained:,} unexplained"
    if unexplained:
        line += ": the pipeline and the API disagree there and nothing accounts for it (see the Reconciliation page)"
    return line
