"""Which models a model reads, from DuckDB's parse tree of its SQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import CdrError
from pipelines.models import build_order, discover_models, references

NAMES = ["stg_a", "stg_b", "stg_c", "stg_d", "stg_e", "calls"]


@pytest.mark.parametrize(
    ("sql", "reads"),
    [
        # a comma join reads both sides, however many there are
        ("select * from stg_a, stg_b", {"stg_a", "stg_b"}),
        ("select * from stg_a as a, stg_b as b, stg_c where a.id = b.id", {"stg_a", "stg_b", "stg_c"}),
        # reads inside expressions, set operations and lateral joins
        ("select * from stg_a where id in (select id from stg_b) and exists (select 1 from stg_c)",
         {"stg_a", "stg_b", "stg_c"}),
        ("select 1 as x from stg_a union all select 2 from stg_b", {"stg_a", "stg_b"}),
        ("select * from stg_a, lateral (select * from stg_d where stg_d.id = stg_a.id)", {"stg_a", "stg_d"}),
        # the build's own schema may name a model
        ("select * from main.stg_a", {"stg_a"}),
        # a table function, a column, a string and an attached database are no model reads
        ("select calls, 'from stg_b' as s from read_parquet('stg_c.parquet') join range(3) on true", set()),
        ("select * from other_db.main.stg_a", set()),
        # a CTE's name is not a read, what it reads is
        ("with stg_c as (select * from stg_a) select * from stg_c, stg_e", {"stg_a", "stg_e"}),
    ],
)
def test_references_are_the_tables_a_select_reads(sql, reads):
    assert references(f"-- a model\n{sql}", NAMES) == reads


def test_a_model_comes_after_every_side_of_its_comma_join(tmp_path: Path):
    # fct_a reads fct_z through a comma join; fct_z waits for fct_y, so only a seen read
    # puts fct_a after it
    for name, sql in {
        "fct_a": "select * from fct_c, fct_z",
        "fct_c": "select 1 as x",
        "fct_y": "select 1 as x",
        "fct_z": "select * from fct_y",
    }.items():
        path = tmp_path / "marts" / f"{name}.sql"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"-- {name}: one row\n{sql}\n")
    ordered = [model.name for model in build_order(discover_models(tmp_path))]
    assert ordered.index("fct_z") < ordered.index("fct_a")


def test_sql_that_is_not_one_select_has_no_references():
    with pytest.raises(CdrError, match="cannot tell which tables this SQL reads"):
        references("select 1; select 2", NAMES)
