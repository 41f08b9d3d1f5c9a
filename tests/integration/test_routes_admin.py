"""/api/v1/admin/routes and `coalmine routes`: rules are validated, listed in the order they
are tried, changed and deleted; only the admin token may touch them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.harness import Stack
from tests.integration.test_cli import coalmine


def channel(stack: Stack) -> str:
    body = {"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook"}
    response = stack.admin().post("/api/v1/admin/channels", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_rule_is_created_listed_in_trial_order_changed_and_deleted(stack: Stack) -> None:
    hook = channel(stack)
    later = {
        "type": "error",
        "name": "payment.*",
        "mode": "immediate",
        "channels": [hook],
        "priority": 50,
    }
    first = {
        "type": "event",
        "name": "signup",
        "mode": "digest",
        "channels": [hook],
        "digest": {"period": "hourly", "at": "00:15", "timezone": "Europe/Paris"},
        "priority": 10,
    }
    created = [stack.admin().post("/api/v1/admin/routes", json=body) for body in (later, first)]
    assert [r.status_code for r in created] == [201, 201], [r.text for r in created]
    a, b = (r.json() for r in created)
    assert a["quiet_window_seconds"] == 3600 and a["key_id"] is None and a["digest"] is None
    assert b["digest"] == {"period": "hourly", "at": "00:15", "timezone": "Europe/Paris"}

    listed = [r["id"] for r in stack.admin().get("/api/v1/admin/routes").json()["routes"]]
    assert listed.index(b["id"]) < listed.index(a["id"])  # priority 10 before 50

    changed = stack.admin().patch(
        f"/api/v1/admin/routes/{a['id']}", json={"mode": "silent", "quiet_window_seconds": 600}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["mode"], changed.json()["quiet_window_seconds"]) == ("silent", 600)
    assert stack.admin().get(f"/api/v1/admin/routes/{a['id']}").json()["mode"] == "silent"

    for route in (a, b):
        assert stack.admin().delete(f"/api/v1/admin/routes/{route['id']}").status_code == 200
        assert stack.admin().get(f"/api/v1/admin/routes/{route['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"type": "error", "name": "x", "mode": "digest", "channels": ["@"]}, "digest"),
        ({"type": "error", "name": "x", "mode": "immediate"}, "channel"),
        ({"type": "bogus", "name": "x", "mode": "silent"}, "type"),
        ({"type": "error", "name": "", "mode": "silent"}, "name"),
        ({"type": "error", "name": "x", "mode": "loud"}, "mode"),
        (
            {"type": "error", "name": "x", "mode": "silent", "quiet_window_seconds": 5},
            "quiet_window",
        ),
        (
            {
                "type": "error",
                "name": "x",
                "mode": "digest",
                "channels": ["@"],
                "digest": {"at": "25:00"},
            },
            "at",
        ),
        (
            {
                "type": "error",
                "name": "x",
                "mode": "digest",
                "channels": ["@"],
                "digest": {"timezone": "Mars/Olympus"},
            },
            "timezone",
        ),
        (
            {"type": "error", "name": "x", "mode": "immediate", "channels": ["chn_nope"]},
            "unknown channel",
        ),
        ({"type": "error", "name": "x", "mode": "silent", "colour": "red"}, "colour"),
    ],
)
def test_an_invalid_rule_is_refused_with_the_reason(
    stack: Stack, body: dict[str, Any], says: str
) -> None:
    if body.get("channels") == ["@"]:
        body = {**body, "channels": [channel(stack)]}
    response = stack.admin().post("/api/v1/admin/routes", json=body)
    assert response.status_code == 400, response.text
    assert says in response.json()["error"]


def test_only_the_admin_token_manages_rules(stack: Stack) -> None:
    key = stack.create_key("routes-no", scope="read")["key"]
    for token in (None, key, "ch_live_" + "x" * 40):
        assert stack.http(token).get("/api/v1/admin/routes").status_code == 401
        assert stack.http(token).post("/api/v1/admin/routes", json={}).status_code == 401


def test_the_cli_adds_lists_and_deletes_rules(stack: Stack) -> None:
    hook = channel(stack)

    def cli(*args: str) -> Any:
        run = coalmine(stack, "routes", *args, "--json")
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)

    added = cli(
        "add",
        "error",
        "db.*",
        "--mode",
        "digest",
        "--channel",
        hook,
        "--period",
        "daily",
        "--at",
        "08:30",
        "--timezone",
        "America/New_York",
    )
    assert added["digest"] == {"period": "daily", "at": "08:30", "timezone": "America/New_York"}
    assert added["id"] in [r["id"] for r in cli("list")]
    assert cli("delete", added["id"]) == {"id": added["id"], "deleted": True}
    assert added["id"] not in [r["id"] for r in cli("list")]
