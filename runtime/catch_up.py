"""Read-your-writes across API processes.

Each API process learns keys and canaries by following their topics, a fraction of a second
after the process that wrote them (a follower on a quiet log rests between fetches, up to
runtime.kafka_client.IDLE_WAIT_API_MS; the broker's answer and the apply come on top). A key or check-in token unknown here may therefore be one
another process created a moment ago, and its creator may use it at once: before refusing it,
a process reads the follower up to the log's end as of now, then looks again.

Records this process appended itself it has applied already (`applied_here`): a round does
not wait for the follower to read those back, so an admin request right after another one
through the same process costs a ListOffsets, not a fetch cycle.

Only refusals and admin requests pay for this, and they share it: one round (a ListOffsets,
then waiting for the follower's position to pass it) serves every request that arrived before
the round began, so a flood of bad credentials costs one broker request at a time, not one
each. A round that cannot finish within the timeout (the broker is away) leaves the refusal as
it was.

A refusal is only as good as the log it is read from: the embedded broker starts empty after
a restart, and the store writes keys and canaries back from ClickHouse a moment later. A round
also reads the seeded mark (processors.sinks.store.reseed_if_new_log); while it is missing,
`restoring` is True and the caller answers 503 rather than a false 401 or 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from runtime.kafka_client import PacedConsumer

log = logging.getLogger(__name__)

CATCH_UP_TIMEOUT_S = 1.0
POSITION_POLL_S = 0.005  # the follower applies a fetched batch right as its position moves


class CatchUp:
    """`follower` is the consumer that applies the topic; `offsets` asks for the log's end on
    a connection of its own: the broker answers one connection's requests in order, so a
    ListOffsets behind the follower's fetch would wait out its poll. A round hurries a resting
    follower. `partitions`: the
    follower's partitions whose records this round must have applied (a follower may read
    more topics than the one a refusal is about)."""

    def __init__(
        self,
        follower: AIOKafkaConsumer,
        offsets: AIOKafkaConsumer,
        partitions: list[TopicPartition] | None = None,
        timeout_s: float = CATCH_UP_TIMEOUT_S,
        mark: TopicPartition | None = None,
    ) -> None:
        self._follower, self._offsets = follower, offsets
        self._partitions = partitions  # the follower's partitions this waits for (None: all)
        self._mark = mark  # the seeded mark's partition (None: the log is never restored)
        self.restoring = False  # the last round found the log new and not yet seeded
        # Offsets appended and applied here, not yet read back, by partition (None: the one
        # partition this waits for; a rotation of the log makes it two for a while).
        self._mine: dict[TopicPartition | None, set[int]] = {}
        self._timeout_s = timeout_s
        self._last: asyncio.Task[None] | None = None  # the round running or last run
        self._next: asyncio.Task[None] | None = None  # the round not yet begun: joinable

    def applied_here(self, offset: int, tp: TopicPartition | None = None) -> None:
        """This process appended the record at `offset` of `tp` (default: the first partition
        this waits for) and applied it already."""
        self._mine.setdefault(tp, set()).add(offset)

    def wait_for(self, partitions: list[TopicPartition], mark: TopicPartition | None) -> None:
        """Wait for these partitions from now on (a rotation of the log moved them)."""
        self._partitions, self._mark = partitions, mark

    async def wait(self) -> bool:
        """True once the follower has applied everything the log held when this was called;
        False after the timeout or on a broker error."""
        if self._next is None:
            self._next = asyncio.create_task(self._round(self._last))
            self._next.add_done_callback(_retrieve)
            self._last = self._next
        try:
            async with asyncio.timeout(self._timeout_s):
                await asyncio.shield(self._next)
        except (TimeoutError, KafkaError, OSError) as exc:  # refuse as before
            log.debug("catching up with the log failed: %r", exc)
            return False
        return True

    async def _round(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        # From here on, the end offsets asked for may predate a newer request's write.
        self._next = None
        async with asyncio.timeout(self._timeout_s):  # a round never holds up the next for long
            if isinstance(self._follower, PacedConsumer):
                self._follower.hurry()  # a resting follower fetches at once
            partitions = self._partitions or sorted(self._follower.assignment())
            if None in self._mine:
                self._mine.setdefault(partitions[0], set()).update(self._mine.pop(None))
            marks = [] if self._mark is None else [self._mark]
            ends = await self._offsets.end_offsets(partitions + marks)
            self.restoring = any(ends[mark] == 0 for mark in marks)
            for tp in partitions:
                mine = self._mine.setdefault(tp, set())
                if mine and max(mine) >= ends[tp]:
                    # Not in the log as seen (the embedded broker restarted its log at 0):
                    # forget them rather than mistake another's record for ours; waiting is safe.
                    mine.clear()
                while not _known(mine, position := await self._follower.position(tp), ends[tp]):
                    await asyncio.sleep(POSITION_POLL_S)
                self._mine[tp] = {o for o in mine if o >= position}
            for gone in set(self._mine) - set(partitions):
                del self._mine[gone]


def _known(mine: set[int], position: int, end: int) -> bool:
    """Everything below `end` is applied: read by the follower or written from here."""
    missing = end - position
    return missing <= 0 or (len(mine) >= missing and mine.issuperset(range(position, end)))


def _retrieve(task: asyncio.Task[None]) -> None:
    """A round whose every waiter timed out must not log "exception never retrieved"."""
    with contextlib.suppress(BaseException):
        task.exception()
