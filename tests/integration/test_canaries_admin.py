"""/api/v1/admin/canaries and /api/v1/admin/channels against the running stack: create, list,
change, pause, delete; refusals; the admin token on every route; secrets never listed."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest

from ingest_api.admin_canaries import CHANNEL_WAIT_S
from schemas.canaries import (
    CANARY_NAME_MAX_CHARS,
    GRACE_MAX_S,
    GRACE_MIN_S,
    INTERVAL_MAX_S,
    INTERVAL_MIN_S,
    MAX_CHANNELS_PER_CANARY,
)
from schemas.times import epoch_of
from tests.conftest import wait_for
from tests.integration.harness import Stack

CANARIES = "/api/v1/admin/canaries"
# Every time in an admin or history answer: ISO 8601 UTC with milliseconds.
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
CHANNELS = "/api/v1/admin/channels"
# secrets.token_urlsafe: 16 bytes (128 bits) is 22 characters.
TOKEN_MIN_CHARS = 22
INTERVAL = 3600  # long: nothing here should go late or down while the tests run
SLACK_PATH = "/services/T0000/B0000/" + "s3cr3t" * 4
EMAIL_PASSWORD = "hunter2-" + "p" * 16


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_canary(stack: Stack, **spec: Any) -> dict[str, Any]:
    body = {"name": unique("job"), "interval_seconds": INTERVAL, **spec}
    response = stack.admin().post(CANARIES, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def create_channel(stack: Stack, **body: Any) -> dict[str, Any]:
    response = stack.admin().post(CHANNELS, json={"name": unique("chan"), **body})
    assert response.status_code == 201, response.text
    return response.json()


def webhook(stack: Stack) -> dict[str, Any]:
    return create_channel(stack, kind="webhook", url="http://127.0.0.1:9/hook")


def listed(stack: Stack, canary_id: str) -> dict[str, Any] | None:
    response = stack.admin().get(CANARIES)
    assert response.status_code == 200, response.text
    return next((c for c in response.json()["canaries"] if c["id"] == canary_id), None)


def checked_in(stack: Stack, canary_id: str) -> dict[str, Any]:
    """The canary as listed, once ClickHouse has its check-in (the list reads it there)."""
    return wait_for(
        lambda: (c := listed(stack, canary_id)) and c["last_checkin_at"] is not None and c,
        30,
        f"the check-in of {canary_id} in the list",
    )


# --- creating --------------------------------------------------------------------------------
def test_it_creates_a_canary_with_an_unguessable_token_and_its_checkin_path(stack: Stack) -> None:
    channel = webhook(stack)
    name = unique("nightly-backup")
    response = stack.admin().post(
        CANARIES,
        json={
            "name": name,
            "interval_seconds": 300,
            "grace_seconds": 60,
            "channels": [channel["id"]],
        },
    )
    assert response.status_code == 201
    created = response.json()
    assert created["id"] and created["name"] == name
    assert (created["interval_seconds"], created["grace_seconds"]) == (300, 60)
    assert created["channels"] == [channel["id"]]
    assert (created["status"], created["paused"], created["last_checkin_at"]) == (
        "new",
        False,
        None,
    )
    assert epoch_of(created["next_due_at"]) == pytest.approx(epoch_of(created["created_at"]) + 300)
    for moment in ("created_at", "next_due_at", "down_after"):
        assert ISO_MS.fullmatch(created[moment]), created[moment]
    assert len(created["token"]) >= TOKEN_MIN_CHARS
    assert created["checkin_path"] == f"/checkin/{created['token']}"
    assert create_canary(stack)["token"] != created["token"]


def test_it_never_shows_the_token_again(stack: Stack) -> None:
    created = create_canary(stack)
    assert created["token"] not in stack.admin().get(CANARIES).text
    assert created["token"] not in stack.admin().get(f"{CANARIES}/{created['id']}").text


def test_it_accepts_the_limits_themselves(stack: Stack) -> None:
    create_canary(stack, interval_seconds=INTERVAL_MIN_S, grace_seconds=GRACE_MAX_S)
    create_canary(stack, interval_seconds=INTERVAL_MAX_S, grace_seconds=GRACE_MIN_S)
    create_canary(stack, name="n" * CANARY_NAME_MAX_CHARS)


BAD_CANARIES = [
    pytest.param({"interval_seconds": INTERVAL_MIN_S - 1}, id="interval-0"),
    pytest.param({"interval_seconds": INTERVAL_MAX_S + 1}, id="interval-over-max"),
    pytest.param({"interval_seconds": "60"}, id="interval-a-string"),
    pytest.param({"grace_seconds": GRACE_MIN_S - 1}, id="grace-negative"),
    pytest.param({"grace_seconds": GRACE_MAX_S + 1}, id="grace-over-max"),
    pytest.param({"name": None}, id="name-missing"),
    pytest.param({"name": ""}, id="name-empty"),
    pytest.param({"name": "n" * (CANARY_NAME_MAX_CHARS + 1)}, id="name-too-long"),
    pytest.param({"interval_seconds": None}, id="interval-missing"),
    pytest.param({"max_runtime_seconds": 0}, id="max-runtime-0"),
    pytest.param({"channels": ["chn_x"] * (MAX_CHANNELS_PER_CANARY + 1)}, id="too-many-channels"),
    pytest.param({"intervall_seconds": 60}, id="unknown-field"),
]


def _without_nones(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize("change", BAD_CANARIES)
def test_it_refuses_a_bad_canary(stack: Stack, change: dict[str, Any]) -> None:
    body = _without_nones({"name": unique("bad"), "interval_seconds": 60, **change})
    response = stack.admin().post(CANARIES, json=body)
    assert response.status_code == 400
    assert response.json()["error"]


def test_it_refuses_malformed_json_for_a_canary(stack: Stack) -> None:
    assert stack.admin().post(CANARIES, content=b'{"name": ').status_code == 400


def test_it_refuses_a_canary_with_an_unknown_channel(stack: Stack) -> None:
    known = webhook(stack)
    started = time.monotonic()
    response = stack.admin().post(
        CANARIES,
        json={"name": unique("bad"), "interval_seconds": 60, "channels": [known["id"], "chn_nope"]},
    )
    assert response.status_code == 400
    assert "chn_nope" in response.json()["error"] and known["id"] not in response.json()["error"]
    # It waits a moment for a channel created through another API process, no longer.
    assert time.monotonic() - started < CHANNEL_WAIT_S + 5


# --- listing and reading ---------------------------------------------------------------------
def test_it_lists_a_fresh_canary_as_new(stack: Stack) -> None:
    created = create_canary(stack, grace_seconds=30)
    shown = listed(stack, created["id"])
    assert shown is not None
    assert (shown["status"], shown["last_checkin_at"], shown["last_message"]) == ("new", None, None)
    assert (shown["name"], shown["interval_seconds"], shown["grace_seconds"]) == (
        created["name"],
        INTERVAL,
        30,
    )
    assert epoch_of(shown["next_due_at"]) == pytest.approx(
        epoch_of(created["created_at"]) + INTERVAL
    )


def test_it_lists_a_checked_in_canary_as_up_with_its_last_checkin(stack: Stack) -> None:
    created = create_canary(stack)
    before = time.time()
    response = stack.http().get(created["checkin_path"], params={"message": "42 rows"})
    after = time.time()
    assert response.status_code == 200

    shown = checked_in(stack, created["id"])

    assert shown["status"] == "up"
    assert before - 0.001 <= epoch_of(shown["last_checkin_at"]) <= after  # to the millisecond
    assert ISO_MS.fullmatch(shown["last_checkin_at"])
    assert shown["last_message"] == "42 rows"
    assert epoch_of(shown["next_due_at"]) == pytest.approx(
        epoch_of(shown["last_checkin_at"]) + INTERVAL
    )
    one = stack.admin().get(f"{CANARIES}/{created['id']}")
    assert one.status_code == 200
    assert {k: one.json()[k] for k in ("status", "last_checkin_at", "last_message")} == {
        k: shown[k] for k in ("status", "last_checkin_at", "last_message")
    }


def test_it_reads_one_canary(stack: Stack) -> None:
    created = create_canary(stack)
    response = stack.admin().get(f"{CANARIES}/{created['id']}")
    assert response.status_code == 200
    assert response.json()["id"] == created["id"] and response.json()["status"] == "new"
    assert stack.admin().get(f"{CANARIES}/can_doesnotexist").status_code == 404


# --- changing --------------------------------------------------------------------------------
def test_it_changes_interval_grace_channels_and_name(stack: Stack) -> None:
    created, channel = create_canary(stack), webhook(stack)
    change = {
        "name": unique("renamed"),
        "interval_seconds": 120,
        "grace_seconds": 15,
        "channels": [channel["id"]],
    }
    response = stack.admin().patch(f"{CANARIES}/{created['id']}", json=change)
    assert response.status_code == 200
    for shown in (response.json(), stack.admin().get(f"{CANARIES}/{created['id']}").json()):
        assert shown["name"] == change["name"]
        assert (shown["interval_seconds"], shown["grace_seconds"]) == (120, 15)
        assert shown["channels"] == [channel["id"]]
        assert epoch_of(shown["next_due_at"]) == pytest.approx(
            epoch_of(created["created_at"]) + 120
        )
    # Unchanged fields stay as they were; the token still checks in.
    again = stack.admin().patch(f"{CANARIES}/{created['id']}", json={"grace_seconds": 0}).json()
    assert (again["name"], again["interval_seconds"], again["grace_seconds"]) == (
        change["name"],
        120,
        0,
    )
    assert stack.http().get(created["checkin_path"]).status_code == 200


def test_it_pauses_and_resumes_a_canary(stack: Stack) -> None:
    created = create_canary(stack)
    url = f"{CANARIES}/{created['id']}"

    paused = stack.admin().patch(url, json={"paused": True})

    assert paused.status_code == 200
    for shown in (paused.json(), stack.admin().get(url).json(), listed(stack, created["id"])):
        assert shown is not None
        assert (shown["paused"], shown["status"], shown["next_due_at"]) == (True, "paused", None)
    # A paused canary still takes check-ins (recorded, it stays paused).
    assert stack.http().get(created["checkin_path"]).status_code == 200

    resumed = stack.admin().patch(url, json={"paused": False})

    assert resumed.status_code == 200
    for shown in (resumed.json(), stack.admin().get(url).json()):
        assert shown["paused"] is False and shown["status"] != "paused"
        assert shown["next_due_at"] is not None


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"interval_seconds": INTERVAL_MIN_S - 1}, id="interval-0"),
        pytest.param({"interval_seconds": INTERVAL_MAX_S + 1}, id="interval-over-max"),
        pytest.param({"grace_seconds": GRACE_MIN_S - 1}, id="grace-negative"),
        pytest.param({"grace_seconds": GRACE_MAX_S + 1}, id="grace-over-max"),
        pytest.param({"name": ""}, id="name-empty"),
        pytest.param({"paused": "yes"}, id="paused-not-a-bool"),
        pytest.param({"token": "mine"}, id="unknown-field"),
    ],
)
def test_it_refuses_a_bad_change_and_keeps_the_canary(stack: Stack, change: dict[str, Any]) -> None:
    created = create_canary(stack)
    url = f"{CANARIES}/{created['id']}"
    assert stack.admin().patch(url, json=change).status_code == 400
    kept = stack.admin().get(url).json()
    assert (kept["name"], kept["interval_seconds"], kept["grace_seconds"], kept["paused"]) == (
        created["name"],
        created["interval_seconds"],
        created["grace_seconds"],
        False,
    )


def test_it_refuses_a_change_to_an_unknown_channel(stack: Stack) -> None:
    created = create_canary(stack)
    response = stack.admin().patch(f"{CANARIES}/{created['id']}", json={"channels": ["chn_nope"]})
    assert response.status_code == 400 and "chn_nope" in response.json()["error"]


def test_it_answers_404_for_a_change_to_an_unknown_canary(stack: Stack) -> None:
    response = stack.admin().patch(f"{CANARIES}/can_doesnotexist", json={"name": "x"})
    assert response.status_code == 404 and response.json()["error"]


def test_it_answers_a_change_with_where_the_canary_stands(stack: Stack) -> None:
    created = create_canary(stack)
    assert stack.http().get(created["checkin_path"], params={"message": "ran"}).status_code == 200
    before = checked_in(stack, created["id"])

    changed = stack.admin().patch(f"{CANARIES}/{created['id']}", json={"name": unique("renamed")})

    assert changed.status_code == 200
    shown = changed.json()
    assert (shown["status"], shown["last_checkin_at"], shown["last_message"]) == (
        "up",
        before["last_checkin_at"],
        "ran",
    )
    assert shown["next_due_at"] == before["next_due_at"]


# --- deleting --------------------------------------------------------------------------------
def test_it_deletes_a_canary_and_its_token(stack: Stack) -> None:
    created = create_canary(stack)
    url = f"{CANARIES}/{created['id']}"
    assert stack.http().get(created["checkin_path"]).status_code == 200

    response = stack.admin().delete(url)

    assert response.status_code == 200
    assert response.json() == {"id": created["id"], "deleted": True}
    assert stack.admin().get(url).status_code == 404
    assert stack.admin().patch(url, json={"name": "back"}).status_code == 404
    assert stack.admin().delete(url).status_code == 404
    assert listed(stack, created["id"]) is None
    assert stack.http().get(created["checkin_path"]).status_code == 404


# --- the admin token -------------------------------------------------------------------------
def _every_route(client: httpx.Client, canary_id: str, channel_id: str) -> list[httpx.Response]:
    return [
        client.post(CANARIES, json={"name": "x", "interval_seconds": 60}),
        client.get(CANARIES),
        client.get(f"{CANARIES}/{canary_id}"),
        client.patch(f"{CANARIES}/{canary_id}", json={"name": "taken-over"}),
        client.delete(f"{CANARIES}/{canary_id}"),
        client.post(CHANNELS, json={"name": "x", "kind": "webhook", "url": "http://evil.example"}),
        client.get(CHANNELS),
        client.delete(f"{CHANNELS}/{channel_id}"),
    ]


@pytest.mark.parametrize("credential", ["none", "wrong", "ingest-key"])
def test_it_refuses_every_route_without_the_admin_token(stack: Stack, credential: str) -> None:
    created, channel = create_canary(stack), webhook(stack)
    token = {
        "none": None,
        "wrong": stack.settings.admin_token + "x",
        "ingest-key": stack.create_key(unique("not-admin"))["key"],
    }[credential]

    answers = _every_route(stack.http(token), created["id"], channel["id"])

    assert [r.status_code for r in answers] == [401] * len(answers)
    assert all(r.json() == {"error": "the admin token is required"} for r in answers)
    kept = stack.admin().get(f"{CANARIES}/{created['id']}")
    assert kept.status_code == 200 and kept.json()["name"] == created["name"]
    assert any(c["id"] == channel["id"] for c in stack.admin().get(CHANNELS).json()["channels"])


# --- channels --------------------------------------------------------------------------------
def channels_listed(stack: Stack) -> httpx.Response:
    response = stack.admin().get(CHANNELS)
    assert response.status_code == 200
    return response


def test_it_creates_a_webhook_channel_showing_its_generated_secret_once(stack: Stack) -> None:
    created = create_channel(stack, kind="webhook", url="https://example.com/hooks/coalmine")
    assert created["kind"] == "webhook" and created["url"] == "https://example.com/hooks/coalmine"
    assert len(created["secret"]) >= 32
    assert webhook(stack)["secret"] != created["secret"]
    listing = channels_listed(stack)
    assert created["secret"] not in listing.text
    mine = [c for c in listing.json()["channels"] if c["id"] == created["id"]]
    assert mine and "secret" not in mine[0] and mine[0]["url"] == created["url"]


def test_it_keeps_a_webhook_secret_given_by_the_client_out_of_the_list(stack: Stack) -> None:
    secret = "given-" + uuid.uuid4().hex
    created = create_channel(stack, kind="webhook", url="http://127.0.0.1:9/h", secret=secret)
    assert created["secret"] == secret
    assert secret not in channels_listed(stack).text


def test_it_creates_a_slack_channel_showing_only_the_host_of_its_url(stack: Stack) -> None:
    created = create_channel(stack, kind="slack", url="https://hooks.slack.com" + SLACK_PATH)
    for shown in (created, *channels_listed(stack).json()["channels"]):
        if shown["id"] == created["id"]:
            assert (shown["kind"], shown["url_host"]) == ("slack", "hooks.slack.com")
    assert SLACK_PATH not in channels_listed(stack).text
    assert "s3cr3t" not in str(created)


def test_it_creates_an_email_channel_without_showing_its_password(stack: Stack) -> None:
    created = create_channel(
        stack,
        kind="email",
        to=["ops@example.com"],
        host="smtp.example.com",
        username="coalmine",
        password=EMAIL_PASSWORD,
    )
    assert (created["kind"], created["to"], created["host"]) == (
        "email",
        ["ops@example.com"],
        "smtp.example.com",
    )
    assert "password" not in created
    assert EMAIL_PASSWORD not in channels_listed(stack).text


BAD_CHANNELS = [
    pytest.param(
        b'{"name": "x", "kind": "pager", "url": "https://example.com"}', id="unknown-kind"
    ),
    pytest.param(b'{"name": "x", "url": "https://example.com"}', id="kind-missing"),
    pytest.param(b'{"name": "x", "kind": "webhook"}', id="webhook-url-missing"),
    pytest.param(
        b'{"name": "x", "kind": "webhook", "url": "ftp://example.com/h"}', id="webhook-not-http"
    ),
    pytest.param(
        b'{"name": "x", "kind": "slack", "url": "hooks.slack.com/x"}', id="slack-not-http"
    ),
    pytest.param(
        b'{"name": "x", "kind": "webhook", "url": "https://e.com", "retries": 3}',
        id="unknown-field",
    ),
    pytest.param(
        b'{"name": "x", "kind": "email", "host": "smtp.example.com"}', id="email-to-missing"
    ),
    pytest.param(b'{"kind": "webhook", "url": "https://example.com"}', id="name-missing"),
    pytest.param(b'{"name": "", "kind": "webhook", "url": "https://example.com"}', id="name-empty"),
    pytest.param(b'["webhook"]', id="not-an-object"),
    pytest.param(b'{"name": "x", "kind": ', id="malformed-json"),
]


@pytest.mark.parametrize("body", BAD_CHANNELS)
def test_it_refuses_a_bad_channel(stack: Stack, body: bytes) -> None:
    response = stack.admin().post(
        CHANNELS, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]


def test_it_deletes_a_channel(stack: Stack) -> None:
    created = webhook(stack)
    response = stack.admin().delete(f"{CHANNELS}/{created['id']}")
    assert response.status_code == 200 and response.json() == {"id": created["id"], "deleted": True}
    assert stack.admin().delete(f"{CHANNELS}/{created['id']}").status_code == 404
    assert all(c["id"] != created["id"] for c in channels_listed(stack).json()["channels"])
    refused = stack.admin().post(
        CANARIES, json={"name": unique("job"), "interval_seconds": 60, "channels": [created["id"]]}
    )
    assert refused.status_code == 400


# --- times -----------------------------------------------------------------------------------
def test_a_down_canary_says_since_when_and_every_time_is_iso_with_milliseconds(
    stack: Stack,
) -> None:
    created = create_canary(stack, grace_seconds=30)
    url = f"{CANARIES}/{created['id']}"
    assert (
        stack.http().post(f"{created['checkin_path']}/fail", content=b"disk full").status_code
        == 200
    )

    down = wait_for(
        lambda: (c := stack.admin().get(url).json())["status"] == "down" and c,
        30,
        "the canary down",
    )

    # The store writes check-ins and flips in separate batches: wait until both are there.
    history = wait_for(
        lambda: (
            (h := stack.admin().get(f"/api/v1/query/canaries/{created['id']}/history").json())[
                "checkins"
            ]
            and h["flips"]
            and h
        ),
        30,
        "the check-in and the flip in the history",
    )
    [flip] = history["flips"]
    assert (flip["status"], flip["reason"]) == ("down", "failed")
    # Read again now that the store has both: the view's last check-in comes from the store
    # (canary_latest), which may not have had it when the worker's flip was already seen.
    down = stack.admin().get(url).json()
    assert down["down_after"] == flip["at"]  # while down: when it went down
    [checkin] = history["checkins"]
    assert checkin["message"] == "disk full"
    moments = (
        down["created_at"],
        down["down_after"],
        down["last_checkin_at"],
        flip["at"],
        checkin["at"],
    )
    for moment in (*moments, history["from"], history["to"]):
        assert ISO_MS.fullmatch(moment), moment
    key = stack.create_key(unique("times"))
    channel = webhook(stack)
    for moment in (key["created_at"], channel["created_at"]):
        assert ISO_MS.fullmatch(moment), moment


def test_it_refuses_a_second_canary_of_the_same_name_with_409(stack: Stack) -> None:
    first = create_canary(stack)
    again = stack.admin().post(CANARIES, json={"name": first["name"], "interval_seconds": 60})
    assert again.status_code == 409 and first["id"] in again.json()["error"]
    other = create_canary(stack)
    renamed = stack.admin().patch(f"{CANARIES}/{other['id']}", json={"name": first["name"]})
    assert renamed.status_code == 409
    assert stack.admin().get(f"{CANARIES}/{other['id']}").json()["name"] == other["name"]
    # Its own name again is no conflict; a deleted canary's name is free.
    assert (
        stack.admin().patch(f"{CANARIES}/{first['id']}", json={"name": first["name"]}).status_code
        == 200
    )
    assert stack.admin().delete(f"{CANARIES}/{first['id']}").status_code == 200
    assert (
        stack.admin()
        .post(CANARIES, json={"name": first["name"], "interval_seconds": 60})
        .status_code
        == 201
    )
