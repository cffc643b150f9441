"""Run summaries: a SyncReport (or a sync of several accounts) -> the markdown artifact, the log lines and the flow's JSON result."""

from __future__ import annotations

import re
from typing import Any

from pipelines.dates import format_utc
from pipelines.errors import counted
from pipelines.land import extras_note
from pipelines.settings import Settings
from pipelines.sync import AccountsReport, KindReport, SyncReport

# Where a sync's slices ran when nothing says otherwise (CDR_TASK_RUNNER=thread).
IN_PROCESS = "in-process"


def task_runner_label(settings: Settings) -> str:
    """Where a sync's slices run, as its summary says: `in-process`, `dask, 2 workers`, `dask, the cluster at ...`."""
    if settings.task_runner != "dask":
        return IN_PROCESS
    if settings.dask_address is not None:
        return f"dask, the cluster at {settings.dask_address}"
    workers = settings.dask_workers
    return f"dask, {workers} worker{'s' if workers != 1 else ''}"


# The characters that open markdown's emphasis, code, links, images, HTML, entities or a table's cells
# (each of them one CommonMark lets a backslash escape).
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]<>!|&~])")


def _cell(text: object) -> str:
    """A value -> markdown text shown as typed, in a table cell or a paragraph of its own.

    Field names and causes can quote the API: a pipe or newline must not break the table, and
    `![](https://...)` or `<img ...>` must not make the Prefect UI fetch an image or a link for whoever views the run.
    """
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", str(text)).replace("\n", " ")


def sync_markdown(report: SyncReport, *, title: str = "CDR sync", runner: str | None = IN_PROCESS) -> str:
    """A sync report -> markdown: per type and UTC day, records new / updated / quarantined; duration, rate;
    the task runner it ran on (`runner`; None leaves it out)."""
    status = "completed" if report.ok else f"INCOMPLETE: {counted(len(report.failures), 'slice')} failed"
    lines = _run_header(report, f"{title}: {status}", *_runner_items(runner))
    for kind in report.kinds:
        lines += _kind_section(kind)
    if report.failures:
        lines += ["## Failed slices (the next run redoes only these)", "", "| type | slice | cause |", "|---|---|---|"]
        lines += [f"| {f.kind} | {_cell(f.slice)} | {_cell(f.cause)} |" for f in report.failures]
        lines.append("")
    return "\n".join(lines)


def _run_header(report: SyncReport | AccountsReport, heading: str, *more: str) -> list[str]:
    """A run's markdown heading and its bullets: id and clock, then `more`, then records, duration and rate."""
    return [
        f"# {heading}",
        "",
        f"- run: `{report.run_id}`, as of {format_utc(report.now)}",
        *(f"- {item}" for item in more),
        f"- {counted(report.records, 'record')} in {report.duration_secs:,.1f} s ({report.records_per_sec:,.0f} records/s)",
        "",
    ]


def _runner_items(runner: str | None) -> list[str]:
    """The summary's line naming the task runner, if one is named."""
    return [] if runner is None else [f"task runner: {runner}"]


def _kind_section(kind: KindReport) -> list[str]:
    lines = [
        f"## {kind.kind}: {kind.window}",
        "",
        f"{counted(kind.slices, 'slice')} ({kind.landed} landed, {kind.skipped} already done, {kind.failed} failed); "
        f"{counted(kind.records, 'record')}, {kind.quarantined:,} quarantined; {counted(kind.usage_rows, 'usage row')}.",
        "",
    ]
    if kind.extra_fields:
        lines += [_cell(extras_note(kind.kind, kind.extra_fields)), ""]
    if kind.days:
        lines += ["| UTC day | new | updated | unchanged | removed | quarantined |", "|---|---:|---:|---:|---:|---:|"]
        lines += [
            f"| {d.day.isoformat()} | {d.new:,} | {d.updated:,} | {d.unchanged:,} | {d.removed:,} | {d.quarantined:,} |"
            for d in kind.days
        ]
        lines.append("")
    return lines


