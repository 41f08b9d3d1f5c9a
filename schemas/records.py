"""Records on the log. JSON (msgspec) so that an event's `meta` travels as the bytes the
client sent; every record carries its own id so that every sink can be idempotent."""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas.wire import Event

KeyScope = Literal["ingest", "read"]


class EventBatch(msgspec.Struct, frozen=True):
    """One accepted ingest request: the unit appended to Topic.EVENTS."""

    batch_id: str  # UUIDv7 hex; event i's id is batch_id + i (schemas.ids)
    key_id: str
    received_at: float  # unix seconds, the default for events without `ts`
    events: list[Event]


class KeyCreated(msgspec.Struct, frozen=True, tag="key.created", tag_field="kind"):
    id: str
    name: str
    key_hash: str  # sha256 hex of the full key; the key itself is never stored
    created_at: float
    scope: KeyScope = "ingest"


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


KeyRecord = KeyCreated | KeyRevoked | KeyUsed

record_encoder = msgspec.json.Encoder()
batch_decoder = msgspec.json.Decoder(EventBatch)
key_record_decoder = msgspec.json.Decoder(KeyRecord)  # type: ignore[arg-type]
batch_origin_decoder = msgspec.json.Decoder(BatchOrigin)
