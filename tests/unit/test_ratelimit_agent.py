"""processors.agents.ratelimit_agent: the agent's pure fold of admissions into each key's authoritative
level, and the snapshots it publishes."""

from __future__ import annotations

import json

import msgspec

from domain.token_bucket import Bucket
from processors.agents.ratelimit_agent import (
    SHARING_WINDOW_S,
    KeyLevel,
    fold_admission,
    forget_idle_origins,
    snapshot_of,
)
from schemas.limits import DEFAULT_BURST, DEFAULT_RATE_PER_MINUTE
from schemas.records import BatchUsage, RateSnapshot

RATE_PER_S = DEFAULT_RATE_PER_MINUTE / 60
T0 = 1_782_986_400.0
KEY = "key_1"


def usage(
    n: int,
    at: float = T0,
    origin: str = "api-1",
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
    burst: int = DEFAULT_BURST,
) -> BatchUsage:
    return BatchUsage(
        key_id=KEY,
        received_at=at,
        events=[msgspec.Raw(b"{}")] * n,
        origin=origin,
        rate_per_minute=rate_per_minute,
        burst=burst,
    )


def test_it_starts_a_new_key_full_and_debits_the_first_batch() -> None:
    state = fold_admission(None, usage(7), partition=2, offset=40)

    assert state.bucket == Bucket(DEFAULT_BURST - 7.0, T0)
    assert (state.partition, state.offset) == (2, 40)


def test_it_uses_the_limit_the_batch_carries() -> None:
    state = fold_admission(None, usage(7, rate_per_minute=1, burst=10), partition=0, offset=0)

    assert state.bucket == Bucket(3.0, T0)


def test_it_changes_nothing_for_a_batch_folded_already() -> None:
    state = fold_admission(None, usage(7), 2, 40)
    state = fold_admission(state, usage(5, at=T0 + 1, origin="api-2"), 2, 41)
    before = KeyLevel(state.bucket, state.partition, state.offset, dict(state.origins))

    replayed = fold_admission(state, usage(5, at=T0 + 1, origin="api-2"), 2, 41)
    older = fold_admission(replayed, usage(7, origin="api-3"), 2, 40)

    assert older == before


def test_it_debits_later_offsets_after_refilling() -> None:
    state = fold_admission(None, usage(DEFAULT_BURST), 0, 1)

    state = fold_admission(state, usage(3, at=T0 + 10), 0, 2)

    assert state.bucket == Bucket(10 * RATE_PER_S - 3, T0 + 10)
    assert state.offset == 2


def test_it_debits_into_debt() -> None:
    state = fold_admission(None, usage(DEFAULT_BURST), 0, 1)

    state = fold_admission(state, usage(DEFAULT_BURST), 0, 2)

    assert state.bucket == Bucket(-float(DEFAULT_BURST), T0)


def test_it_caps_the_refill_between_batches_at_the_burst() -> None:
    state = fold_admission(None, usage(1), 0, 1)

    state = fold_admission(state, usage(1, at=T0 + 3600), 0, 2)

    assert state.bucket == Bucket(DEFAULT_BURST - 1.0, T0 + 3600)


def test_it_records_the_latest_admission_of_each_origin() -> None:
    state = fold_admission(None, usage(1, at=T0 + 5, origin="api-1"), 0, 1)
    state = fold_admission(state, usage(1, at=T0 + 2, origin="api-1"), 0, 2)  # clock skew
    state = fold_admission(state, usage(1, at=T0 + 3, origin="api-2"), 0, 3)

    assert state.origins == {"api-1": T0 + 5, "api-2": T0 + 3}


def test_it_records_no_origin_for_a_batch_without_one() -> None:
    state = fold_admission(None, usage(1, origin=""), 0, 1)

    assert state.origins == {}


def test_it_snapshots_the_level_and_the_last_offset() -> None:
    state = fold_admission(None, usage(7), 3, 41)

    assert snapshot_of(KEY, state, T0 + 1) == RateSnapshot(
        key_id=KEY, level=DEFAULT_BURST - 7.0, at=T0, partition=3, offset=41, sharers=1
    )


def test_it_counts_as_sharers_the_origins_that_admitted_within_the_window() -> None:
    state = fold_admission(None, usage(1, at=T0, origin="api-1"), 0, 1)
    state = fold_admission(state, usage(1, at=T0 + 5, origin="api-2"), 0, 2)
    state = fold_admission(state, usage(1, at=T0 + 8, origin="api-3"), 0, 3)

    assert snapshot_of(KEY, state, T0 + 8).sharers == 3
    assert snapshot_of(KEY, state, T0 + SHARING_WINDOW_S).sharers == 3  # the edge counts
    assert snapshot_of(KEY, state, T0 + SHARING_WINDOW_S + 1).sharers == 2
    assert snapshot_of(KEY, state, T0 + 8 + SHARING_WINDOW_S + 1).sharers == 1


def test_it_counts_at_least_one_sharer() -> None:
    state = fold_admission(None, usage(1, origin=""), 0, 1)

    assert snapshot_of(KEY, state, T0).sharers == 1


def test_it_forgets_origins_idle_for_longer_than_the_window() -> None:
    state = fold_admission(None, usage(1, at=T0, origin="api-1"), 0, 1)
    state = fold_admission(state, usage(1, at=T0 + 5, origin="api-2"), 0, 2)

    forget_idle_origins(state, T0 + SHARING_WINDOW_S)
    assert state.origins == {"api-1": T0, "api-2": T0 + 5}

    forget_idle_origins(state, T0 + SHARING_WINDOW_S + 1)
    assert state.origins == {"api-2": T0 + 5}


def test_it_round_trips_a_level_through_json() -> None:
    state = fold_admission(None, usage(7, origin="api-1"), 3, 41)
    state = fold_admission(state, usage(DEFAULT_BURST, at=T0 + 0.25, origin="api-2"), 3, 42)

    assert KeyLevel.from_json(state.to_json()) == state
    assert KeyLevel.from_json(json.loads(json.dumps(state.to_json()))) == state


def test_it_round_trips_a_fresh_level_through_json() -> None:
    state = KeyLevel(Bucket(float(DEFAULT_BURST), T0))

    assert KeyLevel.from_json(json.loads(json.dumps(state.to_json()))) == state


def test_it_reads_json_numbers_back_as_their_types() -> None:
    restored = KeyLevel.from_json([5, 7, 1, 9, {"api-1": 7.5}])

    assert restored == KeyLevel(Bucket(5.0, 7.0), 1, 9, {"api-1": 7.5})
    assert isinstance(restored.bucket.level, float) and isinstance(restored.bucket.at, float)


def test_it_resumes_from_a_stored_level_without_debiting_twice() -> None:
    state = fold_admission(None, usage(7), 0, 1)
    state = fold_admission(state, usage(5, at=T0 + 1), 0, 2)
    stored = json.loads(json.dumps(state.to_json()))

    resumed = fold_admission(KeyLevel.from_json(stored), usage(5, at=T0 + 1), 0, 2)

    assert resumed == state
