"""Maintenance windows and silences are state: they cross the log's rotation (carried with
the control topic; the worker on the new generation still holds a window's flips) and a
restart of `coalmine up` (re-seeded from ClickHouse's control copy)."""

from __future__ import annotations

from pathlib import Path

import httpx

from coalmine.broker import free_port
from tests.conftest import wait_for
from tests.integration.receivers import HttpReceiver
from tests.integration.test_faults import _admin
from tests.integration.test_rotation import _rotate
from tests.integration.up import Up


def test_windows_and_silences_cross_a_rotation_and_a_restart(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    with HttpReceiver() as hook:
        up = Up(data, port, env={"COALMINE_LOG_ROTATE_MB": "0"})
        try:
            up.wait_ready()
            admin = _admin(up)
            channel = admin.post(
                "/api/v1/admin/channels",
                json={"name": "hook", "kind": "webhook", "url": hook.url("/alerts")},
            ).json()["id"]
            job = admin.post(
                "/api/v1/admin/canaries",
                json={"name": "job", "interval_seconds": 3600, "channels": [channel],
                      "tags": ["db"]},
            ).json()  # fmt: skip
            window = admin.post(
                "/api/v1/admin/windows", json={"tags": ["db"], "comment": "until ended"}
            ).json()
            silence = admin.post(
                "/api/v1/admin/silences",
                json={"name": "db.*", "minutes": 60, "comment": "failover", "created_by": "ana"},
            ).json()
            assert _rotate(up) == 1
            # The window holds on the new generation: a /fail and its recovery are recorded,
            # not sent.
            assert httpx.get(f"{up.url}/ping/{job['token']}/fail").status_code == 200
            assert httpx.get(f"{up.url}/ping/{job['token']}").status_code == 200
            wait_for(lambda: _flips(admin, job["id"]) == ["down", "up"], 60, "the held flips")
        finally:
            assert up.stop() == 0

        up = Up(data, port)
        try:
            up.wait_ready()
            admin = _admin(up)
            windows = admin.get("/api/v1/admin/windows").json()["windows"]
            assert [(w["id"], w["state"]) for w in windows] == [(window["id"], "open")]
            silences = admin.get("/api/v1/admin/silences").json()["silences"]
            assert [s["id"] for s in silences] == [silence["id"]]
            # The API shows the window in force; ending it works on the restarted service.
            shown = admin.get(f"/api/v1/admin/canaries/{job['id']}").json()
            assert shown["status"] == "maintenance" and shown["tags"] == ["db"]
            ended = admin.delete(f"/api/v1/admin/windows/{window['id']}").json()
            assert ended["state"] == "ended"
            assert admin.get(f"/api/v1/admin/canaries/{job['id']}").json()["status"] == "up"
            assert hook.requests == []  # nothing was ever sent: every flip was held
        except AssertionError:
            print("\n".join(up.lines[-150:]))  # what the service said, for the reader
            raise
        finally:
            assert up.stop() == 0


def _flips(admin: httpx.Client, canary_id: str) -> list[str]:
    """The canary's flips as the store recorded them (held ones included), oldest first."""
    answer = admin.get(f"/api/v1/query/canaries/{canary_id}/history")
    return [f["status"] for f in reversed(answer.json()["flips"])]
