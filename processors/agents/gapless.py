"""Every record of a partition, in order, once: a guard for agents that must not miss one.

Faust (at_least_once) was seen here to deliver a partition's records with a hole after a
worker restart or rebalance, and to commit past it (a restarted worker's first batch lacked
exactly one offset; faust-streaming issues #216, #221 and #606 describe the same family).
Holes also come from the embedded broker itself, which can answer a fetch with a later record
than the one asked for: the store's sinks saw them too, and fill them the same way
(runtime.holes).
An agent that loses a record loses an alert, a check-in or a rollup. So the guard keeps, per
partition, the next offset it expects: a record below it (Faust delivering again what this
worker already handled) is dropped, and a record above it brings the missing ones first, read
straight from the log with a consumer of the same group that never joins it nor commits.

Where a partition starts after an assignment is the agent's call (`progress`): by default the
group's committed offset, where Faust itself resumes. A partition nothing was committed for
starts at the log's first offset (Faust's `earliest` reset): a worker killed before its first
commit was seen to resume, restarted, past the records it had never handled.

A hole filled here is also handed to Faust's consumer as done (`release_hole`). Faust commits a
partition only up to its first offset never acknowledged, and it never acknowledges what it
never delivered: without this, the group's commit stayed at the hole for good (seen under load:
a log rotation then waited forever for the old generation's worker to drain, and Faust's list
of acknowledged offsets above the hole grew with every record).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from runtime import kafka_client as kafka
from runtime.retry import until_done
from runtime.settings import Settings
from schemas.topics import Topic

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0
T = TypeVar("T")
# partitions -> partition -> the first offset to handle (None: the first Faust delivers)
Progress = Callable[[set[int]], Awaitable[dict[int, int | None]]]


async def stop_quietly(consumer: AIOKafkaConsumer) -> None:
    """Stop a helper consumer without ever raising into the agent's loop, nor hanging it
    (aiokafka's stop() can hang: see runtime.kafka_client.last_values)."""
    try:
        await asyncio.wait_for(consumer.stop(), STOP_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001
        log.warning("stopping a helper consumer failed (%r)", exc)


def release_hole(consumer: Any, topic: str, partition: int, start: int, end: int) -> None:
    """Tell Faust's consumer that offsets [start, end) of a partition are handled, as its own
    gap tracking does for offsets it sees skipped (faust.transport.consumer.Consumer._add_gap,
    which misses a hole that opens across a rebalance): its commit then moves past them once
    the records after them are acknowledged. Faust's internals, hence this one place."""
    tp = TP(topic, partition)
    committed = consumer._committed_offset[tp]
    start = start if committed is None else max(start, committed)
    if start < end:
        gaps = consumer._gap[tp]
        gaps.addi(start, end)
        gaps.merge_overlaps()


class Gapless:
    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        topic: Topic,
        name: str,
        progress: Progress | None = None,
    ) -> None:
        self.app, self.settings, self.topic, self.name = app, settings, topic, name
        self.progress = progress or self.committed
        # partition -> next offset to handle; forgotten after every rebalance (another worker
        # may have moved a partition on), by the agent itself between two batches.
        self.next_offsets: dict[int, int | None] = {}
        self.rebalanced = asyncio.Event()

        @app.on_partitions_revoked.connect
        async def on_revoke(sender: Any, revoked: Any, **kwargs: Any) -> None:
            self.rebalanced.set()

        @app.on_partitions_assigned.connect
        async def on_assign(sender: Any, assigned: Any, **kwargs: Any) -> None:
            self.rebalanced.set()

    async def with_consumer(self, what: str, read: Callable[[AIOKafkaConsumer], Awaitable[T]]) -> T:
        """Run `read` with a fresh consumer of the app's group (never joining nor committing),
        retried until the log answers: going on without the answer could skip or repeat."""

        async def attempt() -> T:
            consumer = kafka.consumer(self.settings.kafka_bootstrap, group_id=self.app.conf.id)
            try:
                await consumer.start()
                return await read(consumer)
            finally:
                await stop_quietly(consumer)

        return await until_done(attempt, f"{self.name}: reading {what}", log)

    async def committed(self, partitions: set[int]) -> dict[int, int | None]:
        async def read(consumer: AIOKafkaConsumer) -> dict[int, int | None]:
            return {
                p: await consumer.committed(TopicPartition(self.topic.topic_name, p))
                for p in partitions
            }

        return await self.with_consumer("the committed offsets", read)

    async def first_offsets(self, partitions: set[int]) -> dict[int, int | None]:
        tps = [TopicPartition(self.topic.topic_name, p) for p in sorted(partitions)]

        async def read(consumer: AIOKafkaConsumer) -> dict[int, int | None]:
            return {
                tp.partition: offset
                for tp, offset in (await consumer.beginning_offsets(tps)).items()
            }

        return await self.with_consumer("the first offsets", read)

    async def _missed(self, partition: int, start: int, end: int) -> list[Any]:
        tp = TopicPartition(self.topic.topic_name, partition)
        timeout = self.settings.startup_timeout_s
        records = await self.with_consumer(
            "missed records",
            lambda consumer: kafka.read_range(consumer, tp, start, end, timeout),
        )
        log.warning(
            "%s: Faust did not deliver %s[%d] offsets %d..%d; read %d from the log",
            self.name,
            self.topic.topic_name,
            partition,
            start,
            end - 1,
            len(records),
        )
        return records

    async def records(self, batch: Iterable[Any]) -> list[tuple[int, int, bytes]]:
        """(partition, offset, value) of a batch of Faust events, holes filled from the log and
        records already handled dropped, in log order per partition."""
        if self.rebalanced.is_set():
            self.rebalanced.clear()
            self.next_offsets.clear()
        events = list(batch)
        unknown = {event.message.partition for event in events} - self.next_offsets.keys()
        if unknown:
            found = await self.progress(unknown)
            never = {p for p, offset in found.items() if offset is None}
            if never:
                found.update(await self.first_offsets(never))
            self.next_offsets.update(found)
        handled: list[tuple[int, int, bytes]] = []
        replayed = 0
        for event in events:
            partition, offset = event.message.partition, event.message.offset
            expected = self.next_offsets[partition]
            if expected is not None and offset < expected:
                replayed += 1
                continue
            if expected is not None and offset > expected:
                for missed in await self._missed(partition, expected, offset):
                    handled.append((partition, missed.offset, missed.value))
                release_hole(self.app.consumer, self.topic.topic_name, partition, expected, offset)
            handled.append((partition, offset, event.value))
            self.next_offsets[partition] = offset + 1
        if replayed:
            log.warning("%s: skipped %d replayed records already handled", self.name, replayed)
        return handled
