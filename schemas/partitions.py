"""Which partition a record goes to: one rule for the API, the processors and the store."""

from __future__ import annotations

import functools

from aiokafka.partitioner import murmur2

from schemas.topics import Topic


def partition_for(record_key: str, topic: Topic) -> int:
    """Kafka's default partitioner, so that Faust tables keyed the same way (changelogs
    partitioned by the producer) line up with the source partitions. Computed once per key
    where the caller can, not per request: it is pure Python."""
    return (murmur2(record_key.encode()) & 0x7FFFFFFF) % topic.partitions


@functools.lru_cache(maxsize=65_536)
def canary_partition(canary_id: str) -> int:
    """The check-ins partition of a canary: its check-ins, definition and state live there."""
    return partition_for(canary_id, Topic.CHECKINS)
