"""heartbeats agents: canary definitions and check-ins in, canary.down / canary.up flips out.

- `canary_definitions` forwards each canary definition from the control topic onto the
  check-ins topic, keyed by canary, so one ordered stream per canary carries everything the
  state machine (domain.canary_state) needs.
- `heartbeats` folds that stream into a changelogged table (so a restarted worker resumes),
  emitting a flip when a check-in causes one (fail, or back up).
- `check_deadlines` appends a Tick to each of this worker's partitions where some canary's
  deadline has passed (every 250 ms from HURRY_LEAD_S before a deadline, or while changed
  states wait to be written; else once a second, or when a batch changed something: an idle
  worker wakes once a second, not four times); when the agent reads a tick it flips the canaries
  whose deadline lies before that partition's stream time: the time of the last tick read.
  A check-in acknowledged before a tick sits before it in the partition, so a canary is never
  judged on a stream that has not yet delivered its check-ins (a lagging or restarted worker),
  and never on the high-water mark of a fetch that may be stale. Ticks go only where something
  is due: an idle service writes nothing, and on the embedded broker every record written
  makes each later fetch of its partition dearer (README, "The embedded broker and its rotation").

Maintenance windows and dependencies (domain.holds) are read from the control topic, which a
task follows from its start like the error router does (it is compacted and carried across
rotations); a window's change re-indexes the deadlines, since one falling in a window is
judged at its end instead. The flips of a batch are settled together before they are sent:
held (no channel) in a window or under a down parent, and a parent's lists its dependents.
Which canaries are down is this worker's view (every canary, with the one worker of the
embedded service).

Flips are sent (and acknowledged) before the table is written: a crash in between re-emits
the same flip (same id) after restart, which the notifier and the store deduplicate; the other
order could lose an alert.

The table is written behind: a state changed without a flip waits in memory (`pending`) and
is written at most once per FLUSH_EVERY_S, and the records that changed it are acknowledged
only after it is written, so committed offsets never pass a change the table lacks. A crash or
a stop loses `pending` and replays those records onto the table, as at_least_once does for any
batch; a rebalance waits for every record to be acknowledged (Faust's stream_wait_empty), so a
partition is handed over with its table up to date. Under a busy benchmark (500 canaries,
thousands of check-ins a second) this is one changelog record per canary per second instead of
one per check-in, which had been the worker's largest per-check-in cost (58 -> 33 µs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import faust
import msgspec
from faust.types import EventT

from domain.canary_state import CanaryState, apply, state_decoder, state_encoder
from domain.holds import judge, judged_deadline, remember_holds, settle
from processors.agents.batching import take_batches
from processors.agents.topics import log_topic
from runtime import generations
from runtime import kafka_client as kafka
from runtime.control_registry import ControlRegistry
from runtime.settings import Settings
from schemas.canaries import (
    CanaryDefined,
    CanaryDeleted,
    Flip,
    HeartbeatRecord,
    Tick,
    heartbeat_decoder,
    unpacked,
)
from schemas.control import control_decoder
from schemas.partitions import canary_partition
from schemas.quiet import WindowDefined
from schemas.records import record_encoder
from schemas.topics import Topic

log = logging.getLogger(__name__)

CHECK_EVERY_S = 0.25
# With no deadline near and nothing to write: a new partition is indexed within this.
IDLE_CHECK_S = 1.0
# How long a changed state may wait before it is written to the table (and its records
# acknowledged): the bound on replay after a crash, and on a rebalance's wait for acks.
FLUSH_EVERY_S = 1.0
# The worker's fetches may be held up to IDLE_WAIT_WORKER_MS while the log is quiet: hurry
# them that long (and a margin) before a deadline, and keep them short until the alert is out.
HURRY_LEAD_S = kafka.IDLE_WAIT_WORKER_MS / 1000 + 1.0
HURRY_AFTER_S = 3.0


def canary_of(record: HeartbeatRecord) -> str:
    if isinstance(record, (CanaryDefined, CanaryDeleted)):
        return record.id
    return record.canary_id


def register(app: faust.App, settings: Settings) -> None:
    control, checkins = log_topic(app, Topic.CONTROL), log_topic(app, Topic.CHECKINS)
    flips = log_topic(app, Topic.FLIPS)
    states = app.Table(
        "heartbeats",
        partitions=Topic.CHECKINS.partitions,
        key_type=bytes,
        value_type=bytes,
        use_partitioner=True,  # written from the timer too, outside stream iteration (#497)
    )
    stream_time: dict[int, float] = {}  # check-ins partition -> `at` of the last Tick read
    # partition -> canary -> deadline, for this worker's partitions (a tick judges only its own)
    deadlines: dict[int, dict[str, float]] = {}
    indexed: set[int] = set()  # partitions whose canaries are in `deadlines`
    # Written behind (module docstring): canary -> state not yet in the table, and the records
    # read since the last flush, acknowledged once it has written them.
    pending: dict[str, CanaryState] = {}
    held: list[EventT] = []
    last_flush = time.monotonic()
    source: faust.StreamT[bytes] | None = None  # the agent's stream, which acknowledges
    # The agent is inside a batch: states there may hold a change whose flip is not yet sent,
    # which the timer must not write (flips go out before the table is written).
    in_batch = False
    registry = ControlRegistry()  # maintenance windows (and canaries, for dependencies)
    control_ready = asyncio.Event()
    reindex = False  # a window changed: every deadline is looked at again
    changed = asyncio.Event()  # a batch or a window changed what check_deadlines looks at
    down_now: dict[str, CanaryDefined] = {}  # canaries of this worker known down

    def apply_control(value: bytes) -> None:
        nonlocal reindex
        record = control_decoder.decode(value)
        registry.apply(record)
        if isinstance(record, WindowDefined):
            reindex = True
            changed.set()

    @app.task
    async def follow_windows() -> None:
        bootstrap, timeout = settings.kafka_bootstrap, settings.startup_timeout_s
        consumer = await kafka.start_follower(bootstrap, Topic.CONTROL)
        try:
            await kafka.read_to_end(consumer, apply_control, "control", timeout)
            control_ready.set()
            await kafka.follow(consumer, apply_control, "control")
        finally:
            await consumer.stop()

    async def send_flip(flip: Flip) -> None:
        await flips.send(key=flip.canary_id.encode(), value=record_encoder.encode(flip))
        # WARNING, up or down: with no channel, the service log is where a flip is seen.
        log.warning(
            "canary %s (%s) is %s: %s", flip.canary_name, flip.canary_id, flip.status.upper(), flip.reason,
            extra={"canary_id": flip.canary_id, "flip_id": flip.id},
        )  # fmt: skip

    def remember(state: CanaryState) -> None:
        if state.status == "down" and state.definition is not None and not state.deleted:
            down_now[state.canary_id] = state.definition
        else:
            down_now.pop(state.canary_id, None)
        due = judged_deadline(state, registry.windows.values())
        of_partition = deadlines.setdefault(canary_partition(state.canary_id), {})
        if due is None:
            of_partition.pop(state.canary_id, None)
        else:
            of_partition[state.canary_id] = due

    def load(canary_id: str) -> CanaryState:
        state = pending.get(canary_id)
        if state is not None:
            return state
        stored = states.get(canary_id.encode())
        return state_decoder.decode(stored) if stored is not None else CanaryState(canary_id)

    def store(state: CanaryState) -> None:
        pending.pop(state.canary_id, None)
        states[state.canary_id.encode()] = state_encoder.encode(state)

    async def flush() -> None:
        """Write every pending state, then acknowledge the records read before."""
        nonlocal last_flush
        last_flush = time.monotonic()
        acked = held[:]
        held.clear()
        for state in list(pending.values()):
            store(state)
        if source is not None:
            for event in acked:
                await source.ack(event)

    def flush_due() -> bool:
        return time.monotonic() - last_flush >= FLUSH_EVERY_S

    @app.agent(control, name="canary_definitions")
    async def canary_definitions(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            value = event.value
            try:
                record = control_decoder.decode(value)
            except msgspec.MsgspecError:
                log.warning("canary_definitions: unreadable control record skipped")
                continue
            if isinstance(record, (CanaryDefined, CanaryDeleted)):
                await checkins.send(key=record.id.encode(), value=value)

    @app.agent(checkins, name="heartbeats")
    async def heartbeats(stream: faust.StreamT[bytes]) -> None:
        nonlocal source, in_batch
        source = stream
        async for batch in take_batches(stream, 1_000, within=0.05, ack=False):
            in_batch = True
            try:
                await fold(batch)
            finally:
                in_batch = False
            if flush_due():
                await flush()

    async def fold(batch: list[EventT]) -> None:
        """Apply a batch to the states; send its flips; judge deadlines if it holds ticks."""
        touched: dict[str, CanaryState] = {}
        caused: list[Flip] = []
        ticked: set[int] = set()
        for event in batch:
            try:
                received = heartbeat_decoder.decode(event.value)
            except msgspec.MsgspecError:
                log.warning("heartbeats: unreadable record skipped")
                continue
            if isinstance(received, Tick):
                partition = event.message.partition
                stream_time[partition] = max(stream_time.get(partition, 0.0), received.at)
                ticked.add(partition)
                continue
            for record in unpacked(received):
                canary_id = canary_of(record)
                state = touched.get(canary_id) or load(canary_id)
                flip = apply(state, record)
                touched[canary_id] = state
                if flip is not None:
                    caused.append(flip)
        if caused:
            await control_ready.wait()
            caused = settle(caused, touched, down_now, registry.windows.values())
            remember_holds(caused, touched)
        flipped = {flip.canary_id for flip in caused}
        for flip in caused:
            await send_flip(flip)
        for canary_id, state in touched.items():
            if canary_id in flipped:  # at once: its flip is out
                store(state)
            else:
                pending[canary_id] = state
            remember(state)
        held.extend(batch)  # acknowledged by the next flush, which writes what it changed
        if ticked:
            await flip_overdue(ticked)
        changed.set()

    async def flip_overdue(partitions: set[int]) -> None:
        """Down with every canary of these partitions whose deadline is before stream time."""
        await control_ready.wait()
        windows = list(registry.windows.values())
        judged: dict[str, CanaryState] = {}
        caused: list[Flip] = []
        for partition in partitions:
            now = stream_time[partition]
            overdue = [c for c, due in deadlines.get(partition, {}).items() if due < now]
            for canary_id in overdue:
                state = judged[canary_id] = load(canary_id)
                flip = judge(state, now, windows)
                if flip is not None:
                    caused.append(flip)
        caused = settle(caused, judged, down_now, windows)
        remember_holds(caused, judged)
        for flip in caused:
            await send_flip(flip)
        for state in judged.values():
            # Written even without a flip: a canary over events moved on to its next window,
            # a deadline in maintenance restarted at its end.
            store(state)
            remember(state)

    def index(partition: int) -> None:
        for key, value in list(states.items()):
            canary_id = key.decode()
            if canary_partition(canary_id) == partition:
                remember(pending.get(canary_id) or state_decoder.decode(value))

    @app.task
    async def deadline_loop() -> None:
        await asyncio.sleep(CHECK_EVERY_S)  # as a Faust timer: not in the worker's first moment
        while True:
            try:
                wait_s = await check_deadlines()
            except Exception:  # never the end of judging deadlines
                log.exception("check_deadlines failed; trying again")
                wait_s = IDLE_CHECK_S
            changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await changed.wait()

    async def check_deadlines() -> float:
        """Flush, tick where due, hurry the fetches ahead of a deadline; return how long
        until it is worth looking again (a change wakes it sooner)."""
        nonlocal reindex
        if (held or pending) and not in_batch and flush_due():
            await flush()  # the stream went quiet after a change
        if generations.draining():
            return IDLE_CHECK_S  # the next log generation's worker judges (coalmine.rotation)
        active = {
            tp.partition
            for tp in app.assignor.assigned_actives()
            if tp.topic == Topic.CHECKINS.topic_name
        }
        if reindex and control_ready.is_set() and not in_batch:
            reindex = False  # a window changed: the deadlines it moves with it
            indexed.clear()
        for partition in active - indexed:  # newly assigned: index its canaries once
            index(partition)
            indexed.add(partition)
        indexed.intersection_update(active)
        now = time.time()
        tick = record_encoder.encode(Tick(now))
        earliest = None
        for partition in active:  # the agent judges deadlines when it reads these
            due = deadlines.get(partition)
            if not due:
                continue
            first = min(due.values())
            earliest = first if earliest is None else min(earliest, first)
            if first < now:
                await checkins.send(value=tick, partition=partition)
        if earliest is not None and earliest - now < HURRY_LEAD_S:
            # Fetch without idle waits from before a deadline until its alert has left: the
            # tick, the flip and its delivery each take a hop through the log.
            kafka.hurry_all(max(0.0, earliest - now) + HURRY_AFTER_S)
        return next_check_s(earliest, now, bool(held or pending))


def next_check_s(earliest: float | None, now: float, unwritten: bool) -> float:
    """How long check_deadlines may sleep: CHECK_EVERY_S while states wait to be written or
    from HURRY_LEAD_S before the earliest deadline, else until then, at most IDLE_CHECK_S."""
    if unwritten or (earliest is not None and earliest - now <= HURRY_LEAD_S):
        return CHECK_EVERY_S
    if earliest is None:
        return IDLE_CHECK_S
    return min(IDLE_CHECK_S, max(CHECK_EVERY_S, earliest - now - HURRY_LEAD_S))
