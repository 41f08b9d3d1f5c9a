"""The Kafka-protocol log: client factories, topic creation and the start-up wait.

Works the same against the embedded Tansu broker and against Redpanda/Kafka.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from schemas.topics import Topic

log = logging.getLogger(__name__)



class LogUnavailable(RuntimeError):
    """The broker could not be reached in time."""


def producer(bootstrap: str, **options: object) -> AIOKafkaProducer:
    """A producer that reports success only once every in-sync replica has the record."""
    defaults: dict[str, object] = {
        "acks": "all",
        "linger_ms": 1,
        # One record is a whole ingest request (up to 512 KB). aiokafka's default 16 KB batch
        # holds two of them, and concurrent requests then queue behind a full batch: 1 MiB
        # more than doubled ingest throughput here and stays within Kafka's default limit.
        "max_batch_size": 1024 * 1024,
        "max_request_size": 1024 * 1024,
        "request_timeout_ms": 5_000,
        "retry_backoff_ms": 100,
        "enable_idempotence": False,
    }
    defaults.update(options)
    return AIOKafkaProducer(bootstrap_servers=bootstrap, **defaults)  # type: ignore[arg-type]


def consumer(bootstrap: str, **options: object) -> AIOKafkaConsumer:
    defaults: dict[str, object] = {
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": 100,
        "request_timeout_ms": 10_000,
    }
    defaults.update(options)
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, **defaults)  # type: ignore[arg-type]


def partitions_of(topic: Topic) -> list[TopicPartition]:
    return [TopicPartition(topic.topic_name, p) for p in range(topic.partitions)]


async def wait_for_broker(bootstrap: str, timeout_s: float) -> None:
    """Return once the broker answers metadata requests; LogUnavailable after timeout_s."""
    deadline = time.monotonic() + timeout_s
    # aiokafka logs every refused connection at ERROR; while waiting, those are expected.
    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        await _wait(bootstrap, deadline)
    finally:
        client_log.setLevel(level)


async def _wait(bootstrap: str, deadline: float) -> None:
    last: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2_000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except (KafkaError, OSError) as exc:
            last = exc
        finally:
            await admin.close()
        await asyncio.sleep(0.2)
    raise LogUnavailable(f"broker {bootstrap} unreachable: {last}")


async def create_topics(bootstrap: str, topics: list[Topic] | None = None) -> list[str]:
    """Create the registry's topics that do not exist yet; return the names created."""
    wanted = topics or list(Topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                t.topic_name,
                t.partitions,
                1,
                topic_configs={"cleanup.policy": "compact"} if t.value.compacted else {},
            )
            for t in wanted
            if t.topic_name not in existing
        ]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:  # another process won the race: same result
                pass
        return [t.name for t in new]
    finally:
        await admin.close()


def _handle_all(batches: dict, handle: Callable[[bytes], None], what: str) -> None:
    for records in batches.values():
        for message in records:
            try:
                handle(message.value)
            except Exception:  # one bad record must not stop a follower
                log.exception("skipping unreadable %s record at offset %d", what, message.offset)


async def read_to_end(
    consumer: AIOKafkaConsumer, handle: Callable[[bytes], None], what: str, timeout_s: float
) -> None:
    """Apply every record of the consumer's (single) assigned partition up to its end."""
    (tp,) = consumer.assignment()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        batches = await consumer.getmany(timeout_ms=200)
        _handle_all(batches, handle, what)
        highwater = consumer.highwater(tp)
        if highwater is not None and await consumer.position(tp) >= highwater and not batches:
            return
    raise LogUnavailable(f"could not read the {what} topic to its end in {timeout_s:.0f}s")


async def follow(consumer: AIOKafkaConsumer, handle: Callable[[bytes], None], what: str) -> None:
    """Apply every new record, for ever. When the log restarted (the embedded in-memory
    broker), read it again from its beginning: followers hold whole states keyed by id, so
    applying a record again changes nothing."""
    while True:
        batches = await consumer.getmany(timeout_ms=500)
        _handle_all(batches, handle, what)
        if not batches:
            await rewind_if_restarted(consumer, what)


