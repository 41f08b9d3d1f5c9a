"""series(name, from, to, interval): per time bucket, the count of a name's events and the sum,
average, minimum and maximum of their values, gaps filled with zeros.

Buckets are aligned to multiples of the interval since the epoch (UTC), and the range is
exactly [from, to): the first and last buckets may be partial. When a rollup grain divides the
interval (1h -> hour, 15m -> minute, 1d and 7d -> day) every bucket is a whole number of grain
buckets, and the answer is summed from the rollups: that grain's rows for the aligned middle of
the range, finer grains and then raw events for its unaligned ends (queries.grains.cover), so it
equals the raw answer (value sums up to the last bits: float addition depends on its order).
Every read is keyed by the name, so each grain costs a few granules whatever the name's volume.
Other intervals (30s, 90s) read raw events. `source=events` forces raw events, `source=rollups`
refuses an interval no grain divides; the response says which source answered. Rollups trail
raw events by the rollups agent's lag (about 1-2 s).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from clickhouse_connect.driver.client import Client

from queries.grains import (
    EVENTS,
    cover,
    finer_grains,
    grain_for_step,
    source_condition,
    source_parameters,
)
from queries.params import (
    QueryError,
    iso,
    parse_duration,
    required,
    stored_range_ms,
    time_range,
)

MAX_BUCKETS = 10_000
SOURCES = ("rollups", "events")

# Rows of every query below: (bucket start s, count, value_count, value_sum, value_min, value_max).
EVENTS_SQL = """
SELECT
    intDiv(toUnixTimestamp(ts), {step:UInt32}) * {step:UInt32} AS bucket,
    count() AS count,
    count(value) AS value_count,
    ifNull(sum(value), 0) AS value_sum,
    min(value) AS value_min,
    max(value) AS value_max
FROM events
WHERE name = {name:String}
  AND ts >= fromUnixTimestamp64Milli({from_ms:Int64})
  AND ts < fromUnixTimestamp64Milli({to_ms:Int64})
GROUP BY bucket
ORDER BY bucket
"""


@functools.cache
def rollups_sql(sources: tuple[str, ...]) -> str:
    """The rows of `sources` (grains, coarsest first, then maybe raw events for the partial
    minutes at the ends; rollup rows are deltas, so aggregated again), summed into interval
    buckets. Only the sources a range needs (queries.grains.cover): a range of whole buckets
    of its grain, as the web UI asks, reads that grain alone (each part left out saves ~30 %)."""
    parts = [
        f"""
    SELECT toUnixTimestamp(bucket) AS at, count, value_count, value_sum, value_min, value_max
    FROM rollups
    WHERE grain = '{grain}' AND name = {{name:String}} AND {source_condition(grain, "bucket")}"""
        for grain in sources
        if grain != EVENTS
    ]
    if EVENTS in sources:
        parts.append(
            f"""
    SELECT toUnixTimestamp(ts), toUInt64(1), toUInt64(value IS NOT NULL), ifNull(value, 0), value, value
    FROM events
    WHERE name = {{name:String}} AND {source_condition(EVENTS, "ts")}"""
        )
    return f"""
SELECT
    intDiv(at, {{step:UInt32}}) * {{step:UInt32}} AS bucket,
    sum(count), sum(value_count), sum(value_sum), min(value_min), max(value_max)
FROM ({" UNION ALL ".join(parts)}
)
GROUP BY bucket
ORDER BY bucket
"""


def fill_gaps(rows: list[tuple], start: int, end: int, step: int) -> list[dict[str, Any]]:
    """One point per bucket from start's bucket up to end (exclusive, epoch seconds), zeros
    where no row; avg/min/max are null for a bucket without values."""
    found = {row[0]: row[1:] for row in rows}
    first = start - start % step
    points = []
    for bucket in range(first, end, step):
        count, value_count, value_sum, value_min, value_max = found.get(
            bucket, (0, 0, 0.0, None, None)
        )
        points.append(
            {
                "t": iso(dt.datetime.fromtimestamp(bucket, dt.UTC)),
                "count": count,
                "value_count": value_count,
                "value_sum": value_sum or 0.0,
                "value_avg": value_sum / value_count if value_count else None,
                "value_min": value_min if value_count else None,
                "value_max": value_max if value_count else None,
            }
        )
    return points


def choose_source(requested: str, step: int) -> tuple[str, str | None]:
    """(source, grain) for a `source` parameter (empty: the rollups when a grain fits)."""
    if requested not in ("", *SOURCES):
        raise QueryError("`source` must be rollups or events")
    grain = grain_for_step(step)
    if requested == "rollups" and grain is None:
        raise QueryError("no rollup grain divides `interval`: use a multiple of 60 s")
    if requested == "events" or grain is None:
        return "events", None
    return "rollups", grain


def series(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    name = required(params, "name")
    start, end = time_range(params, now, default_from="-24h")
    step = parse_duration(params.get("interval") or "1h", "interval")
    from_ms, to_ms = stored_range_ms(start, end)
    if (to_ms - from_ms) // 1000 // step > MAX_BUCKETS:
        raise QueryError(f"too many buckets: widen `interval` (at most {MAX_BUCKETS})")
    source, grain = choose_source(params.get("source") or "", step)
    if grain is None:
        sql = EVENTS_SQL
        parameters: dict[str, Any] = {"from_ms": from_ms, "to_ms": to_ms}
    else:
        # The grain names are ours, every user value is a bound parameter.
        plan = {
            s: ranges for s, ranges in cover(from_ms, to_ms, finer_grains(grain)).items() if ranges
        }
        sql = rollups_sql(tuple(plan)) if plan else ""
        parameters = source_parameters(plan)
    rows = (
        client.query(sql, parameters={**parameters, "name": name, "step": step}).result_rows
        if sql
        else []
    )
    return {
        "name": name,
        "from": iso(start),
        "to": iso(end),
        "interval_seconds": step,
        "source": source,
        "grain": grain,
        # The bucket holding the last millisecond of the range is the last point.
        "points": fill_gaps(rows, from_ms // 1000, -(-to_ms // 1000), step),
    }
