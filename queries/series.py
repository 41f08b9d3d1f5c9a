"""series(name, from, to, interval): count and value sum per time bucket, gaps filled."""

from __future__ import annotations

import datetime as dt
from typing import Any

from clickhouse_connect.driver.client import Client

from queries.params import QueryError, iso, parse_duration, required, time_range

MAX_BUCKETS = 10_000

SQL = """
SELECT
    intDiv(toUnixTimestamp(ts), {step:UInt32}) * {step:UInt32} AS bucket,
    count() AS count,
    sum(value) AS value_sum
FROM events
WHERE name = {name:String}
  AND ts >= fromUnixTimestamp64Milli({from_ms:Int64})
  AND ts < fromUnixTimestamp64Milli({to_ms:Int64})
GROUP BY bucket
ORDER BY bucket
"""


def fill_gaps(
    rows: list[tuple[int, int, float | None]], start: int, end: int, step: int
) -> list[dict[str, Any]]:
    """One point per bucket from start's bucket up to end (exclusive), zeros where no row."""
    found = {bucket: (count, value_sum or 0.0) for bucket, count, value_sum in rows}
    first = start - start % step
    points = []
    for bucket in range(first, end, step):
        count, value_sum = found.get(bucket, (0, 0.0))
        points.append(
            {
                "t": iso(dt.datetime.fromtimestamp(bucket, dt.timezone.utc)),
                "count": count,
                "value_sum": value_sum,
            }
        )
    return points


def series(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    name = required(params, "name")
    start, end = time_range(params, now, default_from="-24h")
    step = parse_duration(params.get("interval") or "1h", "interval")
    start_s, end_s = int(start.timestamp()), int(end.timestamp())
    if (end_s - start_s) // step > MAX_BUCKETS:
        raise QueryError(f"too many buckets: widen `interval` (at most {MAX_BUCKETS})")
    rows = client.query(
        SQL,
        parameters={
            "name": name,
            "step": step,
            "from_ms": int(start.timestamp() * 1000),
            "to_ms": int(end.timestamp() * 1000),
        },
    ).result_rows
    return {
        "name": name,
        "from": iso(start),
        "to": iso(end),
        "interval_seconds": step,
        "points": fill_gaps(rows, start_s, end_s, step),
    }
