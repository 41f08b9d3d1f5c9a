"""A small sink for the low-volume topics (keys, rejections): records -> rows -> one insert,
retried until ClickHouse takes it. Tables are ReplacingMergeTree, so a record stored twice
(after a crash, or when the topic is re-read) counts once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor

from aiokafka import AIOKafkaConsumer
from clickhouse_connect.driver.client import Client

from runtime.holes import Holes
from runtime.kafka_client import drained
from runtime.retry import until_done

log = logging.getLogger(__name__)

ToRows = Callable[[bytes], list[list[object]]]
GATHER_S = 0.25
IDLE_POLL_S = 5.0
GATHER_ROWS_MAX = 50_000


async def sink_topic(
    client: Client,
    consumer: AIOKafkaConsumer,
    executor: Executor,
    stop: asyncio.Event,
    table: str,
    columns: tuple[str, ...],
    to_rows: ToRows,
    commit: bool = False,
    gather_s: float = GATHER_S,
) -> None:
    """Store every record of the consumer's assignment; once `stop` is set, drain and return.
    With `commit`, offsets are committed after each insert (the consumer needs a group).

    Records are gathered for up to `gather_s` after the first one into one insert: every
    insert is a part that ClickHouse merges later, so many small ones cost more CPU than the
    records themselves (check-ins arrive thousands per second)."""
    loop = asyncio.get_running_loop()
    holes = Holes(consumer)  # what a fetch skipped is read again (runtime.holes)
    while True:
        rows: list[list[object]] = []
        fetched_any = False
        until: float | None = None
        while len(rows) < GATHER_ROWS_MAX:
            # A paced consumer returns early when a stop hurries it (processors.sinks.store).
            wait_s = (
                (0.2 if stop.is_set() else IDLE_POLL_S) if until is None else until - loop.time()
            )
            fetched = await consumer.getmany(timeout_ms=max(0, int(wait_s * 1000)))
            for tp, fetched_messages in fetched.items():
                for message in await holes.whole(tp, fetched_messages):
                    try:
                        rows.extend(to_rows(message.value))
                    except Exception:
                        log.exception(
                            "%s: skipping unreadable record at offset %d", table, message.offset
                        )
            if fetched:
                fetched_any = True
                until = until or loop.time() + gather_s
            if not fetched or loop.time() >= until:  # type: ignore[operator]
                break
        if stop.is_set() and not fetched_any and await drained(consumer):
            return
        if rows:
            await until_done(
                lambda: loop.run_in_executor(
                    executor, lambda: client.insert(table, rows, column_names=columns)
                ),
                f"storing {table}",
                log,
            )
        if commit and fetched_any:
            try:
                await consumer.commit()
            except Exception as exc:  # replays are harmless: the next commit catches up
                log.warning("%s: offset commit failed (%s)", table, exc)


async def resume(consumer: AIOKafkaConsumer) -> None:
    """Seek every assigned partition to its committed offset (or the beginning)."""
    for tp in consumer.assignment():
        committed = await consumer.committed(tp)
        if committed is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)
