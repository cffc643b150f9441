"""`cdr sandbox ...`: serve or export the deterministic synthetic Opentact world.

One server can hold several accounts: the i-th `--api-key` (from 0) sees the world of
seed `--seed + i`, with its own records, ids, usage and faults (the first key's world is
the one-key server's). `export --api-key KEY --served-key ...` writes one account's truth.
"""

from __future__ import annotations

from pathlib import Path

import typer

ANOMALIES_HELP = (
    "JSON array of known incidents to add on top of the normal world "
    "(cost_spike, irsf, short_call_burst, asr_drop, sms_pumping, delivery_failure)."
)

API_KEY_HELP = (
    "The Bearer key clients must send (never printed). Give it several times to serve several "
    "accounts: the i-th key (from 0) sees its own world, seeded --seed + i."
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
    api_key: list[str] = typer.Option(..., metavar="<key>", help=API_KEY_HELP),
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
    keys = _served_keys(api_key, "--api-key")
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
    from sandbox.server import Account, SandboxApp, base_url, bind
    from sandbox.server import serve as run_server
    from sandbox.world import World

    clock = make_clock(pinned, live)
    # Worlds generate their days on demand: an account nobody asks for costs next to nothing.
    accounts = [
        Account(
            key,
            World(
                seed=seed + index, start=first_day, calls_per_day=calls_per_day,
                messages_per_day=messages_per_day, rerate_rate=rerate_rate, malformed_rate=malformed_rate,
                anomalies=incidents,
            ),
            Faults(FaultConfig(seed=seed + index, fail_rate=fail_rate, drop_rate=drop_rate,
                               latency_ms=latency_ms, rate_limit=rate_limit)),
            pinned=clock.pinned,
        )
        for index, key in enumerate(keys)
    ]
    app_ = SandboxApp(accounts, clock=clock)
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
    api_key: list[str] = typer.Option(
        [], metavar="<key>", help="The account whose truth to write: one of the --served-key keys (default: the first)."
    ),
    served_key: list[str] = typer.Option(
        [], metavar="<key>",
        help="The --api-key values given to serve, in their order (repeat it); default: --api-key alone.",
    ),
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
    index = _account_index(api_key, served_key)
    incidents = () if anomalies is None else load_anomalies(anomalies)
    # One day at a time is all an export needs: memory stays flat over any window.
    world = World(
        seed=seed + index, start=first_day, calls_per_day=calls_per_day, messages_per_day=messages_per_day,
        rerate_rate=rerate_rate, malformed_rate=malformed_rate, cache_days=1, anomalies=incidents,
    )
    counts = export_window(world, moments["--now"], moments["--window-start"], moments["--window-end"], out)
    typer.echo(
        f"wrote {counts['cdrs']} cdrs, {counts['mdrs']} mdrs and {counts['malformed']} malformed records to {out}"
    )


def _served_keys(keys: list[str], flag: str) -> list[str]:
    """The keys of a server's accounts, in order; UsageError (never showing a key) when unusable."""
    from pipelines.errors import UsageError

    many = len(keys) > 1
    seen: dict[str, int] = {}
    for index, key in enumerate(keys):
        if not key.strip():
            raise UsageError(f"{flag} must not be empty" + (f" (the key at position {index}, from 0)" if many else ""))
        if key in seen:
            raise UsageError(
                f"{flag}: the keys at positions {seen[key]} and {index} (from 0) are the same; "
                "each account needs its own key"
            )
        seen[key] = index
    return keys


def _account_index(api_key: list[str], served_key: list[str]) -> int:
    """export's --api-key and --served-key -> the account's position among the served keys (0 by default)."""
    from pipelines.errors import UsageError

    if len(api_key) > 1:
        raise UsageError(
            "export takes one --api-key (the account to write); list the server's keys with --served-key"
        )
    served = _served_keys(served_key or api_key, "--served-key" if served_key else "--api-key")
    if not api_key:
        return 0
    if not api_key[0].strip():
        raise UsageError("--api-key must not be empty")
    if api_key[0] not in served:
        raise UsageError("--api-key is not one of the --served-key keys (a server with them answers it 401)")
    return served.index(api_key[0])
