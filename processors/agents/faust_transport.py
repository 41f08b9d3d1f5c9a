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
"""

from __future__ import annotations

import asyncio
import contextlib
import time
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


class Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(driver.Transport):
    Consumer = Consumer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
