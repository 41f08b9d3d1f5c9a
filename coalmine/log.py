"""The Kafka-protocol log: client factories, topic creation and the start-up wait.

Works the same against the embedded Tansu broker and against Redpanda/Kafka.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from schemas.topics import Topic

log = logging.getLogger(__name__)

# Every log line below WARNING from these libraries is built even when not printed, and that
# costs ~10% of the ingest path (measured): keep them quiet unless asked.
NOISY_LOGGERS = ("aiokafka", "kafka", "faust", "mode", "httpx")


class LogUnavailable(RuntimeError):
    """The broker could not be reached in time."""


def quiet_client_loggers(level: int = logging.WARNING) -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(level)


# Long-poll waits. A broker holds a fetch that finds nothing for up to its wait, so on an idle
# log the wait sets each consumer's cost: measured here, every empty fetch costs the embedded
# broker 1-3 ms of CPU and aiokafka ~0.5 ms, and a dozen consumers polling every 100 ms kept
# 30 % of a core busy doing nothing. Tansu 0.6 also answers a held fetch only when its wait
# runs out, even if records arrive meanwhile (a real Kafka answers at once), so the wait is
# also how late the first record after a quiet spell is read. Hence a pacer per consumer:
# BUSY_WAIT_MS while records flow, doubling on each empty poll up to the consumer's idle wait.
BUSY_WAIT_MS = 50
# Readers whose latency nobody waits on (the store's sinks into ClickHouse).
IDLE_WAIT_BACKGROUND_MS = 5_000
# The Faust worker's readers: alerts must leave within a second of a deadline, so the worker
# hurries its pacers ahead of every deadline (processors.heartbeats); otherwise this bounds
# how late a recovery or a new channel is seen after a quiet spell.
IDLE_WAIT_WORKER_MS = 2_000
# The API's followers: a refused key waits for its follower to reach the log's end (at most
# ingest_api.catch_up.CATCH_UP_TIMEOUT_S), so a held fetch must end well within that.
IDLE_WAIT_API_MS = 600


class FetchPacer:
    """The fetch wait of one consumer: short while its polls find records, doubling on each
    empty poll up to `idle_ms`, short again for a while after `hurry`. `apply` hands the
    wait to the client (read when it builds its next fetch request)."""

    def __init__(self, idle_ms: int, apply: Callable[[int], None], busy_ms: int = BUSY_WAIT_MS):
        self.busy_ms, self.idle_ms = busy_ms, max(busy_ms, idle_ms)
        self.wait_ms = busy_ms
        self._apply = apply
        self._hurried_until = 0.0
        self._longest_since = 0.0  # when a fetch sent before the last hurry has surely ended
        _pacers.add(self)

    def polled(self, found: bool, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if found or now < self._hurried_until:
            wait = self.busy_ms
        else:
            wait = min(self.idle_ms, self.wait_ms * 2)
        if wait != self.wait_ms:
            self.wait_ms = wait
            self._apply(wait)

    def hurry(self, seconds: float, now: float | None = None) -> None:
        """Keep fetches short for `seconds`; a fetch already held still runs its wait out."""
        now = time.monotonic() if now is None else now
        if self._hurried_until < now:
            self._longest_since = now + self.wait_ms / 1000
        self._hurried_until = max(self._hurried_until, now + seconds)
        if self.wait_ms != self.busy_ms:
            self.wait_ms = self.busy_ms
            self._apply(self.busy_ms)

    def settled(self, now: float | None = None) -> bool:
        """Since the last hurry, every fetch sent before it has had time to come back: an
        empty poll now means the log held nothing more when the hurry began."""
        now = time.monotonic() if now is None else now
        return now >= self._longest_since + 2 * self.busy_ms / 1000


_pacers: weakref.WeakSet[FetchPacer] = weakref.WeakSet()


def hurry_all(seconds: float) -> None:
    """Hurry every consumer of this process (the worker's, ahead of a deadline)."""
    now = time.monotonic()
    for pacer in list(_pacers):
        pacer.hurry(seconds, now)


def set_fetch_wait(consumer: AIOKafkaConsumer, wait_ms: int) -> None:
    """aiokafka takes the wait at construction and copies it into its fetcher at start(),
    which reads it for each request: no public way in."""
    consumer._fetch_max_wait_ms = wait_ms
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is not None:
        fetcher._fetch_max_wait_ms = wait_ms


class PacedConsumer(AIOKafkaConsumer):
    """An aiokafka consumer whose fetch wait follows a FetchPacer."""

    def __init__(self, *topics: str, idle_wait_ms: int, **options: object) -> None:
        options["fetch_max_wait_ms"] = BUSY_WAIT_MS
        super().__init__(*topics, **options)  # type: ignore[arg-type]
        self.pacer = FetchPacer(idle_wait_ms, lambda wait_ms: set_fetch_wait(self, wait_ms))

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None) -> dict:  # type: ignore[override]
        batches = await super().getmany(*partitions, timeout_ms=timeout_ms, max_records=max_records)
        self.pacer.polled(bool(batches))
        return batches


def drained(consumer: AIOKafkaConsumer) -> bool:
    """After a stop (which hurries every consumer), an empty poll means the log is drained
    only once a fetch held from before the stop has come back."""
    return not isinstance(consumer, PacedConsumer) or consumer.pacer.settled()


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


def consumer(
    bootstrap: str, idle_wait_ms: int = IDLE_WAIT_BACKGROUND_MS, **options: object
) -> PacedConsumer:
    defaults: dict[str, object] = {
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "request_timeout_ms": 10_000,
    }
    defaults.update(options)
    return PacedConsumer(bootstrap_servers=bootstrap, idle_wait_ms=idle_wait_ms, **defaults)


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


async def start_follower(
    bootstrap: str, topic: Topic, idle_wait_ms: int = IDLE_WAIT_WORKER_MS
) -> PacedConsumer:
    """A group-less consumer of the whole of a one-partition topic, from its beginning."""
    follower = consumer(bootstrap, idle_wait_ms)
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
