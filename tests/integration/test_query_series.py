"""GET /api/v1/query/series over seeded events with explicit timestamps."""

from __future__ import annotations

import uuid

from tests.conftest import wait_for
from tests.integration.harness import Stack


def test_it_counts_and_sums_per_bucket_with_gaps_filled(stack: Stack, ingest_key: str) -> None:
    name = f"series-{uuid.uuid4().hex[:8]}"
    events = [
        {"type": "event", "name": name, "value": 10, "ts": "2026-01-01T10:05:00Z"},
        {"type": "event", "name": name, "value": 5, "ts": "2026-01-01T10:55:00+00:00"},
        {"type": "event", "name": name, "ts": "2026-01-01T12:00:00+01:00"},  # 11:00Z
        {"type": "event", "name": name, "value": 1, "ts": "2026-01-01T13:30:00Z"},
    ]
    assert stack.http(ingest_key).post("/api/v1/events", json={"events": events}).status_code == 202
    params = {
        "name": name,
        "from": "2026-01-01T10:00:00Z",
        "to": "2026-01-01T14:00:00Z",
        "interval": "1h",
        "source": "events",
    }

    def result() -> dict | None:
        body = stack.admin().get("/api/v1/query/series", params=params).json()
        return body if sum(p["count"] for p in body["points"]) == 4 else None

    body = wait_for(result, 30, "the events stored")
    assert [(p["t"], p["count"], p["value_sum"], p["value_avg"]) for p in body["points"]] == [
        ("2026-01-01T10:00:00Z", 2, 15.0, 7.5),
        ("2026-01-01T11:00:00Z", 1, 0.0, None),
        ("2026-01-01T12:00:00Z", 0, 0.0, None),
        ("2026-01-01T13:00:00Z", 1, 1.0, 1.0),
    ]


def test_it_answers_from_the_rollups_as_from_raw_events(stack: Stack, ingest_key: str) -> None:
    """End to end through the rollups agent and its sink: once they caught up (they trail raw
    events by a second or two), the default (rollups) answer equals the raw one."""
    name = f"rolled-{uuid.uuid4().hex[:8]}"
    events = [
        {"type": "event", "name": name, "value": v, "ts": f"2026-02-0{d}T{h:02d}:30:00Z"}
        for d, h, v in ((1, 0, 1.5), (1, 23, 2.5), (2, 12, -4), (3, 1, 8))
    ] + [{"type": "error", "name": name, "ts": "2026-02-02T12:45:10.500Z"}]
    assert stack.http(ingest_key).post("/api/v1/events", json={"events": events}).status_code == 202
    params = {"name": name, "from": "2026-02-01T00:00:00Z", "to": "2026-02-04T00:00:00Z"}

    def points(interval: str, source: str) -> list[dict]:
        query = {**params, "interval": interval, "source": source}
        body = stack.admin().get("/api/v1/query/series", params=query).json()
        assert body["source"] == source
        return body["points"]

    def stored() -> list[dict] | None:
        found = points("1d", "events")
        return found if sum(p["count"] for p in found) == 5 else None

    raw = wait_for(stored, 30, "the events stored")
    assert [(p["count"], p["value_min"], p["value_max"]) for p in raw] == [
        (2, 1.5, 2.5),
        (2, -4.0, -4.0),
        (1, 8.0, 8.0),
    ]
    wait_for(lambda: points("1d", "rollups") == raw, 30, "the rollups caught up")
    for interval in ("1h", "15m", "2d"):
        assert points(interval, "rollups") == points(interval, "events"), interval


def test_it_accepts_epoch_seconds_and_relative_ranges(stack: Stack) -> None:
    response = stack.admin().get(
        "/api/v1/query/series", params={"name": "x", "from": "-2h", "to": "now", "interval": "30m"}
    )
    assert response.status_code == 200
    assert len(response.json()["points"]) in (4, 5)
    response = stack.admin().get(
        "/api/v1/query/series",
        params={"name": "x", "from": "1767225600", "to": "1767312000", "interval": "1d"},
    )
    assert response.status_code == 200
    assert response.json()["points"][0]["t"] == "2026-01-01T00:00:00Z"


def test_it_refuses_bad_parameters_with_400(stack: Stack) -> None:
    for params in (
        {"from": "-1h"},  # no name
        {"name": "x", "from": "yesterday"},
        {"name": "x", "from": "-1h", "to": "-2h"},
        {"name": "x", "interval": "0"},
        {"name": "x", "from": "-365d", "interval": "1s"},  # too many buckets
    ):
        response = stack.admin().get("/api/v1/query/series", params=params)
        assert response.status_code == 400, params
        assert response.json()["error"]


def test_it_lets_a_read_key_query_and_refuses_an_ingest_key(stack: Stack, ingest_key: str) -> None:
    read_key = stack.create_key("dashboards", scope="read")["key"]
    params = {"name": "x", "from": "-1h"}
    assert stack.http(read_key).get("/api/v1/query/series", params=params).status_code == 200
    assert stack.http(ingest_key).get("/api/v1/query/series", params=params).status_code == 401
    assert stack.http().get("/api/v1/query/series", params=params).status_code == 401


def test_it_answers_404_for_an_unknown_query(stack: Stack) -> None:
    assert stack.admin().get("/api/v1/query/nope").status_code == 404
