"""queries.grains: which grain serves a bucket width, and how a range splits into whole grain
buckets plus raw-event ends, so that rollup answers are exact."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queries.grains import (
    EVENTS,
    GRAIN_SECONDS,
    RANGES_PER_SOURCE,
    cover,
    finer_grains,
    grain_for_step,
    source_condition,
    source_parameters,
)

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
ALL = ("day", "hour", "minute")
D = 1_782_950_400_000  # 2026-07-02T00:00:00Z in ms, a multiple of DAY


@pytest.mark.parametrize(
    ("step", "grain"),
    [
        (60, "minute"),
        (15 * 60, "minute"),
        (90 * 60, "minute"),
        (3600, "hour"),
        (6 * 3600, "hour"),
        (36 * 3600, "hour"),
        (86_400, "day"),
        (7 * 86_400, "day"),
        (30, None),
        (90, None),
        (1, None),
    ],
)
def test_it_picks_the_largest_grain_dividing_the_interval(step: int, grain: str | None) -> None:
    assert grain_for_step(step) == grain


def test_it_lists_a_grain_and_the_finer_ones() -> None:
    assert finer_grains("day") == ALL
    assert finer_grains("hour") == ("hour", "minute")
    assert finer_grains("minute") == ("minute",)


def test_it_covers_an_aligned_range_with_the_coarsest_grain_alone() -> None:
    assert cover(D, D + 3 * DAY, ALL) == {
        "day": [(D, D + 3 * DAY)],
        "hour": [],
        "minute": [],
        EVENTS: [],
    }


def test_it_covers_unaligned_ends_with_finer_grains_then_raw_events() -> None:
    start = D + 22 * HOUR + 58 * MINUTE + 30_500  # 22:58:30.500 on day one
    end = D + 2 * DAY + HOUR + MINUTE + 1  # 01:01:00.001 on day three

    assert cover(start, end, ALL) == {
        "day": [(D + DAY, D + 2 * DAY)],
        "hour": [(D + 23 * HOUR, D + DAY), (D + 2 * DAY, D + 2 * DAY + HOUR)],
        "minute": [
            (D + 22 * HOUR + 59 * MINUTE, D + 23 * HOUR),
            (D + 2 * DAY + HOUR, D + 2 * DAY + HOUR + MINUTE),
        ],
        EVENTS: [(start, D + 22 * HOUR + 59 * MINUTE), (end - 1, end)],
    }


def test_it_leaves_what_the_given_grains_do_not_cover_to_raw_events() -> None:
    start, end = D + 22 * HOUR + 30 * MINUTE, D + 2 * DAY + HOUR

    assert cover(start, end, ("day",)) == {
        "day": [(D + DAY, D + 2 * DAY)],
        EVENTS: [(start, D + DAY), (D + 2 * DAY, end)],
    }
    assert cover(start, end, ()) == {EVENTS: [(start, end)]}


def test_it_passes_a_range_shorter_than_a_grain_to_the_finer_ones() -> None:
    assert cover(D + 10 * MINUTE + 5, D + 20 * MINUTE, ("hour", "minute")) == {
        "hour": [],
        "minute": [(D + 11 * MINUTE, D + 20 * MINUTE)],
        EVENTS: [(D + 10 * MINUTE + 5, D + 11 * MINUTE)],
    }


def test_it_covers_nothing_of_an_empty_range() -> None:
    assert cover(D, D, ("minute",)) == {"minute": [], EVENTS: []}


@settings(max_examples=500, deadline=None, database=None)
@given(
    start=st.integers(0, 4_000_000_000_000),
    length=st.one_of(st.integers(0, 3 * HOUR), st.integers(0, 400 * DAY)),
    grains=st.sampled_from([ALL, ("hour", "minute"), ("minute",), ("day",), ("day", "minute"), ()]),
)
def test_it_partitions_any_range_into_aligned_grain_buckets(
    start: int, length: int, grains: tuple[str, ...]
) -> None:
    end = start + length
    plan = cover(start, end, grains)
    pieces = sorted(piece for ranges in plan.values() for piece in ranges)

    # Disjoint, in order, and together exactly [start, end).
    assert all(lo < hi for lo, hi in pieces)
    assert [lo for lo, _ in pieces[1:]] == [hi for _, hi in pieces[:-1]]
    if pieces:
        assert (pieces[0][0], pieces[-1][1]) == (start, end)
    else:
        assert start == end
    for source, ranges in plan.items():
        assert len(ranges) <= RANGES_PER_SOURCE
        if source == EVENTS:  # raw events only fill in what holds no whole finest grain
            finest = GRAIN_SECONDS[grains[-1]] * 1000 if grains else None
            if finest:
                assert all(-(-lo // finest) * finest + finest > hi for lo, hi in ranges)
                assert all(hi - lo < 2 * finest for lo, hi in ranges)
        else:
            size = GRAIN_SECONDS[source] * 1000
            assert all(lo % size == 0 and hi % size == 0 for lo, hi in ranges)


def test_it_binds_each_source_range_as_parameters() -> None:
    plan = {"hour": [(D, D + HOUR)], EVENTS: [(D - 5, D), (D + HOUR, D + HOUR + 7)]}

    assert source_parameters(plan, "cur_") == {
        "cur_hour_lo0": D // 1000,
        "cur_hour_hi0": (D + HOUR) // 1000,
        "cur_hour_lo1": 0,  # padding: an empty range
        "cur_hour_hi1": 0,
        "cur_events_lo0": D - 5,
        "cur_events_hi0": D,
        "cur_events_lo1": D + HOUR,
        "cur_events_hi1": D + HOUR + 7,
    }


def test_it_names_in_the_condition_exactly_the_bound_parameters() -> None:
    for source in ("day", EVENTS):
        condition = source_condition(source, "col", "p_")
        names = source_parameters({source: []}, "p_")

        assert all(f"{{{name}:" in condition for name in names)
        assert condition.count("{") == len(names)
