"""The topic registry: one place names every topic on the log and its partition count.

Partition counts are part of the contract with the processors (Faust expects the count it was
started with), so topics are created from this table and never implicitly by a producer.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# The Faust app's id, which is its consumer group: the API reads its lag (ingest_api.backpressure).
PROCESSORS_GROUP = "coalmine-processors"

# Log generations. The embedded broker keeps every record in memory for ever, so `coalmine up`
# rotates its log (coalmine.rotation): each generation has topics of its own, generation 0
# the registry's plain names, generation n `coalmine.gn.<topic>`, and the worker of
# generation n its own Faust app id (its group, and its tables' changelog topics). A process
# names topics in its current generation, which only a rotation changes (set_generation).
# Against Kafka/Redpanda, which have retention, everything stays in generation 0.
_generation = 0

# A record's position across generations: offsets start again at 0 in each generation, so
# positions (offsets compared over time: rate-limit snapshots against admissions) carry the
# generation above the offset.
POSITION_GENERATION_SHIFT = 40


# A header on the key, control and rate-limit records a rotation copies into the new
# generation: readers apply them as any other; the rotation tells them from newer ones.
CARRIED_HEADER = "coalmine-carried"


def carried(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> bool:
    """Whether a record's headers (aiokafka's list of pairs, or Faust's mapping) mark it carried."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    return any(name == CARRIED_HEADER for name, _ in pairs)


def set_generation(generation: int) -> None:
    global _generation
    _generation = generation


def current_generation() -> int:
    return _generation


def name_in(name: str, generation: int) -> str:
    """A registry topic's name in a generation: `coalmine.events`, `coalmine.g3.events`."""
    if generation == 0:
        return name
    prefix, _, rest = name.partition(".")
    return f"{prefix}.g{generation}.{rest}"


@functools.lru_cache(maxsize=256)  # on the ingest path: one lookup per append
def generation_of(topic_name: str) -> int:
    """The generation a topic name belongs to (name_in read backwards)."""
    parts = topic_name.split(".")
    if len(parts) > 2 and parts[1][:1] == "g" and parts[1][1:].isdigit():
        return int(parts[1][1:])
    return 0


def processors_group(generation: int | None = None) -> str:
    """The Faust app id (and consumer group) of a generation's worker."""
    generation = _generation if generation is None else generation
    return PROCESSORS_GROUP if generation == 0 else f"coalmine-g{generation}-processors"


def position(offset: int, generation: int | None = None) -> int:
    """An offset made comparable across generations (POSITION_GENERATION_SHIFT)."""
    generation = _generation if generation is None else generation
    return (generation << POSITION_GENERATION_SHIFT) + offset


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
    # What a rotation of the log carries over for readers that rebuild state at start: the
    # error alerts of open quiet windows and the last digest of each plan (coalmine.rotation).
    # Read with Topic.ALERTS by the error router and the digest timer; never delivered.
    CARRIED = TopicSpec("coalmine.carried", 1)
    # Records no consumer could read, with the reason in a header; counted, never retried.
    DEAD_LETTERS = TopicSpec("coalmine.dead-letters", 1)

    @property
    def topic_name(self) -> str:
        """The name in this process's current generation."""
        return name_in(self.value.name, _generation)

    def name_in(self, generation: int) -> str:
        return name_in(self.value.name, generation)

    @property
    def partitions(self) -> int:
        return self.value.partitions
