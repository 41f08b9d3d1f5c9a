"""After a restart of `coalmine up`, a `/fail` check-in of a canary that was up flips it down.
It did not: the API took the check-in before the worker had forwarded the re-seeded
definition onto the check-ins topic, so it met a state without one (processors.sinks.
control_sink now writes the definition there first)."""

from __future__ import annotations

from pathlib import Path

import httpx

from coalmine.broker import free_port
from tests.conftest import wait_for
from tests.integration.up import Up


def test_a_fail_after_a_restart_flips_the_canary_down(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    up = Up(data_dir, port)
    try:
        up.wait_ready()
        token = (data_dir / "admin-token").read_text().strip()
        admin = {"Authorization": f"Bearer {token}"}
        made = httpx.post(
            f"{up.url}/api/v1/admin/canaries",
            json={"name": "job", "interval_seconds": 3600},
            headers=admin,
        ).json()
        assert httpx.get(f"{up.url}/checkin/{made['token']}").status_code == 200

        def status() -> str:
            return httpx.get(f"{up.url}/api/v1/admin/canaries/{made['id']}", headers=admin).json()[
                "status"
            ]

        wait_for(lambda: status() == "up", 30, "up")
    finally:
        assert up.stop() == 0
    up = Up(data_dir, port)
    try:
        up.wait_ready()
        assert status() == "up"
        assert httpx.get(f"{up.url}/ping/{made['token']}/fail").status_code == 200
        wait_for(lambda: status() == "down", 60, "down after a /fail")
    finally:
        up.stop()
