"""The token bucket per key at the API (specs/ingest-api.txt: 60 events/minute, burst 120,
charged per event, a 429'd request stores nothing), computed by the ratelimit agent."""

from __future__ import annotations

import signal
import uuid

import pytest

from schemas.limits import DEFAULT_BURST, DEFAULT_RATE_PER_MINUTE
from tests.conftest import wait_for
from tests.integration.harness import Stack, latest_snapshot

EVENTS = "/api/v1/events"
DEFAULTS = {"rate_per_minute": DEFAULT_RATE_PER_MINUTE, "burst": DEFAULT_BURST}


def batch(name: str, n: int) -> dict[str, object]:
    return {"events": [{"type": "event", "name": name}] * n}


def test_it_admits_the_burst_then_refuses_with_headers_and_stores_nothing(stack: Stack) -> None:
    key = stack.create_key("spec-limits", **DEFAULTS)
    client = stack.http(key["key"])
    name = f"limited-{uuid.uuid4().hex[:8]}"
    first = client.post(EVENTS, json=batch(name, 100))
    assert first.status_code == 202
    assert first.headers["RateLimit-Limit"] == str(DEFAULT_BURST)
    assert first.headers["RateLimit-Remaining"] == str(DEFAULT_BURST - 100)
    assert int(first.headers["RateLimit-Reset"]) in range(99, 102)

    refused = client.post(EVENTS, json=batch(name, 50))
    assert refused.status_code == 429
    assert "rate limit" in refused.json()["error"]
    # 20 tokens (or a second's refill more) left: 30 more are needed at 1 token/s.
    assert int(refused.headers["Retry-After"]) in range(28, 31)
    assert int(refused.headers["RateLimit-Remaining"]) in (20, 21)
    assert "RateLimit-Reset" in refused.headers

    # The refusal took nothing: 20 more still fit.
    assert client.post(EVENTS, json=batch(name, 20)).status_code == 202
    wait_for(lambda: stack.series_total(name) == 120, 30, "the admitted events stored")
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    assert (
        stack.http(stack.create_key("m")["key"]).post(EVENTS, json=batch(marker, 1)).status_code
        == 202
    )
    wait_for(lambda: stack.series_total(marker) == 1, 30, "a later batch stored")
    assert stack.series_total(name) == 120  # nothing of the 429'd request


def test_it_refuses_a_batch_larger_than_the_burst_without_retry_after(stack: Stack) -> None:
    key = stack.create_key("tiny", rate_per_minute=60, burst=10)
    refused = stack.http(key["key"]).post(EVENTS, json=batch("big", 11))
    assert refused.status_code == 429
    assert "exceeds this key's burst of 10" in refused.json()["error"]
    assert "Retry-After" not in refused.headers


def test_it_sets_and_changes_limits_per_key(stack: Stack) -> None:
    key = stack.create_key("adjustable", rate_per_minute=60, burst=10)
    listed = {k["id"]: k for k in stack.admin().get("/api/v1/admin/keys").json()["keys"]}
    assert (listed[key["id"]]["rate_per_minute"], listed[key["id"]]["burst"]) == (60, 10)
    client = stack.http(key["key"])
    assert client.post(EVENTS, json=batch("adj", 50)).status_code == 429
    changed = stack.admin().patch(
        f"/api/v1/admin/keys/{key['id']}", json={"burst": 100, "rate_per_minute": 6000}
    )
    assert changed.status_code == 200 and changed.json()["burst"] == 100
    # The bucket keeps its level (10) and now refills at 100/s up to 100.
    wait_for(
        lambda: client.post(EVENTS, json=batch("adj", 50)).status_code == 202,
        10,
        "the raised limit",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "rate_per_minute": 0},
        {"name": "x", "burst": -1},
        {"name": "x", "burst": "lots"},
        {"name": "x", "rate_per_minute": 10**12},
    ],
)
def test_it_refuses_bad_limits(stack: Stack, body: dict[str, object]) -> None:
    assert stack.admin().post("/api/v1/admin/keys", json=body).status_code == 400


