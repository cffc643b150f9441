"""The sandbox export: the window's records exactly as served, as of the clock, and its CLI."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import polars as pl
import pytest

from pipelines.errors import UsageError
from sandbox.export import export_window
from sandbox.world import World

PARAMS = dict(seed=5, start=date(2026, 3, 1), calls_per_day=300, messages_per_day=150, rerate_rate=0.2,
              malformed_rate=0.03)
WINDOW_START = datetime(2026, 3, 2, 18, 30, tzinfo=UTC)
WINDOW_END = datetime(2026, 3, 5, 7, 0, tzinfo=UTC)
# Inside the window's last day: later records are not created yet, some re-ratings not done.
NOW = datetime(2026, 3, 4, 15, 45, 12, 250_000, tzinfo=UTC)
CLI_ARGS = [
    "--seed", "5", "--start", "2026-03-01", "--calls-per-day", "300", "--messages-per-day", "150",
    "--rerate-rate", "0.2", "--malformed-rate", "0.03", "--now", "2026-03-04T15:45:12.250Z",
    "--window-start", "2026-03-02T18:30Z", "--window-end", "2026-03-05T07:00:00.000-00:00",
]


def served(world: World, kind: str) -> pl.DataFrame:
    """What the API shows of the window at NOW, straight from the world's day views."""
    days = [date(2026, 3, d) for d in (2, 3, 4, 5)]
    frame = pl.concat([world.view(kind, d, NOW) for d in days])
    return frame.filter(pl.col("created_at") >= WINDOW_START, pl.col("created_at") < WINDOW_END)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from cdr_app.cli import main; main()", "sandbox", "export", *args],
        capture_output=True, text=True, check=False, timeout=120,
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("export")
    return out, export_window(World(**PARAMS), NOW, WINDOW_START, WINDOW_END, out)


def test_export_writes_exactly_the_valid_records_as_served(exported):
    out, counts = exported
    world = World(**PARAMS)
    for kind in ("cdrs", "mdrs"):
        expected = served(world, kind).filter(pl.col("malformed").is_null()).get_column("json").to_list()
        assert lines(out / f"{kind}.jsonl") == expected
        assert counts[kind] == len(expected) > 100


def test_export_writes_every_malformed_record_with_type_and_reason(exported):
    out, counts = exported
    world = World(**PARAMS)
    expected = [
        {"type": kind, "reason": row["malformed"], "record": orjson.loads(row["json"])}
        for kind in ("cdrs", "mdrs")
        for row in served(world, kind).filter(pl.col("malformed").is_not_null()).iter_rows(named=True)
    ]
    written = [orjson.loads(line) for line in lines(out / "malformed.jsonl")]
    assert written == expected
    assert counts["malformed"] == len(expected) > 5
    assert {line["type"] for line in written} == {"cdrs", "mdrs"}


def test_export_is_the_window_as_of_the_clock(exported):
    out, _ = exported
    world = World(**PARAMS)
    for kind in ("cdrs", "mdrs"):
        texts = lines(out / f"{kind}.jsonl")
        records = [orjson.loads(text) for text in texts]
        created = [datetime.fromisoformat(r["created_at"]) for r in records]
        assert min(created) >= WINDOW_START and max(created) < NOW
        keys = [(c, r["id"]) for c, r in zip(created, records)]
        assert keys == sorted(keys)
        # Re-ratings done by NOW are shown re-rated; later ones still show the original.
        rerated = pl.concat([world.day_frame(kind, date(2026, 3, d)) for d in (2, 3, 4)]).filter(
            pl.col("rerated_at").is_not_null(), pl.col("malformed").is_null()
        )
        due = set(rerated.filter(pl.col("rerated_at") <= NOW).get_column("rerated_json"))
        pending = rerated.filter(pl.col("rerated_at") > NOW)
        assert len(due & set(texts)) > 10
        assert set(pending.get_column("rerated_json")).isdisjoint(texts)
        assert len(set(pending.get_column("json")) & set(texts)) > 10


def test_export_leaves_no_partial_files_and_is_repeatable(exported, tmp_path):
    out, counts = exported
    assert sorted(p.name for p in out.iterdir()) == ["cdrs.jsonl", "malformed.jsonl", "mdrs.jsonl"]
    again = export_window(World(**PARAMS), NOW, WINDOW_START, WINDOW_END, tmp_path)
    assert again == counts
    for name in ("cdrs.jsonl", "mdrs.jsonl", "malformed.jsonl"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


def test_an_empty_window_writes_empty_files(tmp_path):
    before_start = datetime(2026, 2, 1, tzinfo=UTC)
    counts = export_window(World(**PARAMS), NOW, before_start, datetime(2026, 2, 2, tzinfo=UTC), tmp_path)
    assert counts == {"cdrs": 0, "mdrs": 0, "malformed": 0}
    assert all((tmp_path / f"{n}.jsonl").read_bytes() == b"" for n in ("cdrs", "mdrs", "malformed"))


def test_a_backwards_window_or_a_file_as_out_dir_is_a_usage_error(tmp_path):
    world = World(**PARAMS)
    with pytest.raises(UsageError, match="end after it starts"):
        export_window(world, NOW, WINDOW_END, WINDOW_START, tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        export_window(world, NOW, WINDOW_START, WINDOW_END, blocker)


def test_cli_export_writes_the_same_files(exported, tmp_path):
    out, counts = exported
    proc = run_cli(*CLI_ARGS, "--out", str(tmp_path / "cli"))
    assert proc.returncode == 0, proc.stderr
    assert f"{counts['cdrs']} cdrs" in proc.stdout
    for name in ("cdrs.jsonl", "mdrs.jsonl", "malformed.jsonl"):
        assert (tmp_path / "cli" / name).read_bytes() == (out / name).read_bytes()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"--now": "2026-03-04 15:45"}, "--now"),
        ({"--window-end": "2026-03-01T00:00Z"}, "end after it starts"),
        ({"--start": "2026-02-30"}, "--start"),
        ({"--calls-per-day": "many"}, "--calls-per-day"),
        ({"--malformed-rate": "2"}, "malformed_rate"),
    ],
)
def test_cli_bad_arguments_are_one_line_and_exit_2(changes, message, tmp_path):
    args = list(CLI_ARGS)
    for flag, value in changes.items():
        args[args.index(flag) + 1] = value
    proc = run_cli(*args, "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert message in proc.stderr
    assert not (tmp_path / "out").exists()
