"""What ClickHouse knows of each canary (last check-in, run in progress, last flip), and one
canary's history: check-ins and status flips over a time range."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from clickhouse_connect.driver.client import Client

from domain.runs import Ping, durations, pair_runs
from queries.params import QueryError, required, time_range
from schemas.times import iso_or_none, iso_utc

# Read from the aggregate the store keeps on every insert (migration 0011): one row per canary
# after merges, instead of a scan of every check-in (bench/ui.py: 45-65 ms with 720,000).
# Epoch 0 means "none". A tie of two flips in one millisecond shows the later status by name.
# Times as epoch milliseconds: making 4,000 DateTime64 values datetimes cost twice the query
# (bench/ui.py, 1,000 canaries: ~19 ms in Python against ~8 ms in ClickHouse).
FACTS_SQL = """
SELECT
    canary_id,
    toUnixTimestamp64Milli(max(last_checkin)),
    max(last_message).2,
    toUnixTimestamp64Milli(max(last_start)),
    toUnixTimestamp64Milli(max(last_flip).1),
    max(last_flip).2
FROM canary_latest
GROUP BY canary_id
"""

# The Grafana canaries dashboard's (dashboards/panels.py): the same facts from the history.
CHECKIN_FACTS_SQL = """
SELECT
    canary_id,
    maxIf(at, kind != 'start') AS last_checkin,
    argMaxIf(message, at, message != '') AS last_message,
    maxIf(at, kind = 'start') AS last_start
FROM checkins FINAL
GROUP BY canary_id
"""

FLIP_FACTS_SQL = """
SELECT canary_id, argMax(status, at) AS last_status, max(at) AS last_at
FROM canary_flips FINAL
GROUP BY canary_id
"""

HISTORY_CHECKINS_SQL = """
SELECT at, kind, message, rid FROM checkins FINAL
WHERE canary_id = {canary_id:String}
  AND at >= fromUnixTimestamp64Milli({from_ms:Int64}) AND at < fromUnixTimestamp64Milli({to_ms:Int64})
ORDER BY at DESC
LIMIT {limit:UInt32}
"""

HISTORY_FLIPS_SQL = """
SELECT at, status, reason, held FROM canary_flips FINAL
WHERE canary_id = {canary_id:String}
  AND at >= fromUnixTimestamp64Milli({from_ms:Int64}) AND at < fromUnixTimestamp64Milli({to_ms:Int64})
ORDER BY at DESC
"""

# Why each canary's latest flip was held, where that flip is a held down: read once, when the
# store writes each canary's state back onto an empty log (processors.sinks.control_sink).
# Ordered as canary_latest is (a tie in one millisecond: the later status by name).
HELD_DOWNS_SQL = """
SELECT canary_id, latest.3 FROM (
    SELECT canary_id, max((at, toString(status), held)) AS latest
    FROM canary_flips FINAL GROUP BY canary_id
)
WHERE latest.2 = 'down' AND latest.3 != ''
"""

HISTORY_LIMIT_MAX = 10_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _epoch(moment: dt.datetime | None) -> float | None:
    if moment is None:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    return None if moment <= _EPOCH else moment.timestamp()


def _seconds(epoch_ms: int) -> float | None:
    """_epoch of a time read as epoch milliseconds: the same float (both divide whole
    milliseconds exactly once), None for epoch 0."""
    return epoch_ms / 1000 if epoch_ms > 0 else None


def _iso(moment: dt.datetime | None) -> str | None:
    """A stored time as answers show it (schemas.times); canary_facts stays in epoch seconds,
    being read by the admin API, not shown."""
    return iso_or_none(_epoch(moment))


def canary_facts(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    """Per canary that ever checked in or flipped: its last check-in and message, a run in
    progress, and its last flip. A canary that only flipped has no check-in keys but
    last_checkin_at (as when these were two queries over checkins and canary_flips)."""
    facts = []
    for canary_id, last_checkin, last_message, last_start, flip_at, status in client.query(
        FACTS_SQL
    ).result_rows:
        checkin, start, flipped = _seconds(last_checkin), _seconds(last_start), _seconds(flip_at)
        row: dict[str, Any] = {"canary_id": canary_id, "last_checkin_at": checkin}
        if checkin is not None or start is not None:
            row["last_message"] = last_message
            row["started_at"] = start if start and (checkin is None or start > checkin) else None
        if flipped is not None:
            row["down"] = status == "down"
            row["last_flip_at"] = flipped
        facts.append(row)
    return {"canaries": facts}


def held_downs(client: Client) -> dict[str, str]:
    """canary id -> why its down flip was held, for the canaries whose latest flip is a held
    down (their recovery must be held too)."""
    return dict(client.query(HELD_DOWNS_SQL).result_rows)


def canary_history(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    canary_id = required(params, "canary_id")
    start, end = time_range(params, now, default_from="-7d")
    try:
        limit = int(params.get("limit") or 1000)
    except ValueError:
        raise QueryError("`limit` must be a number") from None
    if not 1 <= limit <= HISTORY_LIMIT_MAX:
        raise QueryError(f"`limit` must be between 1 and {HISTORY_LIMIT_MAX}")
    bounds = {
        "canary_id": canary_id,
        "from_ms": int(start.timestamp() * 1000),
        "to_ms": int(end.timestamp() * 1000),
    }
    checkins = client.query(HISTORY_CHECKINS_SQL, parameters={**bounds, "limit": limit}).result_rows
    flips = client.query(HISTORY_FLIPS_SQL, parameters=bounds).result_rows
    # A finish's run duration, from the starts within the same page (domain.runs).
    pings = [Ping(_epoch(at) or 0.0, kind, rid) for at, kind, _msg, rid in reversed(checkins)]
    took = {
        run["ended_at"]: run["duration_s"]
        for run in pair_runs(pings)
        if run["ended_at"] is not None
    }
    return {
        "canary_id": canary_id,
        "from": iso_utc(start.timestamp()),
        "to": iso_utc(end.timestamp()),
        "checkins": [
            {
                "at": _iso(at),
                "kind": kind,
                "message": msg,
                "rid": rid or None,
                "duration_s": took.get(_epoch(at)),
            }
            for at, kind, msg, rid in checkins
        ],
        "flips": [
            {"at": _iso(at), "status": st, "reason": reason, "held": held or None}
            for at, st, reason, held in flips
        ],
    }


RUNS_SQL = """
SELECT at, kind, rid FROM checkins FINAL
WHERE canary_id = {canary_id:String} AND kind != 'log'
  AND at >= fromUnixTimestamp64Milli({from_ms:Int64}) AND at < fromUnixTimestamp64Milli({to_ms:Int64})
