"""The events sink: Topic.EVENTS -> the ClickHouse `events` table, exactly once.

Exactly once without transactions: offsets are committed to the broker only after the rows are
in ClickHouse. After a crash the sink re-reads from the last commit; every record below the
high-water mark seen at restart may already be stored (wholly or, for an insert that spanned
several month partitions, partly), so for those records the sink asks ClickHouse which event
ids it already has and inserts only the others. Past that mark, nothing can be stored yet.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from clickhouse_connect.driver.client import Client

from domain.store_rows import EVENT_COLUMNS, EventColumns
from runtime.holes import Holes
from runtime.kafka_client import drained, partitions_of
from runtime.retry import until_done
from schemas.ids import event_id
from schemas.records import EventBatch, batch_decoder
from schemas.topics import Topic

log = logging.getLogger(__name__)

IDLE_POLL_MS = 5_000

STORED_IDS_SQL = """
SELECT event_id FROM events
WHERE _partition = {partition:UInt16}
  AND received_at >= fromUnixTimestamp64Milli({lo:Int64})
  AND received_at <= fromUnixTimestamp64Milli({hi:Int64})
"""


class EventSink:
    def __init__(
        self,
        client: Client,
        consumer: AIOKafkaConsumer,
        dead_letters: AIOKafkaProducer,
        executor: Executor,
        max_rows: int,
        max_wait_s: float,
        generation: int | None = None,
    ) -> None:
        self._generation = generation  # the log generation it reads (default: current)
        self._client = client
        self._consumer = consumer
        self._dead_letters = dead_letters
        self._executor = executor
        self._max_rows = max_rows
        self._max_wait_s = max_wait_s
        # Per partition: records below this offset may already be in ClickHouse.
        self._recovery_bound: dict[TopicPartition, int] = {}
        self._holes = Holes(consumer)  # what a fetch skipped is read again (runtime.holes)
        self.stored = 0
        self.dead_lettered = 0

    async def _blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def start(self) -> None:
        """Assign every partition and resume from the committed offsets."""
        tps = partitions_of(Topic.EVENTS, self._generation)
        self._consumer.assign(tps)
        for tp in tps:
            committed = await self._consumer.committed(tp)
            if committed is None:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)
                self._holes.expect(tp, committed)

    async def run(self, stop: asyncio.Event) -> None:
        """Store for ever; once `stop` is set, drain what the log holds and return."""
        await self.start()
        while True:
            fetched = await self.run_once(200 if stop.is_set() else IDLE_POLL_MS)
            if stop.is_set() and not fetched and await drained(self._consumer):
                return

    async def run_once(self, idle_poll_ms: int = IDLE_POLL_MS) -> int:
        """Collect up to max_rows (or max_wait_s from the first record, waiting up to
        `idle_poll_ms` for one), store them, then commit their offsets. Returns the number
        of log records read."""
        columns = EventColumns()
        next_offsets: dict[TopicPartition, int] = {}
        # The gathering window opens with the first record: an idle sink waits in one long
        # poll (a stop hurries it: processors.sinks.store) rather than waking every max_wait_s.
        deadline: float | None = None
        records = 0
        while len(columns) < self._max_rows:
            if deadline is None:
                wait_ms = idle_poll_ms
            else:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000))
            fetched = await self._consumer.getmany(timeout_ms=wait_ms, max_records=2_000)
            if fetched and deadline is None:
                deadline = time.monotonic() + self._max_wait_s
            for tp, fetched_messages in fetched.items():
                messages = await self._holes.whole(tp, fetched_messages)
                await self._add(columns, tp, messages)
                next_offsets[tp] = messages[-1].offset + 1
                records += len(messages)
            if deadline is None or time.monotonic() >= deadline:
                break
        if not next_offsets:
            return 0
        if len(columns):
            await self._retrying(self._insert, columns)
        await self._commit(next_offsets)
        self.stored += len(columns)
        return records

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit, retrying while the broker is away: the rows are stored already, and a
        replay after a crash here is deduplicated, so waiting is the only safe choice."""
        await until_done(lambda: self._consumer.commit(offsets), "offset commit", log)

    async def _add(
        self, columns: EventColumns, tp: TopicPartition, messages: list[ConsumerRecord]
    ) -> None:
        decoded: list[tuple[EventBatch, ConsumerRecord]] = []
        for message in messages:
            try:
                decoded.append((batch_decoder.decode(message.value), message))
            except Exception as exc:
                await self._dead_letter(message, exc)
        if tp not in self._recovery_bound:
            self._recovery_bound[tp] = self._consumer.highwater(tp) or 0
        bound = self._recovery_bound[tp]
        maybe_stored = [batch for batch, message in decoded if message.offset < bound]
        skip = await self._stored_ids(tp.partition, maybe_stored) if maybe_stored else frozenset()
        # Count the replayed events themselves: `skip` holds every event stored in the
        # batches' time window, most of them other records' (a new generation starts with the
        # old one's last seconds in that window).
        replayed = len(
            {event_id(b.batch_id, i) for b in maybe_stored for i in range(len(b.events))} & skip
        )
        if replayed:
            log.warning(
                "recovery: partition %d had %d events of replayed records already stored;"
                " storing only the rest",
                tp.partition,
                replayed,
            )
        for batch, message in decoded:
            try:
                columns.add(batch, tp.partition, message.offset, skip)
            except Exception as exc:  # valid JSON that cannot become rows: never block the log
                await self._dead_letter(message, exc)

    async def _stored_ids(self, partition: int, batches: list[EventBatch]) -> frozenset[uuid.UUID]:
        received = [batch.received_at for batch in batches]
        parameters = {
            "partition": partition,
            "lo": int(min(received) * 1000) - 1,
            "hi": int(max(received) * 1000) + 1,
        }
        rows = await self._retrying(self._query_rows, STORED_IDS_SQL, parameters)
        return frozenset(row[0] for row in rows)

    def _query_rows(self, sql: str, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
        return self._client.query(sql, parameters=parameters).result_rows

    def _insert(self, columns: EventColumns) -> None:
        self._client.insert(
            "events", list(columns.columns), column_names=EVENT_COLUMNS, column_oriented=True
        )

    async def _retrying(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Retry a ClickHouse call until it succeeds: offsets stay uncommitted meanwhile, so
        an outage delays storage and loses nothing."""
        return await until_done(lambda: self._blocking(fn, *args), "ClickHouse call", log)

    async def _dead_letter(self, message: ConsumerRecord, exc: Exception) -> None:
        self.dead_lettered += 1
        offset = message.offset
        log.error("dead-lettering %s[%d]@%d: %s", message.topic, message.partition, offset, exc)
        reason = f"{type(exc).__name__}: {exc}"[:500].encode()
        await self._dead_letters.send_and_wait(
            Topic.DEAD_LETTERS.topic_name,
            message.value,
            headers=[
                ("source", f"{message.topic}/{message.partition}/{offset}".encode()),
                ("reason", reason),
                ("at", dt.datetime.now(dt.UTC).isoformat().encode()),
            ],
        )
