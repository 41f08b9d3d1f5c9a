"""coalmine.terminal.sparkline: counts as a row of block characters, scaled to the largest."""

from __future__ import annotations

from coalmine.terminal import SPARK, sparkline

LOWEST, HIGHEST = SPARK[0], SPARK[-1]


def test_it_draws_one_bar_per_value() -> None:
    for values in ([], [1.0], [0.0, 3.0, 1.0], list(range(50))):
        assert len(sparkline(values)) == len(values)


def test_it_draws_all_zeros_as_lowest_bars() -> None:
    assert sparkline([0, 0, 0, 0]) == LOWEST * 4


def test_it_draws_the_maximum_as_the_top_bar() -> None:
    line = sparkline([1, 7, 3, 7, 0])

    assert line[1] == HIGHEST
    assert line[3] == HIGHEST
    assert line[4] == LOWEST


def test_it_draws_a_single_positive_value_as_the_top_bar() -> None:
    assert sparkline([0.25]) == HIGHEST


def test_it_scales_bars_to_the_maximum() -> None:
    line = sparkline([0, 50, 100])

    assert line[0] == LOWEST
    assert line[2] == HIGHEST
    assert SPARK.index(line[0]) < SPARK.index(line[1]) < SPARK.index(line[2])


def test_it_never_lowers_a_bar_for_a_larger_value() -> None:
    values = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89]
    levels = [SPARK.index(bar) for bar in sparkline(values)]

    assert levels == sorted(levels)
    assert set(levels) <= set(range(len(SPARK)))
