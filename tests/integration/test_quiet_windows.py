"""Maintenance windows, snooze, error silences, tags, dependencies and badges end to end: the
real stack, a real local webhook receiver, and the flips read back from the log (a held flip
goes to no channel, so the log and the API are where it shows)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from runtime import kafka_client as kafka
from schemas.canaries import Flip, flip_decoder
from schemas.times import epoch_of, iso_utc
from schemas.topics import Topic
from tests.conftest import wait_for
from tests.integration.harness import Stack
from tests.integration.receivers import HttpReceiver


@pytest.fixture()
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


def webhook(stack: Stack, receiver: HttpReceiver) -> str:
    body = {"name": "hook", "kind": "webhook", "url": receiver.url("/hook")}
    response = stack.admin().post("/api/v1/admin/channels", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def canary(stack: Stack, channel: str, **spec: Any) -> dict[str, Any]:
    body = {"name": f"job-{time.monotonic_ns()}", "interval_seconds": 3600, "channels": [channel]}
    response = stack.admin().post("/api/v1/admin/canaries", json={**body, **spec})
    assert response.status_code == 201, response.text
    return response.json()


def alerts_for(receiver: HttpReceiver, canary_id: str) -> list[dict[str, Any]]:
    bodies = [r.json() for r in receiver.requests]
    return [b for b in bodies if b.get("canary", {}).get("id") == canary_id]


def flips_of(stack: Stack, canary_id: str) -> list[Flip]:
    """Every flip of a canary on the log, sent or held, in order."""

    async def read() -> list[Flip]:
        consumer = await kafka.start_follower(stack.settings.kafka_bootstrap, Topic.FLIPS)
        found: list[Flip] = []

        def keep(value: bytes) -> None:
            flip = flip_decoder.decode(value)
            if flip.canary_id == canary_id and flip.id not in {f.id for f in found}:
                found.append(flip)

        try:
            await kafka.read_to_end(consumer, keep, "flips", 10)
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def status(stack: Stack, canary_id: str) -> str:
    return str(stack.admin().get(f"/api/v1/admin/canaries/{canary_id}").json()["status"])


def test_a_deadline_in_a_window_restarts_from_its_end_and_alerts_only_after(
    stack: Stack, receiver: HttpReceiver
) -> None:
    job = canary(stack, webhook(stack, receiver), interval_seconds=2, grace_seconds=0, tags=["db"])
    assert stack.http().post(f"/checkin/{job['token']}").status_code == 200
    start = time.time()
    ends = start + 5
    body = {"tags": ["db"], "ends_at": iso_utc(ends), "comment": "upgrade", "created_by": "ana"}
    window = stack.admin().post("/api/v1/admin/windows", json=body)
    assert window.status_code == 201, window.text
    assert window.json()["state"] == "open"
    assert status(stack, job["id"]) == "maintenance"

    # Its deadline (2 s after the check-in) falls in the window: no alert then, and a whole
    # interval after the window's end instead.
    (down,) = receiver.wait_for_requests(1, 30)
    assert down.json()["canary"]["id"] == job["id"] and down.json()["status"] == "down"
    assert epoch_of(down.json()["at"]) >= ends + 2
    assert [f.status for f in flips_of(stack, job["id"])] == ["down"]
    listed = stack.admin().get("/api/v1/admin/windows", params={"all": "true"}).json()
    mine = [w for w in listed["windows"] if w["id"] == window.json()["id"]]
    assert mine and mine[0]["state"] == "ended" and mine[0]["created_by"] == "ana"


def test_a_snooze_by_ping_holds_a_fail_and_its_recovery_and_ends_with_minutes_0(
    stack: Stack, receiver: HttpReceiver
) -> None:
    job = canary(stack, webhook(stack, receiver))
    token = job["token"]
    assert stack.http().get(f"/ping/{token}/snooze", params={"minutes": "30"}).text == "OK"
    assert status(stack, job["id"]) == "maintenance"
    assert stack.http().get(f"/ping/{token}/snooze", params={"minutes": "x"}).status_code == 400
    assert stack.http().get(f"/ping/{token}/fail").status_code == 200  # held
    assert stack.http().get(f"/ping/{token}").status_code == 200  # its recovery, held too
    wait_for(lambda: len(flips_of(stack, job["id"])) == 2, 30, "the held flips on the log")
    assert stack.http().get(f"/ping/{token}/snooze", params={"minutes": "0"}).text == "OK"
    windows = stack.admin().get("/api/v1/admin/windows").json()["windows"]
    assert not [w for w in windows if job["id"] in w["canaries"]]  # ended: not listed
    assert stack.http().get(f"/ping/{token}/fail").status_code == 200
    # Only the last down is sent: the canary's flips are one ordered stream, so the held ones
    # were settled before it.
    (sent,) = wait_for(lambda: alerts_for(receiver, job["id"]), 30, "the alert after the snooze")
    flips = flips_of(stack, job["id"])
    assert [(f.status, bool(f.held)) for f in flips] == [
        ("down", True), ("up", True), ("down", False),
    ]  # fmt: skip
    assert flips[0].held == f"maintenance snz_{job['id']}" and flips[0].channels == []
    assert sent["id"] == flips[2].id and len(alerts_for(receiver, job["id"])) == 1


def test_a_childs_alerts_are_held_while_its_parent_is_down_and_the_parent_lists_it(
    stack: Stack, receiver: HttpReceiver
) -> None:
    hook = webhook(stack, receiver)
    parent = canary(stack, hook, tags=[f"db{time.monotonic_ns()}"])
    child = canary(stack, hook, depends_on_tags=parent["tags"])
    early = canary(stack, hook, depends_on=[parent["id"]])
    cycle = stack.admin().patch(
        f"/api/v1/admin/canaries/{parent['id']}", json={"depends_on": [child["id"]]}
    )
    assert cycle.status_code == 400 and "cycle" in cycle.text

    # `early` goes down first (alerted), then the parent: its flip lists `early`.
    assert stack.http().get(f"/ping/{early['token']}/fail").status_code == 200
    wait_for(lambda: alerts_for(receiver, early["id"]), 30, "the early child's alert")
    assert stack.http().get(f"/ping/{parent['token']}/fail").status_code == 200
    wait_for(lambda: alerts_for(receiver, parent["id"]), 30, "the parent's alert")
    (parent_down,) = flips_of(stack, parent["id"])
    assert parent_down.dependents == [early["name"]]

    # While the parent is down, the child's down (and its recovery) are held, not sent.
    assert stack.http().get(f"/ping/{child['token']}/fail").status_code == 200
    assert stack.http().get(f"/ping/{child['token']}").status_code == 200
    wait_for(lambda: len(flips_of(stack, child["id"])) == 2, 30, "the child's held flips")
    held = [f.held for f in flips_of(stack, child["id"])]
    assert held == [f"depends on {parent['name']}"] * 2, held
    # The parent back up: the child's next down is sent.
    assert stack.http().get(f"/ping/{parent['token']}").status_code == 200
    wait_for(lambda: len(alerts_for(receiver, parent["id"])) == 2, 30, "the parent's recovery")
    assert stack.http().get(f"/ping/{child['token']}/fail").status_code == 200
    (sent,) = wait_for(lambda: alerts_for(receiver, child["id"]), 30, "the child's own alert")
    assert sent["id"] == flips_of(stack, child["id"])[2].id


def test_badges_are_signed_per_target_and_show_the_worst_status(
    stack: Stack, receiver: HttpReceiver
) -> None:
    tag = f"web{time.monotonic_ns()}"
    hook = webhook(stack, receiver)
    first, second = canary(stack, hook, tags=[tag]), canary(stack, hook, tags=[tag])
    badges = stack.admin().get("/api/v1/admin/badges").json()["badges"]
    (mine,) = [b for b in badges if b["target"] == tag]
    assert stack.http().get(mine["json"]).json() == {
        "status": "up",
        "total": 2,
        "late": 0,
        "down": 0,
    }
    shields = stack.http().get(mine["shields"]).json()
    assert (shields["label"], shields["message"], shields["color"]) == (tag, "up", "brightgreen")
    svg = stack.http().get(mine["svg"])
    assert svg.headers["content-type"].startswith("image/svg+xml") and ">up</text>" in svg.text
    # A signature is good for its own target only.
    other = mine["json"].replace(f"/{tag}.json", f"/{first['slug']}.json")
    assert stack.http().get(other).status_code == 404
    tagged = stack.admin().get("/api/v1/admin/canaries", params={"tag": tag}).json()["canaries"]
    assert sorted(c["id"] for c in tagged) == sorted([first["id"], second["id"]])

    assert stack.http().get(f"/ping/{second['token']}/fail").status_code == 200
    wait_for(lambda: stack.http().get(mine["json"]).json()["status"] == "down", 30, "a down badge")
    assert ">down</text>" in stack.http().get(mine["svg"]).text


def test_a_silence_keeps_matching_error_alerts_from_being_sent(
    stack: Stack, receiver: HttpReceiver
) -> None:
    hook = webhook(stack, receiver)
    prefix = f"quiet{time.monotonic_ns()}"
    rule = {"type": "error", "name": f"{prefix}.*", "mode": "immediate", "channels": [hook]}
    assert stack.admin().post("/api/v1/admin/routes", json=rule).status_code == 201
    refused = stack.admin().post("/api/v1/admin/silences", json={"name": "x", "minutes": 5})
    assert refused.status_code == 400  # a silence says who and why
    body = {"name": f"{prefix}.pay*", "minutes": 30, "comment": "deploy", "created_by": "ana"}
    silence = stack.admin().post("/api/v1/admin/silences", json=body)
    assert silence.status_code == 201, silence.text
    key = stack.create_key("silences")["key"]
    events = [
        {"type": "error", "name": f"{prefix}.payment", "message": "silenced"},
        {"type": "error", "name": f"{prefix}.db", "message": "sent"},
    ]
    assert stack.http(key).post("/api/v1/events", json={"events": events}).status_code == 202
    (alert,) = receiver.wait_for_requests(1, 30)
    assert alert.json()["name"] == f"{prefix}.db"

    expired = stack.admin().delete(f"/api/v1/admin/silences/{silence.json()['id']}")
    assert expired.json()["state"] == "ended"
    wait_for(lambda: _sent_after_expiry(stack, key, prefix, receiver), 30, "the alert after expiry")


def _sent_after_expiry(stack: Stack, key: str, prefix: str, receiver: HttpReceiver) -> bool:
    # The error router sees the expiry through the control topic a moment later: send again
    # until an alert for the once-silenced name arrives.
    event = {"type": "error", "name": f"{prefix}.payment", "message": "after"}
    stack.http(key).post("/api/v1/events", json={"events": [event]})
    return any(r.json()["name"] == f"{prefix}.payment" for r in receiver.requests)


def test_the_cli_makes_tags_windows_snoozes_silences_and_lists_badges(stack: Stack) -> None:
    from tests.integration.test_cli import coalmine

    tag = f"cli{time.monotonic_ns()}"
    made = coalmine(stack, "canaries", "create", f"job-{tag}", "--interval", "1h", "--tag", tag)
    assert made.returncode == 0, made.stderr
    canary_id = made.stdout.split()[1]
    listed = json.loads(coalmine(stack, "canaries", "list", "--tag", tag, "--json").stdout)
    assert [c["id"] for c in listed] == [canary_id] and listed[0]["tags"] == [tag]

    snoozed = coalmine(stack, "canaries", "snooze", canary_id, "--for", "10m")
    assert snoozed.returncode == 0 and "snoozed until" in snoozed.stdout, snoozed.stderr
    assert (
        json.loads(coalmine(stack, "canaries", "list", "--tag", tag, "--json").stdout)[0]["status"]
        == "maintenance"
    )
    window = coalmine(
        stack, "windows", "add", "--tag", tag, "--schedule", "0 2 * * SUN", "--duration", "2h",
        "--comment", "weekly upgrade", "--by", "ana", "--json",
    )  # fmt: skip
    assert window.returncode == 0, window.stderr
    window_id = json.loads(window.stdout)["id"]
    table = coalmine(stack, "windows", "list").stdout
    assert window_id in table and f"tag:{tag}" in table and "weekly upgrade" in table
    ended = coalmine(stack, "windows", "end", window_id)
    assert ended.stdout.strip() == f"{window_id}: ended"

    silence = coalmine(
        stack, "silences", "add", "db.*", "--for", "1h", "--comment", "failover", "--by", "ana",
        "--json",
    )  # fmt: skip
    assert silence.returncode == 0, silence.stderr
    silence_id = json.loads(silence.stdout)["id"]
    assert silence_id in coalmine(stack, "silences", "list").stdout
    assert coalmine(stack, "silences", "expire", silence_id).stdout.strip().endswith("ended")

    badges = json.loads(coalmine(stack, "badges", "--json").stdout)
    (mine,) = [b for b in badges if b["target"] == tag]
    assert stack.http().get(mine["json"]).json()["total"] == 1


def test_a_tags_public_status_page_shows_only_names_and_statuses_at_its_signed_url(
    stack: Stack, receiver: HttpReceiver
) -> None:
    tag = f"public{time.monotonic_ns()}"
    hook = webhook(stack, receiver)
    name = f"<b>billing</b>-{time.monotonic_ns()}"
    shown = canary(stack, hook, tags=[tag], name=name)
    hidden = canary(stack, hook, tags=["internal"])
    pages = stack.admin().get("/api/v1/admin/status-pages").json()["status_pages"]
    (mine,) = [p for p in pages if p["tag"] == tag]
    page = stack.http().get(mine["url"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]
    assert "&lt;b&gt;billing&lt;/b&gt;" in page.text and "<b>billing" not in page.text
    assert hidden["name"] not in page.text
    assert shown["token"] not in page.text and shown["id"] not in page.text
    # Its signature opens this page only: not another tag's, and not a badge.
    assert stack.http().get(mine["url"].replace(f"/{tag}", "/internal")).status_code == 404
    sig = mine["url"].split("/")[2]
    assert stack.http().get(f"/badge/{sig}/{tag}.json").status_code == 404
    assert stack.http().get(f"/status/{'A' * len(sig)}/{tag}").status_code == 404

    assert stack.http().get(f"/ping/{shown['token']}/fail").status_code == 200
    wait_for(
        lambda: "Some checks are down" in stack.http().get(mine["url"]).text, 30, "a down page"
    )
