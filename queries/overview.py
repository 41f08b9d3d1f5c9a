"""What the web UI's overview and canary list read besides the other named queries: event and
error totals over time across every name (from the hour rollups), the latest check-ins of
every canary, the latest flips and notification attempts of all canaries.

`totals` reads hour rollup rows only: a bucket starting in the hour of `from` counts that whole
hour, and the current hour is as fresh as the rollups (about 1-2 s behind raw events). Across
all names the rollups' key (grain, name, bucket) narrows the read to the hour grain only, every
hour row of every name: it reads `rollups_by_time` instead (migration 0011), the same counts
ordered by (grain, bucket), which reads only the range's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from clickhouse_connect.driver.client import Client

from queries.params import QueryError, iso, parse_duration, parse_limit, stored_range_ms, time_range
from schemas.times import iso_or_none

HOUR_S = 3600
MAX_BUCKETS = 2000
MAX_IDS = 1000  # canaries of one recent_checkins

TOTALS_SQL = """
SELECT intDiv(toUnixTimestamp(bucket), {step:UInt32}) * {step:UInt32} AS at, type, sum(count)
FROM rollups_by_time
WHERE grain = 'hour'
  AND bucket >= toStartOfHour(fromUnixTimestamp({from_s:Int64}))
  AND bucket < fromUnixTimestamp({to_s:Int64})
GROUP BY at, type
ORDER BY at
"""

# Newest first within each canary, read in the table's order (canary_id, at); without FINAL,
# which costs more than the whole read: a check-in stored twice (a replayed sink batch, before
# the merge) would show as two cells of the strip until the merge.
# Times formatted by ClickHouse: converting 16,000 DateTime64 values in Python cost ~10x the
# query itself.
RECENT_CHECKINS_SQL = """
SELECT canary_id, groupArray({per:UInt32})(formatDateTime(at, '%Y-%m-%dT%H:%i:%SZ')),
       groupArray({per:UInt32})(kind), groupArray({per:UInt32})(message)
FROM (
    SELECT canary_id, at, kind, substring(message, 1, 200) AS message FROM checkins
    WHERE at >= fromUnixTimestamp64Milli({from_ms:Int64})
      AND (empty({ids:Array(String)}) OR canary_id IN {ids:Array(String)})
    ORDER BY canary_id, at DESC
)
GROUP BY canary_id
"""

RECENT_FLIPS_SQL = """
SELECT canary_id, canary_name, status, reason, at, held
FROM canary_flips FINAL
WHERE at >= fromUnixTimestamp64Milli({from_ms:Int64})
ORDER BY at DESC
LIMIT {limit:UInt32}
"""

RECENT_ATTEMPTS_SQL = """
SELECT flip_id, channel_id, channel_kind, attempt, at, ok, detail
FROM notification_attempts FINAL
WHERE at >= fromUnixTimestamp64Milli({from_ms:Int64})
ORDER BY at DESC
LIMIT {limit:UInt32}
"""


def totals(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    """Events and errors per bucket (`interval`, a whole number of hours) across every name."""
    start, end = time_range(params, now, default_from="-24h")
    step = parse_duration(params.get("interval") or "1h", "interval")
    if step % HOUR_S:
        raise QueryError("`interval` must be a whole number of hours")
    from_ms, to_ms = stored_range_ms(start, end)
    first, end_s = from_ms // 1000 // HOUR_S * HOUR_S, -(-to_ms // 1000)
    if (end_s - first) // step > MAX_BUCKETS:
        raise QueryError(f"too many buckets: widen `interval` (at most {MAX_BUCKETS})")
    rows = client.query(
        TOTALS_SQL, parameters={"step": step, "from_s": first, "to_s": end_s}
    ).result_rows
    found: dict[int, dict[str, int]] = {}
    for at, kind, count in rows:
        found.setdefault(at, {})[str(kind)] = count
    return {
        "from": iso(start),
        "to": iso(end),
        "interval_seconds": step,
        "points": [
            {
                "t": bucket,
                "events": found.get(bucket, {}).get("event", 0),
                "errors": found.get(bucket, {}).get("error", 0),
            }
            for bucket in range(first - first % step, end_s, step)
        ],
    }


def _epoch(moment: dt.datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


def recent_checkins(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    """The last `per` (default 12) check-ins of every canary since `from` (default -3d), or of
    those in `ids` (comma-separated: the list's page, which the table's key (canary_id, at)
    then narrows the read to), oldest first, times to the second, messages cut at 200
    characters (for the list's strips)."""
    start, _ = time_range(params, now, default_from="-3d")
    per = parse_limit(params, 12, 100, "per")
    ids = [i for i in params.get("ids", "").split(",") if i][:MAX_IDS]
    rows = client.query(
        RECENT_CHECKINS_SQL,
        parameters={"from_ms": stored_range_ms(start, now)[0], "per": per, "ids": ids},
    ).result_rows
    return {
        "canaries": {
            canary_id: [
                {"at": at, "kind": kind, "message": message}
                for at, kind, message in reversed(list(zip(times, kinds, messages)))  # oldest first
            ]
            for canary_id, times, kinds, messages in rows
        }
    }


def recent_flips(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    """The latest status flips of every canary, and the latest notification attempts."""
    start, _ = time_range(params, now, default_from="-7d")
    limit = parse_limit(params, 20, 1000)
    bounds = {"from_ms": stored_range_ms(start, now)[0], "limit": limit}
    flips = client.query(RECENT_FLIPS_SQL, parameters=bounds).result_rows
    attempts = client.query(RECENT_ATTEMPTS_SQL, parameters=bounds).result_rows
    return {
        "flips": [
            {
                "canary_id": c,
                "canary_name": n,
                "status": s,
                "reason": r,
                "at": iso_or_none(_epoch(at)),
                "held": held or None,
            }
            for c, n, s, r, at, held in flips
        ],
        "attempts": [
            {
                "flip_id": flip_id,
                "channel_id": channel_id,
                "channel_kind": kind,
                "attempt": attempt,
                "at": iso_or_none(_epoch(at)),
                "ok": bool(ok),
                "detail": detail,
            }
            for flip_id, channel_id, kind, attempt, at, ok, detail in attempts
        ],
    }
