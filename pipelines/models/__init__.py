"""Models stage: run the SQL in `queries/` in dependency order into the DuckDB warehouse.

Models are found by `discover`, ordered by `order`, read the lake through `sources`, and replace
the old warehouse only once every model and data test passed (`runner`, `publish`).
"""

from pipelines.models.discover import (
    QUERIES_DIR,
    Layer,
    Macro,
    discover,
    discover_macros,
    discover_models,
    discover_tests,
    references,
)
from pipelines.models.order import build_order
from pipelines.models.publish import warehouse_path
from pipelines.models.runner import BuildReport, build
from pipelines.models.sources import quarantine_source_sql

__all__ = [
    "QUERIES_DIR", "BuildReport", "Layer", "Macro", "build", "build_order", "discover", "discover_macros",
    "discover_models", "discover_tests", "quarantine_source_sql", "references", "warehouse_path",
]
