"""Run summaries: a SyncReport -> the markdown artifact, the log lines and the flow's JSON result."""

from __future__ import annotations

from typing import Any

from pipelines.dates import format_utc
from pipelines.land import extras_note
from pipelines.sync import KindReport, SyncReport


def _cell(text: object) -> str:
    """A value -> a markdown table cell (pipes and newlines cannot break the table)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def sync_markdown(report: SyncReport, *, title: str = "CDR sync") -> str:
    """A sync report -> markdown: per type and UTC day, records new / updated / quarantined; duration, rate."""
    status = "completed" if report.ok else f"INCOMPLETE: {len(report.failures)} slice(s) failed"
    lines = [
        f"# {title}: {status}",
        "",
        f"- run: `{report.run_id}`, as of {format_utc(report.now)}",
        f"- {report.records:,} records in {report.duration_secs:,.1f} s ({report.records_per_sec:,.0f} records/s)",
        "",
    ]
    for kind in report.kinds:
        lines += _kind_section(kind)
    if report.failures:
        lines += ["## Failed slices (the next run redoes only these)", "", "| type | slice | cause |", "|---|---|---|"]
        lines += [f"| {f.kind} | {_cell(f.slice)} | {_cell(f.cause)} |" for f in report.failures]
        lines.append("")
    return "\n".join(lines)


def _kind_section(kind: KindReport) -> list[str]:
    lines = [
        f"## {kind.kind}: {kind.window}",
        "",
        f"{kind.slices} slices ({kind.landed} landed, {kind.skipped} already done, {kind.failed} failed); "
        f"{kind.records:,} records, {kind.quarantined:,} quarantined; {kind.usage_rows:,} usage rows.",
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


def sync_lines(report: SyncReport) -> list[str]:
    """A sync report -> a short console summary: one line per type, then one per failure.

    The fields kept in extras are not repeated here: the sync logs them itself, once.
    """
    lines = [
        f"{k.kind}: {k.records:,} records ({k.new:,} new, {k.updated:,} updated, {k.quarantined:,} quarantined) "
        f"over {k.window}"
        for k in report.kinds
    ]
    lines.append(f"{report.records:,} records in {report.duration_secs:,.1f} s ({report.records_per_sec:,.0f}/s)")
    lines += [f"FAILED {f.kind} {f.slice}: {f.cause}" for f in report.failures]
    return lines


def sync_result(report: SyncReport) -> dict[str, Any]:
    """A sync report -> the flow's JSON-friendly result."""
    return {
        "run_id": report.run_id,
        "now": format_utc(report.now),
        "records": report.records,
        "records_per_sec": round(report.records_per_sec, 1),
        "duration_secs": round(report.duration_secs, 3),
        "types": {
            k.kind: {
                "window": [format_utc(k.window.start), format_utc(k.window.end)],
                "new": k.new, "updated": k.updated, "quarantined": k.quarantined, "records": k.records,
                "extra_fields": list(k.extra_fields),
            }
            for k in report.kinds
        },
    }
