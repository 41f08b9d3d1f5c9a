"""GET /api/v1/query/{top_names,errors,percentiles,events} through the running stack: JSON
out, times as ISO 8601, epoch seconds or relative, the admin token or a read key only."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.integration.harness import Stack

QUERIES = ("series", "top_names", "errors", "percentiles", "events")
# Explicit times keep these events out of every other test's ranges.
DAY = "2025-03-14"
FROM, TO = f"{DAY}T00:00:00Z", f"{DAY}T23:59:59Z"


def _seed(stack: Stack, ingest_key: str) -> tuple[str, str]:
    """A name with five valued events and an error name with two errors; (name, error name)."""
    name, failing = f"api-{uuid.uuid4().hex[:8]}", f"api-fail-{uuid.uuid4().hex[:8]}"
    events: list[dict[str, Any]] = [
        {"type": "event", "name": name, "value": v, "ts": f"{DAY}T10:0{v}:00Z", "meta": {"v": v}}
        for v in range(1, 6)
    ] + [
        {"type": "error", "name": failing, "message": "first", "ts": f"{DAY}T09:00:00Z"},
        {"type": "error", "name": failing, "message": "timeout", "ts": f"{DAY}T11:00:00Z"},
    ]
    assert stack.http(ingest_key).post("/api/v1/events", json={"events": events}).status_code == 202
    wait_for(
        lambda: (
            stack.series_total(name, FROM, TO) == 5 and stack.series_total(failing, FROM, TO) == 2
        ),
        30,
        "the events stored",
    )
    return name, failing


def test_it_answers_each_query_over_http(stack: Stack, ingest_key: str) -> None:
    name, failing = _seed(stack, ingest_key)
    admin = stack.admin()

    top = admin.get(
        "/api/v1/query/top_names",
        params={"from": FROM, "to": TO, "source": "events", "limit": "1000"},
    ).json()
    ours = {row["name"]: row for row in top["names"] if row["name"] in (name, failing)}
    assert ours[name] == {"name": name, "count": 5, "previous": 0, "change": 5, "change_pct": None}
    assert ours[failing]["count"] == 2

    errors = admin.get("/api/v1/query/errors", params={"from": FROM, "to": TO}).json()["errors"]
    (error,) = [e for e in errors if e["name"] == failing]
    assert (error["count"], error["new"], error["last_message"]) == (2, True, "timeout")
    assert error["first_seen"] == f"{DAY}T09:00:00.000Z"

    percentiles = admin.get(
        "/api/v1/query/percentiles", params={"name": name, "from": FROM, "to": TO, "q": "0.5,1"}
    ).json()
    assert percentiles["count"] == 5
    assert [p["value"] for p in percentiles["percentiles"]] == [3.0, 5.0]


def test_it_pages_through_events_with_the_cursor(stack: Stack, ingest_key: str) -> None:
    name, _ = _seed(stack, ingest_key)
    # Epoch seconds for the same day as ISO elsewhere: 2025-03-14T00:00:00Z and the next day.
    params = {"name": name, "from": "1741910400", "to": "1741996800", "limit": "2"}
    seen: list[dict[str, Any]] = []
    while True:
        response = stack.admin().get("/api/v1/query/events", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += page["events"]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert [e["value"] for e in seen] == [5.0, 4.0, 3.0, 2.0, 1.0]
    assert [e["meta"] for e in seen] == [{"v": v} for v in (5, 4, 3, 2, 1)]
    assert seen[0]["ts"] == f"{DAY}T10:05:00.000Z"


@pytest.mark.parametrize("query", QUERIES)
def test_it_lets_a_read_key_run_each_query_and_refuses_an_ingest_key(
    stack: Stack, ingest_key: str, query: str
) -> None:
    read_key = stack.create_key(f"read-{query}", scope="read")["key"]
    params = {"name": "x", "from": "-7d"}
    url = f"/api/v1/query/{query}"

    assert stack.admin().get(url, params=params).status_code == 200
    assert stack.http(read_key).get(url, params=params).status_code == 200
    refused = stack.http(ingest_key).get(url, params=params)
    assert refused.status_code == 401 and refused.json()["error"]
    assert stack.http().get(url, params=params).status_code == 401


@pytest.mark.parametrize(
    ("query", "params", "message"),
    [
        ("top_names", {"limit": "0"}, "`limit`"),
        ("top_names", {"type": "warn"}, "`type`"),
        ("errors", {"from": "-7x"}, "`from`"),
        ("percentiles", {"name": "x", "q": "2"}, "`q`"),
        ("events", {"name": "x", "cursor": "nope"}, "`cursor`"),
        ("events", {"from": "-1h"}, "`name`"),
    ],
)
def test_it_refuses_bad_parameters_with_400(
    stack: Stack, query: str, params: dict[str, str], message: str
) -> None:
    response = stack.admin().get(f"/api/v1/query/{query}", params=params)

    assert response.status_code == 400
    assert message in response.json()["error"]


def test_freshness_says_how_long_events_took_to_be_stored(stack: Stack, ingest_key: str) -> None:
    import time

    start = time.time() - 1
    name = f"fresh-{uuid.uuid4().hex[:8]}"
    body = {"events": [{"type": "event", "name": name}] * 3}
    assert stack.http(ingest_key).post("/api/v1/events", json=body).status_code == 202
    wait_for(lambda: stack.series_total(name) == 3, 30, "the events stored")
    params = {"from": str(start), "to": "now"}
    fresh = stack.admin().get("/api/v1/query/freshness", params=params).json()
    assert fresh["events"] >= 3
    assert 0 <= fresh["p50_ms"] <= fresh["p99_ms"] <= fresh["max_ms"]  # stored after accepted


def test_top_is_top_names_and_an_unknown_query_lists_only_the_public_ones(
    stack: Stack, ingest_key: str
) -> None:
    name, _ = _seed(stack, ingest_key)
    params = {"from": FROM, "to": TO, "source": "events", "limit": "1000"}
    by_alias = stack.admin().get("/api/v1/query/top", params=params)
    assert by_alias.status_code == 200
    assert by_alias.json() == stack.admin().get("/api/v1/query/top_names", params=params).json()
    unknown = stack.admin().get("/api/v1/query/nope")
    assert unknown.status_code == 404
    message = unknown.json()["error"]
    assert "top_names" in message and "series" in message
    for internal in ("digest_rows", "ping", "canary_facts"):
        assert internal not in message
        assert stack.admin().get(f"/api/v1/query/{internal}").status_code == 404


def test_a_read_key_used_to_ingest_is_told_it_is_read_only(stack: Stack) -> None:
    read_key = stack.create_key("read-only", scope="read")["key"]
    batch = {"events": [{"type": "event", "name": "nope"}]}
    refused = stack.http(read_key).post("/api/v1/events", json=batch)
    assert refused.status_code == 401 and "read-only" in refused.json()["error"]
    bulk = stack.http(read_key).post(
        "/api/v1/events/bulk", content=b'{"type":"event","name":"nope"}\n'
    )
    assert bulk.status_code == 401 and "read-only" in bulk.json()["error"]
    unknown = stack.http("ch_live_" + "Z" * 43).post("/api/v1/events", json=batch)
    assert unknown.json() == {"error": "missing, unknown or revoked API key"}  # as before
