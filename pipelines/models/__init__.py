"""Models stage: run the SQL in `queries/` in dependency order into the DuckDB warehouse.

The tree is the DAG: each `.sql` file under `queries/<layer>/` is one model named after its
file (`discover`; the macros they call live in `queries/macros/`), built after what it reads
(through those macros too), two at a time (`order`), over views of the lake (`sources`), into
a new warehouse that replaces the old one only once every model and data test passed
(`runner`, `publish`).
"""

from pipelines.models.discover import (
    QUERIES_DIR,
    Layer,
    Macro,
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
    "QUERIES_DIR", "BuildReport", "Layer", "Macro", "build", "build_order", "discover_macros", "discover_models",
    "discover_tests", "quarantine_source_sql", "references", "warehouse_path",
]
