"""What the routes use, built once per API process in the app's lifespan."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from ingest_api.backpressure import Backpressure
from ingest_api.bulk_budget import BulkBudget
from ingest_api.group_append import GroupAppend
from ingest_api.ratelimit import RateLimiter
from ingest_api.rejections import RejectionCounter
from runtime import nudges
from runtime.catch_up import CatchUp
from runtime.control_registry import ControlRegistry, could_be_token
from runtime.key_registry import ApiKey, KeyRegistry
from runtime.nudges import Nudger
from runtime.query_backend import QueryBackend
from runtime.settings import Settings
from schemas.canaries import CanaryDefined, CheckIn
from schemas.errors import AppendFailed, LogRestoring
from schemas.records import KeyScope, record_encoder
from schemas.topics import Topic, current_generation, generation_of, position

# Longer than the quiet spell after which a store's reader starts to rest (runtime.kafka_client).
STORE_NUDGE_AFTER_S = 1.0
# How often a rotation's switch looks whether the old generation's appends are done.
SETTLE_POLL_S = 0.01


@dataclass
class Services:
    settings: Settings
    registry: KeyRegistry
    producer: AIOKafkaProducer
    queries: QueryBackend
    limiter: RateLimiter
    rejections: RejectionCounter
    control: ControlRegistry
    backpressure: Backpressure
    bulk_budget: BulkBudget
    keys_caught_up: CatchUp
    control_caught_up: CatchUp
    background: list[asyncio.Task[None]] = field(default_factory=list)
    checkins: GroupAppend[CheckIn] = field(init=False)  # ingest_api.checkin.checkin_log
    nudger: Nudger = field(init=False)  # the worker's and the store's (runtime.nudges)
    last_append_at: float = 0.0  # monotonic time of the last acknowledged append
    # Appends not yet acknowledged, by log generation (runtime.generations).
    appending: Counter[int] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.nudger = Nudger(
            [self.settings.worker_socket, nudges.store_path(self.settings.store_socket)]
        )

    @property
    def origin(self) -> str:
        return self.rejections.origin

    async def append(
        self, topic: Topic, value: bytes, partition: int | None = None, key: bytes | None = None
    ) -> int:
        """Append one record and wait for acks=all; return its position (its offset and the
        log generation it went to: schemas.topics.position). AppendFailed after
        append_timeout_s."""
        metadata = await self.append_record(topic, value, partition, key)
        return position(metadata.offset, generation_of(metadata.topic))

    async def append_record(
        self, topic: Topic, value: bytes, partition: int | None = None, key: bytes | None = None
    ) -> RecordMetadata:
        """`append`, answering where the record went."""
        generation = current_generation()
        # Counted until acknowledged: a rotation of the log waits for the appends still on
        # their way to the old generation (a send may wait for metadata or buffer space
        # before the producer holds it, so flushing the producer is not enough).
        self.appending[generation] += 1
        try:
            async with asyncio.timeout(self.settings.append_timeout_s):
                metadata = await self.producer.send_and_wait(
                    topic.name_in(generation), value, key=key, partition=partition
                )
        except (KafkaError, TimeoutError, OSError) as exc:
            raise AppendFailed(f"log unavailable: {type(exc).__name__}") from exc
        finally:
            self.appending[generation] -= 1
        # After a quiet spell the store's readers may be resting (Settings.fetch_rests): wake
        # them, so what was just acknowledged is stored at once, not when the rest runs out
        # (a kill -9 of the whole embedded stack loses what the store has not read yet); and
        # the worker's, so a check-in or a new canary is judged at once (runtime.nudges).
        now = time.monotonic()
        if now - self.last_append_at > STORE_NUDGE_AFTER_S:
            self.nudger.nudge()
        self.last_append_at = now
        return metadata

    async def settled(self, generations: list[int]) -> None:
        """Return once no append to any other generation is under way (a rotation's switch)."""
        while any(n for g, n in self.appending.items() if g not in generations):
            await asyncio.sleep(SETTLE_POLL_S)

    async def append_applied(
        self, topic: Topic, record: Any, apply: Callable[[Any], None], key: bytes | None = None
    ) -> bytes:
        """Append a key or control record, apply it to this process's registry at once, and
        tell the topic's CatchUp so; return the encoded record. AppendFailed as `append`."""
        value = record_encoder.encode(record)
        metadata = await self.append_record(topic, value, key=key)
        apply(record)
        {Topic.KEYS: self.keys_caught_up, Topic.CONTROL: self.control_caught_up}[
            topic
        ].applied_here(metadata.offset, metadata.topic_partition)
        return value

    def is_admin(self, authorization: str | None) -> bool:
        """`Bearer <admin token>` (the scheme in any case, RFC 9110), compared in constant time."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.settings.admin_token.encode()
        )

    async def reader(self, authorization: str | None) -> bool:
        """Query routes: the admin token or an active read-scope key."""
        return self.is_admin(authorization) or await self.key(authorization, "read") is not None

    async def key(self, authorization: str | None, scope: KeyScope) -> ApiKey | None:
        """The active key of this scope named by the header, else None (-> 401). A key unknown
        here is looked up again once this process has read the keys' log to its end: another
        API process may have created it a moment ago (runtime.catch_up)."""
        key = self.registry.authenticate(authorization, scope)
        if (
            key is None
            and self.registry.unknown(authorization)
            and await self.keys_caught_up.wait()
        ):
            key = self.registry.authenticate(authorization, scope)
            if key is None:
                self.refusable(self.keys_caught_up)
        return key

    async def canary(self, token: str) -> CanaryDefined | None:
        """The canary of a check-in token, else None (-> 404); like `key` for a new canary."""
        canary = self.control.canary_by_token(token)
        if canary is None and could_be_token(token) and await self.control_caught_up.wait():
            canary = self.control.canary_by_token(token)
            if canary is None:
                self.refusable(self.control_caught_up)
        return canary

    @staticmethod
    def refusable(caught_up: CatchUp) -> None:
        """LogRestoring if the log just read may still lack what the store writes back."""
        if caught_up.restoring:
            raise LogRestoring("the log is being restored from ClickHouse; retry in a moment")
