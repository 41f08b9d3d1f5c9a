"""Healthchecks-compatible ping URLs (ingest_api/ping.py) against the running stack: every
form, its answers, bodies as messages, run ids and durations, slugs with the ping key and
`?create=1`, beside an untouched /checkin/<token>."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from ingest_api.ping import TRUNCATED
from tests.conftest import wait_for
from tests.integration.harness import Stack
from tests.integration.receivers import HttpReceiver

CANARIES = "/api/v1/admin/canaries"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(stack: Stack, **spec: Any) -> dict[str, Any]:
    body = {"name": unique("ping"), "interval_seconds": 3600, **spec}
    response = stack.admin().post(CANARIES, json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture()
def canary(stack: Stack) -> dict[str, Any]:
    return create(stack)


@pytest.fixture()
def client(stack: Stack) -> httpx.Client:
    return stack.http()


def history(stack: Stack, canary_id: str, count: int) -> list[dict[str, Any]]:
    """The canary's stored check-ins, oldest first, once `count` are in ClickHouse."""

    def stored() -> list[dict[str, Any]] | None:
        response = stack.admin().get(f"/api/v1/query/canaries/{canary_id}/history")
        rows = response.json()["checkins"]
        return rows if len(rows) >= count else None

    return sorted(wait_for(stored, 30, f"{count} check-ins stored"), key=lambda row: row["at"])


def assert_ok(response: httpx.Response, status: int = 200, text: str = "OK") -> None:
    assert (response.status_code, response.text) == (status, text), response.text
    assert response.headers["content-type"].startswith("text/plain")


def test_every_token_form_answers_ok_and_is_stored_with_its_kind(
    stack: Stack, client: httpx.Client, canary: dict[str, Any]
) -> None:
    base = f"/ping/{canary['token']}"
    plain = client.get(base)
    assert_ok(plain)
    assert plain.headers["ping-body-limit"] == "10000"
    assert_ok(client.post(base + "/start"))
    assert_ok(client.get(base + "/log"))
    assert_ok(client.post(base + "/0", content=b"all good"))
    assert_ok(client.get(base + "/fail"))
    assert_ok(client.get(base + "/3"))
    assert_ok(client.get(base + "/"))  # a trailing slash, as Healthchecks takes it
    head = client.head(base)
    assert (head.status_code, head.content) == (200, b"")
    rows = history(stack, canary["id"], 8)
    assert [r["kind"] for r in rows] == [
        "success",
        "start",
        "log",
        "success",
        "fail",
        "fail",
        "success",
        "success",
    ]
    assert rows[3]["message"] == "all good" and rows[3]["duration_s"] is not None
    assert rows[5]["message"] == "exit status 3"


def test_it_answers_bad_pings_as_healthchecks_does(
    client: httpx.Client, canary: dict[str, Any]
) -> None:
    base = f"/ping/{canary['token']}"
    too_high = client.get(base + "/256")
    assert (too_high.status_code, too_high.text) == (400, "invalid url format")
    bad_rid = client.get(base, params={"rid": "not-a-uuid"})
    assert (bad_rid.status_code, bad_rid.text) == (400, "invalid uuid format")
    unknown = client.get(f"/ping/{uuid.uuid4()}")
    assert (unknown.status_code, unknown.text) == (404, "not found")
    assert client.get(base + "/nonsense").status_code == 404
    assert client.get(base + "/start/again").status_code == 404
    assert client.get("/ping/").status_code == 404
    put = client.put(base)
    assert put.status_code == 405 and put.headers["allow"] == "GET, HEAD, POST"
    # The spec's /checkin/<token> stays as it was beside them.
    spec = client.get(f"/checkin/{canary['token']}")
    assert spec.json() == {"status": "success", "message": "Check-in received"}


def test_a_large_body_is_cut_with_a_marker_never_refused(
    stack: Stack, client: httpx.Client, canary: dict[str, Any]
) -> None:
    body = b"x" * 9_990 + "é".encode() * 1000 + b"y" * 2_000_000
    response = client.post(
        f"/ping/{canary['token']}", content=body, headers={"content-type": "text/plain"}
    )
    assert_ok(response)
    (row,) = history(stack, canary["id"], 1)
    marker = TRUNCATED.format(kept="10,000", size=f"{len(body):,}")
    assert row["message"] == "x" * 9_990 + "é" * 5 + marker


