"""What the alerting did besides flips: the maintenance windows and silences in force during a
range, and the incidents (a canary down on a channel that reminds) with their reminders and
acknowledgement. Windows, silences, incidents and acknowledgements are control records, kept
in the `control` table (the latest of each id, as its JSON); the dashboards bind this SQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

from clickhouse_connect.driver.client import Client

from queries.params import parse_limit, time_range
from schemas.times import iso_or_none

# Canary and channel names by id, to show names rather than ids (a deleted one: its id). A
# scalar subquery: ClickHouse computes it once per query.
NAMES = """(
    SELECT mapFromArrays(groupArray(id), groupArray(JSONExtractString(record, 'name')))
    FROM control FINAL WHERE kind IN ('canary', 'channel') AND NOT deleted
)"""


def _named(expr: str) -> str:
    return f"if({NAMES}[{expr}] = '', {expr}, {NAMES}[{expr}])"


def _time(field: str) -> str:
    """A float epoch field of the record as a DateTime64 (NULL if absent or null)."""
    return (
        f"if(JSONType(record, '{field}') IN ('Double', 'Int64', 'UInt64'),"
        f" fromUnixTimestamp64Milli(toInt64(JSONExtractFloat(record, '{field}') * 1000), 'UTC'),"
        " NULL)"
    )


# A window or silence in force at some time of the range: started before its end and not
# ended before its start (an open-ended window never ends; a recurring one counts while its
# bounds hold, whether or not one of its slots falls in the range).
QUIET_SQL = f"""
SELECT
    kind,
    id,
    multiIf(
        kind = 'silence', concat('errors matching ', JSONExtractString(record, 'name')),
        JSONExtractBool(record, 'everything'), 'every canary',
        arrayStringConcat(arrayConcat(
            arrayMap(t -> concat('tag ', t), JSONExtract(record, 'tags', 'Array(String)')),
            arrayMap(i -> {_named("i")}, JSONExtract(record, 'canaries', 'Array(String)'))
        ), ', ')
    ) AS covers,
    {_time("starts_at")} AS starts_at,
    {_time("ends_at")} AS ends_at,
    JSONExtractString(record, 'schedule') AS schedule,
    JSONExtractString(record, 'comment') AS comment,
    JSONExtractString(record, 'created_by') AS created_by
FROM control FINAL
WHERE kind IN ('window', 'silence')
  AND starts_at < fromUnixTimestamp64Milli({{to_ms:Int64}})
  AND (ends_at IS NULL OR ends_at >= fromUnixTimestamp64Milli({{from_ms:Int64}}))
ORDER BY starts_at DESC, id
LIMIT {{limit:UInt32}}
"""

# The latest incident of each canary and channel opened in the range (a control record, kept
# per canary and channel: an earlier one's reminders are in the notification attempts), and
# whether its down alert was acknowledged, when and by what ("admin" or "link").
INCIDENTS_SQL = f"""
SELECT
    i.opened_at AS opened_at,
    {_named("i.canary_id")} AS canary,
    {_named("i.channel_id")} AS channel,
    i.reminders AS reminders,
    i.closed ? 'closed' : (a.by = '' ? 'open' : 'acknowledged') AS state,
    a.by = '' ? NULL : a.at AS acknowledged_at,
    a.by AS acknowledged_by,
    i.flip_id AS flip_id
FROM (
    SELECT
        {_time("opened_at")} AS opened_at,
        JSONExtractString(record, 'canary_id') AS canary_id,
        JSONExtractString(record, 'channel_id') AS channel_id,
        JSONExtractString(record, 'flip_id') AS flip_id,
        JSONExtractUInt(record, 'reminders') AS reminders,
        JSONExtractBool(record, 'closed') AS closed
    FROM control FINAL
    WHERE kind = 'incident'
) AS i
LEFT JOIN (
    SELECT JSONExtractString(record, 'flip_id') AS flip_id, {_time("at")} AS at,
        JSONExtractString(record, 'by') AS by
    FROM control FINAL
    WHERE kind = 'ack'
) AS a ON a.flip_id = i.flip_id
WHERE i.opened_at >= fromUnixTimestamp64Milli({{from_ms:Int64}})
  AND i.opened_at < fromUnixTimestamp64Milli({{to_ms:Int64}})
ORDER BY opened_at DESC, canary, channel
LIMIT {{limit:UInt32}}
"""


def _bounds(params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    start, end = time_range(params, now, default_from="-7d")
    return {
        "from_ms": int(start.timestamp() * 1000),
        "to_ms": int(end.timestamp() * 1000),
        "limit": parse_limit(params, 100, 1000),
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else iso_or_none(moment.timestamp())


def quiet_periods(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    """Maintenance windows and silences in force during the range (`from`, `to`, `limit`)."""
    rows = client.query(QUIET_SQL, parameters=_bounds(params, now)).result_rows
    return {
        "quiet": [
            {
                "kind": kind,
                "id": quiet_id,
                "covers": covers,
                "starts_at": _iso(starts),
                "ends_at": _iso(ends),
                "schedule": schedule or None,
                "comment": comment,
                "created_by": by,
            }
            for kind, quiet_id, covers, starts, ends, schedule, comment, by in rows
        ]
    }


def incidents(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    """The incidents opened in the range, their reminders and acknowledgement."""
    rows = client.query(INCIDENTS_SQL, parameters=_bounds(params, now)).result_rows
    return {
        "incidents": [
            {
                "opened_at": _iso(opened),
                "canary": canary,
                "channel": channel,
                "reminders": reminders,
                "state": state,
                "acknowledged_at": _iso(acked),
                "acknowledged_by": by or None,
                "flip_id": flip_id,
            }
            for opened, canary, channel, reminders, state, acked, by, flip_id in rows
        ]
    }
