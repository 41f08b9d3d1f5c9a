"""events(name, from, to, limit, cursor): a name's raw events, newest first, a page at a time.

Events are ordered by (ts, event_id) descending, which is total (event ids are unique), so a
page resumes strictly after the last (ts, event_id) of the previous one: nothing is repeated or
skipped across pages, even among events sharing a millisecond. The cursor is that pair, opaque
to clients (urlsafe base64); `next_cursor` is null on the last page. `meta` comes back parsed
(a JSON object, or null when the event had none).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Any

import msgspec
from clickhouse_connect.driver.client import Client

from queries.params import (
    EVENT_TYPES,
    QueryError,
    iso,
    iso_ms,
    parse_limit,
    parse_type,
    required,
    stored_range_ms,
    time_range,
)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Without a cursor the page starts below (to, the largest id), i.e. anywhere before `to`.
LARGEST_ID = uuid.UUID(int=(1 << 128) - 1)

SQL = """
SELECT event_id, toUnixTimestamp64Milli(ts), type, name, message, value, meta, key_id
FROM events
WHERE name = {name:String}
  AND type IN {types:Array(String)}
  AND ts >= fromUnixTimestamp64Milli({from_ms:Int64})
  AND ts < fromUnixTimestamp64Milli({to_ms:Int64})
  AND (ts, event_id) < (fromUnixTimestamp64Milli({after_ms:Int64}), {after_id:UUID})
ORDER BY ts DESC, event_id DESC
LIMIT {limit:UInt32}
"""


def encode_cursor(ts_ms: int, event_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{ts_ms}:{event_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, uuid.UUID]:
    """(ts_ms, event_id) of a cursor this query returned; QueryError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        ts_ms, event_id = raw.split(":")
        if not (
            ts_ms.isascii() and ts_ms.isdigit() and len(ts_ms) <= 15
        ):  # epoch ms beyond 2100 are not ours
            raise ValueError(ts_ms)
        return int(ts_ms), uuid.UUID(event_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise QueryError("`cursor` is not one this query returned") from None


def parse_meta(raw: str) -> Any:
    if not raw:
        return None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:  # the ingest API only stores valid JSON; never fail a page on it
        return raw


def events(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    name = required(params, "name")
    start, end = time_range(params, now, default_from="-24h")
    event_type = parse_type(params)
    limit = parse_limit(params, DEFAULT_LIMIT, MAX_LIMIT)
    from_ms, to_ms = stored_range_ms(start, end)
    after_ms, after_id = (
        decode_cursor(params["cursor"]) if params.get("cursor") else (to_ms, LARGEST_ID)
    )
    rows = client.query(
        SQL,
        parameters={
            "name": name,
            "types": [event_type] if event_type else list(EVENT_TYPES),
            "from_ms": from_ms,
            "to_ms": to_ms,
            "after_ms": after_ms,
            "after_id": str(after_id),
            "limit": limit + 1,  # one more than asked says whether there is a next page
        },
    ).result_rows
    page = rows[:limit]
    return {
        "name": name,
        "from": iso(start),
        "to": iso(end),
        "type": event_type,
        "events": [
            {
                "event_id": str(event_id),
                "ts": iso_ms(ts_ms),
                "type": kind,
                "name": event_name,
                "message": message,
                "value": value,
                "meta": parse_meta(meta),
                "key_id": key_id,
            }
            for event_id, ts_ms, kind, event_name, message, value, meta, key_id in page
        ],
        "next_cursor": encode_cursor(page[-1][1], page[-1][0]) if len(rows) > limit else None,
    }
