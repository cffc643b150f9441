"""The sandbox's faults over a real socket: each one on demand, and reproducible for a seed.

Outcomes are read with a raw socket, so a reset, a truncated body and a complete response
are told apart exactly; the expected outcome of every request comes from the pure
function `sandbox.faults.decide`, which the server must follow whatever the arrival order.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import httpx
import orjson
import pytest

from sandbox.faults import FaultConfig, decide
from sandbox.query import canonical_query
from sandbox.testing import TEST_API_KEY, running_sandbox

SEED = 5
PATH = "/v2/reports/cdrs"
FAULTY = {"seed": SEED, "now": "2026-10-10T00:00:00Z", "calls_per_day": 100, "messages_per_day": 20,
          "fail_rate": 0.3, "drop_rate": 0.3, "latency_ms": 120}
CONFIG = FaultConfig(seed=SEED, fail_rate=0.3, drop_rate=0.3)


@dataclass(frozen=True)
class Outcome:
    """What a client saw: a reset, a truncated body, or a complete response."""

    kind: str
    status: int | None = None
    headers: dict[str, str] | None = None
    body: bytes = b""


def fetch(base_url: str, target: str, key: str = TEST_API_KEY) -> Outcome:
    """One GET over a fresh connection, classified byte by byte."""
    address = urlsplit(base_url)
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {address.netloc}\r\nAuthorization: Bearer {key}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    data = b""
    with socket.create_connection((address.hostname, address.port), timeout=60) as conn:
        conn.sendall(request)
        try:
            while chunk := conn.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    if not data:
        return Outcome("reset")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    status = int(lines[0].split()[1])
    kind = "complete" if len(body) == int(headers["content-length"]) else "truncated"
    assert len(body) <= int(headers["content-length"])
    return Outcome(kind, status, headers, body)


def fetch_many(base_url: str, targets: list[str], key: str = TEST_API_KEY) -> list[Outcome]:
    """GET several targets concurrently (arrival order does not matter to the faults)."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda t: fetch(base_url, t, key), targets))


def target(**params: str) -> str:
    return f"{PATH}?{urlencode(params)}"


def predicted(url_target: str, nth: int, config: FaultConfig = CONFIG) -> tuple[str, int]:
    """The outcome kind and status `decide` gives the nth sighting of a request."""
    path, _, query = url_target.partition("?")
    draw = decide(config, f"{path}?{canonical_query(query)}", nth)
    status = draw.fail_status or 200
    if draw.drop == "reset":
        return "reset", 0
    return ("truncated" if draw.drop == "truncate" else "complete"), status


def seen(outcome: Outcome) -> tuple[str, int]:
    return outcome.kind, outcome.status or 0


@pytest.fixture(scope="module")
def faulty() -> str:
    with running_sandbox(**FAULTY) as url:
        yield url


def test_faults_follow_the_seeded_draws_whatever_the_arrival_order(faulty: str) -> None:
    targets = [target(**{"page[number]": str(n), "page[size]": "5"}) for n in range(1, 61)]
    outcomes = fetch_many(faulty, targets)
    assert [seen(o) for o in outcomes] == [predicted(t, 0) for t in targets]
    kinds = {seen(o) for o in outcomes}
    # Every fault shows up in this sample: 500, 502, 503, resets, truncations, successes.
    assert {("complete", 500), ("complete", 502), ("complete", 503), ("reset", 0), ("complete", 200)} <= kinds
    assert any(kind == "truncated" for kind, _ in kinds)


def test_retrying_a_url_meets_fresh_draws(faulty: str) -> None:
    url_target = target(**{"page[size]": "7", "filter[direction]": "inbound"})
    outcomes = [seen(fetch(faulty, url_target)) for _ in range(12)]
    assert outcomes == [predicted(url_target, nth) for nth in range(12)]
    assert len(set(outcomes)) > 1


def test_injected_failures_carry_error_bodies(faulty: str) -> None:
    targets = [target(**{"page[number]": str(n), "page[size]": "6"}) for n in range(1, 41)]
    failures = [o for o in fetch_many(faulty, targets) if o.kind == "complete" and o.status != 200]
    assert failures
    for outcome in failures:
        error = orjson.loads(outcome.body)["errors"][0]
        assert outcome.headers["content-type"] == "application/json"
        assert error["code"] == {500: "10500", 502: "10502", 503: "10503"}[outcome.status]
        assert error["title"] and error["detail"]