ORDER BY at DESC
LIMIT 10000
"""


def canary_runs(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    """One canary's runs (a start and its finish, domain.runs) over a time range, oldest
    first, with their durations' summary. Pairs whose start is before `from` are left out."""
    canary_id = required(params, "canary_id")
    start, end = time_range(params, now, default_from="-7d")
    bounds = {
        "canary_id": canary_id,
        "from_ms": int(start.timestamp() * 1000),
        "to_ms": int(end.timestamp() * 1000),
    }
    rows = client.query(RUNS_SQL, parameters=bounds).result_rows
    runs = pair_runs([Ping(_epoch(at) or 0.0, kind, rid) for at, kind, rid in reversed(rows)])
    took = sorted(durations(runs))
    return {
        "canary_id": canary_id,
        "from": iso_utc(start.timestamp()),
        "to": iso_utc(end.timestamp()),
        "runs": [
            {
                **run,
                "started_at": iso_utc(run["started_at"]),
                "ended_at": iso_or_none(run["ended_at"]),
                "rid": run["rid"] or None,
            }
            for run in runs
        ],  # fmt: skip
        "summary": {
            "runs": len(took),
            "failed": sum(1 for r in runs if r["outcome"] == "fail"),
            "p50_s": _quantile(took, 0.5),
            "p95_s": _quantile(took, 0.95),
            "max_s": took[-1] if took else None,
        },
    }


def _quantile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank quantile of sorted values."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


NOTIFICATIONS_SQL = """
SELECT a.flip_id, f.status, f.reason, a.channel_id, a.channel_kind, a.attempt, a.at, a.ok, a.detail
FROM notification_attempts AS a FINAL
LEFT JOIN (SELECT id, status, reason FROM canary_flips FINAL) AS f ON f.id = a.flip_id
WHERE startsWith(a.flip_id, concat({canary_id:String}, ':'))
  AND a.at >= fromUnixTimestamp64Milli({from_ms:Int64}) AND a.at < fromUnixTimestamp64Milli({to_ms:Int64})
ORDER BY a.at DESC, a.attempt DESC
LIMIT 1000
"""


def canary_notifications(
    client: Client, params: dict[str, str], now: dt.datetime
) -> dict[str, Any]:
    """Every delivery attempt of a canary's alerts (flip ids begin with the canary id)."""
    canary_id = required(params, "canary_id")
    start, end = time_range(params, now, default_from="-7d")
    rows = client.query(
        NOTIFICATIONS_SQL,
        parameters={
            "canary_id": canary_id,
            "from_ms": int(start.timestamp() * 1000),
            "to_ms": int(end.timestamp() * 1000),
        },
    ).result_rows
    columns = (
        "flip_id",
        "status",
        "reason",
        "channel_id",
        "channel_kind",
        "attempt",
        "at",
        "ok",
        "detail",
    )
    attempts = [dict(zip(columns, row)) for row in rows]
    for attempt in attempts:
        attempt["at"] = _iso(attempt["at"])
    return {
        "canary_id": canary_id,
        "from": iso_utc(start.timestamp()),
        "to": iso_utc(end.timestamp()),
        "attempts": attempts,
    }
