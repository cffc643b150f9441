"""Progress reporting across the Prefect boundary: flows take JSON parameters, not callbacks.

The CLI installs a sink for the duration of one run in its own process; the sync task passes
whatever sink is installed (None under a deployment) to `pipelines.sync.sync`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pipelines.sync import ProgressCallback

_sink: ProgressCallback | None = None


def current_sink() -> ProgressCallback | None:
    """The progress callback installed by the caller, if any."""
    return _sink


@contextmanager
def progress_sink(callback: ProgressCallback) -> Iterator[None]:
    """Install `callback` as the progress sink while the block runs."""
    global _sink
    previous, _sink = _sink, callback
    try:
        yield
    finally:
        _sink = previous
