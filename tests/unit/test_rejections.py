"""ingest_api.rejections.RejectionCounter: rejected requests counted per key and reason, drained
into one record per interval, and put back when publishing it failed."""

from __future__ import annotations

from ingest_api.rejections import RejectionCounter
from schemas.records import RejectionCount, Rejections, record_encoder, rejections_decoder

T0 = 1_782_986_400.0


def counts_of(record: Rejections) -> set[RejectionCount]:
    return set(record.counts)


def test_it_drains_nothing_when_nothing_was_rejected() -> None:
    assert RejectionCounter("api-1").drain(T0) is None


def test_it_counts_requests_and_events_per_key_and_reason() -> None:
    counter = RejectionCounter("api-1")
    counter.count("key_1", "rate_limited", 10)
    counter.count("key_1", "rate_limited", 5)
    counter.count("key_1", "invalid")
    counter.count("key_2", "rate_limited", 3)
    counter.count("", "unauthorized")

    record = counter.drain(T0)

    assert record is not None
    assert counts_of(record) == {
        RejectionCount("key_1", "rate_limited", 2, 15),
        RejectionCount("key_1", "invalid", 1, 0),
        RejectionCount("key_2", "rate_limited", 1, 3),
        RejectionCount("", "unauthorized", 1, 0),
    }
    assert len(record.counts) == 4


def test_it_names_its_origin_and_the_interval() -> None:
    counter = RejectionCounter("api-1")
    assert counter.drain(T0) is None  # an empty drain starts the next interval
    counter.count("key_1", "too_large")

    record = counter.drain(T0 + 1)

    assert record is not None
    assert (record.origin, record.start, record.end) == ("api-1", T0, T0 + 1)


def test_it_starts_the_next_interval_where_the_last_ended() -> None:
    counter = RejectionCounter("api-1")
    counter.count("key_1", "too_large")
    counter.drain(T0)
    counter.count("key_1", "too_large")

    record = counter.drain(T0 + 1)

    assert record is not None
    assert (record.start, record.end) == (T0, T0 + 1)


def test_it_resets_after_a_drain() -> None:
    counter = RejectionCounter("api-1")
    counter.count("key_1", "invalid")
    counter.drain(T0)

    assert counter.drain(T0 + 1) is None


def test_it_gives_every_record_a_unique_id() -> None:
    ids = set()
    for origin in ("api-1", "api-1", "api-2"):  # a restarted process reuses its origin
        counter = RejectionCounter(origin)
        for i in range(50):
            counter.count("key_1", "invalid")
            record = counter.drain(T0 + i)
            assert record is not None
            ids.add(record.id)

    assert len(ids) == 150


def test_it_merges_counts_that_failed_to_publish_into_the_next_record() -> None:
    counter = RejectionCounter("api-1")
    counter.drain(T0)
    counter.count("key_1", "rate_limited", 10)
    counter.count("key_2", "invalid")
    failed = counter.drain(T0 + 1)
    assert failed is not None
    counter.count("key_1", "rate_limited", 4)

    counter.restore(failed)
    record = counter.drain(T0 + 2)

    assert record is not None
    assert counts_of(record) == {
        RejectionCount("key_1", "rate_limited", 2, 14),
        RejectionCount("key_2", "invalid", 1, 0),
    }
    assert (record.start, record.end) == (T0, T0 + 2)
    assert record.id != failed.id


def test_it_republishes_restored_counts_even_without_new_rejections() -> None:
    counter = RejectionCounter("api-1")
    counter.drain(T0)
    counter.count("key_1", "too_large")
    failed = counter.drain(T0 + 1)
    assert failed is not None

    counter.restore(failed)
    record = counter.drain(T0 + 2)

    assert record is not None
    assert counts_of(record) == counts_of(failed)
    assert record.start == T0
    assert counter.drain(T0 + 3) is None


def test_it_encodes_a_record_the_store_can_decode() -> None:
    counter = RejectionCounter("api-1")
    counter.count("key_1", "rate_limited", 7)
    record = counter.drain(T0)
    assert record is not None

    assert rejections_decoder.decode(record_encoder.encode(record)) == record
