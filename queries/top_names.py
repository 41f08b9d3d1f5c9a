"""top_names(from, to, type, limit): the names with the most events in [from, to), and how
their count changed against the previous period of the same length, [from - (to - from), from).

Served from the rollups by default, exactly: whole days from the day rows, the partial days at
the ends of both periods from raw events (queries.grains.cover), or from the hour rows when
every bound is a whole hour. Why not hour and minute rows for any end, as series does: a time
range over all names cannot use the rollups' key (grain, name, bucket), so it reads most hour
and minute rows, which costs more than reading the raw ends, unless the hour rows leave no raw
read at all (bench/queries.py, 10 M events, 7 days: ~70 ms, ~30 ms on whole hours; ~100 ms with
hour and minute rows for unaligned ends; ~85 ms from raw events alone; 30 days: ~40 ms against
~105 ms raw). `source=events` counts raw events instead.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from clickhouse_connect.driver.client import Client

from queries.grains import EVENTS, Range, cover, source_condition, source_parameters
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


def _rollups_sql() -> str:
    # Inner aliases differ from `count`, a rollups column that an alias would shadow.
    def part(source: str, column: str, table: str, counted: str) -> str:
        current, previous = (source_condition(source, column, prefix) for prefix in PERIODS)
        grain = "" if source == EVENTS else f"grain = '{source}' AND "
        return f"""
    SELECT name, sumIf({counted}, {current}) AS in_period, sumIf({counted}, {previous}) AS before
    FROM {table}
    WHERE {grain}type IN {{types:Array(String)}} AND ({current} OR {previous})
    GROUP BY name"""

    parts = [part(grain, "bucket", "rollups_by_time", "count") for grain in TOP_GRAINS]
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


ROLLUPS_SQL = _rollups_sql()


def grains_for(bounds_ms: tuple[int, ...]) -> tuple[str, ...]:
    """Day rows, plus hour rows when every bound is a whole hour (then no raw read is left)."""
    return TOP_GRAINS if all(bound % HOUR_MS == 0 for bound in bounds_ms) else ("day",)


def _cover(start_ms: int, end_ms: int, grains: tuple[str, ...]) -> dict[str, list[Range]]:
    """cover() with every grain of the SQL present: a grain left out binds empty ranges."""
    return {grain: [] for grain in TOP_GRAINS} | cover(start_ms, end_ms, grains)


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
        sql = ROLLUPS_SQL
        grains = grains_for((previous_ms, from_ms, to_ms))
        parameters |= source_parameters(_cover(from_ms, to_ms, grains), "cur_")
        parameters |= source_parameters(_cover(previous_ms, from_ms, grains), "prev_")
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
