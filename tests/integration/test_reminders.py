"""Reminders end to end, on the injected clock (COALMINE_CLOCK_FILE): a channel that reminds
every minute repeats each down alert until it is acknowledged (by `coalmine ack`, or by the
signed link in the alert), the canary recovers or is paused; each step is an Incident record on the
control topic, which the test waits for before moving the clock on."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from coalmine.broker import free_port
from runtime import kafka_client as kafka
from schemas.canaries import Incident, incident_id
from schemas.control import control_decoder
from schemas.topics import Topic
from tests.conftest import set_clock, wait_for
from tests.integration.harness import Stack
from tests.integration.receivers import HttpReceiver
from tests.integration.test_cli import coalmine
from tests.integration.test_rotation import _rotate
from tests.integration.up import Up


def incidents(stack: Stack) -> dict[str, Incident]:
    async def read() -> dict[str, Incident]:
        consumer = await kafka.start_follower(stack.settings.kafka_bootstrap, Topic.CONTROL)
        found: dict[str, Incident] = {}

        def keep(value: bytes) -> None:
            record = control_decoder.decode(value)
            if isinstance(record, Incident):
                found[record.id] = record

        try:
            await kafka.read_to_end(consumer, keep, "control", 10)
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def test_reminders_repeat_until_acknowledged_recovered_or_paused(tmp_path: Path) -> None:
    clock = tmp_path / "clock"
    start = time.time()
    set_clock(clock, start)
    stack = Stack(tmp_path, clock_file=str(clock))
    with HttpReceiver() as receiver:
        try:
            stack.start_all()
            admin = stack.admin()
            body = {"name": "pager", "kind": "webhook", "url": receiver.url("/hook")}
            made = admin.post(
                "/api/v1/admin/channels", json={**body, "remind_every_s": 60, "remind_max": 3}
            )
            assert made.status_code == 201, made.text
            channel = made.json()["id"]
            assert (made.json()["remind_every_s"], made.json()["remind_max"]) == (60, 3)
            refused = admin.post("/api/v1/admin/channels", json={**body, "remind_every_s": 5})
            assert refused.status_code == 400

            jobs: dict[str, dict[str, Any]] = {}
            for name in ("a", "b", "c", "d"):
                spec = {"name": name, "interval_seconds": 1, "grace_seconds": 0}
                job = admin.post("/api/v1/admin/canaries", json={**spec, "channels": [channel]})
                assert job.status_code == 201, job.text
                jobs[name] = job.json()
                assert stack.http().get(f"/checkin/{jobs[name]['token']}").status_code == 200

            def sent(event: str) -> dict[str, list[dict[str, Any]]]:
                found: dict[str, list[dict[str, Any]]] = {name: [] for name in jobs}
                for request in receiver.requests:
                    body = request.json()
                    if body["event"] == event:
                        found[body["canary"]["name"]].append(body)
                return found

            def opened(name: str) -> Incident | None:
                return incidents(stack).get(incident_id(jobs[name]["id"], channel))

            wait_for(lambda: all(sent("canary.down").values()), 30, "four down alerts")
            downs = {name: alerts[0] for name, alerts in sent("canary.down").items()}
            assert all(
                d["ack_url"].startswith(f"{stack.url}/ack/{d['id']}?sig=") for d in downs.values()
            )
            wait_for(lambda: all(opened(name) for name in jobs), 30, "four incidents")

            set_clock(clock, start + 61)
            wait_for(lambda: all(sent("canary.reminder").values()), 30, "first reminders")
            first = sent("canary.reminder")["b"][0]
            assert (first["reminder"], first["reminders_max"]) == (1, 3)
            assert first["down_flip_id"] == downs["b"]["id"]
            assert first["ack_url"] == downs["b"]["ack_url"]

            # a: acknowledged by the CLI; c: recovers; d: paused.
            acked = coalmine(stack, "ack", jobs["a"]["id"])
            assert acked.returncode == 0, acked.stderr
            assert downs["a"]["id"] in acked.stdout
            # A long interval first: c then stays up, rather than going down (and reminding) again.
            patched = admin.patch(
                f"/api/v1/admin/canaries/{jobs['c']['id']}", json={"interval_seconds": 3600}
            )
            assert patched.status_code == 200, patched.text
            assert stack.http().get(f"/checkin/{jobs['c']['token']}").status_code == 200
            wait_for(lambda: sent("canary.up")["c"], 30, "c's recovery")
            paused = admin.patch(f"/api/v1/admin/canaries/{jobs['d']['id']}", json={"paused": True})
            assert paused.status_code == 200, paused.text
            closed = ("a", "c", "d")
            wait_for(lambda: all(opened(n).closed for n in closed), 30, "a, c and d closed")  # type: ignore[union-attr]

            set_clock(clock, start + 121)
            wait_for(lambda: len(sent("canary.reminder")["b"]) == 2, 30, "b's second reminder")

            # b: acknowledged by the link in its alert. Its GET only asks; the POST acts.
            link = downs["b"]["ack_url"]
            assert "Acknowledge" in httpx.get(link).text
            assert httpx.get(link.replace("sig=", "sig=0")).status_code == 403
            assert httpx.post(link.replace("sig=", "sig=0")).status_code == 403
            answered = httpx.post(link)
            assert answered.status_code == 200 and "Acknowledged" in answered.text
            wait_for(lambda: opened("b").closed, 30, "b closed")  # type: ignore[union-attr]
            assert coalmine(stack, "ack", jobs["b"]["id"]).returncode != 0  # nothing left

            reminders = {
                n: [r["reminder"] for r in rs] for n, rs in sent("canary.reminder").items()
            }
            assert reminders == {"a": [1], "b": [1, 2], "c": [1], "d": [1]}
        finally:
            stack.stop()


def test_a_restarted_worker_goes_on_reminding_without_repeating_one(tmp_path: Path) -> None:
    clock = tmp_path / "clock"
    start = time.time()
    set_clock(clock, start)
    stack = Stack(tmp_path, clock_file=str(clock))
    with HttpReceiver() as receiver:
        try:
            stack.start_all()
            admin = stack.admin()
            made = admin.post(
                "/api/v1/admin/channels",
                json={"name": "p", "kind": "webhook", "url": receiver.url(), "remind_every_s": 60},
            )
            channel = made.json()["id"]
            spec = {"name": "job", "interval_seconds": 1, "channels": [channel]}
            job = admin.post("/api/v1/admin/canaries", json=spec).json()
            assert stack.http().get(f"/checkin/{job['token']}").status_code == 200
            key = incident_id(job["id"], channel)
            wait_for(lambda: key in incidents(stack), 30, "the incident")

            def reminders() -> list[int]:
                bodies = [r.json() for r in receiver.requests]
                return [b["reminder"] for b in bodies if b["event"] == "canary.reminder"]

            set_clock(clock, start + 61)
            wait_for(lambda: reminders() == [1], 30, "the first reminder")
            wait_for(lambda: incidents(stack)[key].reminders == 1, 30, "it counted")
            stack.kill("worker")
            stack.start("worker")
            set_clock(clock, start + 121)
            wait_for(lambda: len(reminders()) >= 2, 60, "the second reminder")
            assert reminders() == [1, 2]
        finally:
            stack.stop()


def test_reminders_go_on_after_coalmine_up_restarts_on_an_empty_log(tmp_path: Path) -> None:
    """Embedded mode: the broker starts empty, the store writes the open incident back."""
    clock = tmp_path / "clock"
    start = time.time()
    set_clock(clock, start)
    data_dir = tmp_path / "data"
    env = {"COALMINE_CLOCK_FILE": str(clock)}
    with HttpReceiver() as receiver:

        def reminders() -> list[int]:
            bodies = [r.json() for r in receiver.requests]
            return [b["reminder"] for b in bodies if b["event"] == "canary.reminder"]

        up = Up(data_dir, free_port(), env)
        try:
            up.wait_ready()
            admin = httpx.Client(
                base_url=up.url, headers={"Authorization": f"Bearer {up.admin_token}"}
            )
            made = admin.post(
                "/api/v1/admin/channels",
                json={"name": "p", "kind": "webhook", "url": receiver.url(), "remind_every_s": 60},
            )
            spec = {"name": "job", "interval_seconds": 1, "channels": [made.json()["id"]]}
            job = admin.post("/api/v1/admin/canaries", json=spec).json()
            assert httpx.get(f"{up.url}/checkin/{job['token']}").status_code == 200
            receiver.wait_for_requests(1, 30)
            set_clock(clock, start + 61)
            wait_for(lambda: reminders() == [1], 30, "the first reminder")
            history = f"/api/v1/query/canaries/{job['id']}/notifications"
            wait_for(
                lambda: any(
                    ":remind:1" in a["flip_id"] for a in admin.get(history).json()["attempts"]
                ),
                30,
                "the reminder stored",
            )
        finally:
            assert up.stop() == 0
        up = Up(data_dir, up.port, env)
        try:
            up.wait_ready()
            set_clock(clock, start + 121)
            wait_for(lambda: len(reminders()) >= 2, 60, "the second reminder")
            assert reminders() == [1, 2]
            downs = [r.json() for r in receiver.requests if r.json()["event"] == "canary.down"]
            assert len(downs) == 1  # still down after the restart, not alerted again
        finally:
            assert up.stop() == 0


def test_reminders_go_on_across_the_logs_rotation(tmp_path: Path) -> None:
    """The incident is a control record: carried into the new generation like definitions."""
    clock = tmp_path / "clock"
    start = time.time()
    set_clock(clock, start)
    env = {"COALMINE_CLOCK_FILE": str(clock), "COALMINE_LOG_ROTATE_MB": "0"}
    with HttpReceiver() as receiver:

        def reminders() -> list[int]:
            bodies = [r.json() for r in receiver.requests]
            return [b["reminder"] for b in bodies if b["event"] == "canary.reminder"]

        up = Up(tmp_path / "data", free_port(), env)
        try:
            up.wait_ready()
            admin = httpx.Client(
                base_url=up.url, headers={"Authorization": f"Bearer {up.admin_token}"}
            )
            made = admin.post(
                "/api/v1/admin/channels",
                json={"name": "p", "kind": "webhook", "url": receiver.url(), "remind_every_s": 60},
            )
            spec = {"name": "job", "interval_seconds": 1, "channels": [made.json()["id"]]}
            job = admin.post("/api/v1/admin/canaries", json=spec).json()
            assert httpx.get(f"{up.url}/checkin/{job['token']}").status_code == 200
            receiver.wait_for_requests(1, 30)
            set_clock(clock, start + 61)
            wait_for(lambda: reminders() == [1], 30, "the first reminder")
            assert _rotate(up) == 1
            set_clock(clock, start + 121)
            wait_for(lambda: len(reminders()) >= 2, 60, "the second reminder")
            assert reminders() == [1, 2]
        finally:
            assert up.stop() == 0
