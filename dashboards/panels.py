"""Every panel of the four dashboards, each with its SQL written once: either a named query of
queries/ bound to Grafana's range (dashboards.bind), or SQL of its own in the
grafana-clickhouse-datasource plugin's macros ($__timeFilter, $__timeInterval, $__interval_s,
$__fromTime/$__toTime, $__conditionalAll) where no named query answers the panel's question.

Charts over time read the rollups (deltas: always summed again) at the coarsest grain that
divides Grafana's interval; the panels set a 1 m minimum interval so one always does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dashboards.bind import bind
from queries import alerting, canaries, errors, rejections, top_names

TIMESERIES, TABLE = 0, 1  # the plugin's `format`: long time series are pivoted to wide


@dataclass(frozen=True)
class Panel:
    title: str
    type: str  # timeseries | table | stat | bargauge
    sql: str
    width: int = 12
    height: int = 8
    description: str = ""
    unit: str = ""
    min_interval: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    field_config: dict[str, Any] = field(default_factory=dict)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    transformations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def format(self) -> int:
        return TIMESERIES if self.type == "timeseries" else TABLE


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    sql: str


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = ()
    time_from: str = "now-24h"


# The coarsest rollup grain dividing the interval (a constant once the macro is expanded).
GRAIN = "multiIf($__interval_s % 86400 = 0, 'day', $__interval_s % 3600 = 0, 'hour', 'minute')"
ROLLUP_MIN_INTERVAL = "1m"
# The `name` variable: All expands to 1=1, a selection to an IN list of quoted names.
NAME_FILTER = "$__conditionalAll(name IN (${name:singlequote}), $name)"
STACKED_BARS = {"custom": {"drawStyle": "bars", "fillOpacity": 60, "stacking": {"mode": "normal"}}}


def _rollup_series(select: str, *, by_name: bool = True, where: str = "") -> str:
    label = ", name" if by_name else ""
    return f"""SELECT $__timeInterval(bucket) AS time{label}, {select}
FROM rollups
WHERE grain = {GRAIN} AND $__timeFilter(bucket){where}
GROUP BY time{label}
ORDER BY time{label}"""


# --- Events ---------------------------------------------------------------------------------

EVENTS = Dashboard(
    uid="coalmine-events",
    title="Coalmine: Events",
    description="Events per interval by name, the busiest names, and values by name.",
    variables=(
        Variable(
            "name",
            "Name",
            # Day rows: one per name and day, the cheapest list of the names seen in the range.
            "SELECT DISTINCT name FROM rollups WHERE grain = 'day'"
            " AND bucket >= toStartOfDay($__fromTime) AND bucket <= $__toTime ORDER BY name",
        ),
    ),
    panels=(
        Panel(
            "Events per interval",
            "timeseries",
            _rollup_series("sum(count) AS events", where=f" AND {NAME_FILTER}"),
            width=24,
            min_interval=ROLLUP_MIN_INTERVAL,
            field_config=STACKED_BARS,
        ),
        Panel(
            "Top names",
            "table",
            bind(
                top_names.EVENTS_SQL,
                previous_ms="2 * ${__from} - ${__to}",
                types="['event', 'error']",
                limit="20",
            ),
            description="Events per name in the range and in the period of its length before.",
        ),
        Panel(
            "Values by name",
            "table",
            # quantileExactInclusive: the estimator of queries/percentiles.py, so the figures agree.
            f"""SELECT name, count(value) AS values, sum(value) AS value_sum,
    avg(value) AS value_avg, quantileExactInclusive(0.95)(value) AS p95
FROM events
WHERE $__timeFilter(ts) AND value IS NOT NULL AND {NAME_FILTER}
GROUP BY name
ORDER BY value_sum DESC, name
LIMIT 100""",
        ),
        Panel(
            "Value sum per interval",
            "timeseries",
            _rollup_series("sum(value_sum) AS value_sum", where=f" AND {NAME_FILTER}"),
            min_interval=ROLLUP_MIN_INTERVAL,
        ),
        Panel(
            "p95 of values per interval",
            "timeseries",
            # Raw events: the rollups keep no distribution.
            f"""SELECT $__timeInterval(ts) AS time, name, quantileExactInclusive(0.95)(value) AS p95