async def rewind_if_restarted(consumer: AIOKafkaConsumer, what: str) -> None:
    """Seek to the beginning of every assigned partition whose end lies below our position:
    a durable log never shrinks, so its broker restarted empty. (The broker answers a fetch
    beyond its end with nothing rather than an error, so the consumer would otherwise wait,
    silently, until the new log grew past the old position.)"""
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        if highwater is not None and highwater < await consumer.position(tp):
            log.warning("the %s log restarted (its end fell below our position): rereading it", what)
            await consumer.seek_to_beginning(tp)


async def start_follower(bootstrap: str, topic: Topic) -> AIOKafkaConsumer:
    """A group-less consumer of the whole of a one-partition topic, from its beginning."""
    follower = consumer(bootstrap)
    await follower.start()
    follower.assign(partitions_of(topic))
    await follower.seek_to_beginning()
    return follower


async def last_values(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], timeout_s: float
) -> dict[TopicPartition, bytes]:
    """The value of the last record of each partition (none for an empty one), read with a
    started consumer that this assigns to `tps` (its group, if any, is never joined).

    Reads from just before the broker's end offset up to the fetch high-water mark: Tansu's
    ListOffsets(latest) answers the first offset of the last record batch + 1, so the
    records after it must be read too. If that range holds no record (a Kafka transaction
    marker, say), it steps further back. The consumer is assigned once: aiokafka can hang in
    stop() when stopped just after a re-assignment (its fetcher swallows the cancellation)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    consumer.assign(tps)
    ends = await consumer.end_offsets(tps)
    found: dict[TopicPartition, bytes] = {}
    pending = [tp for tp in tps if ends[tp] > 0]
    back = 1
    while pending:
        starts = {tp: max(0, ends[tp] - back) for tp in pending}
        for tp, start in starts.items():
            consumer.seek(tp, start)
        unread = set(pending)
        while unread:
            if loop.time() > deadline:
                raise LogUnavailable(f"could not read the end of {sorted(unread)}")
            batches = await consumer.getmany(*unread, timeout_ms=200)
            for tp, messages in batches.items():
                found[tp] = messages[-1].value
            for tp in list(unread):
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    unread.discard(tp)
        pending = [tp for tp in pending if tp not in found and starts[tp] > 0]
        back *= 16
    return found


async def highwaters(bootstrap: str, topic: Topic, timeout_s: float = 10.0) -> dict[int, int]:
    """Each partition's end, from fetch responses (Tansu's ListOffsets(latest) reads low)."""
    probe = consumer(bootstrap)
    await probe.start()
    try:
        tps = partitions_of(topic)
        probe.assign(tps)  # once: see last_values
        await probe.seek_to_end()
        deadline = asyncio.get_running_loop().time() + timeout_s
        while any(probe.highwater(tp) is None for tp in tps):
            if asyncio.get_running_loop().time() > deadline:
                raise LogUnavailable(f"no high-water marks for {topic.topic_name}")
            await probe.getmany(timeout_ms=200)
        return {tp.partition: probe.highwater(tp) for tp in tps}  # type: ignore[misc]
    finally:
        await probe.stop()


async def read_range(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int, timeout_s: float
) -> list[ConsumerRecord]:
    """The records start <= offset < end of one partition (fewer if the log no longer holds
    them all), read with a started consumer that this assigns to `tp` (once: see last_values)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    consumer.assign([tp])
    consumer.seek(tp, start)
    records: list[ConsumerRecord] = []
    while await consumer.position(tp) < end:
        if loop.time() > deadline:
            raise LogUnavailable(f"could not read {tp.topic}[{tp.partition}] {start}..{end - 1}")
        batches = await consumer.getmany(tp, timeout_ms=200)
        records.extend(m for m in batches.get(tp, []) if start <= m.offset < end)
        highwater = consumer.highwater(tp)
        if highwater is not None and highwater <= await consumer.position(tp):
            break  # the log ends before `end`
    return records
