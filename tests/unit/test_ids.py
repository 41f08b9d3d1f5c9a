"""schemas.ids: UUIDv7 batch ids and the per-event ids derived from them."""

from __future__ import annotations

import time
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.ids import batch_id_of, event_id, new_batch_id, unix_ms_of, uuid7_int
from schemas.limits import MAX_EVENTS_PER_BATCH

MS_2026 = 1_782_986_400_000  # 2026-07-02T10:00:00Z
UNIX_MS = st.integers(0, 2**48 - 1)


def test_it_sets_the_version_7_nibble() -> None:
    value = uuid7_int(MS_2026)

    assert (value >> 76) & 0xF == 7
    assert uuid.UUID(int=value).version == 7


def test_it_sets_the_rfc_variant_bits() -> None:
    value = uuid7_int(MS_2026)

    assert (value >> 62) & 0b11 == 0b10
    assert uuid.UUID(int=value).variant == uuid.RFC_4122


def test_it_clears_the_low_7_bits() -> None:
    assert all(uuid7_int(MS_2026) & 0x7F == 0 for _ in range(200))


def test_it_leaves_room_for_every_event_of_a_batch() -> None:
    assert MAX_EVENTS_PER_BATCH <= 0x7F + 1


def test_it_puts_the_milliseconds_in_the_top_48_bits() -> None:
    assert uuid7_int(MS_2026) >> 80 == MS_2026


def test_it_randomises_ids_within_the_same_millisecond() -> None:
    ids = {new_batch_id(MS_2026) for _ in range(1000)}

    assert len(ids) == 1000


def test_it_uses_the_current_time_when_none_is_given() -> None:
    before = time.time_ns() // 1_000_000
    batch = new_batch_id()
    after = time.time_ns() // 1_000_000

    assert before <= unix_ms_of(batch) <= after


def test_it_writes_batch_ids_as_32_lowercase_hex_digits() -> None:
    batch = new_batch_id(0)

    assert len(batch) == 32
    assert batch == batch.lower()
    int(batch, 16)


@settings(max_examples=200, deadline=None, database=None)
@given(UNIX_MS, UNIX_MS)
def test_it_orders_batch_ids_by_time(a: int, b: int) -> None:
    if a == b:
        return
    earlier, later = sorted((a, b))

    assert new_batch_id(earlier) < new_batch_id(later)


def test_it_sorts_ids_from_increasing_milliseconds_in_that_order() -> None:
    ids = [new_batch_id(MS_2026 + step) for step in range(0, 5000, 7)]

    assert sorted(ids) == ids


@settings(max_examples=200, deadline=None, database=None)
@given(UNIX_MS)
def test_it_round_trips_unix_ms(ms: int) -> None:
    assert unix_ms_of(new_batch_id(ms)) == ms


def test_it_gives_each_event_of_a_batch_a_distinct_id() -> None:
    batch = new_batch_id(MS_2026)

    ids = [event_id(batch, index) for index in range(MAX_EVENTS_PER_BATCH)]

    assert len(set(ids)) == MAX_EVENTS_PER_BATCH


def test_it_finds_the_batch_of_every_event() -> None:
    batch = new_batch_id(MS_2026)

    for index in range(MAX_EVENTS_PER_BATCH):
        assert batch_id_of(event_id(batch, index)) == batch


def test_it_keeps_event_ids_valid_uuid7s() -> None:
    batch = new_batch_id(MS_2026)

    for index in range(MAX_EVENTS_PER_BATCH):
        event = event_id(batch, index)
        assert event.version == 7
        assert event.variant == uuid.RFC_4122
        assert event.int & 0x7F == index


def test_it_makes_event_ids_of_two_batches_disjoint() -> None:
    first, second = new_batch_id(MS_2026), new_batch_id(MS_2026)

    ids_first = {event_id(first, i) for i in range(MAX_EVENTS_PER_BATCH)}
    ids_second = {event_id(second, i) for i in range(MAX_EVENTS_PER_BATCH)}

    assert ids_first.isdisjoint(ids_second)


def test_it_orders_event_ids_by_index_within_a_batch() -> None:
    batch = new_batch_id(MS_2026)

    ids = [event_id(batch, index) for index in range(MAX_EVENTS_PER_BATCH)]

    assert sorted(ids) == ids
