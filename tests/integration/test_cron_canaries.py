"""Cron canaries, start margins and thresholds end to end: the admin API's fields and refusals,
alerts to a real local webhook receiver, and definitions surviving a restart of `coalmine up`
(re-seeded from ClickHouse onto the empty log)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from coalmine.broker import free_port
from domain.schedule import next_slot
from tests.conftest import wait_for
from tests.integration.harness import Stack
from tests.integration.receivers import HttpReceiver
from tests.integration.up import Up

CANARIES = "/api/v1/admin/canaries"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(stack: Stack, **spec: Any) -> httpx.Response:
    return stack.admin().post(CANARIES, json={"name": unique("cron"), **spec})


def created(stack: Stack, **spec: Any) -> dict[str, Any]:
    response = create(stack, **spec)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture()
def receiver() -> Any:
    with HttpReceiver() as running:
        yield running


def webhook(stack: Stack, receiver: HttpReceiver) -> str:
    body = {"name": unique("hook"), "kind": "webhook", "url": receiver.url("/hook")}
    response = stack.admin().post("/api/v1/admin/channels", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_it_creates_a_cron_canary_and_lists_its_next_slot(stack: Stack) -> None:
    job = created(stack, schedule="30 2 * * *", timezone="Europe/Paris", grace_seconds=600)
    assert (job["schedule"], job["timezone"], job["interval_seconds"]) == (
        "30 2 * * *",
        "Europe/Paris",
        None,
    )
    assert job["schedule_text"] == "At 02:30 every day"
    created_at = epoch(job["created_at"])
    slot = next_slot("30 2 * * *", "Europe/Paris", created_at)
    assert slot is not None
    assert epoch(job["next_due_at"]) == pytest.approx(slot, abs=0.001)
    assert epoch(job["down_after"]) == pytest.approx(slot + 600, abs=0.001)
    listed = {c["id"]: c for c in stack.admin().get(CANARIES).json()["canaries"]}
    assert listed[job["id"]]["next_due_at"] == job["next_due_at"]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"schedule": "0 3 * *"}, "Wrong number of fields"),
        ({"schedule": "0 3 * * *", "timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"schedule": "0 3 * * *", "interval_seconds": 60}, "not both"),
        ({}, "not both"),
        ({"interval_seconds": 60, "timezone": "UTC"}, "`timezone` goes with a `schedule`"),
        ({"interval_seconds": 60, "failure_rate": {"failures": 4, "runs": 3}}, "at most"),
        ({"interval_seconds": 60, "failure_threshold": 0}, "failure_threshold"),
    ],
)
def test_it_refuses_bad_schedules_and_thresholds_saying_why(
    stack: Stack, spec: dict[str, Any], says: str
) -> None:
    response = create(stack, **spec)
    assert response.status_code == 400, response.text
    assert says in response.text


def test_an_interval_and_a_schedule_replace_each_other(stack: Stack) -> None:
    job = created(stack, interval_seconds=3600)
    to_cron = stack.admin().patch(
        f"{CANARIES}/{job['id']}", json={"schedule": "0 3 * * *", "timezone": "Asia/Tokyo"}
    )
    assert to_cron.status_code == 200, to_cron.text
    assert (to_cron.json()["interval_seconds"], to_cron.json()["schedule"]) == (None, "0 3 * * *")
    back = stack.admin().patch(f"{CANARIES}/{job['id']}", json={"interval_seconds": 600})
    assert back.status_code == 200, back.text
    assert (back.json()["interval_seconds"], back.json()["schedule"], back.json()["timezone"]) == (
        600,
        None,
        None,
    )


def test_a_cron_canary_goes_down_after_a_missed_slot_and_up_at_its_next_ping(
    stack: Stack, receiver: HttpReceiver
) -> None:
    channel = webhook(stack, receiver)
    job = created(stack, schedule="*/2 * * * * *", channels=[channel])  # every 2 s (seconds field)
    (down,) = receiver.wait_for_requests(1, 15)
    assert (down.json()["reason"], down.json()["canary"]["id"]) == ("missed", job["id"])
    # A long schedule from now on, so that the recovery is the last flip.
    assert (
        stack.admin().patch(f"{CANARIES}/{job['id']}", json={"schedule": "0 0 1 1 *"}).status_code
        == 200
    )
    assert stack.http().get(f"/ping/{job['token']}").status_code == 200
    up = receiver.wait_for_requests(2, 15)[1].json()
    assert (up["status"], up["reason"]) == ("up", "checkin")


def test_a_run_not_started_within_its_start_margin_alerts(
    stack: Stack, receiver: HttpReceiver
) -> None:
    channel = webhook(stack, receiver)
    created(
        stack,
        schedule="*/2 * * * * *",
        start_margin_seconds=1,
        max_runtime_seconds=3600,
        channels=[channel],
    )
    (down,) = receiver.wait_for_requests(1, 15)
    assert down.json()["reason"] == "not_started"


def test_it_alerts_only_at_the_failure_threshold_and_recovers_at_the_recovery_threshold(
    stack: Stack, receiver: HttpReceiver
) -> None:
    channel = webhook(stack, receiver)
    job = created(
        stack, interval_seconds=3600, failure_threshold=2, recovery_threshold=2, channels=[channel]
    )
    ping = stack.http()
    assert ping.get(f"/ping/{job['token']}/fail").status_code == 200
    assert ping.get(f"/ping/{job['token']}/fail").status_code == 200
    (down,) = receiver.wait_for_requests(1, 15)
    assert down.json()["reason"] == "failed"
    assert ping.get(f"/ping/{job['token']}").status_code == 200
    assert ping.get(f"/ping/{job['token']}").status_code == 200
    up = receiver.wait_for_requests(2, 15)[1].json()
    assert up["reason"] == "checkin"

    # Exactly one flip each: the down at the second failure, the up at the second success.
    def history() -> dict[str, Any] | None:
        found = stack.admin().get(f"/api/v1/query/canaries/{job['id']}/history").json()
        return found if len(found["checkins"]) == 4 and len(found["flips"]) == 2 else None

    stored = wait_for(history, 30, "four check-ins and two flips stored")
    kinds = sorted(stored["checkins"], key=lambda c: c["at"])
    flips = sorted(stored["flips"], key=lambda f: f["at"])
    assert [f["at"] for f in flips] == [kinds[1]["at"], kinds[3]["at"]]
    assert len(receiver.requests) == 2


def test_it_goes_down_on_its_failure_rate(stack: Stack, receiver: HttpReceiver) -> None:
    channel = webhook(stack, receiver)
    job = created(
        stack, interval_seconds=3600, failure_rate={"failures": 2, "runs": 4}, channels=[channel]
    )
    assert job["failure_threshold"] == 2  # 2 consecutive are 2 of the last 4 as well
    ping = stack.http()
    for path in ("/fail", "", "/fail"):
        assert ping.get(f"/ping/{job['token']}{path}").status_code == 200
    (down,) = receiver.wait_for_requests(1, 15)
    assert down.json()["reason"] == "failure_rate"


def test_a_cron_canary_with_thresholds_and_an_imported_token_survives_a_restart(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    up = Up(data_dir, free_port())
    code = str(uuid.uuid4())
    spec = {
        "name": "nightly-db", "schedule": "30 2 * * *", "timezone": "Europe/Paris", "grace_seconds": 900,
        "start_margin_seconds": 300, "max_runtime_seconds": 3600, "failure_threshold": 3,
        "recovery_threshold": 2, "failure_rate": {"failures": 3, "runs": 10}, "slug": "db", "token": code,
    }  # fmt: skip
    fields = [k for k in spec if k != "token"] + ["id", "slug", "schedule_text", "next_due_at"]
    try:
        up.wait_ready()
        admin = {"Authorization": f"Bearer {(data_dir / 'admin-token').read_text().strip()}"}
        response = httpx.post(f"{up.url}{CANARIES}", json=spec, headers=admin)
        assert response.status_code == 201, response.text
        before = {k: response.json()[k] for k in fields}
        assert httpx.get(f"{up.url}/ping/{code}").status_code == 200
        ping_key = httpx.get(f"{up.url}/api/v1/admin/ping-key", headers=admin).json()["ping_key"]
    finally:
        assert up.stop() == 0
    up = Up(data_dir, up.port)
    try:
        up.wait_ready()
        (after,) = httpx.get(f"{up.url}{CANARIES}", headers=admin).json()["canaries"]
        assert {k: after[k] for k in fields if k != "next_due_at"} == {
            k: v for k, v in before.items() if k != "next_due_at"
        }
        assert epoch(after["next_due_at"]) >= epoch(before["next_due_at"])  # its next slot
        assert httpx.get(f"{up.url}/ping/{code}/log").status_code == 200
        assert httpx.get(f"{up.url}/ping/{ping_key}/db").text == "OK"
    finally:
        assert up.stop() == 0


def test_it_alerts_on_a_success_too_early_and_on_a_run_far_longer_than_its_past(
    stack: Stack, receiver: HttpReceiver
) -> None:
    channel = webhook(stack, receiver)
    early = created(stack, interval_seconds=3600, abnormal={"too_early": True}, channels=[channel])
    ping = stack.http()
    assert ping.get(f"/ping/{early['token']}").status_code == 200
    assert ping.get(f"/ping/{early['token']}").status_code == 200  # a second run within the hour
    (alert,) = receiver.wait_for_requests(1, 15)
    assert alert.json()["reason"] == "too_early"
    assert "under half its interval of 60 min" in alert.json()["message"]

    slow = created(
        stack,
        interval_seconds=3600,
        abnormal={"longer_than_p95_by": 50, "min_runs": 2},
        channels=[channel],
    )
    listed = {c["id"]: c for c in stack.admin().get(CANARIES).json()["canaries"]}
    assert listed[slow["id"]]["abnormal"]["longer_than_p95_by"] == 50
    base = f"/ping/{slow['token']}"
    for _ in range(2):  # two runs of a few milliseconds
        assert ping.get(base + "/start").status_code == 200
        assert ping.get(base).status_code == 200
    assert ping.get(base + "/start").status_code == 200
    # Ends when the run is surely over 50 x the p95 of the two (milliseconds each): wait
    # for the history to show both, then for the clock, bounded.
    runs = wait_for(
        lambda: (
            (r := stack.admin().get(f"/api/v1/query/canaries/{slow['id']}/runs").json())["summary"][
                "runs"
            ]
            == 2
            and r
        ),
        30,
        "two runs stored",
    )
    longest = runs["summary"]["max_s"]
    started = dt.datetime.now(dt.UTC).timestamp()
    wait_for(
        lambda: dt.datetime.now(dt.UTC).timestamp() - started > longest * 50 + 0.5,
        60,
        "a long enough run",
    )
    assert ping.get(base).status_code == 200
    down = receiver.wait_for_requests(2, 15)[1].json()
    assert (down["canary"]["id"], down["reason"]) == (slow["id"], "run_too_long")
    assert "x the p95 of the last 2 runs" in down["message"]
