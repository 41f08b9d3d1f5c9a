"""Records on the log. JSON (msgspec) so that an event's `meta` travels as the bytes the
client sent; every record carries its own id so that every sink can be idempotent."""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas.limits import DEFAULT_BURST, DEFAULT_RATE_PER_MINUTE
from schemas.wire import Event

KeyScope = Literal["ingest", "read"]
RejectReason = Literal["invalid", "unauthorized", "too_large", "rate_limited", "overloaded"]


class EventBatch(msgspec.Struct, frozen=True):
    """One accepted ingest request: the unit appended to Topic.EVENTS (keyed by key_id)."""

    batch_id: str  # UUIDv7 hex; event i's id is batch_id + i (schemas.ids)
    key_id: str
    received_at: float  # unix seconds, the default for events without `ts`
    events: list[Event]
    # The admitting API process, and the key's limit it admitted under: the ratelimit agent
    # replays admissions with exactly these, without joining the keys topic.
    origin: str = ""
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE
    burst: int = DEFAULT_BURST
    # Bulk backfill (POST /api/v1/events/bulk): stored and rolled up like any batch, but never
    # trips or resolves a canary nor raises an immediate alert.
    historical: bool = False


class BatchUsage(msgspec.Struct, frozen=True):
    """What the ratelimit agent reads of an EventBatch: events are skipped, not decoded."""

    key_id: str
    received_at: float
    events: list[msgspec.Raw]
    origin: str = ""
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE
    burst: int = DEFAULT_BURST
    historical: bool = False  # the bulk lane: charged to its own budget, not to this bucket


class KeyCreated(msgspec.Struct, frozen=True, tag="key.created", tag_field="kind"):
    id: str
    name: str
    key_hash: str  # sha256 hex of the full key; the key itself is never stored
    created_at: float
    scope: KeyScope = "ingest"
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE
    burst: int = DEFAULT_BURST


class KeyLimitsChanged(msgspec.Struct, frozen=True, tag="key.limits", tag_field="kind"):
    id: str
    rate_per_minute: int
    burst: int
    changed_at: float


class KeyRevoked(msgspec.Struct, frozen=True, tag="key.revoked", tag_field="kind"):
    id: str
    revoked_at: float


class KeyUsed(msgspec.Struct, frozen=True, tag="key.used", tag_field="kind"):
    """Published by the key_usage agent at most every few seconds per key, not per request."""

    id: str
    last_used_at: float


class BatchOrigin(msgspec.Struct, frozen=True):
    """The head of an EventBatch, for agents that need not decode its events."""

    key_id: str
    received_at: float


KeyRecord = KeyCreated | KeyRevoked | KeyUsed | KeyLimitsChanged


class RateSnapshot(msgspec.Struct, frozen=True):
    """The ratelimit agent's authoritative bucket of one key, on Topic.RATELIMIT."""

    key_id: str
    level: float
    at: float
    partition: int
    offset: int  # the last events-topic offset folded into `level`
    sharers: int = 1  # API processes that admitted for this key recently


class RejectionCount(msgspec.Struct, frozen=True, array_like=True):
    key_id: str  # "" when no key could be identified (401)
    reason: RejectReason
    requests: int
    events: int


class Rejections(msgspec.Struct, frozen=True):
    """Rejected requests counted by one API process over one interval, on Topic.REJECTIONS."""

    id: str  # unique per record: the store keeps each once
    origin: str
    start: float
    end: float
    counts: list[RejectionCount]


record_encoder = msgspec.json.Encoder()
batch_decoder = msgspec.json.Decoder(EventBatch)
key_record_decoder = msgspec.json.Decoder(KeyRecord)  # type: ignore[arg-type]
batch_origin_decoder = msgspec.json.Decoder(BatchOrigin)
batch_usage_decoder = msgspec.json.Decoder(BatchUsage)
rate_snapshot_decoder = msgspec.json.Decoder(RateSnapshot)
rejections_decoder = msgspec.json.Decoder(Rejections)
