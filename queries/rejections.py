"""rejections(from, to, [key_id]): rejected ingest requests (normal and bulk lane) and their
events, per key and reason (invalid 400/408/415, unauthorized 401, too_large 413, rate_limited
429, overloaded 503; ingest_api.admission)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from clickhouse_connect.driver.client import Client

from queries.params import iso, time_range

SQL = """
SELECT key_id, reason, sum(requests) AS requests, sum(events) AS events
FROM rejections FINAL
WHERE end >= fromUnixTimestamp64Milli({from_ms:Int64})
  AND start < fromUnixTimestamp64Milli({to_ms:Int64})
  AND ({key_id:String} = '' OR key_id = {key_id:String})
GROUP BY key_id, reason
ORDER BY requests DESC, key_id, reason
"""


def rejections(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    start, end = time_range(params, now, default_from="-24h")
    rows = client.query(
        SQL,
        parameters={
            "from_ms": int(start.timestamp() * 1000),
            "to_ms": int(end.timestamp() * 1000),
            "key_id": params.get("key_id", ""),
        },
    ).result_rows
    return {
        "from": iso(start),
        "to": iso(end),
        "rejections": [
            {"key_id": key_id, "reason": reason, "requests": requests, "events": events}
            for key_id, reason, requests, events in rows
        ],
    }
