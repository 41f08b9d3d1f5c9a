"""A held down (here: under a down parent) is recorded with why it was held, shown by the API
and `coalmine query flips`, and stays held across a restart of `coalmine up` on an empty log:
the store writes the canary's state back with `held`, so its recovery is held too instead of
reaching the channel that was never told of the down."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from coalmine.broker import free_port
from tests.conftest import wait_for
from tests.integration.receivers import HttpReceiver
from tests.integration.up import Up


def flips(admin: httpx.Client, canary_id: str) -> list[dict[str, Any]]:
    """The canary's flips as the store has them, oldest first."""
    history = admin.get(f"/api/v1/query/canaries/{canary_id}/history").json()
    return list(reversed(history["flips"]))


def cli(up: Up, *args: str) -> str:
    env = {**os.environ, "COALMINE_ADMIN_TOKEN": up.admin_token, "COALMINE_PORT": str(up.port)}
    done = subprocess.run(
        [sys.executable, "-m", "coalmine", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_held_down_stays_held_across_a_restart_and_its_recovery_is_not_sent(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with HttpReceiver() as receiver:

        def alerts_for(canary: dict[str, Any]) -> list[str]:
            bodies = [r.json() for r in receiver.requests]
            return [b["status"] for b in bodies if b.get("canary", {}).get("id") == canary["id"]]

        up = Up(data_dir, free_port())
        try:
            up.wait_ready()
            admin = httpx.Client(
                base_url=up.url, headers={"Authorization": f"Bearer {up.admin_token}"}
            )
            hook = {"name": "hook", "kind": "webhook", "url": receiver.url("/hook")}
            channel = admin.post("/api/v1/admin/channels", json=hook).json()["id"]
            spec = {"interval_seconds": 3600, "channels": [channel]}
            parent = admin.post("/api/v1/admin/canaries", json={**spec, "name": "db"}).json()
            child = admin.post(
                "/api/v1/admin/canaries",
                json={**spec, "name": "app", "depends_on": [parent["id"]]},
            ).json()
            assert httpx.get(f"{up.url}/ping/{parent['token']}/fail").status_code == 200
            wait_for(lambda: alerts_for(parent) == ["down"], 30, "the parent's alert")
            assert httpx.get(f"{up.url}/ping/{child['token']}/fail").status_code == 200
            wait_for(lambda: flips(admin, child["id"]), 30, "the child's held down stored")
            (down,) = flips(admin, child["id"])
            assert (down["status"], down["held"]) == ("down", "depends on db")
            shown = cli(up, "query", "flips", "app")
            assert "depends on db" in shown.splitlines()[-1], shown
        finally:
            assert up.stop() == 0

        up = Up(data_dir, up.port)
        try:
            up.wait_ready()
            admin = httpx.Client(
                base_url=up.url, headers={"Authorization": f"Bearer {up.admin_token}"}
            )
            # The child recovers while its parent is still down: held, as its down was.
            assert httpx.get(f"{up.url}/ping/{child['token']}").status_code == 200
            wait_for(lambda: len(flips(admin, child["id"])) == 2, 60, "the child's recovery")
            assert [(f["status"], f["held"]) for f in flips(admin, child["id"])] == [
                ("down", "depends on db"), ("up", "depends on db"),
            ]  # fmt: skip
            # The parent's recovery is sent; the child's, on the log before it, went nowhere
            # (its channels emptied by the hold: the assertion above is the one that decides).
            assert httpx.get(f"{up.url}/ping/{parent['token']}").status_code == 200
            wait_for(lambda: alerts_for(parent) == ["down", "up"], 60, "the parent's recovery")
            assert alerts_for(child) == []
        finally:
            assert up.stop() == 0