def sync_lines(report: SyncReport, *, runner: str | None = IN_PROCESS) -> list[str]:
    """A sync report -> a short console summary: one line per type, the run's, the task runner's, then one per failure.

    The fields kept in extras are not repeated here: the sync logs them itself, once.
    """
    lines = [
        f"{k.kind}: {counted(k.records, 'record')} ({k.new:,} new, {k.updated:,} updated, {k.quarantined:,} quarantined) "
        f"over {k.window}"
        for k in report.kinds
    ]
    lines.append(f"{counted(report.records, 'record')} in {report.duration_secs:,.1f} s ({report.records_per_sec:,.0f}/s)")
    lines += _runner_items(runner)
    lines += [f"FAILED {f.kind} {f.slice}: {f.cause}" for f in report.failures]
    return lines


def _run_result(report: SyncReport | AccountsReport, runner: str | None) -> dict[str, Any]:
    """What every sync result starts with: the run, its clock, its records, rate and duration, its task runner."""
    return {
        "run_id": report.run_id,
        "now": format_utc(report.now),
        "records": report.records,
        "records_per_sec": round(report.records_per_sec, 1),
        "duration_secs": round(report.duration_secs, 3),
        **({} if runner is None else {"task_runner": runner}),
    }


def sync_result(report: SyncReport, *, runner: str | None = IN_PROCESS) -> dict[str, Any]:
    """A sync report -> the flow's JSON-friendly result."""
    return {
        **_run_result(report, runner),
        "types": {
            k.kind: {
                "window": [format_utc(k.window.start), format_utc(k.window.end)],
                "new": k.new, "updated": k.updated, "quarantined": k.quarantined, "records": k.records,
                "extra_fields": list(k.extra_fields),
            }
            for k in report.kinds
        },
    }


# -- a sync of several accounts ------------------------------------------------------------------


def accounts_markdown(report: AccountsReport, *, title: str = "CDR sync", runner: str | None = IN_PROCESS) -> str:
    """A sync of several accounts -> markdown: the run, then per account its section as `sync_markdown` writes it."""
    failed = report.failed
    status = "completed" if report.ok else f"INCOMPLETE: {len(failed)} of {counted(len(report.accounts), 'account')} failed"
    lines = _run_header(
        report, f"{title}: {status}", f"accounts: {', '.join(a.account for a in report.accounts)}",
        *_runner_items(runner),
    )
    if failed:
        lines += ["## Failed accounts", "", "| account | cause |", "|---|---|"]
        lines += [f"| {_cell(a.account)} | {_cell(a.cause)} |" for a in failed]
        lines.append("")
    for outcome in report.accounts:
        if outcome.report is None:
            continue
        # Each account's own document, its headings one level down.
        section = sync_markdown(outcome.report, title=f"account {outcome.account}", runner=None).splitlines()
        lines += ["#" + line if line.startswith("#") else line for line in section]
        lines.append("")
    return "\n".join(lines)


def accounts_lines(report: AccountsReport, *, runner: str | None = IN_PROCESS) -> list[str]:
    """A sync of several accounts -> the console's summary lines: per account and type, the task runner, then each
    failed account."""
    lines = []
    for outcome in report.accounts:
        if outcome.report is None:
            continue
        lines += [f"{outcome.account} {line}" for line in sync_lines(outcome.report, runner=None)]
    lines += _runner_items(runner)
    lines += [f"FAILED account {a.account}: {a.cause}" for a in report.failed]
    return lines


def accounts_result(report: AccountsReport, *, runner: str | None = IN_PROCESS) -> dict[str, Any]:
    """A sync of several accounts -> the flow's JSON-friendly result: the run's totals, per type summed over the
    accounts that synced, each account's own result, and the failed accounts' causes."""
    synced = [a for a in report.accounts if a.report is not None]
    kinds = dict.fromkeys(k.kind for a in synced for k in a.report.kinds)  # type: ignore[union-attr]
    types = {}
    for kind in kinds:
        mine = [k for a in synced for k in a.report.kinds if k.kind == kind]  # type: ignore[union-attr]
        types[kind] = {
            "window": [format_utc(min(k.window.start for k in mine)), format_utc(max(k.window.end for k in mine))],
            **{count: sum(getattr(k, count) for k in mine) for count in ("new", "updated", "quarantined", "records")},
            "extra_fields": sorted({field for k in mine for field in k.extra_fields}),
        }
    return {
        **_run_result(report, runner),
        "types": types,
        "accounts": {a.account: sync_result(a.report, runner=None) for a in synced},  # type: ignore[arg-type]
        "failed": {a.account: a.cause for a in report.failed},
    }
