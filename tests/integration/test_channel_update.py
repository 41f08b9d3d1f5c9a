"""A channel's delivery settings change without deleting it (PATCH /api/v1/admin/channels/<id>,
`coalmine channels update`): a new version of its definition on the control topic, which the
notifier follows at once. End to end on the injected clock: a channel reminding hourly is
changed to every minute while its canary is down, and the next minute brings the reminder."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from schemas.canaries import incident_id
from tests.conftest import set_clock, wait_for
from tests.integration.harness import Stack
from tests.integration.receivers import HttpReceiver
from tests.integration.test_cli import coalmine
from tests.integration.test_reminders import incidents


def test_a_channels_reminders_change_without_deleting_it(tmp_path: Path) -> None:
    clock = tmp_path / "clock"
    start = time.time()
    set_clock(clock, start)
    stack = Stack(tmp_path, clock_file=str(clock))
    with HttpReceiver() as receiver:

        def sent(event: str) -> list[dict[str, Any]]:
            return [r.json() for r in receiver.requests if r.json()["event"] == event]

        try:
            stack.start_all()
            admin = stack.admin()
            body = {"name": "pager", "kind": "webhook", "url": receiver.url("/hook")}
            made = admin.post("/api/v1/admin/channels", json={**body, "remind_every_s": 3600})
            assert made.status_code == 201, made.text
            channel = made.json()["id"]
            spec = {"name": "job", "interval_seconds": 1, "grace_seconds": 0, "channels": [channel]}
            job = admin.post("/api/v1/admin/canaries", json=spec).json()
            assert stack.http().get(f"/checkin/{job['token']}").status_code == 200
            wait_for(lambda: sent("canary.down"), 30, "the down alert")
            wait_for(lambda: incidents(stack).get(incident_id(job["id"], channel)), 30, "incident")

            path = f"/api/v1/admin/channels/{channel}"
            assert admin.patch(path, json={"remind_every_s": 5}).status_code == 400
            moved = admin.patch(path, json={"url": "http://elsewhere.test/"})
            assert moved.status_code == 400 and "url" in moved.text
            assert admin.patch(f"{path}x", json={}).status_code == 404
            updated = coalmine(
                stack, "channels", "update", channel, "--remind-every", "1m", "--remind-max", "2",
                "--json",
            )  # fmt: skip
            assert updated.returncode == 0, updated.stderr
            shown = json.loads(updated.stdout)
            assert (shown["name"], shown["remind_every_s"], shown["remind_max"]) == ("pager", 60, 2)
            (listed,) = admin.get("/api/v1/admin/channels").json()["channels"]
            assert (listed["id"], listed["remind_every_s"]) == (channel, 60)

            set_clock(clock, start + 61)
            wait_for(lambda: sent("canary.reminder"), 30, "a reminder a minute after the down")
            (reminder,) = sent("canary.reminder")
            assert (reminder["reminder"], reminder["reminders_max"]) == (1, 2)
            assert len(sent("canary.down")) == 1  # the same channel: nothing sent again
        finally:
            stack.stop()
