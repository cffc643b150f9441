"""`cdr sync` reports a failed flow once, as its own line: Prefect's copy of the failure is dropped."""

from __future__ import annotations

import logging
import sys

import pytest

from pipelines.console import failures_told_by_command
from pipelines.errors import CdrError


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _exc_info(exc: BaseException):
    try:
        raise exc
    except BaseException:
        return sys.exc_info()


@pytest.fixture
def flow_log():
    # Prefect's own handlers (its API handler among them) are set aside: only what passes the
    # logger's filters reaches the collector.
    logger = logging.getLogger("prefect.flow_runs")
    collect, handlers, level, propagate = _Collect(), logger.handlers[:], logger.level, logger.propagate
    logger.handlers = [collect]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, collect.messages
    logger.handlers = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def test_prefects_account_of_an_expected_failure_is_dropped_inside_the_block(flow_log) -> None:
    logger, messages = flow_log
    with failures_told_by_command():
        logger.error("Encountered exception during execution:", exc_info=_exc_info(CdrError("API key rejected (401)")))
        logger.error("Finished in state Failed('Flow run encountered an exception: ApiKeyRejected: ...')")
        logger.warning("retrying cdrs page 1 in 0.2s")
        logger.error("Encountered exception during execution:", exc_info=_exc_info(ZeroDivisionError("a bug")))
    assert messages == ["retrying cdrs page 1 in 0.2s", "Encountered exception during execution:"]


def test_outside_the_block_prefect_reports_everything(flow_log) -> None:
    logger, messages = flow_log
    with failures_told_by_command():
        pass
    logger.error("Finished in state Failed('x')")
    logger.error("Encountered exception during execution:", exc_info=_exc_info(CdrError("no")))
    assert messages == ["Finished in state Failed('x')", "Encountered exception during execution:"]