FROM events
WHERE $__timeFilter(ts) AND value IS NOT NULL AND {NAME_FILTER}
GROUP BY time, name
ORDER BY time, name""",
        ),
    ),
)


def _rename(pattern: str, display_name: str, unit: str = "") -> dict[str, Any]:
    """A field override: the columns matching `pattern` shown as `display_name`."""
    properties = [{"id": "displayName", "value": display_name}]
    if unit:
        properties.append({"id": "unit", "value": unit})
    return {"matcher": {"id": "byRegexp", "options": f"/{pattern}/"}, "properties": properties}


# --- Errors ---------------------------------------------------------------------------------

NEW_ERRORS_SQL = """SELECT name, first_seen, count, last_message
FROM (
    SELECT name, min(ts) AS first_seen, countIf(ts >= $__fromTime) AS count,
        argMax(message, (ts, event_id)) AS last_message
    FROM events
    WHERE type = 'error' AND ts <= $__toTime
    GROUP BY name
)
WHERE first_seen >= $__fromTime
ORDER BY first_seen DESC
LIMIT 100"""

ERRORS = Dashboard(
    uid="coalmine-errors",
    title="Coalmine: Errors",
    description="Error rate, the most frequent errors with their last message, new errors.",
    panels=(
        Panel(
            "Error rate",
            "timeseries",
            _rollup_series(
                "sumIf(count, type = 'error') / $__interval_s AS errors_per_s", by_name=False
            ),
            width=16,
            unit="reqps",
            min_interval=ROLLUP_MIN_INTERVAL,
        ),
        Panel(
            "Share of events that are errors",
            "stat",
            """SELECT sumIf(count, type = 'error') / greatest(sum(count), 1) AS error_share
FROM rollups
WHERE grain = 'minute' AND $__timeFilter(bucket)""",
            width=8,
            unit="percentunit",
        ),
        Panel(
            "Top errors",
            "table",
            bind(errors.SQL, limit="50"),
            width=24,
            description="Errors in the range by count, with their latest message.",
            # The named query returns unaliased expressions, named differently by ClickHouse's
            # old and new analyzers (`period.name` or `name`): matched by their endings.
            overrides=[
                _rename(r"^(period\.)?name$", "name"),
                _rename(r"^(period\.)?count$", "count"),
                _rename(r"first_seen\)$", "first seen", unit="dateTimeAsIso"),
                _rename(r"last_seen\)$", "last seen", unit="dateTimeAsIso"),
                _rename(r"last_message$", "last message"),
            ],
        ),
        Panel(
            "New errors in range",
            "table",
            NEW_ERRORS_SQL,
            width=24,
            description="Error names first seen inside the range (never before it).",
        ),
    ),
)

# --- Canaries -------------------------------------------------------------------------------

# Live canaries from their latest definition (the control table keeps each as its JSON record).
CANARY_DEFINITIONS_SQL = """SELECT id, JSONExtractString(record, 'name') AS name,
        JSONExtractUInt(record, 'interval_s') AS interval_s,
        JSONExtractFloat(record, 'created_at') AS created_at,
        JSONExtractBool(record, 'paused') AS paused
    FROM control FINAL
    WHERE kind = 'canary' AND NOT deleted"""

# processors/heartbeat.status_at from what ClickHouse holds; the worker stays the authority
# (a resumed canary's fresh period is not visible here).
CANARY_STATUS_SQL = f"""SELECT c.name AS canary,
    multiIf(
        c.paused, 'paused',
        f.last_status = 'down', 'down',
        c.interval_s > 0  -- a cron canary (interval 0): its slots are the worker's to judge
            AND now() > greatest(toUnixTimestamp(k.last_checkin), c.created_at) + c.interval_s, 'late',
        toUnixTimestamp64Milli(k.last_checkin) = 0, 'new',
        'up') AS status,
    if(toUnixTimestamp64Milli(k.last_checkin) = 0, NULL, k.last_checkin) AS last_checkin,
    k.last_message AS last_message,
    if(toUnixTimestamp64Milli(f.last_at) = 0, NULL, f.last_at) AS last_flip
