"""Canaries end to end: missed check-ins, /fail, /start with max_runtime, pause, recovery, each
alert delivered once to a real local webhook receiver / SMTP server and recorded."""

from __future__ import annotations

import hashlib
import hmac
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.integration.harness import Stack
from tests.integration.receivers import HttpReceiver, SmtpReceiver


@pytest.fixture()
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


def webhook(stack: Stack, receiver: HttpReceiver) -> dict[str, Any]:
    response = stack.admin().post(
        "/api/v1/admin/channels",
        json={"name": "hook", "kind": "webhook", "url": receiver.url("/hook")},
    )
    assert response.status_code == 201, response.text
    return response.json()


def canary(stack: Stack, channels: list[str], **spec: Any) -> dict[str, Any]:
    body = {
        "name": f"job-{time.monotonic_ns()}",
        "interval_seconds": 2,
        "grace_seconds": 0,
        "channels": channels,
    }
    response = stack.admin().post("/api/v1/admin/canaries", json={**body, **spec})
    assert response.status_code == 201, response.text
    return response.json()


def events(receiver: HttpReceiver) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.requests]


def test_it_alerts_once_when_a_canary_misses_and_once_when_it_recovers(
    stack: Stack, receiver: HttpReceiver
) -> None:
    channel = webhook(stack, receiver)
    job = canary(stack, [channel["id"]])
    assert (
        stack.http().get(f"/checkin/{job['token']}", params={"message": "ran"}).status_code == 200
    )
    (down,) = receiver.wait_for_requests(1, 15)
    body = down.json()
    assert (body["event"], body["status"], body["reason"]) == ("canary.down", "down", "missed")
    assert body["canary"] == {"id": job["id"], "name": job["name"]}
    assert body["message"] == "ran"
    expected = (
        "sha256=" + hmac.new(channel["secret"].encode(), down.body, hashlib.sha256).hexdigest()
    )
    assert down.headers["x-coalmine-signature"] == expected
    assert down.headers["x-coalmine-event"] == "canary.down"

    # A long interval from now on: the recovery below is then the last flip, and the counts
    # stay 2 however long the flips take to reach ClickHouse (a store idle for a few seconds
    # rests its sinks: docs/benchmarks.md, "Idle cost").
    patched = stack.admin().patch(
        f"/api/v1/admin/canaries/{job['id']}", json={"interval_seconds": 3600}
    )
    assert patched.status_code == 200
    assert stack.http().post(f"/checkin/{job['token']}").status_code == 200
    up = receiver.wait_for_requests(2, 15)[1].json()
    assert (up["event"], up["reason"]) == ("canary.up", "checkin")

    # Recorded: the history has both flips and the delivery attempts are visible.
    def recorded() -> dict[str, Any] | None:
        history = stack.admin().get(f"/api/v1/query/canaries/{job['id']}/history").json()
        sent = stack.admin().get(f"/api/v1/query/canaries/{job['id']}/notifications").json()
        if len(history["flips"]) == 2 and len(sent["attempts"]) == 2:
            return sent
        return None

    sent = wait_for(recorded, 30, "flips and deliveries in ClickHouse")
    assert all(a["ok"] and a["channel_id"] == channel["id"] for a in sent["attempts"])
    assert {a["status"] for a in sent["attempts"]} == {"down", "up"}
    assert len(receiver.requests) == 2  # once each


