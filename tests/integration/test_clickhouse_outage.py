"""ClickHouse unavailable to the events sink for a while: the sink retries, commits nothing
meanwhile, and afterwards ClickHouse holds every record of the log exactly once, even when a
second sink of the same group reads on from the commits.

The embedded ClickHouse (chDB) runs inside the store process, so it has no outage of its own;
the outage is made at the ClickHouse client: every call fails, as calls to an unreachable
ClickHouse server do, while the real chDB client, the real broker and the real sink do the
rest.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError

from coalmine.broker import free_port, start_tansu
from processors.sinks.event_sink import EventSink
from runtime import kafka_client as kafka
from schemas.ids import new_batch_id
from schemas.records import EventBatch, record_encoder
from schemas.topics import Topic
from schemas.wire import Event
from tests.conftest import fresh_clickhouse

GROUP = "outage-sink"
RECORDS_BEFORE = 20
RECORDS_DURING = 20
EVENTS_PER_RECORD = 50


class Unreachable:
    """A ClickHouse client whose every call fails while `down` (as against a server that is
    gone), and otherwise is the real client."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.down = True
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in ("insert", "query", "command"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                self.refused += 1
                raise OperationalError("Error HTTPConnectionPool: Connection refused (test outage)")
            return attribute(*args, **kwargs)

        return call


def _batch(i: int) -> bytes:
    events = [Event(type="event", name="outage", value=float(j)) for j in range(EVENTS_PER_RECORD)]
    return record_encoder.encode(EventBatch(new_batch_id(), f"key-{i % 3}", time.time(), events))


async def _wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


def _stored(client: Client) -> tuple[int, int]:
    ((rows, distinct),) = client.query(
        "SELECT count(), uniqExact(event_id) FROM events WHERE name = 'outage'"
    ).result_rows
    return rows, distinct


async def _scenario(bootstrap: str, client: Client) -> None:
    await kafka.create_topics(bootstrap)
    producer = kafka.producer(bootstrap)
    await producer.start()
    executor = ThreadPoolExecutor(max_workers=1)
    try:
        for i in range(RECORDS_BEFORE):
            await producer.send_and_wait(Topic.EVENTS.topic_name, _batch(i), partition=i % 4)
        unreachable = Unreachable(client)
        consumer = kafka.consumer(bootstrap, group_id=GROUP)
        await consumer.start()
        sink = EventSink(unreachable, consumer, producer, executor, 1_000, 0.05)  # type: ignore[arg-type]
        stop = asyncio.Event()
        running = asyncio.create_task(sink.run(stop))

        # Down: the sink keeps trying, stores nothing and commits nothing.
        await _wait(lambda: unreachable.refused >= 3, 30, "the sink to retry against the outage")
        for i in range(RECORDS_DURING):
            await producer.send_and_wait(Topic.EVENTS.topic_name, _batch(i), partition=i % 4)
        assert _stored(client) == (0, 0)
        for tp in kafka.partitions_of(Topic.EVENTS):
            assert await consumer.committed(tp) is None
        assert not running.done()

        # Back: everything arrives, once.
        unreachable.down = False
        total = (RECORDS_BEFORE + RECORDS_DURING) * EVENTS_PER_RECORD
        await _wait(lambda: _stored(client)[0] >= total, 60, "the sink to catch up")
        stop.set()
        await asyncio.wait_for(running, 30)
        await consumer.stop()
        assert _stored(client) == (total, total)

        # A second sink of the group resumes from the commits: it finds nothing left to store.
        consumer = kafka.consumer(bootstrap, group_id=GROUP)
        await consumer.start()
        again = EventSink(client, consumer, producer, executor, 1_000, 0.05)
        await again.start()
        assert await again.run_once() == 0
        await consumer.stop()
        assert _stored(client) == (total, total)
    finally:
        await producer.stop()
        executor.shutdown()


def test_the_sink_waits_out_a_clickhouse_outage_and_stores_everything_once(tmp_path: Path) -> None:
    port = free_port()
    broker = start_tansu(port)
    client = fresh_clickhouse(tmp_path / "clickhouse")
    try:
        bootstrap = f"127.0.0.1:{port}"
        asyncio.run(kafka.wait_for_broker(bootstrap, 30))
        asyncio.run(_scenario(bootstrap, client))
    finally:
        client.close()
        broker.kill()
        broker.wait(10)
