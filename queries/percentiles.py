"""percentiles(name, from, to, q): quantiles of a name's `value` over [from, to), counting
only the events that carry a value.

Exact, not sampled: ClickHouse's quantilesExactInclusive, i.e. linear interpolation between the
closest ranks (numpy's default, Excel's PERCENTILE.INC), so the answer is reproducible and
testable. It holds the name's values of the range in memory (8 bytes each: 80 MB for ten million
values of one name), which is fine at this service's scale; raw events, since rollups keep no
distribution.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from typing import Any

from clickhouse_connect.driver.client import Client

from queries.params import QueryError, iso, required, stored_range_ms, time_range

DEFAULT_LEVELS = "0.5,0.95,0.99"
MAX_LEVELS = 20


@functools.cache
def _sql(levels: int) -> str:
    """The query for a number of levels; each level is a bound parameter (q0, q1, ...)."""
    placeholders = ", ".join(f"{{q{i}:Float64}}" for i in range(levels))
    return f"""
SELECT count(value), quantilesExactInclusive({placeholders})(value)
FROM events
WHERE name = {{name:String}}
  AND ts >= fromUnixTimestamp64Milli({{from_ms:Int64}})
  AND ts < fromUnixTimestamp64Milli({{to_ms:Int64}})
  AND value IS NOT NULL
"""


def parse_levels(raw: str) -> list[float]:
    """`q=0.5,0.95,0.99`: 1 to MAX_LEVELS numbers from 0 to 1, in the order given."""
    invalid = QueryError(f"`q` must be 1 to {MAX_LEVELS} comma-separated numbers from 0 to 1")
    try:
        levels = [float(part) for part in raw.split(",")]
    except ValueError:
        raise invalid from None
    if not 1 <= len(levels) <= MAX_LEVELS or not all(0 <= q <= 1 for q in levels):
        raise invalid  # also refuses nan, which fails every comparison
    return levels


def percentiles(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    name = required(params, "name")
    start, end = time_range(params, now, default_from="-24h")
    levels = parse_levels(params.get("q") or DEFAULT_LEVELS)
    from_ms, to_ms = stored_range_ms(start, end)
    ((count, values),) = client.query(
        _sql(len(levels)),
        parameters={
            "name": name,
            "from_ms": from_ms,
            "to_ms": to_ms,
            **{f"q{i}": q for i, q in enumerate(levels)},
        },
    ).result_rows
    return {
        "name": name,
        "from": iso(start),
        "to": iso(end),
        "count": count,
        "percentiles": [
            {"q": q, "value": value if count and not math.isnan(value) else None}
            for q, value in zip(levels, values)
        ],
    }
