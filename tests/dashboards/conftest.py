"""Fixtures of the dashboard tests: hand-made warehouses (see dashboard_fixtures.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.dashboards.dashboard_fixtures import LARGE, SMALL, Shape, build_warehouse


@pytest.fixture(scope="session")
def small_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three months of every report, with hostile names."""
    return build_warehouse(tmp_path_factory.mktemp("small") / "warehouse.duckdb")


@pytest.fixture(scope="session")
def large_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three years of every report and thousands of names."""
    return build_warehouse(tmp_path_factory.mktemp("large") / "warehouse.duckdb", LARGE)


@pytest.fixture(scope="session")
def empty_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every report table, no rows."""
    return build_warehouse(tmp_path_factory.mktemp("empty") / "warehouse.duckdb", empty=True)


@pytest.fixture
def warehouse_factory(tmp_path: Path) -> Callable[..., Path]:
    """Build a fresh warehouse in this test's tmp dir (for tests that then change it)."""
    def make(shape: Shape = SMALL, *, empty: bool = False) -> Path:
        return build_warehouse(tmp_path / "warehouse.duckdb", shape, empty=empty)
    return make