def test_it_alerts_at_once_on_fail_by_slack_and_email(stack: Stack, receiver: HttpReceiver) -> None:
    with SmtpReceiver() as smtp:
        slack = (
            stack.admin()
            .post(
                "/api/v1/admin/channels",
                json={"name": "slack", "kind": "slack", "url": receiver.url("/slack")},
            )
            .json()
        )
        email = (
            stack.admin()
            .post(
                "/api/v1/admin/channels",
                json={
                    "name": "ops mail",
                    "kind": "email",
                    "to": ["ops@example.com"],
                    "host": smtp.host,
                    "port": smtp.port,
                    "starttls": False,
                },
            )
            .json()
        )
        job = canary(stack, [slack["id"], email["id"]], interval_seconds=3600)
        assert (
            stack.http()
            .get(f"/checkin/{job['token']}/fail", params={"message": "disk full"})
            .status_code
            == 200
        )
        (posted,) = receiver.wait_for_requests(1, 15)
        assert job["name"] in posted.json()["text"] and "DOWN" in posted.json()["text"]
        (mail,) = smtp.wait_for_mails(1, 15)
        assert mail.rcpt_tos == ["ops@example.com"]
        assert job["name"] in mail.message["Subject"]
        assert "disk full" in mail.part("text/plain")


def test_it_alerts_when_a_started_run_exceeds_its_max_runtime(
    stack: Stack, receiver: HttpReceiver
) -> None:
    channel = webhook(stack, receiver)
    job = canary(stack, [channel["id"]], interval_seconds=3600, max_runtime_seconds=2)
    assert stack.http().get(f"/checkin/{job['token']}/start").status_code == 200
    (down,) = receiver.wait_for_requests(1, 15)
    assert down.json()["reason"] == "runtime_exceeded"


def test_it_does_not_alert_for_a_paused_canary_and_resumes_with_a_fresh_period(
    stack: Stack, receiver: HttpReceiver
) -> None:
    channel = webhook(stack, receiver)
    paused = canary(stack, [channel["id"]], interval_seconds=1)
    assert (
        stack.admin()
        .patch(f"/api/v1/admin/canaries/{paused['id']}", json={"paused": True})
        .status_code
        == 200
    )
    # A second canary on the same channel goes down: by then the paused one would have too.
    witness = canary(stack, [channel["id"]], interval_seconds=2)
    (alert,) = receiver.wait_for_requests(1, 15)
    assert alert.json()["canary"]["id"] == witness["id"]
    listed = {c["id"]: c for c in stack.admin().get("/api/v1/admin/canaries").json()["canaries"]}
    assert listed[paused["id"]]["status"] == "paused"
    assert (
        stack.admin()
        .patch(f"/api/v1/admin/canaries/{paused['id']}", json={"paused": False})
        .status_code
        == 200
    )
    resumed = receiver.wait_for_requests(2, 15)[1].json()
    assert (resumed["canary"]["id"], resumed["reason"]) == (paused["id"], "missed")


def test_it_keeps_state_and_sends_nothing_twice_across_a_worker_sigkill(
    own_stack: Stack, receiver: HttpReceiver
) -> None:
    # One flip per transition. A delivery cut short by the SIGKILL (sent, not yet recorded)
    # may be sent again, always with the same id (X-Coalmine-Delivery), which receivers
    # de-duplicate on: count flips, not requests (a resent one must not satisfy a wait).
    def distinct_flips(n: int) -> list[tuple[str, str, str]]:
        def found() -> list[tuple[str, str, str]] | None:
            flips = list(
                dict.fromkeys((e["id"], e["status"], e["reason"]) for e in events(receiver))
            )
            return flips if len(flips) >= n else None

        return wait_for(found, 30, f"{n} distinct flips")

    own_stack.start_all()
    channel = webhook(own_stack, receiver)
    job = canary(own_stack, [channel["id"]])
    distinct_flips(1)  # down
    own_stack.kill("worker", signal.SIGKILL)
    own_stack.start("worker")
    # Still down after the restart (no second down); the next check-in brings it up once.
    assert own_stack.http().get(f"/checkin/{job['token']}").status_code == 200
    distinct_flips(2)
    own_stack.kill("worker", signal.SIGKILL)
    own_stack.start("worker")
    flips = distinct_flips(3)  # missed again after the new period
    assert [(status, reason) for _, status, reason in flips] == [
        ("down", "missed"),
        ("up", "checkin"),
        ("down", "missed"),
    ], flips


