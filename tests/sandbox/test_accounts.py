"""Several accounts on one sandbox: the i-th API key sees its own world, seeded --seed + i.

Three servers of the same seed, faults and anomalies, serving three, two and one key: each
key's listing is exactly its own export, the worlds share no ids, and the first key's
world and faults are, byte for byte, those of the one-key server. Unknown keys get 401,
`cdr sandbox export --api-key KEY` writes that key's world, and bad keys are one line.
"""

from __future__ import annotations

import subprocess
from contextlib import ExitStack
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import pytest

from pipelines.dates import format_utc
from sandbox.anomalies import load_anomalies
from sandbox.export import export_window
from sandbox.faults import FAIL_STATUSES, FaultConfig, decide
from sandbox.query import canonical_query
from sandbox.testing import running_sandbox, serve_command
from sandbox.world import World
from tests.fixtures.cli import run_cdr

SEED = 21
START = date(2026, 10, 1)
NOW = datetime(2026, 10, 6, 12, tzinfo=UTC)
WINDOW_START = datetime(2026, 10, 1, tzinfo=UTC)
KEYS = ("acme-key-0", "globex-key-1", "initech-key-2")
WORLD = {"seed": SEED, "calls_per_day": 60, "messages_per_day": 30, "rerate_rate": 0.3}
FAIL_RATE = 0.2
# LV has no normal traffic: every LV call is the incident's.
IRSF_CALLS = 15
ITEMS = [{"kind": "irsf", "start": "2026-10-03T20:00Z", "end": "2026-10-04T02:00Z", "country_code": "LV",
          "calls": IRSF_CALLS}]
CDRS, MDRS, USAGE = "/v2/reports/cdrs", "/v2/reports/mdrs", "/v2/reports/usage"
WINDOW = {"filter[created_at][gte]": format_utc(WINDOW_START), "filter[created_at][lt]": format_utc(NOW)}
EXPORT_ARGS = (
    "sandbox", "export", "--seed", str(SEED), "--start", START.isoformat(), "--calls-per-day", "60",
    "--messages-per-day", "30", "--rerate-rate", "0.3", "--now", format_utc(NOW),
    "--window-start", format_utc(WINDOW_START), "--window-end", format_utc(NOW),
)
SERVERS = {"three": list(KEYS), "two": list(KEYS[:2]), "one": KEYS[0]}


@pytest.fixture(scope="module")
def anomalies_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("anomalies") / "incidents.json"
    path.write_bytes(orjson.dumps(ITEMS))
    return path


@pytest.fixture(scope="module")
def urls(anomalies_file: Path) -> dict[str, str]:
    """Base URL per server: the same world options, three, two and one keys."""
    options = {"start": START.isoformat(), "now": format_utc(NOW), "fail_rate": FAIL_RATE,
               "anomalies": anomalies_file, **WORLD}
    with ExitStack() as stack:
        yield {name: stack.enter_context(running_sandbox(api_key=keys, **options)) for name, keys in SERVERS.items()}


