"""What the data dir says about itself: when it was last synced."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pipelines.lake import Lake
from pipelines.opentact.api import RECORD_TYPES
from pipelines.state import read_state


def synced_at(data_dir: Path) -> datetime | None:
    """The data dir -> how fresh its data is: the least recent high-water mark (None: never synced)."""
    lake = Lake(data_dir)
    marks = [mark for kind in RECORD_TYPES if (mark := read_state(lake, kind).high_water_mark) is not None]
    return min(marks, default=None)
