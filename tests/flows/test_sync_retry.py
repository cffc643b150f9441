"""The sync task's retry condition: only failures of the moment are retried, bad input is reported at once."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from prefect.states import Failed

from pipelines.dates import Window
from pipelines.errors import CdrError
from pipelines.flows.sync import SyncIncomplete, _slices_failed, sync_records
from pipelines.sync import SliceFailure, SyncReport

UTC = timezone.utc
DAY1 = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC))
DAY2 = Window(datetime(2026, 10, 2, tzinfo=UTC), datetime(2026, 10, 3, tzinfo=UTC))
TRANSIENT = SliceFailure("cdrs", DAY1, "gave up on cdrs page 2 after 9 attempts; last: HTTP 503", retryable=True)
BROKEN = SliceFailure("cdrs", DAY2, "300 of 300 records malformed (more than 5%, ...)", retryable=False)


def incomplete(*failures: SliceFailure) -> SyncIncomplete:
    """The task's failure after a sync whose slices failed so."""
    return SyncIncomplete(SyncReport("run-1", datetime(2026, 10, 6, tzinfo=UTC), (), failures, 1.0))


@pytest.mark.parametrize(
    ("failure", "retried"),
    [
        (incomplete(TRANSIENT), True),
        (incomplete(TRANSIENT, SliceFailure("mdrs", DAY1, "HTTP 429 for a while", retryable=True)), True),
        (incomplete(BROKEN), False),
        (incomplete(TRANSIENT, BROKEN), False),  # the rerun could not finish the sync either
        (CdrError("sync state file state/cdrs/landed.json is corrupt"), False),
    ],
)
def test_only_a_sync_whose_every_failure_is_of_the_moment_is_retried(failure: Exception, retried: bool) -> None:
    assert _slices_failed(sync_records, None, Failed(data=failure)) is retried


def test_the_sync_task_retries_through_that_condition() -> None:
    assert (sync_records.retries, sync_records.retry_delay_seconds) == (2, [10, 60])
    assert sync_records.retry_condition_fn is _slices_failed


def test_a_retry_is_announced_with_its_wait_and_the_first_cause(caplog) -> None:
    for run_count, said in ((1, "tries again in 10 s (retry 1 of 2)"), (2, "tries again in 60 s (retry 2 of 2)")):
        caplog.clear()
        assert _slices_failed(sync_records, SimpleNamespace(run_count=run_count), Failed(data=incomplete(TRANSIENT)))
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings == [
            f"1 slice failed for the moment (first: cdrs {DAY1}: gave up on cdrs page 2 after 9 attempts; "
            f"last: HTTP 503); the sync {said}"
        ]
    caplog.clear()
    assert not _slices_failed(sync_records, SimpleNamespace(run_count=1), Failed(data=incomplete(BROKEN)))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_retry_of_many_accounts_names_a_few_of_them(caplog) -> None:
    # An outage of the API failing a reseller's 150 accounts for the moment: how many and a few names, not 150.
    from pipelines.flows.sync import AccountsIncomplete
    from pipelines.sync import AccountReport, AccountsReport

    report = SyncReport("run-1", datetime(2026, 10, 6, tzinfo=UTC), (), (TRANSIENT,), 1.0)
    accounts = AccountsReport("run-1", report.now, tuple(AccountReport(f"c{n:03d}", report) for n in range(150)), 1.0)
    assert _slices_failed(sync_records, SimpleNamespace(run_count=1), Failed(data=AccountsIncomplete(accounts)))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "150 accounts failed for the moment (c000, c001, c002, ...); the sync tries again in 10 s (retry 1 of 2)"
    ]
    # three or fewer, each named
    caplog.clear()
    accounts = AccountsReport("run-1", report.now, (AccountReport("acme", report), AccountReport("globex", report)), 1.0)
    assert _slices_failed(sync_records, SimpleNamespace(run_count=1), Failed(data=AccountsIncomplete(accounts)))
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "2 accounts failed for the moment (acme, globex); the sync tries again in 10 s (retry 1 of 2)"
    ]


def test_the_error_line_says_to_fix_what_is_named_first_unless_every_slice_failed_for_the_moment() -> None:
    # what a base URL with a path of its own gets: the same answer on every rerun until OPENTACT_BASE_URL is fixed
    wrong_path = SliceFailure(
        "cdrs", DAY2, "cdrs page 1 was refused by https://api.example.com (HTTP 404): not found; the base URL has a "
        "path after https://api.example.com, ...: check OPENTACT_BASE_URL (or the account's base_url)", retryable=False,
    )
    for failures, advice in (
        ((TRANSIENT,), "; run the sync again (landed slices are not redone)"),
        ((wrong_path,), "; fix what is named, then run the sync again (landed slices are not redone)"),
        ((TRANSIENT, BROKEN), "; fix what is named, then run the sync again (landed slices are not redone)"),
    ):
        line = str(incomplete(*failures))
        assert line.startswith(f"{len(failures)} slice") and line.endswith(advice), line
        assert line.count("run the sync again") == 1
