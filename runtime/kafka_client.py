"""The Kafka-protocol log: client factories, topic creation and the start-up wait.

Works the same against the embedded Tansu broker and against Redpanda/Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from collections.abc import Callable, Mapping

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from schemas.errors import LogUnavailable
from schemas.topics import Topic, generation_of

log = logging.getLogger(__name__)


# Pacing. On an idle log a broker holds each fetch for its wait. The embedded broker polls
# its storage while it holds one (measured: ~0.5 % of a core for one consumer's held fetch,
# ~0.13 % for each more, whatever the wait), and answers a held fetch only when the wait runs
# out, even if records arrive meanwhile (a real Kafka answers at once). A dozen consumers
# polling every 100 ms kept 30 % of a core busy doing nothing. So a consumer fetches with short
# waits while records flow, and once it has found nothing for QUIET_BEFORE_REST_S it rests:
# it pauses its partitions (no fetch at all) for a while that doubles up to its idle time.
# Whoever needs it sooner hurries it (a refused key, a flip naming a new channel, a deadline,
# a stop), which ends the rest at once. Faust's consumer rests too, from its own thread, woken
# there by a hurry from any other (processors.agents.faust_transport.ThreadWake).
BUSY_WAIT_MS = 50
QUIET_BEFORE_REST_S = 0.5
# Readers whose latency nobody waits on (the store's sinks into ClickHouse).
IDLE_WAIT_BACKGROUND_MS = 10_000
# The Faust worker's readers: alerts must leave within a second of a deadline, so the worker
# hurries its pacers ahead of every deadline (processors.agents.canary_agent); otherwise this bounds
# how late a recovery or a config change is seen after a quiet spell.
IDLE_WAIT_WORKER_MS = 5_000
# The API's followers: a refused key or token hurries them (runtime.catch_up); otherwise
# this bounds how late a rate-limit snapshot is seen after a quiet spell.
IDLE_WAIT_API_MS = 2_000
# How often aiokafka's fetch loop wakes when nothing happens (its default, 200 ms, is 5
# wake-ups a second per consumer). Fetch answers, seeks, resumes, assignment and metadata
# changes wake it anyway (aiokafka's Fetcher._fetch_requests_routine waits on each), so the
# timer only costs: at 2 s the idle worker's six consumers still woke 3 times a second.
CONSUMER_TIMEOUT_MS = 10_000
# How long a follower's poll lasts when nothing comes: a rest is cut into polls this long,
# each a wake-up (at 2 s, 0.7 a second per follower on an idle worker).
FOLLOW_POLL_MS = 10_000


class FetchPacer:
    """When one consumer may fetch, and with what wait. Rests (`apply` None): fetch waits stay
    BUSY_WAIT_MS, and after QUIET_BEFORE_REST_S of empty polls the consumer rests for a time
    doubling up to `idle_ms`. Held waits (`apply` given, for a consumer that cannot pause): the
    wait itself doubles on each empty poll up to `idle_ms`, handed to the client by `apply`.
    `hurry` makes both short for a while. Pure: the caller passes the time."""

    def __init__(
        self, idle_ms: int, apply: Callable[[int], None] | None = None, busy_ms: int = BUSY_WAIT_MS
    ) -> None:
        self.busy_ms, self.idle_ms = busy_ms, idle_ms  # idle_ms 0: never rests
        self.wait_ms = busy_ms  # the fetch wait now
        self.rest_ms = 0  # the length of the current (or last) rest
        self.rest_until = 0.0
        self._apply = apply
        self._empty_since: float | None = None
        self._hurried_until = 0.0
        self._settles_at = 0.0  # when a fetch sent before the last hurry has surely ended
        self.woken = asyncio.Event()  # set by hurry: a resting consumer wakes
        self.hurries = 0  # how many times hurried: a poll under way returns early
        _pacers.add(self)

    def polled(self, found: bool, now: float) -> None:
        if found or now < self._hurried_until:
            self._empty_since, self.rest_ms = None, 0
            self._set_wait(self.busy_ms)
            return
        if self._apply is not None:
            self._set_wait(max(self.busy_ms, min(self.idle_ms, self.wait_ms * 2)))
            return
        if self.idle_ms <= 0:
            return
        if self._empty_since is None:
            self._empty_since = now
        if now - self._empty_since >= QUIET_BEFORE_REST_S and now >= self.rest_until:
            self.rest_ms = min(self.idle_ms, max(2 * self.busy_ms, 2 * self.rest_ms))
            self.rest_until = now + self.rest_ms / 1000
            self.woken.clear()

    def resting(self, now: float) -> bool:
        return now < self.rest_until

    def decides_in(self, now: float) -> float:
        """How long a poll may run before `polled` should be told: a poll that finds nothing
        keeps fetching in the background until it returns."""
        if self.idle_ms <= 0:
            return math.inf
        if self._apply is not None or self._empty_since is None:
            # Held waits too: a poll that returns now and then lets a hurry (a stop) be seen.
            return QUIET_BEFORE_REST_S
        # After a rest, one fetch (its wait and the answer) tells whether to rest again.
        return max(1.5 * self.busy_ms / 1000, QUIET_BEFORE_REST_S - (now - self._empty_since))

    def hurry(self, seconds: float, now: float) -> None:
        """Fetch at once and with short waits for `seconds`."""
        if self._hurried_until < now:
            self._settles_at = now + (self.wait_ms + 2 * self.busy_ms) / 1000
        self._hurried_until = max(self._hurried_until, now + seconds)
        self.rest_until, self.rest_ms, self._empty_since = 0.0, 0, None
        self.hurries += 1
        self.woken.set()
        self._set_wait(self.busy_ms)

    def settled(self, now: float) -> bool:
        """Since the last hurry, every fetch sent before it has come back and one after it
        has had time to: an empty poll now means the log held nothing more then."""
        return now >= self._settles_at

    def _set_wait(self, wait_ms: int) -> None:
        if wait_ms != self.wait_ms:
            self.wait_ms = wait_ms
            if self._apply is not None:
                self._apply(wait_ms)


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


_resting = False  # Settings.fetch_rests of this process (rest_when_idle)
# Without rests a consumer's held wait grows at most to this: a broker that answers as soon as
# records arrive makes a long wait free, but a stop waits one out before it calls the log
# drained, and the wait must stay below the request timeout.
HELD_WAIT_MAX_MS = 1_000
# How long a drain may wait for the broker to say where a log ends (kafka_client.drained).
DRAIN_ENDS_TIMEOUT_S = 10.0


def rest_when_idle(enabled: bool) -> None:
    """Settings.fetch_rests, for every consumer this process makes from now on."""
    global _resting
    _resting = enabled


def rests_when_idle() -> bool:
    """Whether consumers made now rest (rest_when_idle)."""
    return _resting


class PacedConsumer(AIOKafkaConsumer):
    """An aiokafka consumer that, while its polls find nothing, rests (its partitions paused)
    or, where rests are off (Settings.fetch_rests), holds longer fetches."""

    def __init__(self, *topics: str, idle_wait_ms: int, **options: object) -> None:
        options["fetch_max_wait_ms"] = BUSY_WAIT_MS
        super().__init__(*topics, **options)  # type: ignore[arg-type]
        if _resting:
            self.pacer = FetchPacer(idle_wait_ms)
        else:
            held_ms = min(idle_wait_ms, HELD_WAIT_MAX_MS)
            self.pacer = FetchPacer(held_ms, lambda wait_ms: set_fetch_wait(self, wait_ms))
        self._rested: list[TopicPartition] = []
        self.bootstrap = str(options["bootstrap_servers"])
        self.drain_ends: dict[TopicPartition, int] | None = None  # see `drained`

    def hurry(self, seconds: float = 1.0) -> None:
        self.pacer.hurry(seconds, time.monotonic())

    async def getmany(  # type: ignore[override]
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        hurries = self.pacer.hurries
        while True:
            now = loop.time()  # the monotonic clock
            if self.pacer.resting(now):
                await self._rest(min(self.pacer.rest_until, deadline) - now)
                if self.pacer.resting(loop.time()):
                    return {}
            self._wake()
            # Poll no longer than the pacer needs to decide whether to rest: aiokafka fetches
            # in the background for as long as a poll lasts.
            chunk_s = min(deadline - loop.time(), self.pacer.decides_in(now))
            batches = await super().getmany(
                *partitions, timeout_ms=max(0, int(chunk_s * 1000)), max_records=max_records
            )
            self.pacer.polled(bool(batches), loop.time())
            # Hurried meanwhile (a stop, say): let the caller look at why.
            if batches or loop.time() >= deadline or self.pacer.hurries != hurries:
                return batches

    async def _rest(self, seconds: float) -> None:
        """Pause every assigned partition (no fetch is sent) until woken or `seconds` pass."""
        if not self._rested:
            paused = self.paused()
            self._rested = [tp for tp in self.assignment() if tp not in paused]
            self.pause(*self._rested)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                await self.pacer.woken.wait()

    def _wake(self) -> None:
        if self._rested:
            assigned = self.assignment()
            self.resume(*(tp for tp in self._rested if tp in assigned))
            self._rested = []


async def drained(consumer: AIOKafkaConsumer) -> bool:
    """After a stop, once a poll found nothing: whether the consumer has read every assigned
    partition up to where it ended when this was first asked. Whoever stops a sink has made
    sure nothing more comes (a rotation's switch moved every append to the new generation; a
    stop of `coalmine up` stops the API first), so that end is final.

    The end is read from the broker (a probe's fetch, whose high-water mark is exact on every
    broker; the embedded one's ListOffsets reads low), not guessed from time: a fetch held
    by a saturated broker can come back long after any usual wait, and a sink that took an
    empty poll for the end then lost what that fetch would have brought (a 30-min soak at
    saturation lost 300 of 8.3 M acknowledged events over 4 rotations, the topics being
    deleted once drained). Where the broker cannot be asked (an outage during a stop), the
    pacer's guess stands."""
    if not isinstance(consumer, PacedConsumer):
        return True  # not ours: nothing tells its stop apart
    if consumer.drain_ends is None:
        try:
            consumer.drain_ends = await partition_ends(
                consumer.bootstrap, sorted(consumer.assignment()), DRAIN_ENDS_TIMEOUT_S
            )
        except (KafkaError, LogUnavailable, OSError) as exc:
            log.warning("could not ask the log where it ends (%r): judging the drain by time", exc)
            return consumer.pacer.settled(time.monotonic())
    for tp, end in consumer.drain_ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


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


def consumer(bootstrap: str, idle_wait_ms: int = 0, **options: object) -> PacedConsumer:
    """A consumer that rests up to `idle_wait_ms` while it finds nothing (0: never rests, for
    probes that read a known range)."""
    defaults: dict[str, object] = {
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "request_timeout_ms": 10_000,
        # How often aiokafka's fetch loop wakes when nothing happens (its default, 200 ms,
        # is 5 wake-ups a second per consumer); fetch answers and seeks wake it anyway.
        "consumer_timeout_ms": CONSUMER_TIMEOUT_MS,
    }
    defaults.update(options)
    return PacedConsumer(bootstrap_servers=bootstrap, idle_wait_ms=idle_wait_ms, **defaults)


def partitions_of(topic: Topic, generation: int | None = None) -> list[TopicPartition]:
    """The topic's partitions in a generation (default: this process's current one)."""
    name = topic.topic_name if generation is None else topic.name_in(generation)
    return [TopicPartition(name, p) for p in range(topic.partitions)]


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


async def create_topics(
    bootstrap: str, topics: list[Topic] | None = None, generation: int = 0
) -> list[str]:
    """Create the registry's topics that do not exist yet, in a generation; return the names
    created."""
    wanted = topics or list(Topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                t.name_in(generation),
                t.partitions,
                1,
                topic_configs={"cleanup.policy": "compact"} if t.value.compacted else {},
            )
            for t in wanted
            if t.name_in(generation) not in existing
        ]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:  # another process won the race: same result
                pass
        return [t.name for t in new]
    finally:
        await admin.close()