def test_run_ids_pair_starts_with_their_finishes(
    stack: Stack, client: httpx.Client, canary: dict[str, Any]
) -> None:
    base = f"/ping/{canary['token']}"
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    for path, rid in (("/start", first), ("/start", second), ("/fail", first), ("", second)):
        assert_ok(client.get(base + path, params={"rid": rid}))
    history(stack, canary["id"], 4)
    runs = stack.admin().get(f"/api/v1/query/canaries/{canary['id']}/runs").json()
    assert [(r["rid"], r["outcome"]) for r in runs["runs"]] == [
        (first, "fail"),
        (second, "success"),
    ]
    assert all(r["duration_s"] >= 0 for r in runs["runs"])
    assert (runs["summary"]["runs"], runs["summary"]["failed"]) == (2, 1)


def test_a_fail_ping_alerts_with_its_body(stack: Stack, client: httpx.Client) -> None:
    with HttpReceiver() as receiver:
        channel = (
            stack.admin()
            .post(
                "/api/v1/admin/channels",
                json={"name": unique("hook"), "kind": "webhook", "url": receiver.url("/hook")},
            )
            .json()
        )
        job = create(stack, channels=[channel["id"]])
        assert_ok(client.post(f"/ping/{job['token']}/1", content=b"disk full"))
        (down,) = receiver.wait_for_requests(1, 15)
        assert (down.json()["reason"], down.json()["message"]) == ("failed", "disk full")


def test_an_imported_canary_keeps_its_healthchecks_uuid(stack: Stack, client: httpx.Client) -> None:
    code = str(uuid.uuid4())
    job = create(stack, token=code)
    assert job["token"] == code and job["ping_path"] == f"/ping/{code}"
    assert_ok(client.get(f"/ping/{code}"))
    assert (
        stack.admin()
        .post(CANARIES, json={"name": unique("dup"), "interval_seconds": 60, "token": code})
        .status_code
        == 409
    )
    assert (
        stack.admin()
        .post(CANARIES, json={"name": unique("bad"), "interval_seconds": 60, "token": "short"})
        .status_code
        == 400
    )


def test_slug_urls_need_the_ping_key_and_create_on_first_ping(
    stack: Stack, client: httpx.Client
) -> None:
    key = stack.admin().get("/api/v1/admin/ping-key").json()["ping_key"]
    assert len(key) == 22
    slug = unique("backup")
    absent = client.get(f"/ping/{key}/{slug}")
    assert (absent.status_code, absent.text) == (404, "not found")
    assert (
        client.get(f"/ping/{'k' * 22}/{slug}", params={"create": "1"}).status_code == 404
    )  # wrong key
    assert_ok(client.get(f"/ping/{key}/{slug}/start", params={"create": "1"}), 201, "Created")
    assert_ok(client.get(f"/ping/{key}/{slug}", params={"create": "1"}))  # exists now
    assert_ok(client.get(f"/ping/{key}/{slug}/log"))
    listed = {c["name"]: c for c in stack.admin().get(CANARIES).json()["canaries"]}
    created = listed[slug]
    assert (created["slug"], created["interval_seconds"], created["grace_seconds"]) == (
        slug,
        86400,
        3600,
    )
    rows = history(stack, created["id"], 3)
    assert [r["kind"] for r in rows] == ["start", "success", "log"]
    # A named canary answers to its name's slug.
    named = create(stack, name=f"Nightly {slug}")
    assert_ok(client.get(f"/ping/{key}/nightly-{slug}"))
    assert named["slug"] == f"nightly-{slug}"


def test_an_ambiguous_slug_answers_409(stack: Stack, client: httpx.Client) -> None:
    key = stack.admin().get("/api/v1/admin/ping-key").json()["ping_key"]
    stem = unique("twin")
    create(stack, name=f"{stem} a")
    create(stack, name=f"{stem}-a")
    response = client.get(f"/ping/{key}/{stem}-a")
    assert (response.status_code, response.text) == (409, "ambiguous slug")
    # An explicit slug that another canary has is refused up front.
    taken = stack.admin().post(
        CANARIES, json={"name": unique("x"), "interval_seconds": 60, "slug": f"{stem}-a"}
    )
    assert taken.status_code == 409
