"""queries.top_names: the change against the previous period, and which rollup grains serve."""

from __future__ import annotations

from queries.top_names import change, reads_raw


def test_it_gives_the_absolute_and_percent_change() -> None:
    assert change(15, 10) == {"change": 5, "change_pct": 50.0}
    assert change(5, 10) == {"change": -5, "change_pct": -50.0}
    assert change(10, 10) == {"change": 0, "change_pct": 0.0}


def test_it_gives_no_percentage_against_an_empty_previous_period() -> None:
    assert change(7, 0) == {"change": 7, "change_pct": None}


def test_it_reads_raw_events_unless_every_bound_is_a_whole_hour() -> None:
    hour = 3_600_000
    assert not reads_raw((5 * hour, 7 * hour, 9 * hour))
    assert reads_raw((5 * hour, 7 * hour, 9 * hour + 1))
    assert reads_raw((5 * hour - 60_000, 7 * hour, 9 * hour))
