"""prefect.yaml: every entrypoint imports, every parameter is one its flow takes, crons state a zone."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from prefect.schedules import Cron

from pipelines.flows.serve import PROJECT_FILE, deployments, load_flow
from tests.fixtures.cli import CDR_ARGV

SPEC = yaml.safe_load(Path(PROJECT_FILE).read_text("utf-8"))


def test_the_schedules_people_rely_on_exist():
    names = {d["name"]: d for d in SPEC["deployments"]}
    assert names["nightly-sync"]["schedules"] == [{"cron": "30 2 * * *", "timezone": "UTC"}]
    assert names["monthly-finance"]["schedules"] == [{"cron": "0 6 1 * *", "timezone": "UTC"}]


@pytest.mark.parametrize("deployment", SPEC["deployments"], ids=lambda d: d["name"])
def test_entrypoint_imports_and_parameters_match_its_signature(deployment):
    flow = load_flow(deployment["entrypoint"])
    signature = inspect.signature(flow.fn)
    for name, value in (deployment.get("parameters") or {}).items():
        assert name in signature.parameters, f"{deployment['name']}: {flow.name} takes no parameter {name!r}"
        signature.bind_partial(**{name: value})
    for schedule in deployment["schedules"]:
        assert schedule["timezone"], "every cron states its time zone"
        Cron(schedule["cron"], timezone=schedule["timezone"])


def test_serve_builds_the_same_deployments_from_the_file():
    built = deployments()
    assert [d.name for d in built] == [d["name"] for d in SPEC["deployments"]]
    assert all(d.schedules for d in built)


@pytest.mark.slow
def test_ctrl_c_stops_cdr_serve_in_one_line(tmp_path):
    # At a terminal Ctrl-C reaches the whole process group: Prefect's temporary API server too,
    # so the served runner would spend a minute failing to reconnect, tracebacks and all.
    environment = {**os.environ, "CDR_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [*CDR_ARGV, "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        for line in proc.stdout:  # served once it says so
            if "being served" in line:
                break
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert (proc.returncode, stderr) == (130, "interrupted: the schedules stopped\n")


def test_cdr_serve_without_its_prefect_api_says_so_in_one_line(tmp_path):
    # An on-call engineer's PREFECT_API_URL naming a server that is down: one line, not Prefect's
    # hundred-line connection traceback.
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {
        **os.environ, "CDR_DATA_DIR": str(tmp_path / "data"), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
    }
    done = subprocess.run([*CDR_ARGV, "serve"], capture_output=True, text=True, env=environment, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("error: Prefect could not serve the schedules (ConnectError: ")
    assert done.stderr.count("\n") == 1 and "PREFECT_API_URL" in done.stderr


@pytest.mark.slow
def test_sigterm_to_cdr_serve_cancels_the_run_in_flight_so_the_next_one_can_start(prefect_harness, tmp_path):
    # `kill PID` (or `docker stop`) signals `cdr serve` alone while a nightly run is in flight. The runner
    # killed that run unreported: it stayed Running, holding its deployment's one concurrency slot, and every
    # later nightly run waited for that slot for good. Its run must end, cancelled, as Prefect's own shutdown does.
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    from pipelines.flows.sync import sync_flow
    from sandbox.testing import running_sandbox

    data_dir, key, now = str(tmp_path / "data"), "serve-stop-secret-key-7c1d", "2026-10-03T00:00:00Z"
    environment = {**os.environ, "OPENTACT_API_KEY": key, "OPENTACT_SETTLE_LAG_SECS": "0"}
    with running_sandbox(seed=3, start="2026-10-01", calls_per_day=50, messages_per_day=10, api_key=key, now=now) as url:
        with pytest.MonkeyPatch.context() as patch:  # a first sync: the nightly run continues from it
            for name in ("OPENTACT_API_KEY", "OPENTACT_SETTLE_LAG_SECS"):
                patch.setenv(name, environment[name])
            patch.setenv("OPENTACT_BASE_URL", url)
            asyncio.run(sync_flow(start="2026-10-01", end="2026-10-02", now=now, data_dir=data_dir))
    with socket.socket() as silent:  # an API that takes the connection and never answers: the run stays in flight
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        environment |= {
            "CDR_DATA_DIR": data_dir, "OPENTACT_BASE_URL": f"http://127.0.0.1:{silent.getsockname()[1]}",
            "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_RUNNER_POLL_FREQUENCY": "1", "PYTHONUNBUFFERED": "1",
        }
        errors = (tmp_path / "stderr").open("w")
        proc = subprocess.Popen(
            [*CDR_ARGV, "serve"], stdout=subprocess.PIPE, stderr=errors, text=True, env=environment,
            start_new_session=True,
        )
        try:
            for line in proc.stdout:
                if "being served" in line:
                    break
            run = run_deployment("cdr-nightly/nightly-sync", timeout=0)
            assert _state_of(run.id, lambda state: state.is_running(), 90).is_running()
            proc.send_signal(signal.SIGTERM)  # the command alone, not its process group
            assert proc.wait(timeout=60) == 143
            assert _state_of(run.id, lambda state: state.is_final(), 30).is_cancelled()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            errors.close()
    # The run's process ends quietly: not asyncio's account of the signal (a traceback of some 75 lines)
    # nor the top run "Finished in state Running()", the state it left to the runner.
    stderr = (tmp_path / "stderr").read_text()
    assert "TerminationSignal" not in stderr and "Finished in state Running()" not in stderr, stderr


def test_a_run_stopped_by_a_signal_ends_without_asyncio_or_prefect_noise(caplog):
    from prefect.exceptions import TerminationSignal

    import pipelines.flows  # noqa: F401 - installs the filters, as every process running a flow does

    def shutdown_of(error):  # as asyncio.run() reports a task that ended in `error` while it shut down
        loop = asyncio.new_event_loop()
        try:
            loop.call_exception_handler(
                {"message": "unhandled exception during asyncio.run() shutdown", "exception": error}
            )
        finally:
            loop.close()

    def finished_running(error):  # as Prefect logs the top run's end while `error` unwinds it
        try:
            raise error
        finally:
            logging.getLogger("prefect.flow_runs").error("Finished in state Running()", extra={"send_to_api": False})

    with caplog.at_level(logging.ERROR):
        shutdown_of(TerminationSignal(signal.SIGTERM))
        with contextlib.suppress(TerminationSignal):
            finished_running(TerminationSignal(signal.SIGTERM))
        assert caplog.records == []
        # A genuine error keeps its record and traceback; so does the same line without the signal.
        shutdown_of(RuntimeError("a real bug"))
        with contextlib.suppress(RuntimeError):
            finished_running(RuntimeError("a real bug"))
    bug, running = caplog.records
    assert bug.name == "asyncio" and isinstance(bug.exc_info[1], RuntimeError)
    assert running.getMessage() == "Finished in state Running()"


def _state_of(run_id, wanted, within_secs):
    """A flow run's state once `wanted(state)` holds, or when `within_secs` have passed."""
    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            return (await client.read_flow_run(run_id)).state

    deadline = time.monotonic() + within_secs
    while not wanted(state := asyncio.run(read())) and time.monotonic() < deadline:
        time.sleep(0.5)
    return state
