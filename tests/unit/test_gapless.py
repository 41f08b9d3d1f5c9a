"""processors.agents.gapless.release_hole against Faust's own commit bookkeeping: a hole the
guard filled from the log must not hold the group's commit back (it once held a log rotation's
drain forever). Faust's real Consumer, never started: only its offset arithmetic runs."""

from __future__ import annotations

from collections.abc import Iterator

import faust
import pytest
from faust.types import TP

from processors.agents.gapless import release_hole

TOPIC = "coalmine.events"
TP3 = TP(TOPIC, 3)


@pytest.fixture
def consumer() -> Iterator[object]:
    app = faust.App("test-gapless", broker="kafka://127.0.0.1:1")
    yield app.consumer


def _acked(consumer: object, offsets: range) -> None:
    consumer._acked[TP3].extend(offsets)  # type: ignore[attr-defined]
    consumer._acked_index[TP3].update(offsets)  # type: ignore[attr-defined]


def test_without_the_release_faust_commits_nothing_past_a_hole(consumer: object) -> None:
    consumer._committed_offset[TP3] = 50  # type: ignore[attr-defined]
    _acked(consumer, range(144, 151))  # 50..143 never delivered by Faust
    assert consumer._new_offset(TP3) is None  # type: ignore[attr-defined]


def test_a_released_hole_lets_the_commit_move_past_it(consumer: object) -> None:
    consumer._committed_offset[TP3] = 50  # type: ignore[attr-defined]
    _acked(consumer, range(144, 151))
    release_hole(consumer, TOPIC, 3, 50, 144)
    assert consumer._new_offset(TP3) == 151  # type: ignore[attr-defined]


def test_a_hole_below_the_commit_changes_nothing_and_another_partition_is_untouched(
    consumer: object,
) -> None:
    consumer._committed_offset[TP3] = 100  # type: ignore[attr-defined]
    release_hole(consumer, TOPIC, 3, 20, 60)  # already committed past it
    assert not consumer._gap[TP3]  # type: ignore[attr-defined]
    release_hole(consumer, TOPIC, 3, 90, 120)  # only 100..119 are left to release
    assert sorted((i.begin, i.end) for i in consumer._gap[TP3]) == [(100, 120)]  # type: ignore[attr-defined]
    assert not consumer._gap[TP(TOPIC, 2)]  # type: ignore[attr-defined]
    _acked(consumer, range(120, 125))
    assert consumer._new_offset(TP3) == 125  # type: ignore[attr-defined]


def test_with_nothing_committed_yet_the_hole_is_released_whole(consumer: object) -> None:
    _acked(consumer, range(0, 10))
    _acked(consumer, range(30, 35))
    release_hole(consumer, TOPIC, 3, 10, 30)
    assert consumer._new_offset(TP3) == 35  # type: ignore[attr-defined]
