"""rollups agent: per-name minute/hour/day aggregates of the events topic, published as deltas
on Topic.ROLLUPS, which the store adds to the ClickHouse `rollups` table (processors.sinks.rollup_sink);
the same records, read once, go through the error router (processors.agents.error_router) too.

Every `ROLLUP_FLUSH_S` the agent folds what it read (domain.rollup_fold) into one delta per
events partition: the rows of that partition's records first_offset..last_offset. Deltas go to
the rollups partition of the same number, and the records' offsets are committed only after
the broker acknowledged their delta.

Exactly once: per events partition the deltas are one gap-free chain of offset ranges. When
the worker gets partitions it reads the last delta of each back from the log; records Faust
delivers again below it (it re-delivers from the last commit after a crash) are skipped, and
records it does not deliver at all are read from the log directly (processors.agents.gapless).
"""

from __future__ import annotations

import logging

import faust
import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from domain.rollup_fold import FlushDeltas
from processors.agents.error_router import ErrorRouter
from processors.agents.gapless import Gapless
from processors.agents.topics import log_topic
from runtime import kafka_client as kafka
from runtime.retry import until_done
from runtime.settings import Settings
from schemas.rollups import (
    RollupBatch,
    RollupDelta,
    delta_encoder,
    delta_head_decoder,
    rollup_batch_decoder,
)
from schemas.topics import Topic

log = logging.getLogger(__name__)

ROLLUP_FLUSH_S = 1.0
FLUSH_MAX_RECORDS = 2_000
# A delta of events partition p goes to rollups partition p: its last record is p's progress.
assert Topic.ROLLUPS.partitions == Topic.EVENTS.partitions


def fold(flush: FlushDeltas, partition: int, offset: int, value: bytes) -> RollupBatch | None:
    """Add one events record; one that cannot be read (the events sink dead-letters it) adds
    nothing. Never raises: the agent's loop must not. The batch, for the error router."""
    batch: RollupBatch | None
    try:
        batch = rollup_batch_decoder.decode(value)
    except Exception:  # noqa: BLE001
        log.warning("rollups: unreadable events record at %d/%d", partition, offset)
        batch = None
    flush.add(partition, offset, batch)
    return batch


async def rolled_up_to(bootstrap: str, timeout_s: float = 10.0) -> dict[int, int]:
    """events partition -> the last offset in a delta on the log (absent: none yet)."""
    probe = kafka.consumer(bootstrap)
    await probe.start()
    try:
        last = await kafka.last_values(probe, kafka.partitions_of(Topic.ROLLUPS), timeout_s)
    finally:
        await probe.stop()
    return {tp.partition: delta_head_decoder.decode(v).last_offset for tp, v in last.items()}


async def unrolled(bootstrap: str, timeout_s: float = 10.0) -> int:
    """How many events records are not yet in a delta on the log."""
    ends = await kafka.highwaters(bootstrap, Topic.EVENTS, timeout_s)
    covered = await rolled_up_to(bootstrap, timeout_s)
    return sum(max(0, end - 1 - covered.get(p, -1)) for p, end in ends.items())


def register(app: faust.App, settings: Settings) -> None:
    events, rollups = log_topic(app, Topic.EVENTS), log_topic(app, Topic.ROLLUPS)
    router = ErrorRouter(app, settings)  # reads the same records: one subscriber, one decode

    async def read_progress(partitions: set[int]) -> dict[int, int | None]:
        """Where each partition's rollups stand on the log: after the last delta's
        last_offset; without a delta, at the group's committed offset, where Faust starts."""
        rollups_tps = [TopicPartition(Topic.ROLLUPS.topic_name, p) for p in sorted(partitions)]

        async def read(consumer: AIOKafkaConsumer) -> dict[int, int | None]:
            last = await kafka.last_values(consumer, rollups_tps, settings.startup_timeout_s)
            found: dict[int, int | None] = {}
            for p in partitions:
                tp = TopicPartition(Topic.ROLLUPS.topic_name, p)
                if tp in last:
                    try:
                        found[p] = delta_head_decoder.decode(last[tp]).last_offset + 1
                        continue
                    except msgspec.MsgspecError:  # only this agent writes there: a bug
                        log.error("rollups: unreadable last delta on %s; going by the commit", tp)
                found[p] = await consumer.committed(TopicPartition(Topic.EVENTS.topic_name, p))
            return found

        found = await guard.with_consumer("the last deltas", read)
        log.info("rollups: next events offsets to roll up %s", found)
        return found

    # Per events partition, the next offset to fold: after the last delta on the log.
    guard = Gapless(app, settings, Topic.EVENTS, "rollups", read_progress)

    async def publish(delta: RollupDelta) -> None:
        """Send the delta and wait for the broker's ack, retrying until it comes: the batch's
        records are acknowledged to Faust (and their offsets committed) when this returns.
        A retried delta may land twice; the store's deduplication keeps one."""
        value = delta_encoder.encode(delta)

        async def attempt() -> None:
            # send() returns once the record is queued in the producer; the future it
            # returns resolves with the broker's acknowledgement.
            delivery = await rollups.send(value=value, partition=delta.source_partition)
            await delivery

        await until_done(attempt, "rollups: publishing a delta", log)

    @app.agent(events, name="rollups")
    async def rollups_agent(stream: faust.StreamT[bytes]) -> None:
        # take_events acknowledges a batch's records (their offsets become committable) when
        # this loop's body has finished with it, and also when the body raises (the generator's
        # `finally`): so the body must not raise; errors are retried inside.
        async for batch in stream.take_events(FLUSH_MAX_RECORDS, within=ROLLUP_FLUSH_S):
            flush = FlushDeltas()
            read = [
                fold(flush, partition, offset, value)
                for partition, offset, value in await guard.records(batch)
            ]
            await router.route([b for b in read if b is not None])
            for delta in flush.deltas():
                await publish(delta)