# A follower's handler: one for its topic, or one per topic name when it follows several.
Handler = Callable[[bytes], None] | Mapping[str, Callable[[bytes], None]]


def _handle_all(batches: dict, handle: Handler, what: str) -> None:
    for tp, records in batches.items():
        apply = handle[tp.topic] if isinstance(handle, Mapping) else handle
        for message in records:
            try:
                apply(message.value)
            except Exception:  # one bad record must not stop a follower
                log.exception("skipping unreadable %s record at offset %d", what, message.offset)


async def read_to_end(
    consumer: AIOKafkaConsumer, handle: Handler, what: str, timeout_s: float
) -> None:
    """Apply every record of the consumer's assigned (one-partition) topics up to the end
    each had when the reading began. Under load records keep arriving (rate snapshots every
    few seconds), so waiting for a fetch that returns nothing may never end: a process
    restarted under traffic must still start."""
    tps = consumer.assignment()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        ends = await asyncio.wait_for(consumer.end_offsets(list(tps)), timeout_s)
        while not await _reached(consumer, ends):
            if loop.time() >= deadline:
                raise LogUnavailable(
                    f"could not read the {what} topic to its end in {timeout_s:.0f}s"
                )
            _handle_all(await consumer.getmany(timeout_ms=200), handle, what)
    except (TimeoutError, KafkaError) as e:
        raise LogUnavailable(f"could not read the {what} topic to its end: {e!r}") from e


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