def test_a_truncated_body_is_a_prefix_of_the_full_body_it_announces(faulty: str) -> None:
    truncated = None
    for n in range(1, 200):
        url_target = target(**{"page[number]": str(n), "page[size]": "8"})
        if predicted(url_target, 0) == ("truncated", 200):
            truncated = fetch(faulty, url_target)
            break
    assert truncated is not None and truncated.kind == "truncated"
    nth = 1
    while predicted(url_target, nth) != ("complete", 200):
        fetch(faulty, url_target)
        nth += 1
    complete = fetch(faulty, url_target)
    assert complete.kind == "complete"
    assert int(truncated.headers["content-length"]) == len(complete.body) > len(truncated.body)
    assert complete.body.startswith(truncated.body)


def test_latency_delays_every_response(faulty: str) -> None:
    started = time.monotonic()
    response = httpx.get(faulty + "/nowhere")
    assert response.status_code == 404
    # A lower bound only: the added delay is the fault, any extra is the machine.
    assert time.monotonic() - started >= FAULTY["latency_ms"] / 1000


def test_the_same_seed_gives_the_same_faults_and_another_seed_others(faulty: str) -> None:
    targets = [target(**{"page[number]": str(n), "page[size]": "9"}) for n in range(1, 31)]
    first = [seen(o) for o in fetch_many(faulty, targets)]
    with running_sandbox(**FAULTY) as again:
        assert [seen(o) for o in fetch_many(again, targets)] == first
    with running_sandbox(**{**FAULTY, "seed": SEED + 1}) as other:
        assert [seen(o) for o in fetch_many(other, targets)] != first


def test_faults_spare_requests_without_a_valid_key(faulty: str) -> None:
    outcomes = fetch_many(faulty, [target(**{"page[number]": str(n)}) for n in range(1, 21)], key="wrong")
    assert {seen(o) for o in outcomes} == {("complete", 401)}


# --- rate limiting ---------------------------------------------------------------------

LIMIT = 3


@pytest.fixture(scope="module")
def limited() -> str:
    with running_sandbox(seed=SEED, now="2026-10-10T00:00:00Z", calls_per_day=50, messages_per_day=10, rate_limit=LIMIT) as url:
        yield url


def test_over_the_rate_limit_is_429_with_and_without_retry_after(limited: str) -> None:
    config = FaultConfig(seed=SEED, rate_limit=LIMIT)
    responses = []
    with httpx.Client(base_url=limited, headers={"Authorization": f"Bearer {TEST_API_KEY}"}) as http:
        started = time.monotonic()
        for n in range(1, 41):
            params = {"page[number]": str(n), "page[size]": "3"}
            responses.append((params, http.get(PATH, params=params)))
        elapsed = time.monotonic() - started
    ok = [r for _, r in responses if r.status_code == 200]
    limited_ = [(p, r) for p, r in responses if r.status_code == 429]
    assert len(ok) + len(limited_) == len(responses)
    # At most LIMIT per one-second window, and the windows this burst can span.
    assert LIMIT <= len(ok) <= LIMIT * (int(elapsed) + 2)
    with_retry_after = without = 0
    for params, response in limited_:
        error = response.json()["errors"][0]
        assert error["code"] == "10029" and error["title"] == "Too Many Requests"
        assert response.headers["x-ratelimit-limit"] == str(LIMIT)
        assert response.headers["x-ratelimit-remaining"] == "0"
        assert int(response.headers["x-ratelimit-reset"]) >= 1
        draw = decide(config, f"{PATH}?{canonical_query(urlencode(params))}", 0)
        assert ("retry-after" in response.headers) is not draw.omit_retry_after
        if draw.omit_retry_after:
            without += 1
        else:
            with_retry_after += 1
            assert int(response.headers["retry-after"]) >= 1
    assert with_retry_after and without
    for _, response in responses:
        assert response.headers["x-ratelimit-limit"] == str(LIMIT)
        assert 0 <= int(response.headers["x-ratelimit-remaining"]) < LIMIT


def test_the_rate_limit_window_resets_after_a_second(limited: str) -> None:
    with httpx.Client(base_url=limited, headers={"Authorization": f"Bearer {TEST_API_KEY}"}) as http:
        while http.get(PATH, params={"page[size]": "2"}).status_code != 429:
            pass
        time.sleep(1.05)
        fresh = http.get(PATH, params={"page[size]": "2"})
    assert fresh.status_code == 200
    assert int(fresh.headers["x-ratelimit-remaining"]) == LIMIT - 1
