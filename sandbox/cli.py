"""`cdr sandbox ...`: serve or export the deterministic synthetic Opentact world."""

from __future__ import annotations

from pathlib import Path

import typer

ANOMALIES_HELP = (
    "JSON array of known incidents to add on top of the normal world "
    "(cost_spike, irsf, short_call_burst, asr_drop, sms_pumping, delivery_failure)."
)

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


class _OneLineErrors(typer.core.TyperCommand):
    """A command whose bad arguments become one `error:` line and exit 2 (not a usage block)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        """Parse as usual; a parse error becomes a UsageError the cdr entry point prints as one line."""
        from pipelines.errors import UsageError

        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as exc:
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            raise UsageError(f"cdr sandbox {ctx.info_name}: {message}") from None


@app.command(cls=_OneLineErrors)
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (loopback)."),
    port: int = typer.Option(0, help="TCP port; 0 picks a free one (the printed URL has it)."),
    seed: int = typer.Option(..., help="World seed: same seed, same records and faults."),
    start: str = typer.Option(..., help="First day of records, YYYY-MM-DD (UTC)."),
    calls_per_day: int = typer.Option(..., help="Average call legs per day."),
    messages_per_day: int = typer.Option(..., help="Average messages per day."),
    api_key: str = typer.Option(..., help="The Bearer key clients must send (never printed)."),
    now: str | None = typer.Option(None, help="Pin the clock at this instant (any API date-time form)."),
    live: bool = typer.Option(False, "--live", help="With --now: start there and advance in real time."),
    fail_rate: float = typer.Option(0.0, help="Share of requests answered 500/502/503."),
    rate_limit: int | None = typer.Option(None, help="Requests per second per key; beyond it 429."),
    latency_ms: int = typer.Option(0, help="Delay added to every response, in milliseconds."),
    drop_rate: float = typer.Option(0.0, help="Share of responses dropped (reset, or truncated body)."),
    rerate_rate: float = typer.Option(0.0, help="Share of records re-rated within 3 days."),
    malformed_rate: float = typer.Option(0.0, help="Share of records served malformed."),
    anomalies: Path | None = typer.Option(None, help=ANOMALIES_HELP),
) -> None:
    """Serve the Reports API on loopback; prints its base URL when ready, runs until stopped."""
    import re
    import sys
    from datetime import date

    from pipelines.dates import parse_datetime
    from pipelines.errors import CdrError, UsageError

    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", start):
        raise UsageError(f"--start must be a date YYYY-MM-DD, got {start!r}")
    try:
        first_day = date.fromisoformat(start)
    except ValueError as exc:
        raise UsageError(f"--start {start!r} is not a calendar date ({exc})") from None
    pinned = None
    if now is not None:
        try:
            pinned = parse_datetime(now)
        except ValueError as exc:
            raise UsageError(f"--now: {exc}") from None
    if live and pinned is None:
        raise UsageError("--live needs --now (the instant the live clock starts from)")
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {port}")
    if not api_key.strip():
        raise UsageError("--api-key must not be empty")
    for flag, value in (("--fail-rate", fail_rate), ("--drop-rate", drop_rate)):
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"{flag} must be a fraction between 0 and 1, got {value}")
    if latency_ms < 0:
        raise UsageError(f"--latency-ms must be >= 0, got {latency_ms}")
    if rate_limit is not None and rate_limit < 1:
        raise UsageError(f"--rate-limit must be at least 1 request per second, got {rate_limit}")
    from sandbox.anomalies import load_anomalies

    incidents = () if anomalies is None else load_anomalies(anomalies)

    # The heavy imports (polars, numpy, uvicorn) only once the arguments are known good.
    from sandbox.clock import make_clock
    from sandbox.faults import FaultConfig, Faults
    from sandbox.server import SandboxApp, base_url, bind
    from sandbox.server import serve as run_server
    from sandbox.world import World

    world = World(
        seed=seed, start=first_day, calls_per_day=calls_per_day, messages_per_day=messages_per_day,
        rerate_rate=rerate_rate, malformed_rate=malformed_rate, anomalies=incidents,
    )
    faults = Faults(FaultConfig(seed=seed, fail_rate=fail_rate, drop_rate=drop_rate,
                                latency_ms=latency_ms, rate_limit=rate_limit))
    app_ = SandboxApp(world, api_key=api_key, clock=make_clock(pinned, live), faults=faults)
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise CdrError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    url = base_url(sock)

    def announce() -> None:
        # The one line on stdout: callers (tests, benches, scripts) wait for it.
        sys.stdout.write(url + "\n")
        sys.stdout.flush()

    run_server(app_, sock, announce)


@app.command(cls=_OneLineErrors)
def export(
    seed: int = typer.Option(..., help="World seed (as given to serve)."),
    start: str = typer.Option(..., help="First day of records, YYYY-MM-DD (UTC)."),
    calls_per_day: int = typer.Option(..., help="Average call legs per day."),
    messages_per_day: int = typer.Option(..., help="Average messages per day."),
    now: str = typer.Option(..., help="The clock: records created before it, in their state then."),
    rerate_rate: float = typer.Option(0.0, help="Share of records re-rated within 3 days."),
    malformed_rate: float = typer.Option(0.0, help="Share of records served malformed."),
    anomalies: Path | None = typer.Option(None, help=ANOMALIES_HELP),
    window_start: str = typer.Option(..., help="Window start (inclusive), any API date-time form."),
    window_end: str = typer.Option(..., help="Window end (exclusive), any API date-time form."),
    out: Path = typer.Option(..., help="Directory for cdrs.jsonl, mdrs.jsonl and malformed.jsonl."),
) -> None:
    """Write the window's records as served (the ground truth) to DIR/{cdrs,mdrs,malformed}.jsonl."""
    import re
    from datetime import date

    from pipelines.dates import parse_datetime
    from pipelines.errors import UsageError
    from sandbox.anomalies import load_anomalies
    from sandbox.export import export_window
    from sandbox.world import World

    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", start):
        raise UsageError(f"--start must be a date YYYY-MM-DD, got {start!r}")
    try:
        first_day = date.fromisoformat(start)
    except ValueError as exc:
        raise UsageError(f"--start {start!r} is not a calendar date ({exc})") from None
    moments = {}
    for flag, text in (("--now", now), ("--window-start", window_start), ("--window-end", window_end)):
        try:
            moments[flag] = parse_datetime(text)
        except ValueError as exc:
            raise UsageError(f"{flag}: {exc}") from None
    incidents = () if anomalies is None else load_anomalies(anomalies)
    # One day at a time is all an export needs: memory stays flat over any window.
    world = World(
        seed=seed, start=first_day, calls_per_day=calls_per_day, messages_per_day=messages_per_day,
        rerate_rate=rerate_rate, malformed_rate=malformed_rate, cache_days=1, anomalies=incidents,
    )
    counts = export_window(world, moments["--now"], moments["--window-start"], moments["--window-end"], out)
    typer.echo(
        f"wrote {counts['cdrs']} cdrs, {counts['mdrs']} mdrs and {counts['malformed']} malformed records to {out}"
    )