@pytest.fixture(scope="module")
def exports(anomalies_file: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The export of world i (seed SEED + i), for each key's position i."""
    outs = []
    for index in range(len(KEYS)):
        out = tmp_path_factory.mktemp(f"export{index}")
        world = World(start=START, cache_days=1, anomalies=load_anomalies(anomalies_file),
                      **{**WORLD, "seed": SEED + index})
        export_window(world, NOW, WINDOW_START, NOW, out)
        outs.append(out)
    return outs


def exported(out: Path, kind: str) -> list[dict]:
    return [orjson.loads(line) for line in (out / f"{kind}.jsonl").read_text(encoding="utf-8").splitlines()]


def attempts(url: str, key: str, path: str, params: dict[str, str]) -> list[httpx.Response]:
    """GET until the injected 5xx stop: every response, the good one last."""
    seen = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        for _ in range(40):
            seen.append(http.get(path, params=params))
            if seen[-1].status_code not in FAIL_STATUSES:
                return seen
    raise AssertionError(f"{path} kept failing: {[r.status_code for r in seen]}")


def get(url: str, key: str, path: str, params: dict[str, str]) -> dict:
    response = attempts(url, key, path, params)[-1]
    assert response.status_code == 200, response.text
    return response.json()


def listed(url: str, key: str, kind: str) -> list[dict]:
    """Every record of the window, oldest first, page by page."""
    records: list[dict] = []
    page = 1
    while True:
        body = get(url, key, f"/v2/reports/{kind}",
                   {**WINDOW, "sort": "created_at", "page[size]": "250", "page[number]": str(page)})
        records += body["data"]
        if page >= body["meta"]["total_pages"]:
            return records
        page += 1


@pytest.mark.parametrize(
    ("server", "index"), [("three", 0), ("three", 1), ("three", 2), ("two", 0), ("two", 1), ("one", 0)]
)
def test_each_key_lists_exactly_its_own_export(urls, exports, server, index):
    for kind in ("cdrs", "mdrs"):
        truth = exported(exports[index], kind)
        assert truth and listed(urls[server], KEYS[index], kind) == truth


def test_each_key_sees_its_own_usage_totals(urls, exports):
    for index, key in enumerate(KEYS):
        usage = get(urls["three"], key, USAGE, {**WINDOW, "product": "calls", "dimensions": "currency",
                                                 "metrics": "count,cost"})["data"]
        truth: dict[str, tuple[int, Decimal]] = {}
        for record in exported(exports[index], "cdrs"):
            count, cost = truth.get(record["currency"], (0, Decimal(0)))
            truth[record["currency"]] = (count + 1, cost + Decimal(record["cost"]))
        assert usage == [{"currency": currency, "count": count, "cost": f"{cost:.6f}"}
                         for currency, (count, cost) in sorted(truth.items())]


def test_the_worlds_share_no_ids_and_each_carries_the_anomalies(exports):
    ids = []
    for out in exports:
        calls, messages = exported(out, "cdrs"), exported(out, "mdrs")
        ids.append({r["id"] for r in calls} | {r["call_session_id"] for r in calls} | {r["id"] for r in messages})
        assert sum(r["country_code"] == "LV" for r in calls) == IRSF_CALLS
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            assert ids[i] and ids[j] and not ids[i] & ids[j], (i, j)


def test_the_first_key_meets_the_one_key_servers_world_and_faults_byte_for_byte(urls):
    # Requests no other test sends, so every one is a first sighting on both servers.
    requests = [
        (CDRS, {**WINDOW, "page[size]": "33", "page[number]": "2"}),
        (CDRS, {"sort": "-cost", "page[size]": "33", "filter[direction]": "outbound"}),
        (MDRS, {"sort[]": ["status", "id"], "page[size]": "33"}),
        (USAGE, {"product": "messages", "dimensions": "date,country_code", "metrics": "count,parts,cost"}),
    ] + [(CDRS, {"page[size]": "10", "page[number]": str(n)}) for n in range(1, 31)]
    statuses = []
    for path, params in requests:
        first = attempts(urls["three"], KEYS[0], path, params)
        alone = attempts(urls["one"], KEYS[0], path, params)
        other = attempts(urls["three"], KEYS[1], path, params)
        assert [(r.status_code, r.content) for r in first] == [(r.status_code, r.content) for r in alone]
        assert first[-1].status_code == 200 and first[-1].content != other[-1].content
        statuses += [r.status_code for r in first]
    # The comparison covered injected failures as well as pages.
    assert set(statuses) - {200}


def test_each_key_meets_its_own_faults(urls):
    targets = [f"{CDRS}?page%5Bsize%5D=7&page%5Bnumber%5D={n}" for n in range(1, 25)]
    expected = {}
    for index, key in enumerate(KEYS):
        config = FaultConfig(seed=SEED + index, fail_rate=FAIL_RATE)
        expected[key] = [
            decide(config, f"{CDRS}?{canonical_query(t.partition('?')[2])}", 0).fail_status or 200 for t in targets
        ]
        with httpx.Client(base_url=urls["three"], headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
            # The same URLs for every key: each key counts its own sightings.
            assert [http.get(t).status_code for t in targets] == expected[key], key
    assert expected[KEYS[0]] != expected[KEYS[1]] != expected[KEYS[2]]


@pytest.mark.parametrize("header", [
    "Bearer not-a-served-key", f"Bearer {KEYS[1].upper()}", f"Bearer {KEYS[2][:-1]}", f"Bearer {KEYS[0]}x",
    f"Basic {KEYS[0]}", None,
])
def test_a_key_that_is_not_served_gets_401(urls, header):
    headers = {} if header is None else {"Authorization": header}
    for server in ("three", "one"):
        response = httpx.get(urls[server] + CDRS, headers=headers, timeout=60)
        assert response.status_code == 401
        error = response.json()["errors"][0]
        assert error["code"] == "10001" and error["source"] == {"header": "Authorization"}
    # A key of the three-key server is unknown to the one-key server.
    assert httpx.get(urls["one"] + CDRS, headers={"Authorization": f"Bearer {KEYS[2]}"}, timeout=60).status_code == 401


def test_many_keys_each_see_the_world_of_their_position():
    keys = [f"reseller-sub-{n:03d}" for n in range(200)]
    with running_sandbox(api_key=keys, seed=SEED, start=START.isoformat(), now=format_utc(NOW), calls_per_day=5,
                         messages_per_day=2) as url:
        for index in (0, 137, 199):
            world = World(seed=SEED + index, start=START, calls_per_day=5, messages_per_day=2)
            truth = [text for day in world.days(WINDOW_START, NOW)
                     for text in world.view("cdrs", day, NOW).get_column("json").to_list()]
            assert listed(url, keys[index], "cdrs") == [orjson.loads(text) for text in truth]


# --- export --api-key ---------------------------------------------------------------------


def served_keys(*keys: str) -> list[str]:
    return [arg for key in keys for arg in ("--served-key", key)]


@pytest.mark.parametrize(
    ("options", "index"),
    [
        ((*served_keys(*KEYS), "--api-key", KEYS[2]), 2),
        ((*served_keys(*KEYS), "--api-key", KEYS[1]), 1),
        ((*served_keys(*KEYS), "--api-key", KEYS[0]), 0),
        (served_keys(*KEYS), 0),
        (("--api-key", KEYS[2]), 0),  # alone, it is a one-key server's key
        ((), 0),
    ],
)
def test_export_api_key_picks_that_keys_world(capsys, monkeypatch, tmp_path, anomalies_file, exports, options,
                                                index):
    out = tmp_path / "out"
    code, stdout, stderr = run_cdr(capsys, monkeypatch, *EXPORT_ARGS, "--anomalies", str(anomalies_file),
                                   "--out", str(out), *options)
    assert code == 0, stderr
    assert stdout.startswith("wrote ") and not any(key in stdout + stderr for key in KEYS)
    for name in ("cdrs.jsonl", "mdrs.jsonl", "malformed.jsonl"):
        assert (out / name).read_bytes() == (exports[index] / name).read_bytes(), name


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ((*served_keys(*KEYS[:2]), "--api-key", KEYS[2]), "--api-key is not one of the --served-key keys"),
        (("--api-key", KEYS[0], "--api-key", KEYS[1]), "export takes one --api-key"),
        ((*served_keys(KEYS[0], KEYS[1], KEYS[0]), "--api-key", KEYS[1]), "positions 0 and 2 (from 0) are the same"),
        ((*served_keys(KEYS[0], " "), "--api-key", KEYS[0]), "--served-key must not be empty"),
        ((*served_keys(*KEYS), "--api-key", ""), "--api-key must not be empty"),
    ],
)
def test_bad_export_keys_are_one_line_exit_2_and_write_nothing(capsys, monkeypatch, tmp_path, options, message):
    out = tmp_path / "out"
    code, stdout, stderr = run_cdr(capsys, monkeypatch, *EXPORT_ARGS, "--out", str(out), *options)
    assert code == 2 and stdout == "" and not out.exists()
    assert stderr.startswith("error: ") and stderr.count("\n") == 1 and message in stderr
    assert not any(key in stderr for key in KEYS)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([KEYS[0], KEYS[1], KEYS[0]], "--api-key: the keys at positions 0 and 2 (from 0) are the same"),
        ([KEYS[0], "  "], "--api-key must not be empty (the key at position 1, from 0)"),
        ([], "--api-key"),
    ],
)
def test_bad_serve_keys_are_one_line_and_exit_2(keys, message):
    argv = serve_command(start=START.isoformat(), now=format_utc(NOW), api_key=keys)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not any(key in lines[0] for key in KEYS)
