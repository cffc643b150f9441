"""`python -m bench`: each benchmark's generated block lands in its own section of RESULTS.md."""

from __future__ import annotations

from datetime import datetime, timezone

from bench.__main__ import benchmarks, block, with_block

WHEN = datetime(2026, 11, 26, 15, 0, tzinfo=timezone.utc)

RESULTS = """# Benchmark results

Intro.

## Sandbox serving rate (`bench/bench_sandbox.py`)

Hand-written figures.

## API client (`bench/bench_client.py`)

Client prose.
"""


def test_benchmarks_run_in_the_briefed_order() -> None:
    names = benchmarks()
    assert names[:4] == ["bench_sandbox", "bench_client", "bench_sync", "bench_models"]


def test_block_goes_at_the_end_of_its_own_section() -> None:
    generated = block("bench_sandbox", 0, 12.3, ["1 client(s): 100 records/s"], (1.0, 2.0), WHEN)
    text = with_block(RESULTS, "bench_sandbox", generated)
    sandbox, client = text.split("## API client")
    assert sandbox.index("Hand-written figures.") < sandbox.index("1 client(s): 100 records/s")
    assert "2026-11-26 15:00 UTC, ok, 12 s, load average 1.0 -> 2.0" in sandbox
    assert client == " (`bench/bench_client.py`)\n\nClient prose.\n"


def test_a_second_run_replaces_the_block_and_nothing_else() -> None:
    first = with_block(RESULTS, "bench_client", block("bench_client", 0, 5, ["old figure"], (1, 1), WHEN))
    second = with_block(first, "bench_client", block("bench_client", 3, 6, ["new figure"], (1, 1), WHEN))
    assert "old figure" not in second and "new figure" in second
    assert "FAILED (exit 3)" in second
    assert second.count("<!-- end of generated block -->") == 1
    assert second.replace(block("bench_client", 3, 6, ["new figure"], (1, 1), WHEN), "").rstrip() == RESULTS.rstrip()


def test_a_benchmark_without_a_section_gets_one_at_the_end() -> None:
    text = with_block(RESULTS, "bench_sync", block("bench_sync", 0, 1, ["sync 1/s"], (0, 0), WHEN))
    assert text.startswith(RESULTS.rstrip("\n"))
    assert text.split("## `bench/bench_sync.py`")[1].strip().splitlines()[-2] == "```"


def test_output_with_backticks_stays_inside_its_fence() -> None:
    generated = block("bench_sync", 0, 1, ["a ``` b", "| `cdr sync` |"], (0, 0), WHEN)
    assert "\n````\na ``` b\n| `cdr sync` |\n````\n" in generated


def test_long_output_keeps_its_end() -> None:
    lines = [f"line {n}" for n in range(200)]
    generated = block("bench_models", 0, 1, lines, (0, 0), WHEN)
    assert "line 199" in generated and "line 119" not in generated and "line 120" in generated
    assert "(last 80 of 200 lines)" in generated
