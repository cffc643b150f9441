"""CDR_TASK_RUNNER, CDR_DASK_WORKERS and CDR_DASK_ADDRESS: read, refused in one line, named by the sync's summary."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pipelines.dates import Window
from pipelines.errors import UsageError
from pipelines.settings import Settings
from pipelines.summary import (
    accounts_lines, accounts_markdown, accounts_result, sync_lines, sync_markdown, sync_result, task_runner_label,
)
from pipelines.sync import AccountReport, AccountsReport, DayReport, KindReport, SyncReport
from tests.fixtures.cli import run_cdr


def test_the_default_runs_in_this_process() -> None:
    settings = Settings()
    assert (settings.task_runner, settings.dask_workers, settings.dask_address) == ("thread", 2, None)


GOOD = [
    ({"CDR_TASK_RUNNER": "dask"}, ("dask", 2, None), "dask, 2 workers"),
    ({"CDR_TASK_RUNNER": " Dask ", "CDR_DASK_WORKERS": "1"}, ("dask", 1, None), "dask, 1 worker"),
    ({"CDR_TASK_RUNNER": "dask", "CDR_DASK_ADDRESS": "tcp://10.0.0.5:8786"}, ("dask", 2, "tcp://10.0.0.5:8786"),
     "dask, the cluster at tcp://10.0.0.5:8786"),
    ({"CDR_TASK_RUNNER": "dask", "CDR_DASK_ADDRESS": " tcp://[::1]:8786"}, ("dask", 2, "tcp://[::1]:8786"),
     "dask, the cluster at tcp://[::1]:8786"),
    ({"CDR_TASK_RUNNER": "thread", "CDR_DASK_WORKERS": "8"}, ("thread", 8, None), "in-process"),
]


@pytest.mark.parametrize(("environment", "read", "label"), GOOD)
def test_good_values_are_read(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], read: tuple, label: str) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert (settings.task_runner, settings.dask_workers, settings.dask_address) == read


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("CDR_TASK_RUNNER", "process", "thread (in this process, the default) or dask (on a Dask cluster)"),
        ("CDR_TASK_RUNNER", "prefect-dask", "thread (in this process, the default) or dask (on a Dask cluster)"),
        ("CDR_DASK_WORKERS", "0", "a whole number from 1 to 256"),
        ("CDR_DASK_WORKERS", "-2", "a whole number from 1 to 256"),
        ("CDR_DASK_WORKERS", "two", "a whole number from 1 to 256"),
        *[
            ("CDR_DASK_ADDRESS", address, "a Dask scheduler's address, tcp://host:port such as tcp://10.0.0.5:8786")
            for address in ("localhost:8786", "tcp://scheduler", "tcp://:8786", "tcp://h:99999", "tcp://h:port",
                            "tls://h:8786", "http://h:8786", "tcp://h:8786/x", "tcp://u@h:8786")
        ],
    ],
)
def test_a_bad_value_is_one_line_naming_variable_value_and_what_is_allowed(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, allowed: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(UsageError) as refused:
        Settings()
    assert str(refused.value) == f"{name}={value} is not allowed: {allowed}"


@pytest.mark.parametrize(("name", "value"), [("CDR_TASK_RUNNER", "process"), ("CDR_DASK_ADDRESS", "localhost:8786")])
def test_cdr_sync_refuses_a_bad_value_before_touching_the_data_dir(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path, name: str, value: str
) -> None:
    monkeypatch.setenv("OPENTACT_API_KEY", "k")
    monkeypatch.setenv(name, value)
    data = tmp_path / "data"
    code, out, err = run_cdr(capsys, monkeypatch, "sync", "--range", "today", "--data-dir", str(data))
    assert code == 2 and out == "" and not data.exists()
    assert err.startswith(f"error: {name}={value} is not allowed: ") and err.count("\n") == 1, err


WINDOW = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC))
KIND = KindReport(
    kind="cdrs", window=WINDOW, slices=1, skipped=0, landed=1, records=3, completed=True,
    days=(DayReport(day=date(2026, 10, 1), new=3),),
)
REPORT = SyncReport("r1", WINDOW.end, (KIND,), (), 1.5)


def test_the_summary_names_the_task_runner_once() -> None:
    assert sync_lines(REPORT)[-1] == "task runner: in-process"
    assert sync_lines(REPORT, runner="dask, 2 workers")[-1] == "task runner: dask, 2 workers"
    assert "- task runner: dask, 2 workers\n" in sync_markdown(REPORT, runner="dask, 2 workers")
    assert sync_result(REPORT, runner="dask, 2 workers")["task_runner"] == "dask, 2 workers"

    several = AccountsReport("r1", WINDOW.end, (AccountReport("acme", REPORT), AccountReport("hooli", REPORT)), 2.0)
    lines = accounts_lines(several, runner="dask, 2 workers")
    assert [line for line in lines if "task runner" in line] == ["task runner: dask, 2 workers"]
    assert accounts_markdown(several, runner="dask, 2 workers").count("task runner: ") == 1
    result = accounts_result(several, runner="dask, 2 workers")
    assert result["task_runner"] == "dask, 2 workers" and "task_runner" not in result["accounts"]["acme"]


@pytest.mark.parametrize(("environment", "read", "label"), GOOD)
def test_the_summary_names_where_the_slices_ran(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], read: tuple, label: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert task_runner_label(Settings()) == label
