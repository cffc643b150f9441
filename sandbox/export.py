"""Sandbox export: the ground truth of a window, written as the API would serve it.

`export_window` writes, for a window of created_at and a clock, `cdrs.jsonl` and
`mdrs.jsonl` (the valid records' JSON texts, exactly as served, sorted by created_at then
id) and `malformed.jsonl` (one `{"type", "reason", "record"}` line per malformed record).
Later tests and benchmarks compare the lake with these files. Days are streamed one at a
time, and each file appears only when complete (written under a temporary name, renamed).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import polars as pl

from pipelines.dates import format_utc
from pipelines.errors import CdrError, UsageError
from sandbox.world import KINDS, World


def export_window(world: World, now: datetime, start: datetime, end: datetime, out_dir: Path) -> dict[str, int]:
    """Records with created_at in [start, end) as of `now` -> DIR/{cdrs,mdrs,malformed}.jsonl; line counts."""
    for name, moment in (("now", now), ("window start", start), ("window end", end)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    if end <= start:
        raise UsageError(f"the window must end after it starts: [{format_utc(start)}, {format_utc(end)})")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {str(out_dir)!r} exists and is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return _write(world, now.astimezone(UTC), start.astimezone(UTC), end.astimezone(UTC), out_dir)
    except OSError as exc:
        raise CdrError(f"cannot write the export to {str(out_dir)!r}: {exc.strerror or exc}") from None


def _write(world: World, now: datetime, start: datetime, end: datetime, out_dir: Path) -> dict[str, int]:
    counts = {kind: 0 for kind in KINDS} | {"malformed": 0}
    partial = {name: out_dir / f".{name}.jsonl.partial" for name in (*KINDS, "malformed")}
    try:
        with open(partial["malformed"], "w", encoding="utf-8", newline="\n") as bad:
            for kind in KINDS:
                with open(partial[kind], "w", encoding="utf-8", newline="\n") as good:
                    for frame in world.window(kind, start, end, now):
                        is_bad = pl.col("malformed").is_not_null()
                        texts = frame.filter(~is_bad).get_column("json")
                        counts[kind] += _write_lines(good, texts)
                        lines = frame.filter(is_bad).select(
                            pl.concat_str(
                                pl.lit(f'{{"type":"{kind}","reason":"'),
                                pl.col("malformed"),
                                pl.lit('","record":'),
                                pl.col("json"),
                                pl.lit("}"),
                            )
                        ).to_series()
                        counts["malformed"] += _write_lines(bad, lines)
        for name, path in partial.items():
            os.replace(path, out_dir / f"{name}.jsonl")
    finally:
        for path in partial.values():
            path.unlink(missing_ok=True)
    return counts


def _write_lines(handle: TextIO, texts: pl.Series) -> int:
    """Write each text as one line; how many were written."""
    if texts.len():
        handle.write("\n".join(texts.to_list()))
        handle.write("\n")
    return texts.len()
