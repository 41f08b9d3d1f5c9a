"""/api/v1/admin/keys: create, list, revoke; admin token required; revocation at once."""

from __future__ import annotations

import pytest

from schemas.limits import API_KEY_PREFIX
from tests.conftest import wait_for
from tests.integration.harness import Stack

KEYS = "/api/v1/admin/keys"


@pytest.mark.parametrize("token", [None, "wrong-token-wrong-token", "ch_live_" + "A" * 43])
def test_it_refuses_admin_routes_without_the_admin_token(stack: Stack, token: str | None) -> None:
    client = stack.http(token)
    assert client.get(KEYS).status_code == 401
    assert client.post(KEYS, json={"name": "x"}).status_code == 401
    assert client.delete(f"{KEYS}/key_0000").status_code == 401


def test_it_refuses_an_ingest_key_on_admin_routes(stack: Stack, ingest_key: str) -> None:
    assert stack.http(ingest_key).get(KEYS).status_code == 401


def test_it_creates_a_key_shown_once_and_lists_it_without_secrets(stack: Stack) -> None:
    created = stack.create_key("billing-cron")
    assert created["key"].startswith(API_KEY_PREFIX)
    assert len(created["key"]) - len(API_KEY_PREFIX) >= 32
    listed = stack.admin().get(KEYS).json()["keys"]
    mine = [k for k in listed if k["id"] == created["id"]]
    assert mine and mine[0]["name"] == "billing-cron" and mine[0]["revoked_at"] is None
    assert created["key"] not in stack.admin().get(KEYS).text
    assert all("key" not in k and "key_hash" not in k for k in listed)


@pytest.mark.parametrize(
    "body", [b"{}", b'{"name": ""}', b"nope", b'{"name": "x", "scope": "root"}']
)
def test_it_refuses_a_bad_key_request(stack: Stack, body: bytes) -> None:
    assert stack.admin().post(KEYS, content=body).status_code == 400


def test_it_refuses_a_revoked_key_at_once(stack: Stack) -> None:
    created = stack.create_key("to-revoke")
    client = stack.http(created["key"])
    assert (
        client.post("/api/v1/events", json={"events": [{"type": "event", "name": "x"}]}).status_code
        == 202
    )
    revoked = stack.admin().delete(f"{KEYS}/{created['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert (
        client.post("/api/v1/events", json={"events": [{"type": "event", "name": "x"}]}).status_code
        == 401
    )
    assert stack.admin().delete(f"{KEYS}/{created['id']}").status_code == 200  # idempotent


def test_it_answers_404_for_an_unknown_key_id(stack: Stack) -> None:
    assert stack.admin().delete(f"{KEYS}/key_doesnotexist").status_code == 404


def test_it_reports_when_a_key_was_last_used(stack: Stack) -> None:
    created = stack.create_key("used")
    stack.http(created["key"]).post(
        "/api/v1/events", json={"events": [{"type": "event", "name": "u"}]}
    )

    def last_used() -> float | None:
        keys = stack.admin().get(KEYS).json()["keys"]
        return next(k["last_used_at"] for k in keys if k["id"] == created["id"])

    wait_for(last_used, 30, "last_used_at to be published by the key_usage agent")
