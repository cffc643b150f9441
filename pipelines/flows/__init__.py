"""Prefect flows: the only package that imports prefect. Tasks wrap one call each; flows wire tasks."""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

from prefect.exceptions import TerminationSignal

from pipelines.errors import expected_failure


class ExpectedFailureWithoutTraceback(logging.Filter):
    """Prefect logs a failed run's exception with its traceback, in the run's log and on the terminal of the
    worker or `cdr serve` running it. For an expected error (a CdrError: a rejected key, a slice that kept
    failing) the message names the cause and what to do; the frames are noise, so they go. Anything else
    (a bug) keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = expected_failure(record)
        if error is not None and record.exc_info:
            record.cdr_error = error  # `cdr sync` still knows it for one it reports itself
            record.exc_info = record.exc_text = None
        return True


class StoppedRunShutdown(logging.Filter):
    """A run stopped from outside (`cdr serve` or a worker stopping, a cancellation) ends its process with
    Prefect's TerminationSignal. asyncio then logs it as an unhandled exception of its shutdown, traceback and
    all, and Prefect logs the top run "Finished in state Running()" at ERROR: the state it leaves to the
    runner, which records the real one (Cancelled). Both go; any other error, asyncio's included, stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "asyncio":
            return not (record.exc_info and isinstance(record.exc_info[1], TerminationSignal))
        # Logged while the signal unwinds the run: the exception in flight is the signal.
        return not (
            record.getMessage().startswith("Finished in state Running(")
            and isinstance(sys.exc_info()[1], TerminationSignal)
        )


# On the loggers themselves (Prefect's logging configuration keeps a logger's filters): every process running a
# flow imports this package (its flows live here).
for _name in ("prefect.flow_runs", "prefect.task_runs"):
    logging.getLogger(_name).addFilter(ExpectedFailureWithoutTraceback())
for _name in ("prefect.flow_runs", "asyncio"):
    logging.getLogger(_name).addFilter(StoppedRunShutdown())


def run_arguments(function: Callable[..., Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """A run's parameters (perhaps only those given) -> every parameter of the flow's function, defaults filled in.

    For a flow's run name, worked out before its function is called.
    """
    bound = inspect.signature(function).bind_partial(**parameters)
    bound.apply_defaults()
    return dict(bound.arguments)
