"""domain.rollup_fold: the rollup fold and the deltas it is cut into, tested with plain data."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from domain.rollup_fold import (
    MAX_DELTA_BYTES,
    DeltaBuilder,
    FlushDeltas,
    RollupFold,
    epoch_seconds,
)
from schemas.limits import MAX_EVENTS_PER_BATCH, NAME_MAX_CHARS
from schemas.records import EventBatch, record_encoder
from schemas.rollups import GRAINS, RollupRow, delta_decoder, delta_encoder, rollup_batch_decoder
from schemas.wire import Event

UTC = dt.UTC
T0 = 1_782_986_400  # a realistic unix time, at a whole day
WIDTH = dict(GRAINS)


def totals(rows: list[RollupRow], grain: str) -> tuple[int, int, float, float | None, float | None]:
    mine = [r for r in rows if r.grain == grain]
    mins = [r.value_min for r in mine if r.value_min is not None]
    maxs = [r.value_max for r in mine if r.value_max is not None]
    return (
        sum(r.count for r in mine),
        sum(r.value_count for r in mine),
        sum(r.value_sum for r in mine),
        min(mins, default=None),
        max(maxs, default=None),
    )


def batch_of(events: list[Event], received_at: float = T0 + 0.5, batch_id: str = "b" * 32) -> bytes:
    return record_encoder.encode(EventBatch(batch_id, "key1", received_at, events))


# (type, name, value, at_s, key_id); integer values keep float sums exact in any order.
events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["event", "error"]),
        st.sampled_from(["a", "b", "backup-completed"]),
        st.one_of(st.none(), st.integers(-(10**6), 10**6).map(float)),
        st.integers(0, 4_102_444_799),  # 1970 .. 2100, as the API accepts
        st.sampled_from(["k1", "k2"]),
    ),
    max_size=200,
)


@given(events_strategy)
def test_it_rolls_up_every_event_into_its_window_of_every_grain(events: list) -> None:
    fold = RollupFold()
    for event in events:
        fold.add(*event)
    rows = fold.drain()

    expected: dict[tuple, list] = defaultdict(lambda: [0, 0, 0.0, None, None])
    for type_, name, value, at_s, key_id in events:
        for grain, width in GRAINS:
            cell = expected[(grain, name, type_, key_id, at_s // width * width)]
            cell[0] += 1
            if value is not None:
                cell[1] += 1
                cell[2] += value
                cell[3] = value if cell[3] is None else min(cell[3], value)
                cell[4] = value if cell[4] is None else max(cell[4], value)
    got = {
        (r.grain, r.name, r.type, r.key_id, r.bucket): [
            r.count,
            r.value_count,
            r.value_sum,
            r.value_min,
            r.value_max,
        ]
        for r in rows
    }
    assert len(got) == len(rows)  # one row per window
    assert got == dict(expected)
    values = [e[2] for e in events if e[2] is not None]
    for grain, _ in GRAINS:
        assert totals(rows, grain) == (
            len(events),
            len(values),
            sum(values),
            min(values, default=None),
            max(values, default=None),
        )


@given(events_strategy, st.integers(0, 200))
def test_it_gives_deltas_that_add_up_to_the_whole(events: list, cut_at: int) -> None:
    whole, first, second = RollupFold(), RollupFold(), RollupFold()
    for i, event in enumerate(events):
        whole.add(*event)
        (first if i < cut_at else second).add(*event)
    parts = first.drain() + second.drain()
    rows = whole.drain()
    for grain, _ in GRAINS:
        assert totals(parts, grain) == totals(rows, grain)


def test_it_empties_on_drain() -> None:
    fold = RollupFold()
    fold.add("event", "a", 1.0, T0, "k")
    assert len(fold.drain()) == len(GRAINS)
    assert fold.drain() == [] and len(fold) == 0 and fold.estimated_bytes == 0


def test_it_counts_events_without_a_value_but_not_as_values() -> None:
    fold = RollupFold()
    fold.add("event", "a", None, T0, "k")
    fold.add("event", "a", None, T0 + 1, "k")
    rows = fold.drain()
    assert {
        (r.grain, r.count, r.value_count, r.value_sum, r.value_min, r.value_max) for r in rows
    } == {(grain, 2, 0, 0.0, None, None) for grain, _ in GRAINS}


def test_it_keeps_min_and_max_of_values_only() -> None:
    fold = RollupFold()
    for value in (None, 5.0, -2.5, None, 3.0):
        fold.add("error", "a", value, T0 + 10, "k")
    (minute,) = [r for r in fold.drain() if r.grain == "minute"]
    assert (minute.count, minute.value_count, minute.value_sum) == (5, 3, 5.5)
    assert (minute.value_min, minute.value_max) == (-2.5, 5.0)


def test_it_tells_apart_names_types_and_keys() -> None:
    fold = RollupFold()
    for type_, name, key_id in [
        ("event", "a", "k"),
        ("error", "a", "k"),
        ("event", "b", "k"),
        ("event", "a", "j"),
    ]:
        fold.add(type_, name, 1.0, T0, key_id)
    minutes = [r for r in fold.drain() if r.grain == "minute"]
    assert len(minutes) == 4 and all(r.count == 1 for r in minutes)


def test_it_puts_the_last_instant_of_a_minute_in_that_minute() -> None:
    last = dt.datetime.fromtimestamp(T0 + 59, UTC).replace(microsecond=999_999)
    nxt = dt.datetime.fromtimestamp(T0 + 60, UTC)
    assert epoch_seconds(last) == T0 + 59
    assert epoch_seconds(nxt) == T0 + 60
    fold = RollupFold()
    fold.add_batch(
        rollup_batch_decoder.decode(
            batch_of(
                [
                    Event(type="event", name="a", ts=last),
                    Event(type="event", name="a", ts=nxt),
                ]
            )
        )
    )
    minutes = sorted((r.bucket, r.count) for r in fold.drain() if r.grain == "minute")
    assert minutes == [(T0, 1), (T0 + 60, 1)]


def test_it_splits_days_at_midnight_utc_whatever_the_sender_zone() -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    # 01:30 in Paris is 23:30 UTC the day before; 00:00:00 UTC starts the next day.
    before = dt.datetime(2026, 7, 2, 1, 30, tzinfo=paris)
    midnight = dt.datetime(2026, 7, 2, 0, 0, tzinfo=UTC)
    fold = RollupFold()
    fold.add_batch(
        rollup_batch_decoder.decode(
            batch_of(
                [
                    Event(type="event", name="a", ts=before),
                    Event(type="event", name="a", ts=midnight - dt.timedelta(microseconds=1)),
                    Event(type="event", name="a", ts=midnight),
                ]
            )
        )
    )
    days = sorted((r.bucket, r.count) for r in fold.drain() if r.grain == "day")
    start = epoch_seconds(midnight)
    assert start % 86_400 == 0
    assert days == [(start - 86_400, 2), (start, 1)]


def test_it_puts_events_without_ts_at_the_received_time_the_events_table_stores() -> None:
    # 59.9999996 s rounds to 60.000000 as a datetime: the events sink stores that as `ts`.
    received_at = T0 + 59.9999996
    assert dt.datetime.fromtimestamp(received_at, UTC) == dt.datetime.fromtimestamp(T0 + 60, UTC)
    fold = RollupFold()
    fold.add_batch(
        rollup_batch_decoder.decode(batch_of([Event(type="event", name="a")], received_at))
    )
    (minute,) = [r for r in fold.drain() if r.grain == "minute"]
    assert minute.bucket == T0 + 60


def test_it_puts_a_late_event_in_the_windows_of_its_own_time() -> None:
    late = dt.datetime(2026, 6, 28, 13, 45, 30, tzinfo=UTC)  # days before it is received
    fold = RollupFold()
    fold.add_batch(
        rollup_batch_decoder.decode(batch_of([Event(type="event", name="a", value=2.0, ts=late)]))
    )
    buckets = {r.grain: dt.datetime.fromtimestamp(r.bucket, UTC) for r in fold.drain()}
    assert buckets == {
        "minute": dt.datetime(2026, 6, 28, 13, 45, tzinfo=UTC),
        "hour": dt.datetime(2026, 6, 28, 13, tzinfo=UTC),
        "day": dt.datetime(2026, 6, 28, tzinfo=UTC),
    }


def test_it_reads_batches_skipping_message_and_meta() -> None:
    raw = batch_of(
        [
            Event(
                type="error",
                name="a",
                message="boom",
                value=1.5,
                meta=msgspec.Raw(b'{"deep": [1, {"x": null}]}'),
            )
        ]
    )
    batch = rollup_batch_decoder.decode(raw)
    assert (
        batch.key_id == "key1" and batch.events[0].value == 1.5 and batch.events[0].type == "error"
    )


def test_a_delta_covers_its_offsets_and_is_cut_empty() -> None:
    builder = DeltaBuilder(3)
    builder.add(10, None)  # unreadable: inside the range, adds nothing
    builder.add(
        11,
        rollup_batch_decoder.decode(batch_of([Event(type="event", name="a")], batch_id="1" * 32)),
    )
    builder.add(
        12,
        rollup_batch_decoder.decode(batch_of([Event(type="event", name="b")], batch_id="2" * 32)),
    )
    delta = builder.cut()
    assert delta is not None
    assert (delta.source_partition, delta.first_offset, delta.last_offset) == (3, 10, 12)
    assert delta.dedup_token == f"3:12:{'2' * 32}"
    assert len(delta.rows) == 2 * len(GRAINS)
    assert delta_decoder.decode(delta_encoder.encode(delta)) == delta
    assert builder.cut() is None
    builder.add(13, None)
    assert builder.cut() is None  # nothing to store: no delta


@given(st.text(min_size=1, max_size=NAME_MAX_CHARS), st.integers(0, 10**6))
def test_the_size_estimate_bounds_the_encoded_delta(name: str, seed: int) -> None:
    builder = DeltaBuilder(0)
    events = [
        Event(
            type="event",
            name=f"{name}{i}"[-NAME_MAX_CHARS:],
            value=-1.2345678901234567e300,
            ts=dt.datetime.fromtimestamp(seed + 86_400 * i, UTC),
        )
        for i in range(MAX_EVENTS_PER_BATCH)
    ]
    builder.add(0, rollup_batch_decoder.decode(batch_of(events)))
    estimate = builder._fold.estimated_bytes
    delta = builder.cut()
    assert delta is not None
    assert len(delta_encoder.encode(delta)) <= estimate + 200  # the envelope


def test_it_is_full_before_a_delta_outgrows_a_request() -> None:
    builder = DeltaBuilder(0)
    offset = 0
    while not builder.full:
        events = [
            Event(type="event", name='é"\x01' * 66 + str(offset * 100 + i), value=1.0)
            for i in range(MAX_EVENTS_PER_BATCH)
        ]
        builder.add(offset, rollup_batch_decoder.decode(batch_of(events)))
        offset += 1
    delta = builder.cut()
    assert delta is not None and delta.last_offset == offset - 1
    assert MAX_DELTA_BYTES // 2 < len(delta_encoder.encode(delta)) < 1_000_000


def test_a_flush_gives_gap_free_deltas_per_partition_in_offset_order() -> None:
    flush = FlushDeltas()
    for offset in range(40):
        wide = [
            Event(type="event", name=f"{offset}-{i}-" + "n" * 190, value=1.0)
            for i in range(MAX_EVENTS_PER_BATCH)
        ]  # 300 new rows of ~400 bytes a record
        batch = rollup_batch_decoder.decode(batch_of(wide, batch_id=f"{offset:032x}"))
        for partition in (0, 2):
            flush.add(partition, offset, batch)
    deltas = flush.deltas()
    assert flush.deltas() == []
    for partition in (0, 2):
        mine = [d for d in deltas if d.source_partition == partition]
        assert len(mine) > 1  # cut when full
        assert mine[0].first_offset == 0 and mine[-1].last_offset == 39
        assert all(a.last_offset + 1 == b.first_offset for a, b in itertools.pairwise(mine))
        assert (
            sum(r.count for d in mine for r in d.rows if r.grain == "day")
            == 40 * MAX_EVENTS_PER_BATCH
        )


def test_an_error_window_keeps_its_latest_message_through_every_grain() -> None:
    fold = RollupFold()
    fold.add("error", "db.timeout", None, 120, "k", "first")
    fold.add("error", "db.timeout", None, 150, "k", "latest")
    fold.add("error", "db.timeout", None, 130, "k", "late arrival, earlier time")
    fold.add("event", "page.view", None, 140, "k")
    rows = {(r.grain, r.name): r for r in fold.drain()}
    for grain in ("minute", "hour", "day"):
        assert (rows[grain, "db.timeout"].last_at, rows[grain, "db.timeout"].last_message) == (
            150.0,
            "latest",
        )
        assert rows[grain, "page.view"].last_message == ""
