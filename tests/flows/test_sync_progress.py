"""The sync's progress artifact is updated now and then, not on every slice, and ends at the run's last figure."""

from __future__ import annotations

import asyncio

from pipelines.flows.sync import PROGRESS_EVERY_SECS, RunProgress
from pipelines.sync import SyncProgress


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_progress_artifact_is_updated_at_most_every_few_seconds_and_ends_at_the_last_figure() -> None:
    clock, sent, ticks = _Clock(), [], []

    async def update(percent: float) -> None:
        sent.append(percent)

    async def sync_of_many_slices() -> None:
        progress = RunProgress(update, ticks.append, timer=clock)
        for done in range(1, 3001):  # three thousand slices over a minute
            clock.now = done * 0.02
            progress(SyncProgress("cdrs", slices_total=3000, slices_done=done, records=done * 10))
            await asyncio.sleep(0)  # the sync awaits between slices: an update in flight lands
        await progress.finish()

    asyncio.run(sync_of_many_slices())
    assert len(ticks) == 3000  # the caller's own callback sees every tick
    assert len(sent) == 60 / PROGRESS_EVERY_SECS
    assert sent == sorted(sent) and sent[-1] == 100.0


def test_a_failed_update_leaves_the_sync_going(caplog) -> None:
    clock = _Clock()

    async def update(percent: float) -> None:
        raise RuntimeError("Prefect's API is away")

    async def sync() -> float:
        progress = RunProgress(update, timer=clock)
        clock.now = PROGRESS_EVERY_SECS
        progress(SyncProgress("cdrs", slices_total=2, slices_done=1, records=5))
        await asyncio.sleep(0)
        await progress.finish()
        return progress.latest

    assert asyncio.run(sync()) == 50.0
    assert "could not update the sync's progress artifact: Prefect's API is away" in caplog.text
