"""The aggregates of migration 0011 (canary_latest, error_first_seen, rollups_by_time) on a real
chDB: the queries reading them answer as the scans they replace did, whether the rows were
stored after the migration (kept by its materialized views) or before it (its backfill, an
upgraded store), and a rollup delta stored twice counts once.

chDB opens one data directory per process: each test opens its own and closes it.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from queries import run_query
from queries.canaries import CHECKIN_FACTS_SQL, FLIP_FACTS_SQL, _epoch
from queries.params import iso_ms
from runtime.clickhouse_client import _statements, migrate, migration_files
from tests.conftest import fresh_clickhouse
from tests.integration.test_queries import (
    EVENT_COLUMNS,
    ROLLUP_COLUMNS,
    random_events,
    rollup_deltas,
    store,
)

UTC = dt.UTC
NOW = dt.datetime(2026, 7, 10, 12, 0, tzinfo=UTC)
AGGREGATES_VERSION = 11
CHECKIN_COLUMNS = ["id", "canary_id", "kind", "at", "message", "rid"]
FLIP_COLUMNS = ["id", "canary_id", "canary_name", "status", "reason", "at"]

# The errors query before migration 0011: the first sighting by a scan of every stored error.
SCANNED_ERRORS_SQL = """
SELECT period.name, period.count, toUnixTimestamp64Milli(ever.first_seen),
       toUnixTimestamp64Milli(period.last_seen), period.last_message
