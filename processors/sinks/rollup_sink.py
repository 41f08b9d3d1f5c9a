"""The rollups sink: Topic.ROLLUPS -> the ClickHouse `rollups` table, one insert per delta.

Each insert carries the delta's id as ClickHouse's insert_deduplication_token, and offsets are
committed after the inserts: a delta read again after a crash of the store, or published twice
by a worker retrying its send, is stored once. Readers aggregate the rows (sum, min, max ...
GROUP BY), so the deltas add up to the totals whatever ClickHouse has merged yet.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from concurrent.futures import Executor

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from clickhouse_connect.driver.client import Client

from runtime.kafka_client import drained
from runtime.retry import until_done
from schemas.rollups import RollupDelta, delta_decoder
from schemas.topics import Topic

log = logging.getLogger(__name__)

TABLE = "rollups"
ROLLUP_COLUMNS = (
    "grain",
    "name",
    "type",
    "key_id",
    "bucket",
    "count",
    "value_count",
    "value_sum",
    "value_min",
    "value_max",
    "last_error",
)


def rollup_rows(delta: RollupDelta) -> list[list[object]]:
    """The delta's rows in ROLLUP_COLUMNS order. Pure."""
    return [
        [
            r.grain,
            r.name,
            r.type,
            r.key_id,
            r.bucket,
            r.count,
            r.value_count,
            r.value_sum,
            r.value_min,
            r.value_max,
            (r.last_at, r.last_message),
        ]
        for r in delta.rows
    ]


class RollupSink:
    def __init__(
        self,
        client: Client,
        consumer: AIOKafkaConsumer,
        dead_letters: AIOKafkaProducer,
        executor: Executor,
    ) -> None:
        self._client = client
        self._consumer = consumer  # assigned every rollups partition, at its committed offset
        self._dead_letters = dead_letters
        self._executor = executor
        self.stored = 0  # deltas inserted this run (some may have been deduplicated)
        self.dead_lettered = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Store for ever; once `stop` is set, drain what the log holds and return."""
        while True:
            # A paced consumer returns early when a stop hurries it (processors.sinks.store).
            fetched = await self._consumer.getmany(timeout_ms=200 if stop.is_set() else 5_000)
            if not fetched:
                if stop.is_set() and await drained(self._consumer):
                    return
                continue
            for messages in fetched.values():
                for message in messages:
                    await self._store(message)
            # A failed commit only means a replay, which is deduplicated; the next one catches up.
            try:
                await self._consumer.commit()
            except Exception as exc:  # noqa: BLE001
                log.warning("rollups: offset commit failed (%s)", exc)

    async def _store(self, message: ConsumerRecord) -> None:
        try:
            delta = delta_decoder.decode(message.value)
        except msgspec.MsgspecError as exc:
            await self._dead_letter(message, exc)
            return
        rows = rollup_rows(delta)
        settings = {"insert_deduplication_token": delta.dedup_token}
        loop = asyncio.get_running_loop()
        if not rows:
            return
        # Retried until stored: offsets stay uncommitted meanwhile, nothing is lost.
        await until_done(
            lambda: loop.run_in_executor(
                self._executor,
                lambda: self._client.insert(
                    TABLE, rows, column_names=ROLLUP_COLUMNS, settings=settings
                ),
            ),
            "storing rollups",
            log,
        )
        self.stored += 1

    async def _dead_letter(self, message: ConsumerRecord, exc: Exception) -> None:
        self.dead_lettered += 1
        source = f"{message.topic}/{message.partition}/{message.offset}"
        log.error("dead-lettering %s: %s", source, exc)
        await self._dead_letters.send_and_wait(
            Topic.DEAD_LETTERS.topic_name,
            message.value,
            headers=[
                ("source", source.encode()),
                ("reason", f"{type(exc).__name__}: {exc}"[:500].encode()),
                ("at", dt.datetime.now(dt.UTC).isoformat().encode()),
            ],
        )
