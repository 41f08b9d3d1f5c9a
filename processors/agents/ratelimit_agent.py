"""ratelimit agent: the authoritative token bucket of every key, from the log of admissions.

Every EventBatch on the events topic is an admission by some API process. The agent debits
the key's bucket with it (domain.token_bucket.debit, the same arithmetic the API uses),
keeps the result in a changelogged table (so a restarted worker resumes, not refills), and
publishes a RateSnapshot per touched key after each flush of `take_batches`. Folding a flush
in plain Python and writing the table once per key keeps Faust's per-write cost off the
per-record path. The fold skips offsets it has already applied, so an at-least-once replay
after a crash debits nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import faust

from domain.token_bucket import Bucket, Limit, debit, full
from processors.agents.batching import take_batches
from processors.agents.topics import log_topic
from runtime.settings import Settings
from schemas.records import BatchUsage, RateSnapshot, batch_usage_decoder, record_encoder
from schemas.topics import Topic, position

log = logging.getLogger(__name__)

# An API process counts as sharing a key's tokens while it admitted for it this recently.
SHARING_WINDOW_S = 10.0
FLUSH_MAX_RECORDS = 2_000
FLUSH_WITHIN_S = 0.05


@dataclass
class KeyLevel:
    bucket: Bucket
    partition: int = -1
    offset: int = -1  # last events offset folded in
    origins: dict[str, float] = field(default_factory=dict)  # API process -> last admission

    def to_json(self) -> list[object]:
        return [self.bucket.level, self.bucket.at, self.partition, self.offset, self.origins]

    @classmethod
    def from_json(cls, value: list[object]) -> KeyLevel:
        level, at, partition, offset, origins = value
        return cls(Bucket(float(level), float(at)), int(partition), int(offset), dict(origins))  # type: ignore[arg-type,call-overload]


def fold_admission(
    state: KeyLevel | None, usage: BatchUsage, partition: int, offset: int
) -> KeyLevel:
    """The key's level after one admitted batch; a batch already folded changes nothing."""
    limit = Limit(usage.rate_per_minute, usage.burst)
    if state is None:
        state = KeyLevel(full(limit, usage.received_at))
    elif partition == state.partition and offset <= state.offset:
        return state
    state.bucket = debit(state.bucket, len(usage.events), limit, usage.received_at)
    state.partition, state.offset = partition, offset
    if usage.origin:
        state.origins[usage.origin] = max(usage.received_at, state.origins.get(usage.origin, 0.0))
    return state


def snapshot_of(key_id: str, state: KeyLevel, now: float) -> RateSnapshot:
    recent = [o for o, at in state.origins.items() if at >= now - SHARING_WINDOW_S]
    return RateSnapshot(
        key_id=key_id,
        level=state.bucket.level,
        at=state.bucket.at,
        partition=state.partition,
        offset=state.offset,
        sharers=max(1, len(recent)),
    )


def forget_idle_origins(state: KeyLevel, now: float) -> None:
    for origin, at in list(state.origins.items()):
        if at < now - SHARING_WINDOW_S:
            del state.origins[origin]


def fold_flush(
    records: Iterable[tuple[bytes, int, int]], stored: Callable[[str], KeyLevel | None]
) -> dict[str, KeyLevel]:
    """The levels of the keys a flush touches, after its records (value, partition, offset)
    in log order; `stored(key_id)`: a key's level before the flush (asked once per key).
    Unreadable records (the events sink dead-letters them) and the bulk lane's historical
    batches (ingest_api.bulk_budget paid for them) debit nothing."""
    touched: dict[str, KeyLevel] = {}
    for value, partition, offset in records:
        try:
            usage = batch_usage_decoder.decode(value)
        except Exception:  # noqa: BLE001 - never let the agent's loop raise
            log.warning("ratelimit: unreadable events record skipped")
            continue
        if usage.historical:
            continue
        state = touched[usage.key_id] if usage.key_id in touched else stored(usage.key_id)
        touched[usage.key_id] = fold_admission(state, usage, partition, offset)
    return touched


def register(app: faust.App, settings: Settings) -> None:
    events = log_topic(app, Topic.EVENTS)
    snapshots = log_topic(app, Topic.RATELIMIT)
    # Keyed by the raw key id, partitioned like the events topic (murmur2 of the same bytes).
    levels = app.Table(
        "ratelimit-levels",
        partitions=Topic.EVENTS.partitions,
        key_type=bytes,  # raw bytes on the changelog; values are JSON
        use_partitioner=True,  # written once per flush, outside per-record iteration (#497)
    )

    def stored(key_id: str) -> KeyLevel | None:
        value = levels.get(key_id.encode())
        return KeyLevel.from_json(value) if value is not None else None

    @app.agent(events, name="ratelimit")
    async def ratelimit(stream: faust.StreamT[bytes]) -> None:
        async for batch in take_batches(stream, FLUSH_MAX_RECORDS, within=FLUSH_WITHIN_S):
            touched = fold_flush(
                (
                    (event.value, event.message.partition, position(event.message.offset))
                    for event in batch
                ),
                stored,
            )
            now = time.time()
            for key_id, state in touched.items():
                forget_idle_origins(state, now)
                key = key_id.encode()
                levels[key] = state.to_json()
                await snapshots.send(
                    key=key, value=record_encoder.encode(snapshot_of(key_id, state, now))
                )