def test_it_refuses_a_bad_limit_change(stack: Stack) -> None:
    key = stack.create_key("patch-me")
    assert (
        stack.admin().patch(f"/api/v1/admin/keys/{key['id']}", json={"burst": 0}).status_code == 400
    )
    assert stack.admin().patch("/api/v1/admin/keys/key_nope", json={"burst": 5}).status_code == 404
    assert (
        stack.http().patch(f"/api/v1/admin/keys/{key['id']}", json={"burst": 5}).status_code == 401
    )


def test_it_counts_rejections_per_key_and_reason(stack: Stack) -> None:
    key = stack.create_key("rejected", rate_per_minute=60, burst=5)
    client = stack.http(key["key"])
    assert client.post(EVENTS, content=b"{nope").status_code == 400
    assert client.post(EVENTS, json=batch("r", 6)).status_code == 429
    assert client.post(EVENTS, json=batch("r", 6)).status_code == 429
    too_big = b'{"events":[' + b" " * (600 * 1024) + b"]}"
    assert client.post(EVENTS, content=too_big).status_code == 413

    def counts() -> dict[str, tuple[int, int]] | None:
        rows = (
            stack.admin()
            .get("/api/v1/query/rejections", params={"from": "-1h", "key_id": key["id"]})
            .json()["rejections"]
        )
        found = {row["reason"]: (row["requests"], row["events"]) for row in rows}
        return found if len(found) == 3 else None

    found = wait_for(counts, 30, "the rejection counts")
    assert found == {"invalid": (1, 0), "rate_limited": (2, 12), "too_large": (1, 0)}
    unknown = stack.http("ch_live_" + "B" * 43).post(EVENTS, json=batch("r", 1))
    assert unknown.status_code == 401
    wait_for(
        lambda: any(
            r["reason"] == "unauthorized"
            for r in stack.admin()
            .get("/api/v1/query/rejections", params={"from": "-1h"})
            .json()["rejections"]
        ),
        30,
        "the 401 counted",
    )


def _drain_and_wait_for_snapshot(stack: Stack, key: dict[str, str]) -> None:
    assert stack.http(key["key"]).post(EVENTS, json=batch("drain", 100)).status_code == 202
    wait_for(
        lambda: (s := latest_snapshot(stack, key["id"])) is not None and s.level <= 25,
        30,
        "the agent's snapshot of the drained bucket",
    )


def test_it_keeps_the_bucket_across_an_api_restart(own_stack: Stack) -> None:
    own_stack.start_all()
    key = own_stack.create_key("restart-api", **DEFAULTS)
    _drain_and_wait_for_snapshot(own_stack, key)
    own_stack.kill("api", signal.SIGKILL)
    own_stack.start("api")
    # A fresh bucket would admit 100 more; the restored one holds ~20.
    refused = own_stack.http(key["key"]).post(EVENTS, json=batch("drain", 100))
    assert refused.status_code == 429


def test_it_keeps_the_bucket_across_a_worker_restart(own_stack: Stack) -> None:
    own_stack.start_all()
    key = own_stack.create_key("restart-worker", **DEFAULTS)
    _drain_and_wait_for_snapshot(own_stack, key)
    drained = latest_snapshot(own_stack, key["id"])
    own_stack.kill("worker", signal.SIGKILL)
    own_stack.start("worker")
    assert own_stack.http(key["key"]).post(EVENTS, json=batch("drain", 1)).status_code == 202
    # The restarted agent continues from its changelogged table: a fresh bucket would read 119.
    after = wait_for(
        lambda: (
            (s := latest_snapshot(own_stack, key["id"])) is not None
            and s.offset > drained.offset
            and s
        ),
        60,
        "a snapshot from the restarted agent",
    )
    assert after.level < 40
