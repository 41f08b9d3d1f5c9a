"""digest_rows(from, to, previous_from): what a digest of [from, to) says, from the rollups
(never a rescan of raw events): per (type, name, key) the count in the period, the count in
the period before it [previous_from, from), the first time the name was ever seen, and for
errors the latest message of the period.

The minute grain is read where the period is not whole hours (a digest at 09:30, a timezone
at +05:30), the hour grain otherwise. First seen: the day grain says whether a name is older
than the period's first UTC day; only names first seen on that day need its minutes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from clickhouse_connect.driver.client import Client

from queries.params import QueryError, parse_time

DAY_S = 86_400
HOUR_S = 3_600

SQL = """
SELECT
    period.type,
    period.name,
    period.key_id,
    period.in_period,
    period.before,
    toUnixTimestamp(if(ever.first_day < toDateTime({start_day:UInt32}, 'UTC'),
                       ever.first_day, ever.first_minute)),
    period.latest_error.1,
    period.latest_error.2
FROM (
    SELECT
        type,
        name,
        key_id,
        sumIf(count, bucket >= toDateTime({start:UInt32}, 'UTC')) AS in_period,
        sumIf(count, bucket < toDateTime({start:UInt32}, 'UTC')) AS before,
        maxIf(last_error, bucket >= toDateTime({start:UInt32}, 'UTC')) AS latest_error
    FROM rollups
    WHERE grain = {grain:String}
      AND bucket >= toDateTime({previous:UInt32}, 'UTC')
      AND bucket < toDateTime({end:UInt32}, 'UTC')
    GROUP BY type, name, key_id
) AS period
INNER JOIN (
    SELECT
        type,
        name,
        key_id,
        minIf(bucket, grain = 'day') AS first_day,
        minIf(bucket, grain = 'minute') AS first_minute
    FROM rollups
    WHERE (grain = 'day' AND bucket < toDateTime({end:UInt32}, 'UTC'))
       OR (grain = 'minute'
           AND bucket >= toDateTime({start_day:UInt32}, 'UTC')
           AND bucket < toDateTime({end:UInt32}, 'UTC'))
    GROUP BY type, name, key_id
) AS ever USING (type, name, key_id)
WHERE period.in_period > 0 OR period.before > 0
"""


def digest_rows(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    try:
        start, end, previous = (
            int(parse_time(params[field], now, field).timestamp())
            for field in ("from", "to", "previous_from")
        )
    except KeyError as exc:
        raise QueryError(f"`{exc.args[0]}` is required") from None
    if not previous <= start < end:
        raise QueryError("expected previous_from <= from < to")
    whole_hours = all(t % HOUR_S == 0 for t in (previous, start, end))
    rows = client.query(
        SQL,
        parameters={
            "grain": "hour" if whole_hours else "minute",
            "previous": previous,
            "start": start,
            "end": end,
            "start_day": start - start % DAY_S,
        },
    ).result_rows
    return {"from": start, "to": end, "previous_from": previous, "rows": [list(r) for r in rows]}
