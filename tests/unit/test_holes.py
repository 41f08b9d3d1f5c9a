"""Which offsets a fetch skipped (runtime.holes.missing)."""

from __future__ import annotations

from runtime.holes import missing


def test_nothing_is_missing_from_consecutive_records() -> None:
    assert missing(10, [10, 11, 12]) == []
    assert missing(None, [7, 8]) == []


def test_a_record_skipped_before_the_first_one_handed_over() -> None:
    assert missing(10, [11, 12]) == [(10, 11)]


def test_holes_between_records_and_several_at_once() -> None:
    assert missing(0, [0, 2, 3, 7]) == [(1, 2), (4, 7)]


def test_unknown_start_trusts_the_first_record() -> None:
    assert missing(None, [5, 7]) == [(6, 7)]


def test_a_record_handed_over_again_is_no_hole() -> None:
    assert missing(10, [8, 9, 10, 11]) == []
