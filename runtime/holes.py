"""Every record of a partition, once, for the sinks: a fetch that skipped offsets is filled in.

A 30-minute soak at saturation (bench/soak.py, 42 rotations) stored 6 acknowledged ingest
requests of 178,000 nowhere, with no error and no dead letter; in the same run the worker's
guard (processors.agents.gapless) logged five single-record holes in what its consumer was
handed, early in a new log generation. So a consumer of the embedded broker can be handed a
later record than the one it asked for, and aiokafka moves on past the hole (Kafka itself
leaves holes only for compaction and transactions, which no topic here uses). A sink that
moved on lost those records for good once the generation was deleted.

`Holes` keeps, per partition, the next offset the sink expects; records past it bring the
missing ones first, read straight from the log with a consumer of their own. Where the log
does not hold them either (a hole Kafka made), that is logged and the sink goes on.
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from runtime import kafka_client as kafka
from schemas.errors import LogUnavailable

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 30.0


def missing(expected: int | None, offsets: list[int]) -> list[tuple[int, int]]:
    """The [start, end) ranges absent from `offsets` (ascending) from `expected` on. Pure."""
    ranges = []
    at = expected
    for offset in offsets:
        if at is not None and offset > at:
            ranges.append((at, offset))
        at = offset + 1 if at is None else max(at, offset + 1)
    return ranges


class Holes:
    """Per partition, the next offset expected (unknown until the first record: a sink that
    starts at the log's beginning cannot tell retention from a hole)."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._bootstrap: str | None = getattr(consumer, "bootstrap", None)
        self._next: dict[TopicPartition, int] = {}
        self.filled = 0

    def expect(self, tp: TopicPartition, offset: int) -> None:
        self._next[tp] = offset

    async def whole(
        self, tp: TopicPartition, messages: list[ConsumerRecord]
    ) -> list[ConsumerRecord]:
        """`messages` with whatever they skipped before or between them, in offset order."""
        gaps = missing(self._next.get(tp), [m.offset for m in messages])
        if messages:
            self._next[tp] = max(self._next.get(tp, 0), messages[-1].offset + 1)
        if not gaps or self._bootstrap is None:
            return messages
        found: list[ConsumerRecord] = []
        reader = kafka.consumer(self._bootstrap)
        try:
            await reader.start()
            for start, end in gaps:
                read = await kafka.read_range(reader, tp, start, end, READ_TIMEOUT_S)
                log.warning(
                    "%s[%d]: the fetch skipped offsets %d..%d; read %d of them from the log",
                    tp.topic, tp.partition, start, end - 1, len(read),
                )  # fmt: skip
                found.extend(read)
        except (KafkaError, LogUnavailable, OSError) as exc:  # never the end of the sink
            log.error(
                "%s[%d]: could not read skipped offsets %s (%r)", tp.topic, tp.partition, gaps, exc
            )
        finally:
            await reader.stop()
        self.filled += len(found)
        return sorted([*found, *messages], key=lambda m: m.offset)
