"""Rollup records: what the rollups agent reads of an EventBatch, and the deltas it publishes
on Topic.ROLLUPS for the store to add to the ClickHouse `rollups` table."""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas.wire import EventType, Timestamp

# The values of rollups.grain and the width of their windows, finest first. Windows are
# multiples of the width since the epoch: UTC minutes, hours and days.
Grain = Literal["minute", "hour", "day"]
GRAINS: tuple[tuple[Grain, int], ...] = (("minute", 60), ("hour", 3_600), ("day", 86_400))


class RollupEvent(msgspec.Struct, frozen=True):
    """An event as the rollups see it. Unknown fields are allowed, so `meta` is skipped by the
    decoder instead of being parsed. `message` is kept for errors: digests show an error's
    last message from the rollups."""

    type: EventType
    name: str
    message: str | None = None
    value: float | None = None
    ts: Timestamp | None = None


class RollupBatch(msgspec.Struct, frozen=True):
    """The part of an EventBatch (schemas.records) the rollups need."""

    batch_id: str
    key_id: str
    received_at: float  # the time of events without `ts`
    events: list[RollupEvent]
    historical: bool = False  # the bulk lane: rolled up, but never alerting (error_router)


class RollupRow(msgspec.Struct, frozen=True, array_like=True):
    """One window's aggregates over a delta's events; rows of several deltas add up."""

    grain: Grain
    name: str
    type: EventType
    key_id: str
    bucket: int  # the window's start, epoch seconds
    count: int
    value_count: int  # events carrying a value
    value_sum: float
    value_min: float | None  # None when no event of the window carried a value
    value_max: float | None
    # The latest error of the window that carried a message, and its time (epoch seconds);
    # ClickHouse keeps max((last_at, last_message)): the latest wins, ties deterministically.
    last_at: float = 0.0
    last_message: str = ""


class RollupDelta(msgspec.Struct, frozen=True):
    """The rollups of the events records first_offset..last_offset of one events partition."""

    source_partition: int
    first_offset: int
    last_offset: int
    # The last batch folded in. Offsets start again at 0 when the embedded (in-memory) broker
    # restarts, so (partition, last_offset) alone could repeat an id ClickHouse remembers.
    last_batch_id: str
    rows: list[RollupRow]

    @property
    def dedup_token(self) -> str:
        """ClickHouse's insert_deduplication_token: the same delta is stored once."""
        return f"{self.source_partition}:{self.last_offset}:{self.last_batch_id}"


class DeltaHead(msgspec.Struct, frozen=True):
    """A delta without its rows: what the agent reads back at start."""

    last_offset: int


rollup_batch_decoder = msgspec.json.Decoder(RollupBatch)
delta_encoder = msgspec.json.Encoder()
delta_decoder = msgspec.json.Decoder(RollupDelta)
delta_head_decoder = msgspec.json.Decoder(DeltaHead)