async def follow(consumer: AIOKafkaConsumer, handle: Handler, what: str) -> None:
    """Apply every new record, for ever. When the log restarted (the embedded in-memory
    broker), read it again from its beginning: followers hold whole states keyed by id, so
    applying a record again changes nothing."""
    while True:
        batches = await consumer.getmany(timeout_ms=FOLLOW_POLL_MS)
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
            log.warning(
                "the %s log restarted (its end fell below our position): rereading it", what
            )
            await consumer.seek_to_beginning(tp)


async def start_follower(
    bootstrap: str,
    *topics: Topic,
    idle_wait_ms: int = IDLE_WAIT_WORKER_MS,
    generations: list[int] | None = None,
) -> PacedConsumer:
    """A group-less consumer of the whole of one-partition topics, from their beginning
    (one consumer for several topics: one fetch, not one each, while the log is idle), in
    the given generations (default: the current one)."""
    follower = consumer(bootstrap, idle_wait_ms)
    await follower.start()
    follower.assign(
        [tp for g in generations or [None] for topic in topics for tp in partitions_of(topic, g)]
    )
    await follower.seek_to_beginning()
    return follower


def track_only(user: AIOKafkaProducer | AIOKafkaConsumer, generations: list[int]) -> None:
    """Stop asking the broker about topics of other generations: a client refreshes metadata
    for every topic it ever sent to or asked offsets of, and a metadata request for a deleted
    topic makes the embedded broker create it again (empty, and never deleted after that)."""
    client = user.client if isinstance(user, AIOKafkaProducer) else user._client
    kept = [name for name in client._topics if generation_of(name) in generations]
    if len(kept) != len(client._topics):
        client.set_topics(kept)