FROM (
    SELECT name, count() AS count, max(ts) AS last_seen,
           argMax(message, (ts, event_id)) AS last_message
    FROM events
    WHERE type = 'error' AND ts >= fromUnixTimestamp64Milli({from_ms:Int64})
      AND ts < fromUnixTimestamp64Milli({to_ms:Int64})
    GROUP BY name
) AS period
INNER JOIN (
    SELECT name, min(ts) AS first_seen FROM events
    WHERE type = 'error' AND ts < fromUnixTimestamp64Milli({to_ms:Int64})
    GROUP BY name
) AS ever USING name
ORDER BY period.count DESC, period.last_seen DESC, period.name
"""


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def checkin(canary_id: str, when: str, kind: str = "success", message: str = "") -> list[Any]:
    return [uuid.uuid4().hex, canary_id, kind, at(when), message, ""]


CHECKINS = [
    checkin("can_a", "2026-07-01T10:00:00Z", message="first"),
    checkin("can_a", "2026-07-01T11:00:00Z", "start"),
    checkin("can_a", "2026-07-01T11:05:00.250Z", message="done"),
    checkin("can_a", "2026-07-01T12:00:00Z"),  # the latest check-in has no message
    checkin("can_b", "2026-07-02T09:00:00Z", "fail", "disk full"),
    checkin("can_b", "2026-07-02T10:00:00Z", "start"),  # a run in progress
    checkin("can_c", "2026-07-03T08:00:00Z", "start"),  # only ever started
]
FLIPS = [
    ["can_b:1", "can_b", "job b", "down", "missed", at("2026-07-02T08:00:00Z")],
    ["can_b:2", "can_b", "job b", "up", "checkin", at("2026-07-02T09:00:00Z")],
    ["can_b:3", "can_b", "job b", "down", "fail", at("2026-07-02T09:00:00.001Z")],
    ["can_d:1", "can_d", "job d", "down", "missed", at("2026-07-04T00:00:00Z")],  # no check-in
]
EXPECTED_FACTS = {
    "can_a": {
        "canary_id": "can_a",
        "last_checkin_at": at("2026-07-01T12:00:00Z").timestamp(),
        "last_message": "done",
        "started_at": None,
    },
    "can_b": {
        "canary_id": "can_b",
        "last_checkin_at": at("2026-07-02T09:00:00Z").timestamp(),
        "last_message": "disk full",
        "started_at": at("2026-07-02T10:00:00Z").timestamp(),
        "down": True,
        "last_flip_at": at("2026-07-02T09:00:00.001Z").timestamp(),
    },
    "can_c": {
        "canary_id": "can_c",
        "last_checkin_at": None,
        "last_message": "",
        "started_at": at("2026-07-03T08:00:00Z").timestamp(),
    },
    "can_d": {
        "canary_id": "can_d",
        "last_checkin_at": None,
        "down": True,
        "last_flip_at": at("2026-07-04T00:00:00Z").timestamp(),
    },
}


def store_canaries(client: Client) -> None:
    # Each in several inserts, one stored twice (a replayed sink batch, before the merge).
    client.insert("checkins", CHECKINS[:3], column_names=CHECKIN_COLUMNS)
    client.insert("checkins", CHECKINS[2:], column_names=CHECKIN_COLUMNS)
    client.insert("canary_flips", FLIPS[:2], column_names=FLIP_COLUMNS)
    client.insert("canary_flips", FLIPS[1:], column_names=FLIP_COLUMNS)


def scanned_facts(client: Client) -> dict[str, dict[str, Any]]:
    """canary_facts as the scans of checkins and canary_flips gave it before migration 0011."""
    facts: dict[str, dict[str, Any]] = {}
    for canary_id, last, message, start in client.query(CHECKIN_FACTS_SQL).result_rows:
        checked, started = _epoch(last), _epoch(start)
        facts[canary_id] = {
            "canary_id": canary_id,
            "last_checkin_at": checked,
            "last_message": message,
            "started_at": started if started and (checked is None or started > checked) else None,
        }
    for canary_id, status, flipped in client.query(FLIP_FACTS_SQL).result_rows:
        row = facts.setdefault(canary_id, {"canary_id": canary_id, "last_checkin_at": None})
        row["down"] = status == "down"
        row["last_flip_at"] = _epoch(flipped)
    return facts


def facts(client: Client) -> dict[str, dict[str, Any]]:
    return {f["canary_id"]: f for f in run_query(client, "canary_facts", {}, NOW)["canaries"]}


def assert_same_errors(client: Client, rng: random.Random) -> None:
    for _ in range(30):
        start = NOW - dt.timedelta(milliseconds=rng.randrange(20 * 86_400_000))
        end = start + dt.timedelta(milliseconds=rng.randrange(1, 5 * 86_400_000))
        bounds = {"from_ms": int(start.timestamp() * 1000), "to_ms": int(end.timestamp() * 1000)}
        params = {"from": start.isoformat(), "to": end.isoformat(), "limit": "1000"}
        answer = run_query(client, "errors", params, NOW)["errors"]
        scanned = client.query(SCANNED_ERRORS_SQL, parameters=bounds).result_rows

        assert [tuple(e.values()) for e in answer] == [
            (name, count, iso_ms(first), iso_ms(last), message, first >= bounds["from_ms"])
            for name, count, first, last, message in scanned
        ]


def assert_same_top_names(client: Client, rng: random.Random) -> None:
    for i in range(20):
        unit = 3_600_000 if i % 2 else 1  # whole hours half of the time: then hour rows serve
        start = NOW - dt.timedelta(milliseconds=rng.randrange(15 * 86_400_000 // unit) * unit)
        length = dt.timedelta(milliseconds=rng.randrange(1, 8 * 86_400_000 // unit) * unit)
        params = {"from": start.isoformat(), "to": (start + length).isoformat(), "limit": "1000"}
        rollups = run_query(client, "top_names", params, NOW)["names"]
        raw = run_query(client, "top_names", {**params, "source": "events"}, NOW)["names"]

        assert rollups == raw, params


@pytest.fixture
def chdb_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "chdb"


def test_the_canaries_facts_are_the_latest_of_each_canary(chdb_dir: Path) -> None:
    client = fresh_clickhouse(chdb_dir)
    try:
        store_canaries(client)

        assert facts(client) == EXPECTED_FACTS
        assert facts(client) == scanned_facts(client)
    finally:
        client.close()


def test_an_upgraded_store_backfills_the_aggregates_and_answers_alike(chdb_dir: Path) -> None:
    from runtime.clickhouse_client import connect
    from runtime.settings import load_settings

    chdb_dir.mkdir(parents=True)
    client = connect(load_settings({}, data_dir=str(chdb_dir)))
    try:
        # A store as it was before migration 0011, with its data.
        for version, _name, sql in migration_files():
            if version < AGGREGATES_VERSION:
                for statement in _statements(sql):
                    client.command(statement)
        store(client, random_events(random.Random(7)))
        store_canaries(client)

        assert "0011_ui_aggregates" in migrate(client)

        assert facts(client) == EXPECTED_FACTS
        assert_same_errors(client, random.Random(1))
        assert_same_top_names(client, random.Random(2))
        # Run again (as a second `coalmine migrate` might): nothing counted twice.
        for statement in _statements(migration_files()[-1][2]):
            client.command(statement)
        assert facts(client) == EXPECTED_FACTS
        assert_same_top_names(client, random.Random(2))
    finally:
        client.close()


def test_rows_stored_after_the_migration_keep_the_aggregates(chdb_dir: Path) -> None:
    client = fresh_clickhouse(chdb_dir)
    try:
        store(client, random_events(random.Random(8)))

        assert_same_errors(client, random.Random(3))
        assert_same_top_names(client, random.Random(4))
    finally:
        client.close()


def test_a_rollup_delta_stored_twice_counts_once_in_the_top_names(chdb_dir: Path) -> None:
    client = fresh_clickhouse(chdb_dir)
    try:
        events = random_events(random.Random(9))[:500]
        store(client, events)
        delta = rollup_deltas(events[:50])
        for _ in range(2):  # a delta replayed after a crash carries the same token
            client.insert(
                "rollups",
                delta,
                column_names=ROLLUP_COLUMNS,
                settings={"insert_deduplication_token": "delta-1"},
            )
        # ... and those 50 events stored once more in raw form, which the delta counts.
        again = [{**e, "event_id": uuid.uuid4()} for e in events[:50]]
        client.insert(
            "events", [[e[c] for c in EVENT_COLUMNS] for e in again], column_names=EVENT_COLUMNS
        )

        assert_same_top_names(client, random.Random(5))
    finally:
        client.close()


def test_the_totals_count_every_event_of_the_hours_in_range(chdb_dir: Path) -> None:
    client = fresh_clickhouse(chdb_dir)
    try:
        events = random_events(random.Random(10))
        store(client, events)
        params = {"from": "2026-07-01T10:30:00Z", "to": "2026-07-03T10:00:00Z", "interval": "6h"}
        answer = run_query(client, "totals", params, NOW)
        expected: dict[int, dict[str, int]] = {}
        for e in events:
            hour = int(e["ts"].timestamp()) // 3600 * 3600
            if at("2026-07-01T10:00:00Z").timestamp() <= hour < at(params["to"]).timestamp():
                bucket = expected.setdefault(hour // 21600 * 21600, {"event": 0, "error": 0})
                bucket[e["type"]] += 1

        assert sum(p["events"] + p["errors"] for p in answer["points"]) > 100
        assert {
            p["t"]: {"event": p["events"], "error": p["errors"]}
            for p in answer["points"]
            if p["events"] or p["errors"]
        } == expected
    finally:
        client.close()


def test_the_strips_of_a_page_of_canaries_are_theirs_alone(chdb_dir: Path) -> None:
    client = fresh_clickhouse(chdb_dir)
    try:
        store_canaries(client)
        params = {"from": "2026-06-30T00:00:00Z", "per": "2"}
        every = run_query(client, "recent_checkins", params, NOW)["canaries"]
        some = run_query(client, "recent_checkins", {**params, "ids": "can_a,can_c,nope"}, NOW)

        assert sorted(every) == ["can_a", "can_b", "can_c"]
        assert some["canaries"] == {"can_a": every["can_a"], "can_c": every["can_c"]}
        assert [c["message"] for c in every["can_a"]] == ["done", ""]  # the last two, oldest first
    finally:
        client.close()