FROM ({CANARY_DEFINITIONS_SQL}) AS c
LEFT JOIN ({canaries.CHECKIN_FACTS_SQL}) AS k ON k.canary_id = c.id
LEFT JOIN ({canaries.FLIP_FACTS_SQL}) AS f ON f.canary_id = c.id
ORDER BY status = 'down' DESC, status = 'late' DESC, canary"""

STATUS_COLORS = {"down": "red", "late": "orange", "up": "green", "new": "blue", "paused": "text"}

CANARIES = Dashboard(
    uid="coalmine-canaries",
    title="Coalmine: Canaries",
    description="Status of every canary, check-ins over time, down/up flips.",
    time_from="now-7d",
    panels=(
        Panel(
            "Canaries",
            "table",
            CANARY_STATUS_SQL,
            width=24,
            description="From ClickHouse's history; `coalmine canaries list` is the authority.",
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "status"},
                    "properties": [
                        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                        {
                            "id": "mappings",
                            "value": [
                                {
                                    "type": "value",
                                    "options": {
                                        status: {"color": color, "index": i}
                                        for i, (status, color) in enumerate(STATUS_COLORS.items())
                                    },
                                }
                            ],
                        },
                    ],
                }
            ],
        ),
        Panel(
            "Time since last check-in",
            "bargauge",
            f"""SELECT c.name AS canary, dateDiff('second', k.last_checkin, now()) AS seconds
FROM ({CANARY_DEFINITIONS_SQL}) AS c
INNER JOIN ({canaries.CHECKIN_FACTS_SQL}) AS k ON k.canary_id = c.id
WHERE toUnixTimestamp64Milli(k.last_checkin) > 0
ORDER BY seconds DESC""",
            unit="s",
            options={
                "displayMode": "basic",
                "orientation": "horizontal",
                "reduceOptions": {"values": True, "calcs": [], "fields": "/^seconds$/"},
            },
        ),
        Panel(
            "Check-ins",
            "timeseries",
            f"""SELECT $__timeInterval(k.at) AS time,
    if(c.name = '', k.canary_id, c.name) AS canary, count() AS checkins
FROM checkins AS k FINAL
LEFT JOIN ({CANARY_DEFINITIONS_SQL}) AS c ON c.id = k.canary_id
WHERE $__timeFilter(k.at) AND k.kind NOT IN ('start', 'log')
GROUP BY time, canary
ORDER BY time, canary""",
            field_config=STACKED_BARS,
        ),
        Panel(
            "Run durations",
            "timeseries",
            # domain/runs.py in SQL: a finish right after a start of the same run id (or
            # of none) is that run's end. A start before the range is not seen.
            f"""SELECT time, if(c.name = '', r.canary_id, c.name) AS canary, seconds
