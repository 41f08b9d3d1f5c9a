"""The keys mirror: Topic.KEYS <-> the ClickHouse `api_keys` table.

The embedded broker forgets everything on restart, so ClickHouse holds the durable copy: the
mirror stores every key record, and `reseed_keys` writes the stored keys back onto a new log
before any API process starts.
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from clickhouse_connect.driver.client import Client

from domain.store_rows import KeyState, fold_key_record, key_records_from_row
from processors.sinks.topic_sink import ToRows
from runtime.clickhouse_client import query_dicts
from schemas.records import key_record_decoder, record_encoder
from schemas.topics import Topic

STORED_KEYS_SQL = (
    "SELECT id, name, key_hash, scope, created_at, revoked_at, last_used_at, rate_per_minute, burst"
    " FROM api_keys FINAL ORDER BY created_at"
)


async def reseed_keys(client: Client, producer: AIOKafkaProducer) -> int:
    """Write every stored key onto a new log (processors.sinks.store decides when); return how many."""
    rows = query_dicts(client, STORED_KEYS_SQL)
    for row in rows:
        for record in key_records_from_row(row):
            await producer.send_and_wait(Topic.KEYS.topic_name, record_encoder.encode(record))
    return len(rows)


def key_rows() -> ToRows:
    """Key records -> api_keys rows; the fold keeps each key's whole state."""
    states: dict[str, KeyState] = {}

    def to_rows(value: bytes) -> list[list[object]]:
        row = fold_key_record(states, key_record_decoder.decode(value))
        return [] if row is None else [row]

    return to_rows
