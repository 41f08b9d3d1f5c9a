"""Faust's aiokafka transport with paced fetch waits.

Faust hard-codes `fetch_max_wait_ms=1500` for its workers' consumer
(faust/transport/drivers/aiokafka.py). The embedded broker holds a fetch for its whole wait
even when records arrive meanwhile, which put 0.48 s on every hop between agents at 1500 ms
(0.012 s at 100 ms); a short fixed wait instead kept an idle worker fetching 20 times a
second. The wait now follows a FetchPacer (runtime.kafka_client): short while records flow,
and short again ahead of every canary deadline (processors.agents.canary_agent hurries it), so
an alert still leaves within a second.

While none come, on the embedded broker (Settings.fetch_rests) the consumer rests like the
others: its partitions paused in aiokafka, no fetch sent, for a time doubling up to
IDLE_WAIT_WORKER_MS. A held fetch costs that broker ~0.5 % of a core whatever its wait (it
polls its storage meanwhile), and this consumer's was the one always held: half the broker's
idle cost. Faust's own pauses never reach aiokafka (Consumer.pause_partitions only narrows the
partitions it asks records of), so pausing them here fights nothing of Faust's. A rest is
ended by a hurry at once: hurries come from the worker's main thread (a deadline ahead, an API
process's nudge after a quiet spell, runtime.nudges), so this pacer's wake-up is handed to the
consumer thread's loop (ThreadWake). Against Kafka, which answers a held fetch as soon as
records arrive, the wait grows to IDLE_WAIT_WORKER_MS instead (held-waits mode).

Records Faust fetched but never handed on are fetched again (Consumer.getmany). Faust's getmany
drops the rest of a fetch when the consumer's generation changes or its flow stops while it
hands the records out, and when a partition is no longer active, while aiokafka has already
moved past them: the agents never saw them, Faust never acknowledged them, and its commit
stayed before them for good (seen after a worker's kill -9: a log rotation then waited forever
for the restarted worker to drain the old generation; and a flip so dropped is an alert never
sent). So when a fetch's records were not all handed on, the consumer is moved back to the
first one left out, unless something (Faust's own seek to the committed offsets) already moved
it there or before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as driver

from runtime.kafka_client import (
    CONSUMER_TIMEOUT_MS,
    IDLE_WAIT_WORKER_MS,
    FetchPacer,
    rests_when_idle,
    set_fetch_wait,
)

SCHEME = "coalmine-kafka"
log = logging.getLogger(__name__)


class ThreadWake:
    """FetchPacer.woken for a pacer hurried from other threads than its consumer's: `set`
    is handed to the consumer's loop (an asyncio.Event is not thread-safe)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def set(self) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._event.set)

    def clear(self) -> None:
        self._event.clear()

    async def wait(self) -> None:
        await self._event.wait()


class ConsumerThread(driver.AIOKafkaConsumerThread):
    _pacer: FetchPacer | None = None
    _rested: list[Any] | None = None  # the partitions a rest paused

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # How often its fetch loop wakes with nothing to do (aiokafka's 200 ms default: 5 a
        # second); copied into the fetcher at start().
        consumer._consumer_timeout = CONSUMER_TIMEOUT_MS / 1000
        if rests_when_idle():
            self._pacer = FetchPacer(IDLE_WAIT_WORKER_MS)
            self._pacer.woken = ThreadWake(self.thread_loop)  # type: ignore[assignment]
        else:
            self._pacer = FetchPacer(IDLE_WAIT_WORKER_MS, lambda ms: set_fetch_wait(consumer, ms))
        set_fetch_wait(consumer, self._pacer.wait_ms)
        return consumer

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: Any,
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> Any:
        """Faust's poll, in the consumer's thread: rest, or fetch and tell the pacer."""
        pacer = self._pacer
        if pacer is None:
            return await super()._fetch_records(consumer, active_partitions, timeout, max_records)
        timeout = 1.0 if timeout is None else timeout
        now = time.monotonic()
        if pacer.resting(now):
            if self._rested is None:
                self._rested = [tp for tp in consumer.assignment() if tp not in consumer.paused()]
                consumer.pause(*self._rested)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, min(timeout, pacer.rest_until - now))):
                    await pacer.woken.wait()
            if pacer.resting(time.monotonic()):
                return {}
        if self._rested is not None:
            assigned = consumer.assignment()
            consumer.resume(*(tp for tp in self._rested if tp in assigned))
            self._rested = None
        # Poll no longer than the pacer needs to decide whether to rest.
        timeout = min(timeout, pacer.decides_in(now))
        records = await super()._fetch_records(consumer, active_partitions, timeout, max_records)
        pacer.polled(bool(records), time.monotonic())
        return records

    async def rewind(self, tp: Any, offset: int) -> bool:
        """In the consumer's thread: move `tp` back to `offset` if the consumer is past it."""
        consumer = self._ensure_consumer()
        if tp not in consumer.assignment():
            return False
        position = await consumer.position(tp)
        if position is None or position <= offset:
            return False
        consumer.seek(tp, offset)
        return True


class Consumer(driver.Consumer):
    _thread: ConsumerThread
    _fetched: Any = None  # the records of the fetch getmany is handing out

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _wait_next_records(self, timeout: float) -> Any:
        records, active_partitions = await super()._wait_next_records(timeout)
        self._fetched = records
        return records, active_partitions

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        """Faust's getmany; then what it left out of the fetch is fetched again (see the
        module's docstring)."""
        last: dict[Any, int] = {}  # per partition, the last offset handed on
        async for tp, message in super().getmany(timeout):
            last[tp] = message.offset
            yield tp, message
        fetched, self._fetched = self._fetched, None
        if not fetched or self.should_stop:
            return
        for tp, records in fetched.items():
            handed = last.get(tp, -1)
            if not records or records[-1].offset <= handed:  # all handed on: the usual case
                continue
            left = next(r.offset for r in records if r.offset > handed)
            if await self._thread.call_thread(self._thread.rewind, tp, left):
                log.warning(
                    "Faust left %s out of a fetch from offset %d on (%d records); fetching them"
                    " again",
                    tp,
                    left,
                    sum(r.offset >= left for r in records),
                )


class Transport(driver.Transport):
    Consumer = Consumer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