FROM (
    SELECT at AS time, canary_id, kind,
        lagInFrame(kind) OVER run AS previous_kind,
        dateDiff('millisecond', lagInFrame(at) OVER run, at) / 1000 AS seconds
    FROM checkins FINAL
    WHERE $__timeFilter(at) AND kind != 'log'
    WINDOW run AS (PARTITION BY canary_id, rid ORDER BY at ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
) AS r
LEFT JOIN ({CANARY_DEFINITIONS_SQL}) AS c ON c.id = r.canary_id
WHERE r.kind IN ('success', 'fail') AND r.previous_kind = 'start'
ORDER BY time""",
            unit="s",
            description="Each run from /start to its success or failure (`coalmine query runs`).",
            field_config={"custom": {"drawStyle": "points", "pointSize": 6}},
        ),
        Panel(
            "Down and recovered per interval",
            "timeseries",
            # A held flip (a maintenance window, a down parent) went to no channel: its own series.
            """SELECT $__timeInterval(at) AS time,
    if(held = '', status, concat(status, ' (held)')) AS status, count() AS flips
FROM canary_flips FINAL
WHERE $__timeFilter(at)
GROUP BY time, status
ORDER BY time, status""",
            field_config={"custom": {"drawStyle": "bars", "fillOpacity": 60}},
        ),
        Panel(
            "Flips",
            "table",
            """SELECT at, canary_name AS canary, status, reason, held AS not_sent_because
FROM canary_flips FINAL
WHERE $__timeFilter(at)
ORDER BY at DESC
LIMIT 500""",
            width=24,
            description="`not_sent_because`: why a flip went to no channel (empty: it was sent).",
        ),
        Panel(
            "Maintenance windows and silences",
            "table",
            bind(alerting.QUIET_SQL, limit="200"),
            width=24,
            description="In force at some time of the range (`coalmine windows list --all`,"
            " `coalmine silences list --all`). A recurring window: its schedule, within its bounds.",
        ),
        Panel(
            "Incidents",
            "table",
            bind(alerting.INCIDENTS_SQL, limit="200"),
            width=16,
            description="A canary down on a channel that reminds: its reminders so far, and"
            " whether someone acknowledged it (`coalmine ack`). The latest per canary and channel.",
        ),
        Panel(
            "Reminders sent",
            "timeseries",
            # domain/reminders.py names a reminder's notice `<down flip id>:remind:<n>`.
            """SELECT $__timeInterval(at) AS time, count() AS reminders
FROM notification_attempts FINAL
WHERE $__timeFilter(at) AND ok AND position(flip_id, ':remind:') > 0
GROUP BY time
ORDER BY time""",
            width=8,
            field_config=STACKED_BARS,
        ),
    ),
)

# --- Ingest health --------------------------------------------------------------------------

# The reasons of queries/rejections.py with the HTTP status each one answers.
REASON_LABEL = (
    "transform(reason, ['invalid', 'unauthorized', 'too_large', 'rate_limited', 'overloaded'],"
    " ['400 invalid', '401 unauthorized', '413 too_large', '429 rate_limited', '503 overloaded'], reason)"
)

INGEST = Dashboard(
    uid="coalmine-ingest",
    title="Coalmine: Ingest health",
    description="Accepted events per second, rejections by reason, how far storage trails.",
    time_from="now-6h",
    panels=(
        Panel(
            "Accepted events/s",
            "timeseries",
            # Stored events by arrival time: every acknowledged event is stored once the sink
            # has caught up (see the lag panels).
            """SELECT $__timeInterval(received_at) AS time, count() / $__interval_s AS events_per_s
FROM events
WHERE $__timeFilter(received_at)
GROUP BY time
ORDER BY time""",
            unit="reqps",
        ),
        Panel(
            "Rejected requests/s by reason",
            "timeseries",
            f"""SELECT $__timeInterval(end) AS time, {REASON_LABEL} AS reason,
    sum(requests) / $__interval_s AS requests_per_s
FROM rejections FINAL
WHERE $__timeFilter(end)
GROUP BY time, reason
ORDER BY time, reason""",
            unit="reqps",
        ),
        Panel(
            "Rejections by key and reason",
            "table",
            bind(rejections.SQL, key_id="''"),
            description="An empty key: 401s without a known key.",
        ),
        Panel(
            "Newest stored event",
            "stat",
            # The sink's delay as far as ClickHouse alone can tell: how long ago the newest
            # stored event was acknowledged. Only meaningful while events keep arriving.
            """SELECT dateDiff('millisecond', max(received_at), now64(3)) / 1000 AS seconds_ago
FROM events
WHERE received_at >= now() - INTERVAL 1 DAY""",
            width=6,
            unit="s",
        ),
        Panel(
            "Rollups behind raw events",
            "stat",
            """SELECT greatest(dateDiff('second',
        (SELECT max(bucket) FROM rollups
            WHERE grain = 'minute' AND bucket >= now() - INTERVAL 1 DAY),
        (SELECT toStartOfMinute(max(ts)) FROM events
            WHERE ts >= now() - INTERVAL 1 DAY)), 0) AS seconds""",
            width=6,
            unit="s",
        ),
        Panel(
            "Stored log position per partition",
            "table",
            # Acknowledged is the broker's high-water mark (rpk topic describe coalmine.events
            # -p); stored is the next offset after the newest stored event of each partition.
            """SELECT _partition AS partition, max(_offset) + 1 AS stored_through_offset,
    max(received_at) AS newest_received_at
FROM events
WHERE received_at >= now() - INTERVAL 1 DAY
GROUP BY partition
ORDER BY partition""",
            width=12,
        ),
    ),
)

DASHBOARDS = (EVENTS, ERRORS, CANARIES, INGEST)
