"""A process that starts under steady traffic reads the log up to where it stood, and starts.

An API process restarted (or added) while clients keep sending must read the keys, rate
snapshots and control topics to their end before it answers; the rate snapshots grow all the
time under load, so "the end" is the end as of when the reading began, not a moving target."""

from __future__ import annotations

import asyncio
from pathlib import Path

from runtime import kafka_client as kafka
from schemas.topics import Topic
from tests.integration.harness import Stack


def test_a_follower_reads_to_the_end_it_found_while_records_keep_coming(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    stack.start_broker()
    try:
        asyncio.run(_read_while_appending(stack.settings.kafka_bootstrap))
    finally:
        stack.stop()


async def _read_while_appending(bootstrap: str) -> None:
    topic = Topic.RATELIMIT.topic_name
    producer = kafka.producer(bootstrap)
    await producer.start()
    try:
        for i in range(50):
            await producer.send_and_wait(topic, b"before-%d" % i, partition=0)
        stop = asyncio.Event()

        async def keep_appending() -> None:
            i = 0
            while not stop.is_set():  # records keep arriving, as snapshots do under load
                await producer.send_and_wait(topic, b"during-%d" % i, partition=0)
                i += 1

        appending = asyncio.create_task(keep_appending())
        seen: list[bytes] = []
        follower = await kafka.start_follower(bootstrap, Topic.RATELIMIT)
        try:
            await kafka.read_to_end(follower, seen.append, "rate snapshot", 20)
        finally:
            stop.set()
            await appending
            await follower.stop()
        assert seen[:50] == [b"before-%d" % i for i in range(50)]
    finally:
        await producer.stop()
