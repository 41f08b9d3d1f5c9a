"""The keys mirror: Topic.KEYS <-> the ClickHouse `api_keys` table.

The embedded broker forgets everything on restart, so ClickHouse holds the durable copy: the
mirror stores every key record, and `reseed_keys` writes the stored keys back onto an empty
topic before any API process starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from clickhouse_connect.driver.client import Client

from coalmine.clickhouse import query_dicts
from coalmine.log import partitions_of
from processors.rows import KEY_COLUMNS, KeyState, fold_key_record, key_records_from_row
from schemas.records import key_record_decoder, record_encoder
from schemas.topics import Topic

log = logging.getLogger(__name__)

STORED_KEYS_SQL = (
    "SELECT id, name, key_hash, scope, created_at, revoked_at, last_used_at"
    " FROM api_keys FINAL ORDER BY created_at"
)


async def reseed_keys(client: Client, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer) -> int:
    """If the keys topic is empty, write every stored key onto it; return how many."""
    (tp,) = partitions_of(Topic.KEYS)
    if (await consumer.end_offsets([tp]))[tp] > 0:
        return 0
    rows = query_dicts(client, STORED_KEYS_SQL)
    for row in rows:
        for record in key_records_from_row(row):
            await producer.send_and_wait(Topic.KEYS.topic_name, record_encoder.encode(record))
    return len(rows)


async def mirror_keys(
    client: Client, consumer: AIOKafkaConsumer, executor: Executor, stop: asyncio.Event
) -> None:
    """Store every key record in api_keys; once `stop` is set, drain the topic and return.
    Inserts are idempotent (ReplacingMergeTree keeps the newest state of a key)."""
    consumer.assign(partitions_of(Topic.KEYS))
    await consumer.seek_to_beginning()
    states: dict[str, KeyState] = {}
    loop = asyncio.get_running_loop()
    insert: Callable[[list[Any]], Any] = lambda rows: client.insert(  # noqa: E731
        "api_keys", rows, column_names=KEY_COLUMNS
    )
    while True:
        fetched = await consumer.getmany(timeout_ms=200 if stop.is_set() else 500)
        if stop.is_set() and not fetched:
            return
        rows = []
        for messages in fetched.values():
            for message in messages:
                try:
                    record = key_record_decoder.decode(message.value)
                except Exception:
                    log.exception("skipping unreadable key record at offset %d", message.offset)
                    continue
                row = fold_key_record(states, record)
                if row is not None:
                    rows.append(row)
        while rows:
            try:
                await loop.run_in_executor(executor, insert, rows)
                rows = []
            except Exception as exc:
                log.warning("storing keys failed (%s); retrying", exc)
                await asyncio.sleep(1.0)
