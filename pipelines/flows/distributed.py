"""A sync's slices on a Dask cluster (CDR_TASK_RUNNER=dask), through Prefect's Dask task runner.

The flow keeps what is the data dir's: its lock and log entry, the checkpoints and high-water
marks, and the usage reads. It hands the slices out as `land-slices` task runs, a share of one
account's record type each, so every UTC day of a record type of an account is landed by
exactly one task; the workers land them (`pipelines.sync.land_slices`, what a sync in one
process does per slice) and hand back what they did, which the flow folds into the same report
as it goes, moving the progress bar as each task ends.

Requests: each task's client keeps up to OPENTACT_CONCURRENCY in flight, and a local cluster's
worker runs one task at a time, so a run keeps up to workers x OPENTACT_CONCURRENCY requests in
flight (workers x threads x OPENTACT_CONCURRENCY on a cluster whose workers run several threads),
besides the flow's own usage reads. A Prefect global concurrency limit could bound them across
processes, but at a round trip to the API per request; each client's rate gate and its backoff
on 429s pace a key instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext, TaskRunContext
from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

from pipelines.dates import Window
from pipelines.errors import CdrError, one_line
from pipelines.land import window_days
from pipelines.lake import AccountLake
from pipelines.opentact import api
from pipelines.opentact.client import ApiKeyRejected, ClientConfig, OpentactClient
from pipelines.settings import Settings
from pipelines.sync import Dispatch, SliceOutcome, SyncClient, land_slices, slice_failure

log = logging.getLogger(__name__)

# How long the Prefect API the workers report to may take to come up, when this process starts it.
API_START_SECS = 120
# How long the probe of CDR_DASK_ADDRESS waits for the scheduler to accept: a slower one is left to Dask to judge.
PROBE_SECS = 5


@asynccontextmanager
async def slice_dispatch(settings: Settings, run_id: str, now: datetime) -> AsyncIterator[Dispatch | None]:
    """Within the block, where the sync's slices go: None (this process) or a Dask cluster, up for the block.

    A local cluster is started here and stopped after; an existing one (CDR_DASK_ADDRESS) is joined.
    """
    if settings.task_runner != "dask":
        yield None
        return
    from prefect_dask import DaskTaskRunner

    # Its INFO lines and the tracebacks of connections closed at shutdown say nothing to act on.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if settings.dask_address is not None:
        try:
            await asyncio.to_thread(probe_scheduler, settings.dask_address)
        except OSError as exc:
            raise _unavailable(settings, exc) from None
        runner = DaskTaskRunner(address=settings.dask_address)
    else:
        runner = DaskTaskRunner(cluster_kwargs={
            "n_workers": settings.dask_workers, "threads_per_worker": 1, "processes": True,
            "dashboard_address": None, "silence_logs": logging.ERROR,
        })
    with workers_api() as api_url, runner:
        try:
            # Starting (or joining) the cluster blocks for seconds: not on the flow's event loop.
            await asyncio.to_thread(lambda: runner.client)
        except Exception as exc:
            raise _unavailable(settings, exc) from None
        if settings.dask_address is not None:
            await asyncio.to_thread(warn_without_workers, runner.client, settings.dask_address)
        yield _DaskDispatch(runner, settings, run_id, now, api_url)


def probe_scheduler(address: str) -> None:
    """OSError at once when nothing listens at a scheduler's `tcp://host:port` (refused, or a host that does not
    resolve): Dask retries such a connection for its whole connect timeout before it says so. A scheduler slow to
    accept is left to Dask's own timeout."""
    parts = urlsplit(address)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=PROBE_SECS).close()
    except TimeoutError:
        pass


def _unavailable(settings: Settings, exc: BaseException) -> ClusterUnavailable:
    """Why the cluster of a run could not be started or joined, in one line."""
    where = f"reach the Dask scheduler at {settings.dask_address}" if settings.dask_address else (
        "start a local Dask cluster")
    return ClusterUnavailable(f"cannot {where}: {type(exc).__name__}: {one_line(exc, first=True)}")


def warn_without_workers(client: Any, address: str) -> None:
    """A warning when the cluster at `address` has no worker: its tasks wait, and the sync's bar with them.

    Only a warning: an adaptive cluster starts its workers once tasks are submitted.
    """
    if not client.scheduler_info().get("workers"):
        log.warning(
            "the Dask scheduler at %s has no workers: the slices wait until one joins (start them with "
            "`dask worker %s`; Ctrl-C stops the sync)", address, address,
        )


@contextmanager
def workers_api() -> Iterator[str]:
    """The Prefect API the workers' task runs report to (its URL), exported for the workers a local cluster spawns.

    Without PREFECT_API_URL each worker process would start an API of its own (slowly, and each
    with its own database): they get this process's instead, a temporary one when it has none,
    which Prefect stops when this process ends. Workers already running get it with each task
    (`_DaskDispatch._submitting`).
    """
    url = get_current_settings().api.url
    if not url:
        from prefect.server.api.server import SubprocessASGIServer

        # The temporary API this process's own runs use (the same one: one per process).
        server = SubprocessASGIServer()
        server.start(timeout=API_START_SECS)
        url = server.api_url
    before = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url
    try:
        yield url
    finally:
        if before is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = before


