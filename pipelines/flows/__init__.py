"""Prefect flows: the only package that imports prefect. Tasks wrap one call each; flows wire tasks."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

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


# On Prefect's run loggers, whose configuration keeps a logger's filters: every process running a flow imports
# this package (its flows live here).
for _name in ("prefect.flow_runs", "prefect.task_runs"):
    logging.getLogger(_name).addFilter(ExpectedFailureWithoutTraceback())


def run_arguments(function: Callable[..., Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """A run's parameters (perhaps only those given) -> every parameter of the flow's function, defaults filled in.

    For a flow's run name, worked out before its function is called.
    """
    bound = inspect.signature(function).bind_partial(**parameters)
    bound.apply_defaults()
    return dict(bound.arguments)
