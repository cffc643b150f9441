"""Prefect flows: the only package that imports prefect. Tasks wrap one call each; flows wire tasks."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any


def run_arguments(function: Callable[..., Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """A run's parameters (perhaps only those given) -> every parameter of the flow's function, defaults filled in.

    For a flow's run name, worked out before its function is called.
    """
    bound = inspect.signature(function).bind_partial(**parameters)
    bound.apply_defaults()
    return dict(bound.arguments)
