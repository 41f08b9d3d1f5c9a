"""queries.series.fill_gaps: one point per step-aligned bucket, zeros where ClickHouse had none;
rows are (bucket, count, value_count, value_sum, value_min, value_max)."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from queries.series import fill_gaps

HOUR = 3600
T10 = 1_782_986_400  # 2026-07-02T10:00:00Z, a multiple of HOUR


def test_it_aligns_buckets_to_multiples_of_the_step() -> None:
    points = fill_gaps([], T10 + 7 * 60 + 30, T10 + 3 * HOUR, HOUR)

    assert [p["t"] for p in points] == [
        "2026-07-02T10:00:00Z",
        "2026-07-02T11:00:00Z",
        "2026-07-02T12:00:00Z",
    ]


def test_it_fills_buckets_without_rows_with_zeros_and_no_values() -> None:
    points = fill_gaps([], T10, T10 + 2 * HOUR, HOUR)

    assert points[0] == {
        "t": "2026-07-02T10:00:00Z",
        "count": 0,
        "value_count": 0,
        "value_sum": 0.0,
        "value_avg": None,
        "value_min": None,
        "value_max": None,
    }
    assert points[1]["count"] == 0


def test_it_places_rows_in_their_buckets() -> None:
    rows = [(T10 + HOUR, 3, 2, 4.5, 1.5, 3.0), (T10 + 3 * HOUR, 1, 1, 2.0, 2.0, 2.0)]

    points = fill_gaps(rows, T10, T10 + 4 * HOUR, HOUR)

    assert [(p["t"], p["count"], p["value_sum"]) for p in points] == [
        ("2026-07-02T10:00:00Z", 0, 0.0),
        ("2026-07-02T11:00:00Z", 3, 4.5),
        ("2026-07-02T12:00:00Z", 0, 0.0),
        ("2026-07-02T13:00:00Z", 1, 2.0),
    ]


def test_it_averages_over_the_events_with_a_value() -> None:
    (point,) = fill_gaps([(T10, 5, 2, 7.0, 3.0, 4.0)], T10, T10 + HOUR, HOUR)

    assert (point["count"], point["value_count"], point["value_avg"]) == (5, 2, 3.5)
    assert (point["value_min"], point["value_max"]) == (3.0, 4.0)


def test_it_gives_no_average_minimum_or_maximum_without_values() -> None:
    (point,) = fill_gaps([(T10, 5, 0, None, None, None)], T10, T10 + HOUR, HOUR)

    assert (point["count"], point["value_sum"]) == (5, 0.0)
    assert (point["value_avg"], point["value_min"], point["value_max"]) == (None, None, None)


def test_it_excludes_the_bucket_starting_at_the_end() -> None:
    points = fill_gaps([(T10 + 2 * HOUR, 9, 1, 1.0, 1.0, 1.0)], T10, T10 + 2 * HOUR, HOUR)

    assert len(points) == 2
    assert all(p["count"] == 0 for p in points)


def test_it_includes_the_bucket_containing_a_mid_bucket_end() -> None:
    points = fill_gaps([], T10, T10 + 2 * HOUR + 1, HOUR)

    assert points[-1]["t"] == "2026-07-02T12:00:00Z"


def test_it_aligns_minute_steps_too() -> None:
    points = fill_gaps([(T10 + 300, 2, 0, 0.0, None, None)], T10 + 290, T10 + 900, 300)

    assert [(p["t"], p["count"]) for p in points] == [
        ("2026-07-02T10:00:00Z", 0),
        ("2026-07-02T10:05:00Z", 2),
        ("2026-07-02T10:10:00Z", 0),
    ]


def test_it_returns_nothing_for_an_empty_range() -> None:
    assert fill_gaps([], T10, T10, HOUR) == []


@settings(max_examples=200, deadline=None, database=None)
@given(
    start=st.integers(0, 2**33),
    buckets=st.integers(1, 300),
    step=st.sampled_from([1, 60, 90, 300, 3600, 86_400]),
    data=st.data(),
)
def test_it_covers_the_range_with_consecutive_aligned_buckets(
    start: int, buckets: int, step: int, data: st.DataObject
) -> None:
    end = start + data.draw(st.integers((buckets - 1) * step + 1, buckets * step))
    points = fill_gaps([], start, end, step)
    starts = [int(dt.datetime.fromisoformat(p["t"]).timestamp()) for p in points]

    assert all(bucket % step == 0 for bucket in starts)
    assert starts[0] <= start < starts[0] + step
    assert starts[-1] < end <= starts[-1] + step
    assert all(b - a == step for a, b in itertools.pairwise(starts))
    assert all(p["count"] == 0 for p in points)
