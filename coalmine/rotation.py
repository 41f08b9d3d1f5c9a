"""Rotating the embedded broker's log, so that its memory stays bounded whatever the uptime.

The embedded broker (Tansu 0.6, in memory) keeps every record for ever and has no retention,
but it frees a topic's memory when the topic is deleted. So `coalmine up` moves the whole log
to a new generation of topics (schemas.topics.name_in) and deletes the old one, in steps
that lose nothing and keep every derived state (coalmine.launcher runs them):

1. **switch**: the new generation's topics are created; the API processes append there from
   now on and follow the keys, rate-limit and control topics of both generations; the store
   starts a second set of sinks on the new one. No request waits: an append goes to one
   generation or the other, and each is read to its end.
2. **drain the worker**: the Faust worker goes on with the old generation until it has
   processed (committed) everything there and rolled it up; then it is stopped cleanly.
3. **carry** (`carry`): what the old generation holds that is state, not history, is copied
   into the new one: the latest key, control and rate-limit records (`latest_to_carry`;
   a record the new generation already has for the same id is newer and stands), the worker's
   tables (canary states and deadlines, rate-limit bucket levels: their changelogs, compacted),
   the error alerts whose quiet window is still open and the last digest of each plan
   (`alerts_to_carry`, onto Topic.CARRIED, which the notifier does not read), and the
   seeded mark.
4. **worker on the new generation**: a new worker (its own Faust app id, so its own group and
   changelogs) starts from the carried tables and processes what the API appended since step
   1. Deadlines that passed meanwhile are judged as soon as it runs: late by the length of the
   steps 2-4 (seconds), never lost.
5. **retire**: the API processes stop following the old generation; the store drains its old
   sinks into ClickHouse (everything the old worker wrote included); then the old topics are
   deleted, and the broker's memory with them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Hashable, Iterable

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from runtime import kafka_client as kafka
from schemas.alerts import Digest, ErrorAlert, alert_decoder
from schemas.control import control_decoder
from schemas.records import key_record_decoder, rate_snapshot_decoder
from schemas.topics import CARRIED_HEADER, Topic, carried, processors_group

# What the worker must have finished before it stops: its group has committed all of them.
# Not the control topic: its records are carried into the new generation (the latest of each
# id) and applied again there, idempotently; and Faust was seen never to commit a partition
# that held only records written before the worker started (the carried ones) and got no more.
WORKER_INPUTS = (Topic.EVENTS, Topic.CHECKINS, Topic.FLIPS, Topic.ALERTS)
READ_TIMEOUT_S = 60.0
CARRIED = [(CARRIED_HEADER, b"1")]

Identity = Callable[[bytes], Hashable | None]


def key_identity(value: bytes) -> Hashable | None:
    """Keys: one record of each kind per key (created, revoked, used, limits) stands."""
    record = key_record_decoder.decode(value)
    return (record.id, type(record).__name__)


def control_identity(value: bytes) -> Hashable | None:
    """Canaries, channels and routes: the latest record of an id (a definition or its deletion)."""
    return control_decoder.decode(value).id


def snapshot_identity(value: bytes) -> Hashable | None:
    return rate_snapshot_decoder.decode(value).key_id


CARRIED_TOPICS: tuple[tuple[Topic, Identity], ...] = (
    (Topic.KEYS, key_identity),
    (Topic.CONTROL, control_identity),
    (Topic.RATELIMIT, snapshot_identity),
)


def latest_to_carry(
    old: Iterable[tuple[int, Hashable | None]], present: set[Hashable]
) -> list[int]:
    """Of the old generation's (offset, identity) records, the offsets to copy, in log order:
    the last record of each identity, unless the new generation has one for it already
    (written after the switch, so newer). Unreadable records (identity None) are left. Pure."""
    last: dict[Hashable, int] = {}
    for offset, identity in old:
        if identity is not None and identity not in present:
            last[identity] = offset
    return sorted(last.values())


def alerts_to_carry(old: Iterable[tuple[int, bytes]], now: float) -> list[int]:
    """Of the old (number, alert) records, the numbers to copy: the latest error alert of
    each quiet window still open at `now` (the error router rebuilds its windows from them),
    and the latest digest of each plan (the digest timer takes its next period from it). Pure."""
    windows: dict[tuple[str, str, str], tuple[float, int]] = {}
    digests: dict[str, tuple[float, int]] = {}
    for offset, value in old:
        try:
            record = alert_decoder.decode(value)
        except msgspec.MsgspecError:
            continue
        if isinstance(record, ErrorAlert):
            if record.at + record.quiet_window_s <= now:
                continue
            key = (record.key_id, record.event_type, record.name)
            if key not in windows or windows[key][0] <= record.at:
                windows[key] = (record.at, offset)
        elif isinstance(record, Digest):
            plan = record.id.split(":")[1]
            if plan not in digests or digests[plan][0] <= record.end:
                digests[plan] = (record.end, offset)
    return sorted(offset for _, offset in [*windows.values(), *digests.values()])


def compacted(records: Iterable[ConsumerRecord]) -> list[ConsumerRecord]:
    """A changelog partition as Kafka's compaction would leave it: the last record of each
    key, deleted keys (a None value) dropped, in log order. Pure."""
    last: dict[bytes | None, ConsumerRecord] = {}
    for record in records:
        last[record.key] = record
    return sorted((r for r in last.values() if r.value is not None), key=lambda r: r.offset)


def changelog_in(name: str, old: int, new: int) -> str | None:
    """The new generation's name of one of the old worker's changelog topics, else None."""
    prefix = processors_group(old) + "-"
    if not (name.startswith(prefix) and name.endswith("-changelog")):
        return None
    return processors_group(new) + "-" + name[len(prefix) :]


def generation_topics(existing: Iterable[str], generation: int) -> list[str]:
    """Every topic of a generation: the registry's, and its worker's (changelogs, Faust's)."""
    registry = {t.name_in(generation) for t in Topic}
    worker = processors_group(generation) + "-"
    return sorted(n for n in existing if n in registry or n.startswith(worker))


async def read_all(
    bootstrap: str, tps: list[TopicPartition]
) -> dict[TopicPartition, list[ConsumerRecord]]:
    """Every record of these partitions up to their end as of now."""
    found: dict[TopicPartition, list[ConsumerRecord]] = {tp: [] for tp in tps}
    if not tps:
        return found
    probe = kafka.consumer(bootstrap, max_partition_fetch_bytes=8 * 1024 * 1024)
    await probe.start()
    try:
        ends = await _highwaters(probe, tps)
        for tp in tps:
            if ends[tp] > 0:
                found[tp] = await kafka.read_range(probe, tp, 0, ends[tp], READ_TIMEOUT_S)
    finally:
        await probe.stop()
    return found


async def _highwaters(
    probe: AIOKafkaConsumer, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """From fetch answers: the embedded broker's ListOffsets(latest) reads low (runtime.kafka_client)."""
    probe.assign(tps)
    await probe.seek_to_end()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READ_TIMEOUT_S
    while any(probe.highwater(tp) is None for tp in tps):
        if loop.time() > deadline:
            raise kafka.LogUnavailable("no high-water marks for the rotation")
        await probe.getmany(timeout_ms=200)
    return {tp: probe.highwater(tp) or 0 for tp in tps}


async def worker_behind(bootstrap: str, generation: int) -> dict[str, int]:
    """What the generation's worker has not committed yet, by partition (empty: drained)."""
    tps = [tp for t in WORKER_INPUTS for tp in kafka.partitions_of(t, generation)]
    probe = kafka.consumer(bootstrap)
    group = kafka.consumer(bootstrap, group_id=processors_group(generation))
    await probe.start()
    await group.start()
    try:
        ends = await _highwaters(probe, tps)
        behind = {}
        for tp in tps:
            committed = await group.committed(tp) or 0
            if ends[tp] > committed:
                behind[f"{tp.topic}[{tp.partition}]"] = ends[tp] - committed
        return behind
    finally:
        await probe.stop()
        await group.stop()


async def carry(bootstrap: str, old: int, new: int, now: float) -> dict[str, int]:
    """Copy the old generation's state into the new one (step 3); how many records each."""
    producer = kafka.producer(bootstrap)
    await producer.start()
    counts: dict[str, int] = {}
    try:
        for topic, identity in CARRIED_TOPICS:
            counts[topic.name.lower()] = await _carry_latest(
                bootstrap, producer, topic, identity, old, new
            )
        counts["changelogs"] = await _carry_changelogs(bootstrap, producer, old, new)
        counts["alerts"] = await _carry_alerts(bootstrap, producer, old, new, now)
        await producer.send_and_wait(Topic.SEEDED.name_in(new), b"seeded")
    finally:
        await producer.stop()
    return counts


def _identity_or_none(identity: Identity, value: bytes) -> Hashable | None:
    try:
        return identity(value)
    except (msgspec.MsgspecError, AttributeError):
        return None


async def _carry_latest(
    bootstrap: str, producer: AIOKafkaProducer, topic: Topic, identity: Identity, old: int, new: int
) -> int:
    (old_tp,) = kafka.partitions_of(topic, old)
    (new_tp,) = kafka.partitions_of(topic, new)
    read = await read_all(bootstrap, [old_tp, new_tp])
    present = {_identity_or_none(identity, r.value) for r in read[new_tp]} - {None}
    by_offset = {r.offset: r for r in read[old_tp]}
    offsets = latest_to_carry(
        ((r.offset, _identity_or_none(identity, r.value)) for r in read[old_tp]), present
    )
    if not offsets:
        return 0
    seen_end = read[new_tp][-1].offset + 1 if read[new_tp] else 0
    copied = {_identity_or_none(identity, by_offset[o].value) for o in offsets}
    last = None
    for offset in offsets:
        record = by_offset[offset]
        last = await producer.send_and_wait(
            new_tp.topic, record.value, key=record.key, headers=CARRIED
        )
    # A record appended to the new generation while this copied (an admin request of that
    # moment) may now sit before an older copy of the same id: append it again, after them.
    assert last is not None
    between = await read_all_range(bootstrap, new_tp, seen_end, last.offset + 1)
    for record in between:
        if not carried(record.headers) and _identity_or_none(identity, record.value) in copied:
            await producer.send_and_wait(new_tp.topic, record.value, key=record.key)
    return len(offsets)


async def read_all_range(
    bootstrap: str, tp: TopicPartition, start: int, end: int
) -> list[ConsumerRecord]:
    probe = kafka.consumer(bootstrap)
    await probe.start()
    try:
        return await kafka.read_range(probe, tp, start, end, READ_TIMEOUT_S)
    finally:
        await probe.stop()


async def _carry_changelogs(bootstrap: str, producer: AIOKafkaProducer, old: int, new: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    copied = 0
    try:
        names = {name: changelog_in(name, old, new) for name in await admin.list_topics()}
        changelogs = {name: target for name, target in names.items() if target is not None}
        if not changelogs:
            return 0
        described = await admin.describe_topics(list(changelogs))
        partitions = {d["topic"]: len(d["partitions"]) for d in described}
        try:
            await admin.create_topics(
                [NewTopic(target, partitions[name], 1) for name, target in changelogs.items()]
            )
        except TopicAlreadyExistsError:
            pass
        for name, target in changelogs.items():
            tps = [TopicPartition(name, p) for p in range(partitions[name])]
            for tp, records in (await read_all(bootstrap, tps)).items():
                for record in compacted(records):
                    await producer.send(
                        target, record.value, key=record.key, partition=tp.partition,
                        headers=list(record.headers or ()),
                    )  # fmt: skip
                    copied += 1
        await producer.flush()
    finally:
        await admin.close()
    return copied


async def _carry_alerts(
    bootstrap: str, producer: AIOKafkaProducer, old: int, new: int, now: float
) -> int:
    # What the old generation sent, and what it had itself carried over from the one before.
    tps = [*kafka.partitions_of(Topic.CARRIED, old), *kafka.partitions_of(Topic.ALERTS, old)]
    records = [r for records in (await read_all(bootstrap, tps)).values() for r in records]
    numbered = dict(enumerate(records))
    chosen = alerts_to_carry(((n, r.value) for n, r in numbered.items()), now)
    for n in chosen:
        record = numbered[n]
        await producer.send_and_wait(Topic.CARRIED.name_in(new), record.value, key=record.key)
    return len(chosen)


async def delete_generation(bootstrap: str, generation: int) -> list[str]:
    """Delete every topic of a generation (step 5); the names deleted."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        names = generation_topics(await admin.list_topics(), generation)
        if names:
            await admin.delete_topics(names)
        return names
    finally:
        await admin.close()


def broker_rss_mb(pid: int) -> float:
    """The broker's resident memory, from /proc (0 where there is none)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1_048_576
