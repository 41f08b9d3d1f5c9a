"""A sink told to stop drains its partitions to their end, however long the broker takes.

A rotation retires a generation once its sinks say they have stored everything, then deletes
its topics: a sink that stops early loses acknowledged records. The end is asked of the
broker, not guessed from how long fetches usually take."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from runtime import kafka_client as kafka
from schemas.topics import Topic
from tests.integration.harness import Stack


def test_a_stopped_consumer_is_drained_only_at_the_end_of_its_partitions(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    stack.start_broker()
    try:
        asyncio.run(_drain(stack.settings.kafka_bootstrap))
    finally:
        stack.stop()


async def _drain(bootstrap: str) -> None:
    (tp,) = kafka.partitions_of(Topic.REJECTIONS)
    producer = kafka.producer(bootstrap)
    await producer.start()
    try:
        for i in range(30):  # separate batches: the embedded broker's end is per batch
            await producer.send_and_wait(tp.topic, b"record-%d" % i, partition=tp.partition)
    finally:
        await producer.stop()
    consumer = kafka.consumer(bootstrap, 5_000)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        consumer.hurry(3600.0)  # what a stop does
        deadline = time.monotonic() + 10
        while not consumer.pacer.settled(time.monotonic()):  # a fetch has had its time
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        # Long past any fetch's usual time, but nothing read yet: not drained.
        assert not await kafka.drained(consumer)
        read: list[bytes] = []
        while not await kafka.drained(consumer):
            assert time.monotonic() < deadline, f"read {len(read)} of 30"
            batches = await consumer.getmany(timeout_ms=200)
            read += [m.value for messages in batches.values() for m in messages]
        assert read == [b"record-%d" % i for i in range(30)]
    finally:
        await consumer.stop()
