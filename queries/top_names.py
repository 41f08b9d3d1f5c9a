"""top_names(from, to, type, limit): the names with the most events in [from, to), and how
their count changed against the previous period of the same length, [from - (to - from), from).

Served from the rollups by default, exactly: whole days from the day rows, whole hours at the
ends from the hour rows, and what is left at the very ends (less than an hour each) from raw
events (queries.grains.cover); when every bound is a whole hour (as the web UI asks) no raw
read is left and the query has no raw part at all. The rollups are read from
`rollups_by_time` (migration 0011), their hour and day counts ordered by (grain, bucket): a
time range over all names reads only its own rows there, where the rollups' key (grain, name,
bucket) read every hour row of every name (which made partial days cheaper to read raw, and
took 55-105 ms over 24 h with 10 M events). `source=events` counts raw events instead.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from clickhouse_connect.driver.client import Client

from queries.grains import EVENTS, cover, source_condition, source_parameters
from queries.params import (
    EPOCH,
    EVENT_TYPES,
    QueryError,
    iso,
    parse_limit,
    parse_type,
    stored_range_ms,
    time_range,
)

# The grains read, coarsest first; raw events take what they do not cover (see above).
TOP_GRAINS = ("day", "hour")
HOUR_MS = 3_600_000
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
PERIODS = ("cur_", "prev_")  # parameter prefixes of the two covers

# Rows of both queries: (name, count in the period, count in the previous period).
EVENTS_SQL = """
SELECT
    name,
    countIf(ts >= fromUnixTimestamp64Milli({from_ms:Int64})) AS count,
    countIf(ts < fromUnixTimestamp64Milli({from_ms:Int64})) AS previous
FROM events
WHERE ts >= fromUnixTimestamp64Milli({previous_ms:Int64})
  AND ts < fromUnixTimestamp64Milli({to_ms:Int64})
  AND type IN {types:Array(String)}
GROUP BY name
HAVING count > 0
ORDER BY count DESC, name
LIMIT {limit:UInt32}
"""


def _rollups_sql(raw: bool) -> str:
    # Inner aliases differ from `count`, a rollups column that an alias would shadow.
    def part(source: str, column: str, table: str, counted: str) -> str:
        current, previous = (source_condition(source, column, prefix) for prefix in PERIODS)
        grain = "" if source == EVENTS else f"grain = '{source}' AND "
        # Within the WHERE, a row is in the period from `from` on, in the previous one before:
        # one comparison per row instead of both periods' four ranges again (~10 % faster).
        split = (
            "fromUnixTimestamp64Milli({from_ms:Int64})"
            if source == EVENTS
            else "toDateTime(intDiv({from_ms:Int64}, 1000), 'UTC')"
        )
        return f"""
    SELECT name, sumIf({counted}, {column} >= {split}) AS in_period,
           sumIf({counted}, {column} < {split}) AS before
    FROM {table}
    WHERE {grain}type IN {{types:Array(String)}} AND ({current} OR {previous})
    GROUP BY name"""

    parts = [part(grain, "bucket", "rollups_by_time", "count") for grain in TOP_GRAINS]
    if raw:
        parts.append(part(EVENTS, "ts", "events", "toUInt64(1)"))
    return f"""
SELECT name, sum(in_period) AS count, sum(before) AS previous
FROM ({" UNION ALL ".join(parts)}
)
GROUP BY name
HAVING count > 0
ORDER BY count DESC, name
LIMIT {{limit:UInt32}}
"""


ROLLUPS_SQL = _rollups_sql(raw=True)
# Every bound a whole hour: the raw part would read nothing, yet cost ~30 % of the query.
WHOLE_HOURS_SQL = _rollups_sql(raw=False)


def reads_raw(bounds_ms: tuple[int, ...]) -> bool:
    """Whether the rollups leave raw ends to read: unless every bound is a whole hour."""
    return not all(bound % HOUR_MS == 0 for bound in bounds_ms)


def change(count: int, previous: int) -> dict[str, Any]:
    """Absolute and relative change; no percentage against an empty previous period."""
    return {
        "change": count - previous,
        "change_pct": (count - previous) / previous * 100 if previous else None,
    }


def top_names(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    start, end = time_range(params, now, default_from="-24h")
    event_type = parse_type(params)
    limit = parse_limit(params, DEFAULT_LIMIT, MAX_LIMIT)
    source = params.get("source") or "rollups"
    if source not in ("rollups", "events"):
        raise QueryError("`source` must be rollups or events")
    # No event predates 1970 (the ingest contract), so a previous period reaching further back
    # is cut there, which also keeps the subtraction within datetime's range.
    previous_start = start - (end - start) if start - EPOCH >= end - start else EPOCH
    from_ms, to_ms = stored_range_ms(start, end)
    previous_ms, _ = stored_range_ms(previous_start, start)
    parameters: dict[str, Any] = {
        "types": [event_type] if event_type else list(EVENT_TYPES),
        "limit": limit,
    }
    if source == "events":
        sql = EVENTS_SQL
        parameters |= {"previous_ms": previous_ms, "from_ms": from_ms, "to_ms": to_ms}
    else:
        raw = reads_raw((previous_ms, from_ms, to_ms))
        sql = ROLLUPS_SQL if raw else WHOLE_HOURS_SQL
        parameters["from_ms"] = from_ms
        for prefix, (lo, hi) in zip(PERIODS, ((from_ms, to_ms), (previous_ms, from_ms))):
            plan = cover(lo, hi, TOP_GRAINS)
            if not raw:
                del plan[EVENTS]  # nothing (whole hours), and no part of the SQL
            parameters |= source_parameters(plan, prefix)
    rows = client.query(sql, parameters=parameters).result_rows
    return {
        "from": iso(start),
        "to": iso(end),
        "previous_from": iso(previous_start),
        "type": event_type,
        "source": source,
        "names": [
            {"name": name, "count": count, "previous": previous, **change(count, previous)}
            for name, count, previous in rows
        ],
    }
