"""Order: the layer rules, the build order, and the scheduler that runs jobs as soon as what they read is built."""

from __future__ import annotations

import queue
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from graphlib import CycleError, TopologicalSorter
from typing import TypeVar

import duckdb

from pipelines.errors import CdrError
from pipelines.models.discover import Layer, Model

Result = TypeVar("Result")


def build_order(models: Sequence[Model]) -> list[Model]:
    """Models -> the same models in an order where each comes after everything it reads.

    Raises CdrError on a backward read (a model reading a later layer) or a cycle.
    """
    by_name = {model.name: model for model in models}
    for model in models:
        for ref in sorted(model.refs):
            target = by_name.get(ref)
            layer = target.layer if target is not None else Layer.LAKE
            if layer > model.layer:
                raise CdrError(
                    f"model {model.name} ({model.layer.name.lower()}) reads {ref} ({layer.name.lower()}), "
                    "a later layer: reads go lake -> stg -> int -> fct/dim -> rpt -> ad-hoc views "
                    f"(fix {model.path})"
                )
    graph = {model.name: {ref for ref in model.refs if ref in by_name} for model in models}
    sorter = TopologicalSorter(graph)
    try:
        sorter.prepare()
    except CycleError as exc:
        cycle = exc.args[1]
        raise CdrError(f"models read each other in a cycle: {' -> '.join(cycle)}") from exc
    # Deterministic: ties keep (layer, name) order, so builds and logs read the same every time.
    ordered: list[Model] = []
    rank = {model.name: (model.layer, model.name) for model in models}
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=rank.__getitem__)
        ordered.extend(by_name[name] for name in ready)
        sorter.done(*ready)
    return ordered


def run_in_order(
    con: duckdb.DuckDBPyConnection,
    graph: Mapping[str, set[str]],
    run: Callable[[duckdb.DuckDBPyConnection, str], Result],
    workers: int,
    first: Collection[str] = (),
) -> dict[str, Result]:
    """Jobs in order (each with the jobs it waits for) -> each job's result, `workers` at a time.

    Each job runs on a cursor of its own connection to `con`'s database as soon as what it
    waits for is done. Of the jobs ready at once, those in `first` (the long ones) start first,
    then those more jobs wait for, then the given order. A job failing with CdrError stops
    anything new from starting; once the running ones are done, the failure of the earliest
    failed job is raised. Any other error (or Ctrl-C) interrupts the running queries and is
    raised at once.
    """
    order = {key: index for index, key in enumerate(graph)}
    waiting: dict[str, set[str]] = {key: set() for key in graph}
    for key in reversed(graph):
        for ref in graph[key]:
            waiting[ref] |= {key} | waiting[key]
    priority = {key: (key not in first, -len(waiting[key]), order[key]) for key in graph}
    sorter = TopologicalSorter(graph)
    sorter.prepare()

    cursors: list[duckdb.DuckDBPyConnection] = []
    idle: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
    for _ in range(workers):
        cursor = con.cursor()
        # per connection: the session settings of the build's own
        cursor.execute("set TimeZone = 'UTC'")
        cursor.execute("set enable_progress_bar = false")
        cursors.append(cursor)
        idle.put(cursor)

    def on_a_free_cursor(key: str) -> Result:
        cursor = idle.get()
        try:
            return run(cursor, key)
        finally:
            idle.put(cursor)

    results: dict[str, Result] = {}
    failed: dict[str, CdrError] = {}
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="cdr-build") as pool:
            running: dict[Future[Result], str] = {}
            ready: list[str] = []
            try:
                while True:
                    if not failed:
                        # handed over only to a free connection, so a job that turns ready later
                        # still goes ahead of the ready ones that fewer jobs wait for
                        ready = sorted([*ready, *sorter.get_ready()], key=priority.__getitem__)
                        while ready and len(running) < workers:
                            key = ready.pop(0)
                            running[pool.submit(on_a_free_cursor, key)] = key
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        key = running.pop(future)
                        try:
                            results[key] = future.result()
                        except CdrError as exc:
                            failed[key] = exc
                        else:
                            sorter.done(key)
            except BaseException:
                for cursor in cursors:
                    cursor.interrupt()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        for cursor in cursors:
            cursor.close()
    if failed:
        raise failed[min(failed, key=order.__getitem__)]
    return results