@task(
    name="land-slices",
    task_run_name="land {kind} of {lake.account}",
    cache_policy=NO_CACHE,
    persist_result=False,
)
async def land_share(
    lake: AccountLake, config: ClientConfig, kind: api.RecordType, slices: list[Window], run_id: str, now: datetime,
    settings: Settings,
) -> list[SliceOutcome]:
    """On a worker: land a share of one account's slices of a record type with a client of its own -> their outcomes."""
    from pipelines.flows.sync import pipeline_logs_to_run

    with pipeline_logs_to_run():
        async with OpentactClient(config) as client:
            return await land_slices(lake, client, kind, slices, run_id=run_id, now=now, settings=settings)


def shares(slices: Sequence[Window], size: int) -> list[list[Window]]:
    """A record type's slices, in order -> shares of about `size`, slices that touch one UTC day always in one share."""
    found: list[list[Window]] = []
    last_day = None
    for slice_ in sorted(slices, key=lambda s: (s.start, s.end)):
        days = window_days(slice_)
        if found and (len(found[-1]) < size or (days and days[0] == last_day)):
            found[-1].append(slice_)
        else:
            found.append([slice_])
        last_day = days[-1] if days else last_day
    return found


class _DaskDispatch:
    """Lands slices as tasks on the runner's cluster (see `pipelines.sync.Dispatch`)."""

    def __init__(self, runner: Any, settings: Settings, run_id: str, now: datetime, api_url: str) -> None:
        self.runner = runner
        self.settings = settings
        self.run_id = run_id
        self.now = now
        self.api_url = api_url
        # A share keeps one client's slice slots busy.
        self.share_size = 1 + settings.opentact_prefetch_slices

    def __call__(
        self, lake: AccountLake, client: SyncClient, kind: api.RecordType, slices: list[Window]
    ) -> AsyncIterator[SliceOutcome]:
        return self._land(lake, client, kind, slices)

    async def _land(
        self, lake: AccountLake, client: SyncClient, kind: api.RecordType, slices: list[Window]
    ) -> AsyncIterator[SliceOutcome]:
        config: ClientConfig = client.config  # type: ignore[attr-defined]  # an OpentactClient's
        loop = asyncio.get_running_loop()
        waiting: dict[asyncio.Future[None], tuple[Any, list[Window]]] = {}
        try:
            with self._submitting():
                for share in shares(slices, self.share_size):
                    future = self.runner.submit(land_share, {
                        "lake": lake, "config": config, "kind": kind, "slices": share, "run_id": self.run_id,
                        "now": self.now, "settings": self.settings,
                    })
                    ended: asyncio.Future[None] = loop.create_future()
                    # Called on a thread of Dask's client when the task ends.
                    future.wrapped_future.add_done_callback(partial(_wake, loop, ended))
                    waiting[ended] = (future, share)
            while waiting:
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for ended in done:
                    future, share = waiting.pop(ended)
                    try:
                        result = await asyncio.to_thread(future.result, raise_on_failure=False)
                    except Exception as exc:  # the worker died, or the cluster went away
                        result = exc
                    if isinstance(result, ApiKeyRejected):
                        raise result
                    if isinstance(result, BaseException):
                        lost = _lost(lake, kind, share, result)
                        for slice_ in share:
                            yield SliceOutcome(kind, slice_, failure=slice_failure(kind, slice_, lost))
                        continue
                    for outcome in result:
                        yield outcome
        finally:
            for future, _ in waiting.values():
                future.wrapped_future.cancel()

    @contextmanager
    def _submitting(self) -> Iterator[None]:
        """While submitting: the run context shipped with each task names this API and holds no callables.

        Prefect sends the flow's and the parent task's parameters along, and a callable among
        them (the terminal's progress bar, this dispatch) can neither be pickled nor report back.
        """
        contexts = [c for c in (FlowRunContext.get(), TaskRunContext.get()) if c is not None and c.parameters]
        saved = [(context, context.parameters) for context in contexts]
        for context, parameters in saved:
            context.parameters = {name: value for name, value in parameters.items() if not callable(value)}
        try:
            with temporary_settings(updates={PREFECT_API_URL: self.api_url}):
                yield
        finally:
            for context, parameters in saved:
                context.parameters = parameters


class ClusterUnavailable(CdrError):
    """The Dask cluster of CDR_TASK_RUNNER=dask could not be started or reached: nothing was synced."""


class TaskLost(CdrError):
    """A share's task failed on the cluster as a whole (its worker died, the cluster could not run it)."""


def _lost(lake: AccountLake, kind: api.RecordType, share: list[Window], exc: BaseException) -> TaskLost:
    """A share's task that failed as a whole -> the one-line cause each of its slices fails with; the error logged once."""
    log.error(
        "the task landing %s %s of %s on the Dask cluster failed", kind, Window(share[0].start, share[-1].end),
        lake.account, exc_info=exc,
    )
    return TaskLost(f"its task on the Dask cluster failed: {type(exc).__name__}: {one_line(exc, first=True)}")


def _wake(loop: asyncio.AbstractEventLoop, ended: asyncio.Future[None], _: object) -> None:
    """On Dask's thread: tell the flow's event loop that a task ended (unless the run is over)."""
    try:
        loop.call_soon_threadsafe(lambda: ended.done() or ended.set_result(None))
    except RuntimeError:  # the loop has closed: a task cancelled as the run stopped
        pass
