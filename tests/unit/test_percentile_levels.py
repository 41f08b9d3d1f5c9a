"""queries.percentiles.parse_levels: `q=0.5,0.95,0.99`, each level from 0 to 1."""

from __future__ import annotations

import pytest

from queries.params import QueryError
from queries.percentiles import DEFAULT_LEVELS, MAX_LEVELS, parse_levels


def test_it_defaults_to_the_median_p95_and_p99() -> None:
    assert parse_levels(DEFAULT_LEVELS) == [0.5, 0.95, 0.99]


def test_it_keeps_the_order_given_and_the_bounds() -> None:
    assert parse_levels("0.99, 0, 1,0.25") == [0.99, 0.0, 1.0, 0.25]


@pytest.mark.parametrize(
    "raw", ["", "median", "0.5,", "1.5", "-0.1", "nan", "inf", ",".join(["0.5"] * (MAX_LEVELS + 1))]
)
def test_it_refuses_anything_else_naming_q(raw: str) -> None:
    with pytest.raises(QueryError, match="`q`"):
        parse_levels(raw)
