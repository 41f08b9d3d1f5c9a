"""The control topic's durable copy, and what goes back onto an empty log at start.

With the embedded (in-memory) broker, a restart of `coalmine up` begins with empty topics:
the store writes back every live canary and channel definition, and for each canary where it
stood (StateRestored: down stays down without a second alert; a canary that was up starts a
fresh period, so the service's own downtime is not counted as missed check-ins). A canary
whose down was held (a maintenance window, a down parent) stays held, so its recovery is not
sent either. The definition is written onto the check-ins topic first, so that state is
whole before any check-in the API takes after the restart.
"""

from __future__ import annotations

import datetime as dt
import time

from aiokafka import AIOKafkaProducer
from clickhouse_connect.driver.client import Client

from queries.canaries import canary_facts, held_downs
from schemas.canaries import StateRestored
from schemas.partitions import canary_partition
from schemas.records import record_encoder
from schemas.topics import Topic

LIVE_CONTROL_SQL = "SELECT id, kind, record FROM control FINAL WHERE NOT deleted ORDER BY version"


async def reseed_control(client: Client, producer: AIOKafkaProducer) -> int:
    """Write every live definition back onto a new log (processors.sinks.store decides when), and
    each canary's state; return how many definitions."""
    rows = client.query(LIVE_CONTROL_SQL).result_rows
    for record_id, _kind, record in rows:
        await producer.send_and_wait(
            Topic.CONTROL.topic_name, record.encode(), key=record_id.encode()
        )
    now = time.time()
    facts = {
        row["canary_id"]: row
        for row in canary_facts(client, {}, dt.datetime.now(dt.UTC))["canaries"]
    }
    held = held_downs(client)
    for record_id, kind, record in rows:
        if kind != "canary":
            continue
        # The definition goes onto the canary's check-ins partition ahead of everything else:
        # the worker forwards it there too, but only once it runs, and the API takes check-ins
        # before that; one applied to a state without its definition flipped nothing.
        await producer.send_and_wait(
            Topic.CHECKINS.topic_name,
            record.encode(),
            key=record_id.encode(),
            partition=canary_partition(record_id),
        )
        known = facts.get(record_id, {})
        status = "down" if known.get("down") else ("up" if known.get("last_checkin_at") else "new")
        restored = StateRestored(
            record_id,
            status,
            now,
            known.get("last_checkin_at"),
            known.get("last_message") or "",
            held=held.get(record_id, "") if status == "down" else "",
        )
        await producer.send_and_wait(
            Topic.CHECKINS.topic_name,
            record_encoder.encode(restored),
            key=record_id.encode(),
            partition=canary_partition(record_id),
        )
    return len(rows)
