"""Faust's aiokafka transport with paced fetch waits.

Faust hard-codes `fetch_max_wait_ms=1500` for its workers' consumer
(faust/transport/drivers/aiokafka.py). The embedded broker holds a fetch for its whole wait
even when records arrive meanwhile, which put 0.48 s on every hop between agents at 1500 ms
(0.012 s at 100 ms); a short fixed wait instead kept an idle worker fetching 20 times a
second. The wait now follows a FetchPacer (runtime.kafka_client) in its held-waits mode (Faust pauses and
resumes partitions itself, so this consumer cannot rest): short while records flow, growing
to IDLE_WAIT_WORKER_MS while none come, and short again ahead of every canary deadline
(processors.agents.canary_agent hurries it), so an alert still leaves within a second.
"""

from __future__ import annotations

import time
from typing import Any

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as driver

from runtime.kafka_client import (
    CONSUMER_TIMEOUT_MS,
    IDLE_WAIT_WORKER_MS,
    FetchPacer,
    set_fetch_wait,
)

SCHEME = "coalmine-kafka"


class ConsumerThread(driver.AIOKafkaConsumerThread):
    _pacer: FetchPacer | None = None

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # How often its fetch loop wakes with nothing to do (aiokafka's 200 ms default: 5 a
        # second); copied into the fetcher at start().
        consumer._consumer_timeout = CONSUMER_TIMEOUT_MS / 1000
        self._pacer = FetchPacer(IDLE_WAIT_WORKER_MS, lambda ms: set_fetch_wait(consumer, ms))
        set_fetch_wait(consumer, self._pacer.wait_ms)
        return consumer

    async def getmany(self, active_partitions: Any, timeout: float) -> Any:
        records = await super().getmany(active_partitions, timeout)
        if self._pacer is not None:
            self._pacer.polled(bool(records), time.monotonic())
        return records


class Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(driver.Transport):
    Consumer = Consumer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
