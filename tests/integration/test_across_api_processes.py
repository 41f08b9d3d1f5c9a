"""What one API process writes (keys, revocations, canaries) holds in every other one."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx

from coalmine.broker import free_port
from tests.conftest import wait_for
from tests.integration.harness import Stack

BATCH = {"events": [{"type": "event", "name": "x"}]}


@contextlib.contextmanager
def _second_api(stack: Stack) -> Iterator[str]:
    """The stack started, and a second API process on a port of its own: its URL."""
    stack.start_all()
    port = free_port()
    env = {**os.environ, **stack.settings.replace(port=port).to_env()}
    with open(stack.root / "api2.log", "ab") as log:  # the child keeps its own descriptor
        second = subprocess.Popen(
            [sys.executable, "-m", "coalmine", "api"], env=env, stdout=log, stderr=log
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{url}/healthz").status_code == 200, 60, "second API")
        yield url
    finally:
        second.terminate()
        # A loaded machine (the whole suite, two cores) has seen this stop take over 20 s:
        # what this file tests is read-your-writes, not how fast an API process stops.
        second.wait(60)


def test_it_refuses_a_revoked_key_in_a_second_api_process(own_stack: Stack) -> None:
    with _second_api(own_stack) as other:
        created = own_stack.create_key("shared")
        auth = {"Authorization": f"Bearer {created['key']}"}
        assert httpx.post(f"{other}/api/v1/events", json=BATCH, headers=auth).status_code == 202
        assert own_stack.admin().delete(f"/api/v1/admin/keys/{created['id']}").status_code == 200
        # The issue asks for 1 s; the deadline leaves room for a loaded CI machine. The
        # propagation time itself is measured by bench/revocation.py.
        wait_for(
            lambda: (
                httpx.post(f"{other}/api/v1/events", json=BATCH, headers=auth).status_code == 401
            ),
            3,
            "the revocation in the second process",
        )


def test_a_key_or_canary_is_usable_in_another_process_the_moment_it_is_created(
    own_stack: Stack,
) -> None:
    """No wait between creating and using: the second process has not read the new record
    yet when asked, and reads its log to the end before it refuses (runtime.catch_up)."""
    with _second_api(own_stack) as other:
        for i in range(5):
            key = own_stack.create_key(f"fresh-{i}")["key"]
            answer = httpx.post(
                f"{other}/api/v1/events", json=BATCH, headers={"Authorization": f"Bearer {key}"}
            )
            assert answer.status_code == 202, answer.text
            read_key = own_stack.create_key(f"reader-{i}", scope="read")["key"]
            answer = httpx.get(
                f"{other}/api/v1/query/top_names",
                params={"from": "0", "to": "1"},
                headers={"Authorization": f"Bearer {read_key}"},
            )
            assert answer.status_code == 200, answer.text
            canary = own_stack.admin().post(
                "/api/v1/admin/canaries", json={"name": f"fresh-{i}", "interval_seconds": 60}
            )
            assert canary.status_code == 201, canary.text
            checkin = httpx.get(f"{other}/checkin/{canary.json()['token']}")
            assert checkin.status_code == 200, checkin.text
        # Unknown ones are still refused, after the same look at the log.
        unknown = "ch_live_" + "A" * 40
        answer = httpx.post(
            f"{other}/api/v1/events", json=BATCH, headers={"Authorization": f"Bearer {unknown}"}
        )
        assert answer.status_code == 401
        assert httpx.get(f"{other}/checkin/{'B' * 32}").status_code == 404


def test_what_one_process_administers_another_can_change_at_once(own_stack: Stack) -> None:
    """Admin requests read the log to its end first: no 404 for a fresh id, and a change is
    made to the latest version, not to a stale copy."""
    with _second_api(own_stack) as other:
        admin_there = httpx.Client(
            base_url=other, headers={"Authorization": f"Bearer {own_stack.settings.admin_token}"}
        )
        here = own_stack.admin()
        for i in range(3):
            canary = here.post(
                "/api/v1/admin/canaries", json={"name": f"admin-{i}", "interval_seconds": 60}
            ).json()
            renamed = admin_there.patch(
                f"/api/v1/admin/canaries/{canary['id']}", json={"name": f"renamed-{i}"}
            )
            assert renamed.status_code == 200, renamed.text
            # Back in the first process, a second change keeps the first one.
            longer = here.patch(
                f"/api/v1/admin/canaries/{canary['id']}", json={"interval_seconds": 120}
            )
            assert longer.status_code == 200, longer.text
            assert (longer.json()["name"], longer.json()["interval_seconds"]) == (
                f"renamed-{i}",
                120,
            )
            key = here.post("/api/v1/admin/keys", json={"name": f"admin-{i}"}).json()
            assert key["id"] in {
                k["id"] for k in admin_there.get("/api/v1/admin/keys").json()["keys"]
            }
            assert admin_there.delete(f"/api/v1/admin/keys/{key['id']}").status_code == 200
