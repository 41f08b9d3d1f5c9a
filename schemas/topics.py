"""The topic registry: one place names every topic on the log and its partition count.

Partition counts are part of the contract with the processors (Faust expects the count it was
started with), so topics are created from this table and never implicitly by a producer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# The Faust app's id, which is its consumer group: the API reads its lag (ingest_api.backpressure).
PROCESSORS_GROUP = "coalmine-processors"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False


class Topic(enum.Enum):
    # One record per accepted ingest request (a batch of 1-100 events).
    EVENTS = TopicSpec("coalmine.events", 4)
    # API key created / revoked; compacted by key id. The durable copy lives in ClickHouse.
    KEYS = TopicSpec("coalmine.keys", 1, compacted=True)
    # The ratelimit agent's bucket per key (RateSnapshot), followed by every API process.
    RATELIMIT = TopicSpec("coalmine.ratelimit", 1, compacted=True)
    # Rejected requests counted per key and reason by each API process (Rejections).
    REJECTIONS = TopicSpec("coalmine.rejections", 1)
    # Canary and channel definitions (ControlRecord), compacted by id; durable copy in ClickHouse.
    CONTROL = TopicSpec("coalmine.control", 1, compacted=True)
    # Check-ins (and the definitions forwarded to them), keyed by canary id (HeartbeatRecord).
    CHECKINS = TopicSpec("coalmine.checkins", 4)
    # canary.down / canary.up transitions (Flip), keyed by canary id.
    FLIPS = TopicSpec("coalmine.flips", 4)
    # Error alerts and digests (schemas.alerts), delivered by the notifier like flips.
    ALERTS = TopicSpec("coalmine.alerts", 1)
    # Notification delivery attempts (DeliveryAttempt).
    DELIVERIES = TopicSpec("coalmine.deliveries", 1)
    # Per-name rollup deltas (RollupDelta) of the rollups agent; a delta of events partition p
    # goes to partition p, so its last record says how far that partition is rolled up.
    ROLLUPS = TopicSpec("coalmine.rollups", 4)
    # One record written by the store on a log it has seeded: finding this topic empty means
    # the (embedded, in-memory) broker restarted, and the store writes definitions back.
    SEEDED = TopicSpec("coalmine.seeded", 1)
    # Records no consumer could read, with the reason in a header; counted, never retried.
    DEAD_LETTERS = TopicSpec("coalmine.dead-letters", 1)

    @property
    def topic_name(self) -> str:
        return self.value.name

    @property
    def partitions(self) -> int:
        return self.value.partitions
