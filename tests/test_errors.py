"""The wording helpers every message shares."""

from pipelines.errors import counted, noun


def test_a_count_takes_the_singular_only_for_one():
    assert [counted(n, "slice") for n in (0, 1, 2, 1204)] == ["0 slices", "1 slice", "2 slices", "1,204 slices"]
    assert (counted(1, "more failed slice"), counted(2, "currency", "currencies")) == ("1 more failed slice", "2 currencies")
    assert (noun(1, "column"), noun(3, "column")) == ("column", "columns")
