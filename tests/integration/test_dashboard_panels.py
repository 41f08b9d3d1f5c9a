"""Every panel and variable of dashboards/, run on a real chDB as Grafana would run it: macros and
template variables expanded as grafana-clickhouse-datasource does (tests/grafana_plugin.py),
against seeded events, rollups, rejections and canary history. Each must succeed, return rows,
and return the columns its panel type needs.

Seeded relative to the real clock, since panels use now(); nothing asserts on timing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from dashboards.panels import DASHBOARDS, Dashboard, Panel
from queries import run_query
from tests.conftest import fresh_clickhouse
from tests.grafana_plugin import ALL, render

UTC = dt.UTC
NOW = dt.datetime.now(UTC).replace(microsecond=0)
START = NOW - dt.timedelta(days=2)
NAMES = ["backup-completed", "billing-cron", "it's-quoted"]
EVENT_COLUMNS = ["event_id", "key_id", "type", "name", "message", "value", "meta", "ts",
                 "received_at", "_partition", "_offset"]  # fmt: skip
# (range start, interval seconds) pairs Grafana would pick: a day grain, an hour grain, minutes.
RANGES = [(NOW - dt.timedelta(days=30), 86400), (START, 3600), (NOW - dt.timedelta(hours=6), 60)]
SELECTIONS = [[ALL], ["backup-completed"], ["backup-completed", "it's-quoted"]]

CANARY = {
    "type": "canary.defined", "id": "can_1", "name": "nightly-backup", "token_hash": "0" * 64,
    "interval_s": 7200, "grace_s": 60, "channels": [], "created_at": START.timestamp(),
    "changed_at": START.timestamp(),
}  # fmt: skip

# A window over the canary (open-ended), a silence, and its incident on a reminding channel,
# acknowledged by the alert's link: control records, as the store files them.
HOUR_AGO = (NOW - dt.timedelta(hours=1)).timestamp()
ALERTING = [
    ("channel", {"type": "channel.defined", "id": "chn_1", "name": "on-call", "kind": "webhook",
                 "created_at": HOUR_AGO}),
    ("window", {"type": "window.defined", "id": "win_1", "starts_at": HOUR_AGO, "ends_at": None,
                "created_at": HOUR_AGO, "changed_at": HOUR_AGO, "canaries": ["can_1"],
                "tags": [], "everything": False, "comment": "disk swap", "created_by": "ana"}),
    ("silence", {"type": "silence.defined", "id": "sil_1", "name": "payment.*",
                 "starts_at": HOUR_AGO, "ends_at": HOUR_AGO + 86400, "comment": "failover",
                 "created_by": "bo", "created_at": HOUR_AGO, "changed_at": HOUR_AGO}),
    ("incident", {"type": "incident", "id": "incident:can_1:chn_1", "canary_id": "can_1",
                  "channel_id": "chn_1", "flip_id": "can_1:down:1", "opened_at": HOUR_AGO,
                  "changed_at": HOUR_AGO, "reminders": 1, "closed": False}),
    ("ack", {"type": "incident.acknowledged", "id": "ack:can_1:down:1", "flip_id": "can_1:down:1",
             "canary_id": "can_1", "at": HOUR_AGO + 60, "by": "link"}),
]  # fmt: skip


def seed_events() -> list[list[object]]:
    rows = []
    for hour in range(48 * 4):  # every 15 minutes for two days
        ts = START + dt.timedelta(minutes=15 * hour, seconds=7)
        for i, name in enumerate(NAMES):
            kind = "error" if (hour + i) % 5 == 0 else "event"
            value = float(hour % 17) if i != 1 else None
            rows.append([uuid.uuid4(), "key_a", kind, name, f"message {hour}", value, "", ts, ts,
                         i, hour])  # fmt: skip
    # An error first seen an hour ago: "new" in every range of the test.
    recent = NOW - dt.timedelta(hours=1)
    rows.append(
        [uuid.uuid4(), "key_a", "error", "brand-new", "boom", None, "", recent, recent, 0, 999]
    )
    return rows


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    chdb = fresh_clickhouse(tmp_path_factory.mktemp("dashboards-chdb"))
    chdb.insert("events", seed_events(), column_names=EVENT_COLUMNS)
    # The rollups the agent would write, per grain, as deltas of one row per event.
    for grain, unit in (("minute", "minute"), ("hour", "hour"), ("day", "day")):
        chdb.command(
            f"""INSERT INTO rollups SELECT '{grain}', name, type, key_id,
                toStartOfInterval(toDateTime(ts), INTERVAL 1 {unit}), 1, value IS NOT NULL,
                ifNull(value, 0), value, value,
                if(type = 'error', (toFloat64(toUnixTimestamp64Milli(ts)) / 1000, message), (0., ''))
                FROM events"""
        )
    chdb.insert(
        "rejections",
        [[f"rej{i}", "api-1", NOW - dt.timedelta(minutes=i + 1), NOW - dt.timedelta(minutes=i),
          "key_a" if i % 2 else "", reason, 3, 5 * i]
         for i, reason in enumerate(["invalid", "unauthorized", "too_large", "rate_limited"])],
        column_names=["id", "origin", "start", "end", "key_id", "reason", "requests", "events"],
    )  # fmt: skip
    chdb.insert(
        "control",
        [["can_1", "canary", json.dumps(CANARY), False, 1],
         ["can_2", "canary", json.dumps({**CANARY, "id": "can_2", "name": "gone"}), True, 2],
         *[[r["id"], kind, json.dumps(r), False, 3] for kind, r in ALERTING]],
        column_names=["id", "kind", "record", "deleted", "version"],
    )  # fmt: skip
    chdb.insert(
        "notification_attempts",
        [["can_1:down:1:remind:1", "chn_1", "webhook", 1, NOW - dt.timedelta(minutes=30), True, "200"]],
        column_names=["flip_id", "channel_id", "channel_kind", "attempt", "at", "ok", "detail"],
    )  # fmt: skip
    chdb.insert(
        "checkins",
        [[f"c{i}", "can_1", "start" if i % 3 == 0 else "success", NOW - dt.timedelta(hours=i), "ok"]
         for i in range(1, 30)],
        column_names=["id", "canary_id", "kind", "at", "message"],
    )  # fmt: skip
    chdb.insert(
        "canary_flips",
        [["can_1:down:1", "can_1", "nightly-backup", "down", "missed", NOW - dt.timedelta(hours=3), ""],
         ["can_1:up:1", "can_1", "nightly-backup", "up", "checkin", NOW - dt.timedelta(hours=2), ""],
         ["can_1:down:2", "can_1", "nightly-backup", "down", "failed", NOW - dt.timedelta(minutes=150),
          "maintenance win_1"]],
        column_names=["id", "canary_id", "canary_name", "status", "reason", "at", "held"],
    )  # fmt: skip
    try:
        yield chdb
    finally:
        chdb.close()


def run(client: Client, sql: str, start: dt.datetime, interval_s: int, selection: list[str]):
    rendered = render(
        sql, start=start, end=NOW, interval_s=interval_s,
        variables={"name": selection}, options={"name": NAMES},
    )  # fmt: skip
    return client.query(rendered)


def is_time(type_name: str) -> bool:
    return type_name.startswith(("DateTime", "Nullable(DateTime"))


def is_number(type_name: str) -> bool:
    bare = type_name.removeprefix("Nullable(").removesuffix(")")
    return bare.startswith(("UInt", "Int", "Float", "Decimal"))


def check_columns(panel: Panel, names: list[str], types: list[str]) -> None:
    numeric = [n for n, t in zip(names, types) if is_number(t)]
    if panel.type == "timeseries":
        assert names[0] == "time" and is_time(types[0]), (names, types)
        assert numeric, (names, types)
        # Long frames (a label column) are pivoted by time, which needs them sorted by it.
    elif panel.type in ("stat", "bargauge"):
        assert numeric, (names, types)
    else:
        assert names
    for override in panel.overrides:  # a regexp override must find its column
        if override["matcher"]["id"] == "byRegexp":
            pattern = re.compile(override["matcher"]["options"].strip("/"))
            assert [n for n in names if pattern.search(n)], (pattern, names)


PANELS = [(d, p) for d in DASHBOARDS for p in d.panels]


@pytest.mark.parametrize(
    ("dashboard", "panel"), PANELS, ids=[f"{d.uid}/{p.title}" for d, p in PANELS]
)
def test_it_runs_every_panel(client: Client, dashboard: Dashboard, panel: Panel) -> None:
    for start, interval_s in RANGES:
        for selection in SELECTIONS:
            result = run(client, panel.sql, start, interval_s, selection)
            types = [t.name for t in result.column_types]
            check_columns(panel, list(result.column_names), types)
            assert result.result_rows, (panel.title, start, interval_s, selection)
            if panel.type == "timeseries":
                times = [row[0] for row in result.result_rows]
                assert times == sorted(times)


def test_it_runs_every_variable_query(client: Client) -> None:
    for dashboard in DASHBOARDS:
        for variable in dashboard.variables:
            result = run(client, variable.sql, START, 3600, [ALL])
            assert sorted(row[0] for row in result.result_rows) == sorted([*NAMES, "brand-new"])


def test_it_filters_by_the_selected_names(client: Client) -> None:
    (panel,) = [p for p in DASHBOARDS[0].panels if p.title == "Events per interval"]
    selected = run(client, panel.sql, START, 3600, ["billing-cron", "it's-quoted"])
    names = {row[1] for row in selected.result_rows}
    assert names == {"billing-cron", "it's-quoted"}
    everything = {row[1] for row in run(client, panel.sql, START, 3600, [ALL]).result_rows}
    assert everything == set(NAMES) | {"brand-new"}


def test_it_counts_from_the_rollups_what_raw_events_hold(client: Client) -> None:
    """The grain chosen per interval sums to the raw count over whole buckets."""
    (panel,) = [p for p in DASHBOARDS[0].panels if p.title == "Events per interval"]
    day_start = (START + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0)
    for interval_s in (60, 3600, 86400):
        rows = run(client, panel.sql, day_start, interval_s, [ALL]).result_rows
        raw = client.query(
            "SELECT count() FROM events WHERE ts >= {s:DateTime} AND ts <= {e:DateTime}",
            parameters={"s": day_start, "e": NOW},
        ).result_rows[0][0]
        assert sum(row[2] for row in rows) == raw, interval_s


def test_it_shows_the_seeded_canary_and_skips_the_deleted_one(client: Client) -> None:
    (panel,) = [p for p in DASHBOARDS[2].panels if p.title == "Canaries"]
    rows = run(client, panel.sql, START, 3600, [ALL]).result_rows
    assert [(row[0], row[1]) for row in rows] == [("nightly-backup", "up")]


def test_it_shows_windows_silences_and_incidents_by_name(client: Client) -> None:
    panels = {p.title: p for p in DASHBOARDS[2].panels}
    quiet = run(client, panels["Maintenance windows and silences"].sql, START, 3600, [ALL])
    covers = {row[1]: row[2] for row in quiet.result_rows}
    assert covers == {"win_1": "nightly-backup", "sil_1": "errors matching payment.*"}
    (incident,) = run(client, panels["Incidents"].sql, START, 3600, [ALL]).result_rows
    assert incident[1:5] == ("nightly-backup", "on-call", 1, "acknowledged")
    assert incident[6] == "link"
    flips = run(client, panels["Down and recovered per interval"].sql, START, 3600, [ALL])
    assert "down (held)" in {row[1] for row in flips.result_rows}


def test_the_named_queries_behind_them_answer_over_the_api_too(client: Client) -> None:
    quiet = run_query(client, "quiet_periods", {"from": "-1d"})["quiet"]
    assert {(q["kind"], q["ends_at"]) for q in quiet} >= {("window", None)}
    (incident,) = run_query(client, "incidents", {"from": "-1d"})["incidents"]
    assert (incident["state"], incident["acknowledged_by"]) == ("acknowledged", "link")
    assert run_query(client, "incidents", {"from": "-10m"})["incidents"] == []  # opened before