def test_it_does_not_report_a_check_in_missed_while_the_worker_lags(
    own_stack: Stack, receiver: HttpReceiver
) -> None:
    own_stack.start_all()
    channel = webhook(own_stack, receiver)
    job = canary(own_stack, [channel["id"]], interval_seconds=3)
    worker = own_stack.processes["worker"]
    checkin = own_stack.http()
    assert checkin.get(f"/checkin/{job['token']}").status_code == 200
    worker.send_signal(signal.SIGSTOP)  # the stream stops; the API goes on acknowledging
    try:
        started = time.monotonic()
        while time.monotonic() - started < 5:  # well past the first deadline
            assert checkin.get(f"/checkin/{job['token']}").status_code == 200
            time.sleep(1)
    finally:
        worker.send_signal(signal.SIGCONT)
    # The worker catches up on check-ins acknowledged while it was stopped before judging
    # any deadline. Keep checking in, then stop and see the one genuine alert.
    for _ in range(3):
        assert checkin.get(f"/checkin/{job['token']}").status_code == 200
        time.sleep(1)
    (alert,) = receiver.wait_for_requests(1, 20)
    assert alert.json()["reason"] == "missed"
    # It is about the last check-in, not one the stopped worker had not yet seen.
    last = own_stack.admin().get(f"/api/v1/admin/canaries/{job['id']}").json()["last_checkin_at"]
    assert alert.json()["last_checkin_at"] == last  # both ISO 8601 to the millisecond
    assert len(receiver.requests) == 1


def test_a_canary_over_events_goes_down_when_they_stop_and_up_when_they_return(
    stack: Stack, receiver: HttpReceiver
) -> None:
    channel = webhook(stack, receiver)
    name = f"orders-{time.monotonic_ns()}"
    job = canary(stack, [channel["id"]], interval_seconds=2, events={"name": name, "min_count": 3})
    assert "token" not in job and job["events"] == {"name": name, "min_count": 3}
    (down,) = receiver.wait_for_requests(1, 15)  # nothing arrived in its first window
    body = down.json()
    assert (body["event"], body["reason"], body["canary"]["id"]) == (
        "canary.down",
        "too_few_events",
        job["id"],
    )
    assert f"0 of at least 3 '{name}' events" in body["message"]

    key = stack.create_key("events-canary")["key"]
    # One batch: two could straddle the end of a 2 s window (counted by arrival time).
    three = {
        "events": [{"type": "event", "name": name}] * 2
        + [{"type": "error", "name": name}, {"type": "event", "name": "other"}]
    }
    assert stack.http(key).post("/api/v1/events", json=three).status_code == 202
    up = receiver.wait_for_requests(2, 15)[1].json()
    assert (up["event"], up["reason"]) == ("canary.up", "events")
    assert stack.admin().delete(f"/api/v1/admin/canaries/{job['id']}").status_code == 200


def test_a_worker_killed_before_writing_its_table_judges_the_last_check_in_after_restart(
    own_stack: Stack, receiver: HttpReceiver
) -> None:
    # The heartbeats table is written behind (processors.heartbeats): a check-in the worker
    # has applied may not be in its table yet when it dies. Its record was not acknowledged
    # either, so the restarted worker reads it again; were it acknowledged first, the worker
    # would resume from an older check-in and report a miss about it, earlier than due.
    own_stack.start_all()
    channel = webhook(own_stack, receiver)
    job = canary(own_stack, [channel["id"]], interval_seconds=4)
    checkin = own_stack.http()
    for _ in range(4):  # one each 0.5 s: the last ones are in no table write yet
        assert checkin.get(f"/checkin/{job['token']}").status_code == 200
        time.sleep(0.5)
    own_stack.kill("worker", signal.SIGKILL)
    own_stack.start("worker")
    (alert,) = receiver.wait_for_requests(1, 30)
    assert (alert.json()["status"], alert.json()["reason"]) == ("down", "missed")
    last = own_stack.admin().get(f"/api/v1/admin/canaries/{job['id']}").json()["last_checkin_at"]
    assert alert.json()["last_checkin_at"] == last  # the last check-in, none before it
    assert len(receiver.requests) == 1
