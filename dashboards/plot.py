"""Dashboards stage: a figure as the JSON plotly.js draws — plain dicts and lists — and the few ways to build one.

plotly's graph objects validate and copy every property each time one is set or updated, which made most of
the time a site of many accounts took; the figures build plotly's figure JSON directly instead, and
`plotly.io.to_html(..., validate=False)` writes it as it is. The tests read every figure back through
`plotly.graph_objects.Figure`, which validates each property, so a misspelt one still fails there. A grid of
panels takes its layout from plotly's `make_subplots`, computed once per shape.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from plotly.subplots import make_subplots

# plotly's figure JSON: {"data": [trace, ...], "layout": {...}}, each trace with its "type".
Figure = dict[str, Any]

_AXIS = {"x": re.compile(r"xaxis\d*"), "y": re.compile(r"yaxis\d*")}


def figure(*traces: Mapping[str, Any], layout: Mapping[str, Any] | None = None) -> Figure:
    """Traces (each with its "type") and layout properties -> a figure."""
    fig: Figure = {"data": [dict(trace) for trace in traces], "layout": {}}
    merge(fig["layout"], layout or {})
    return fig


def grid(
    rows: int,
    *,
    row_heights: Sequence[float] | None = None,
    vertical_spacing: float | None = None,
    shared_xaxes: bool = False,
    subplot_titles: Sequence[str] | None = None,
) -> Figure:
    """One column of `rows` panels, laid out as plotly's `make_subplots` lays them out -> a figure without traces
    (`add` with `row` puts a trace on a panel)."""
    layout = _grid_layout(
        rows, None if row_heights is None else tuple(row_heights), vertical_spacing, shared_xaxes,
        None if subplot_titles is None else tuple(subplot_titles),
    )
    return {"data": [], "layout": copy.deepcopy(layout)}


@lru_cache(maxsize=256)
def _grid_layout(
    rows: int,
    row_heights: tuple[float, ...] | None,
    vertical_spacing: float | None,
    shared_xaxes: bool,
    subplot_titles: tuple[str, ...] | None,
) -> dict[str, Any]:
    # Every account's pages draw the same few shapes: plotly computes each one once.
    layout = make_subplots(
        rows=rows, cols=1, row_heights=None if row_heights is None else list(row_heights),
        vertical_spacing=vertical_spacing, shared_xaxes=shared_xaxes,
        subplot_titles=None if subplot_titles is None else list(subplot_titles),
    ).to_dict()["layout"]
    # the figure's own template replaces plotly's default one
    layout.pop("template", None)
    return layout


def axis_id(letter: str, row: int) -> str:
    """An axis letter and a panel's row (one column) -> the id plotly gives its axis: 'y', 'y2', …"""
    return letter if row == 1 else f"{letter}{row}"


def add(fig: Figure, trace: Mapping[str, Any], *, row: int | None = None) -> None:
    """Add a trace (with its "type") to a figure, on the panel of `row` of a `grid`."""
    placed = dict(trace)
    if row is not None:
        placed |= {"xaxis": axis_id("x", row), "yaxis": axis_id("y", row)}
    fig["data"].append(placed)


def update_layout(fig: Figure, **properties: Any) -> None:
    """Set layout properties, a dict merged into what the layout already has (as plotly's `update_layout`)."""
    merge(fig["layout"], properties)


def update_axes(fig: Figure, letter: str, properties: Mapping[str, Any], *, row: int | None = None) -> None:
    """Merge properties into the `letter` axis ('x' or 'y') of the panel of `row`, or without `row` into every
    such axis of the layout (the first one when there is none yet), as plotly's `update_xaxes`/`update_yaxes`."""
    layout = fig["layout"]
    if row is not None:
        names = [axis_id(f"{letter}axis", row)]
    else:
        names = [name for name in layout if _AXIS[letter].fullmatch(name)] or [f"{letter}axis"]
    for name in names:
        merge(layout.setdefault(name, {}), properties)


def merge(target: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `update` into `target`: a dict into the dict already there (a new one when there is none, so a figure
    never shares a dict with a constant such as the theme's template), any other value replacing it -> `target`."""
    for key, value in update.items():
        if isinstance(value, Mapping):
            current = target.get(key)
            if not isinstance(current, dict):
                current = target[key] = {}
            merge(current, value)
        else:
            target[key] = value
    return target