POSITION_KNOWN_S = 1.0


async def refollow(follower: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
    """Follow these partitions from now on: the ones followed already from where they are,
    the new ones from their beginning (a rotation of the log adds or drops a generation)."""
    if set(partitions) == follower.assignment():
        return
    kept = {}
    for tp in follower.assignment() & set(partitions):
        with contextlib.suppress(TimeoutError):  # not known yet: read it from the beginning
            async with asyncio.timeout(POSITION_KNOWN_S):
                kept[tp] = await follower.position(tp)
    follower.assign(partitions)
    for tp in partitions:
        if tp in kept:
            follower.seek(tp, kept[tp])
        else:
            await follower.seek_to_beginning(tp)


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
    ends = await partition_ends(bootstrap, partitions_of(topic), timeout_s)
    return {tp.partition: end for tp, end in ends.items()}


async def partition_ends(
    bootstrap: str, tps: list[TopicPartition], timeout_s: float = 10.0
) -> dict[TopicPartition, int]:
    """Where each partition ends now, from a fetch response's high-water mark."""
    probe = consumer(bootstrap)
    await probe.start()
    try:
        probe.assign(tps)  # once: see last_values
        await probe.seek_to_end()
        deadline = asyncio.get_running_loop().time() + timeout_s
        while any(probe.highwater(tp) is None for tp in tps):
            if asyncio.get_running_loop().time() > deadline:
                raise LogUnavailable(f"no high-water marks for {sorted(tps)}")
            await probe.getmany(timeout_ms=200)
        return {tp: probe.highwater(tp) for tp in tps}  # type: ignore[misc]
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
