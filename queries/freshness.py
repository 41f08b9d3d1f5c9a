"""freshness(from, to): how long events received in [from, to) took from the API accepting
them to being stored in ClickHouse (and so visible to every query): count, p50, p99 and max
in milliseconds. Read from raw events (`stored_at - received_at`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from clickhouse_connect.driver.client import Client

from queries.params import iso, stored_range_ms, time_range

SQL = """
SELECT
    count(),
    quantilesExact(0.5, 0.99)(dateDiff('millisecond', received_at, stored_at)),
    max(dateDiff('millisecond', received_at, stored_at))
FROM events
WHERE received_at >= fromUnixTimestamp64Milli({from_ms:Int64})
  AND received_at < fromUnixTimestamp64Milli({to_ms:Int64})
"""


def freshness(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    start, end = time_range(params, now, default_from="-5m")
    from_ms, to_ms = stored_range_ms(start, end)
    count, (p50, p99), worst = client.query(
        SQL, parameters={"from_ms": from_ms, "to_ms": to_ms}
    ).result_rows[0]
    return {
        "from": iso(start),
        "to": iso(end),
        "events": count,
        "p50_ms": p50 if count else None,
        "p99_ms": p99 if count else None,
        "max_ms": worst if count else None,
    }
