"""A burst of alerts: 200 cron canaries due at the same second go down together, and each of
their 200 webhooks arrives exactly once (the notifier's concurrent, pipelined batches and the
Deliveries claims), with one recorded attempt each on the deliveries topic."""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from runtime import kafka_client as kafka
from schemas.canaries import DeliveryAttempt, attempt_decoder
from schemas.topics import Topic
from tests.conftest import wait_for
from tests.integration.harness import Stack
from tests.integration.receivers import HttpReceiver

CANARIES = 200


@pytest.fixture()
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


def recorded_attempts(stack: Stack, channel_id: str) -> list[DeliveryAttempt]:
    async def read() -> list[DeliveryAttempt]:
        consumer = await kafka.start_follower(stack.settings.kafka_bootstrap, Topic.DELIVERIES)
        found: list[DeliveryAttempt] = []

        def keep(value: bytes) -> None:
            attempt = attempt_decoder.decode(value)
            if attempt.channel_id == channel_id:
                found.append(attempt)

        try:
            await kafka.read_to_end(consumer, keep, "deliveries", 10)
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def test_two_hundred_canaries_down_at_once_alert_once_each(
    stack: Stack, receiver: HttpReceiver
) -> None:
    admin = stack.admin()
    made = admin.post(
        "/api/v1/admin/channels",
        json={"name": "burst", "kind": "webhook", "url": receiver.url("/hook")},
    )
    assert made.status_code == 201, made.text
    channel = made.json()["id"]

    def create(name: str, due: float) -> str:
        # A cron canary due once a year at that second (UTC), never checked in: new canaries
        # go down at their first slot too.
        at = time.gmtime(due)
        schedule = f"{at.tm_sec} {at.tm_min} {at.tm_hour} {at.tm_mday} {at.tm_mon} *"
        body = {"name": name, "schedule": schedule, "timezone": "UTC", "grace_seconds": 0}
        job = admin.post("/api/v1/admin/canaries", json={**body, "channels": [channel]})
        assert job.status_code == 201, job.text
        return str(job.json()["id"])

    # All due at the same second, far enough ahead to create them all before it.
    began = time.time()
    create("burst-probe", began + 3600)
    due = math.ceil(time.time() + 5 + (time.time() - began) * CANARIES * 1.5)
    ids = {create(f"burst-{i}", due) for i in range(CANARIES)}
    assert time.time() < due, "creating the canaries took longer than planned"

    received = receiver.wait_for_requests(CANARIES, due - time.time() + 60)
    # Each attempt is recorded after its request was answered: once all 200 are, any second
    # send of a flip would have been recorded too.
    attempts = wait_for(
        lambda: (found := recorded_attempts(stack, channel)) and len(found) >= CANARIES and found,
        30,
        f"{CANARIES} recorded delivery attempts",
    )

    bodies = [request.json() for request in receiver.requests]
    assert len(bodies) == CANARIES
    assert {b["canary"]["id"] for b in bodies} == ids
    assert {(b["event"], b["reason"]) for b in bodies} == {("canary.down", "missed")}
    assert len(received) == CANARIES
    per_flip = collections.Counter(a.flip_id for a in attempts)
    assert len(per_flip) == CANARIES and set(per_flip.values()) == {1}
    assert all(a.ok and a.attempt == 1 for a in attempts)
    # The stack is shared: 200 down canaries would fill the web UI's first page for the
    # tests after this one.
    for canary_id in ids:
        assert admin.delete(f"/api/v1/admin/canaries/{canary_id}").status_code == 200


def test_canaries_down_within_a_group_wait_are_one_notification_and_so_is_their_recovery(
    stack: Stack, receiver: HttpReceiver
) -> None:
    admin = stack.admin()
    channels = []
    for wait in (4, 0):
        made = admin.post(
            "/api/v1/admin/channels",
            json={
                "name": f"group-{wait}",
                "kind": "webhook",
                "url": receiver.url(f"/wait{wait}"),
                "group_wait_s": wait,
            },
        )
        assert made.status_code == 201, made.text
        assert made.json()["group_wait_s"] == wait
        channels.append(made.json()["id"])
    due = math.ceil(time.time() + 15)
    at = time.gmtime(due)
    schedule = f"{at.tm_sec} {at.tm_min} {at.tm_hour} {at.tm_mday} {at.tm_mon} *"
    jobs = []
    for i in range(4):
        body = {"name": f"grouped-{i}", "schedule": schedule, "timezone": "UTC"}
        job = admin.post("/api/v1/admin/canaries", json={**body, "channels": channels})
        assert job.status_code == 201, job.text
        jobs.append(job.json())
    assert time.time() < due, "creating the canaries took longer than planned"

    def of(path: str) -> list[dict[str, Any]]:
        return [r.json() for r in receiver.requests if r.path == path]

    wait_for(lambda: len(of("/wait0")) == 4 and of("/wait4"), due - time.time() + 30, "alerts")
    (grouped,) = of("/wait4")
    names = sorted(job["name"] for job in jobs)
    assert grouped["event"] == "canary.down" and grouped["grouped"] is True
    assert grouped["title"].startswith("4 canaries down: ")
    assert sorted(f["canary"]["name"] for f in grouped["flips"]) == names
    assert sorted(b["canary"]["name"] for b in of("/wait0")) == names

    for job in jobs:  # back up within the group wait: one recovery
        assert stack.http().get(f"/checkin/{job['token']}").status_code == 200
    wait_for(lambda: len(of("/wait0")) == 8 and len(of("/wait4")) == 2, 30, "recoveries")
    recovered = of("/wait4")[1]
    assert recovered["event"] == "canary.up"
    assert recovered["title"].startswith("4 canaries up again: ")
    # Each member flip is recorded as delivered to the grouping channel, once.
    attempts = wait_for(
        lambda: (found := recorded_attempts(stack, channels[0])) and len(found) >= 8 and found,
        30,
        "8 recorded attempts",
    )
    assert len({a.flip_id for a in attempts}) == 8 == len(attempts)
    assert {a.flip_id.split(":")[0] for a in attempts} == {job["id"] for job in jobs}
