"""errors(from, to, limit): the error names seen in [from, to), each with its count in the
period, when it was first seen (ever) and last seen, and its latest message; `new` marks the
names first seen inside the period, i.e. never before `from`.

First seen is over all stored errors of the name before `to`, not only the period's: an error
that happened last month and again today is not new. The period's errors are read from raw
events (type error), since the rollups keep neither messages nor exact times; the first
sighting from `error_first_seen` (migration 0011), the first sighting of every error name kept
on insert, instead of a scan of every stored error (bench/ui.py: 330-440 ms over 24 h). Its
first sighting ever is the one before `to`: a name listed has an error in [from, to).
Ordered by count, then most recently seen.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from clickhouse_connect.driver.client import Client

from queries.params import iso, iso_ms, parse_limit, stored_range_ms, time_range

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

# The period's errors joined by name with their first sightings.
SQL = """
SELECT
    period.name,
    period.count,
    toUnixTimestamp64Milli(ever.first_seen),
    toUnixTimestamp64Milli(period.last_seen),
    period.last_message
FROM (
    SELECT
        name,
        count() AS count,
        max(ts) AS last_seen,
        argMax(message, (ts, event_id)) AS last_message
    FROM events
    WHERE type = 'error'
      AND ts >= fromUnixTimestamp64Milli({from_ms:Int64})
      AND ts < fromUnixTimestamp64Milli({to_ms:Int64})
    GROUP BY name
) AS period
INNER JOIN (
    SELECT name, min(first_seen) AS first_seen
    FROM error_first_seen
    GROUP BY name
) AS ever USING name
ORDER BY period.count DESC, period.last_seen DESC, period.name
LIMIT {limit:UInt32}
"""


def errors(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    start, end = time_range(params, now, default_from="-24h")
    limit = parse_limit(params, DEFAULT_LIMIT, MAX_LIMIT)
    from_ms, to_ms = stored_range_ms(start, end)
    rows = client.query(
        SQL, parameters={"from_ms": from_ms, "to_ms": to_ms, "limit": limit}
    ).result_rows
    return {
        "from": iso(start),
        "to": iso(end),
        "errors": [
            {
                "name": name,
                "count": count,
                "first_seen": iso_ms(first_seen),
                "last_seen": iso_ms(last_seen),
                "last_message": last_message,
                "new": first_seen >= from_ms,
            }
            for name, count, first_seen, last_seen, last_message in rows
        ],
    }
