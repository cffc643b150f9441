"""Dependencies flow one way: the pipeline works against the real API with no sandbox in its path."""

from __future__ import annotations

import ast
from pathlib import Path

import cdr_app
import pipelines

PIPELINES = Path(pipelines.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """A Python file -> every absolute module it imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_pipeline_module_imports_the_sandbox():
    offenders = sorted(
        f"{path.relative_to(PIPELINES.parent)} imports {name}"
        for path in PIPELINES.rglob("*.py")
        for name in imported_modules(path)
        if name.partition(".")[0] == "sandbox"
    )
    assert offenders == []


def test_the_cdr_app_is_where_the_pipeline_and_the_sandbox_meet():
    imported = imported_modules(Path(cdr_app.__file__).with_name("cli.py"))
    assert {"pipelines.cli", "sandbox.cli"} <= imported
