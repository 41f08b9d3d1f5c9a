"""The web UI over HTTP against the running stack: sign-in and its cookie, CSRF on every form,
the security headers, read-only sessions, hostile names on every page, and the forms making
their changes through the admin API."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from html.parser import HTMLParser

import httpx
import pytest

from ingest_api.ui.session import LOGIN_COOKIE, SESSION_COOKIE
from schemas.limits import MESSAGE_MAX_CHARS, NAME_MAX_CHARS
from tests.conftest import wait_for
from tests.integration.harness import Stack
from tests.integration.ui_client import csrf_of, signed_in

PAGES = ("/", "/canaries", "/canaries/new", "/events", "/events/errors", "/admin")
HOSTILE_NAMES = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)",
    "\u202eevil\u202c \u2067x\u2069 \u200f",
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class _Tags(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.bad: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("img", "iframe") or (
            tag == "script" and dict(attrs).get("src") != "/ui-assets/ui.js"
        ):
            self.bad.append(tag)
        self.bad += [f"{tag}[{name}]" for name, _ in attrs if name.startswith("on")]


def assert_inert(html: str) -> None:
    assert _Tags(html).bad == []
    assert not any(c in html for c in "\u202e\u2067\u200f")


def test_it_sends_a_visitor_without_a_session_to_sign_in(stack: Stack) -> None:
    client = httpx.Client(base_url=stack.url, follow_redirects=False)
    for path in (*PAGES, "/ui/live", "/canaries/can_x"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/login", path
    forged = {SESSION_COOKIE: "eyJyIjoiYWRtaW4iLCJrIjoiIiwiZSI6OTk5OTk5OTk5OTksIm4iOiJ4In0.forged"}
    assert client.get("/", cookies=forged).status_code == 303


def test_it_signs_in_with_the_admin_token_into_a_strict_httponly_cookie(stack: Stack) -> None:
    client = httpx.Client(base_url=stack.url, follow_redirects=False)
    form = client.get("/login")
    answer = client.post(
        "/login", data={"csrf": csrf_of(form.text), "token": stack.settings.admin_token}
    )
    assert answer.status_code == 303
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")
    )
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="):
        assert flag in cookie
    assert stack.settings.admin_token not in cookie
    page = client.get("/")
    assert page.status_code == 200 and "Overview" in page.text


def test_it_refuses_a_wrong_token_and_a_sign_in_without_its_csrf_token(stack: Stack) -> None:
    client = httpx.Client(base_url=stack.url, follow_redirects=False)
    form = client.get("/login")
    wrong = client.post("/login", data={"csrf": csrf_of(form.text), "token": "not-the-token"})
    assert wrong.status_code == 401 and SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    bare = httpx.Client(base_url=stack.url, follow_redirects=False)  # no pre-session cookie
    refused = bare.post(
        "/login", data={"csrf": csrf_of(form.text), "token": stack.settings.admin_token}
    )
    assert refused.status_code == 403 and SESSION_COOKIE not in refused.headers.get(
        "set-cookie", ""
    )
    assert LOGIN_COOKIE in client.cookies


def test_every_page_has_a_strict_policy_and_no_asset_from_elsewhere(stack: Stack) -> None:
    client = signed_in(stack, stack.settings.admin_token)
    for path in PAGES:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:500])
        policy = answer.headers["content-security-policy"]
        assert (
            "default-src 'none'" in policy
            and "script-src 'self'" in policy
            and "unsafe" not in policy
        )
        assert answer.headers["x-frame-options"] == "DENY"
        # Nothing the browser would load comes from elsewhere. (Text may hold URLs: a
        # webhook channel's, on the admin page, is the user's own data, not an asset.)
        loaded = re.findall(
            r"<(?:script|link|img|iframe|source|embed|object)\b[^>]*\b(?:src|href|data)=\"([^\"]*)\"",
            answer.text,
        )
        assert any(url.startswith("/ui-assets/") for url in loaded), (path, loaded)  # it sees them
        assert not [url for url in loaded if re.match(r"(?i)(https?:)?//", url)], (path, loaded)
    for asset in ("/ui-assets/ui.css", "/ui-assets/ui.js"):
        assert client.get(asset).status_code == 200
    assert client.get("/ui-assets/../app.py").status_code == 404


def test_every_form_needs_its_session_csrf_token(stack: Stack) -> None:
    client = signed_in(stack, stack.settings.admin_token)
    name = unique("csrf")
    for token in ("", "wrong", csrf_of(signed_in(stack, stack.settings.admin_token).get("/").text)):
        answer = client.post("/canaries", data={"csrf": token, "name": name, "interval": "1h"})
        assert answer.status_code == 403
    assert client.post("/admin/keys", data={"name": name}).status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    listed = stack.admin().get("/api/v1/admin/canaries").json()["canaries"]
    assert not any(c["name"] == name for c in listed)


def test_a_read_key_gets_a_read_only_view_that_ends_with_the_key(stack: Stack) -> None:
    key = stack.create_key(unique("reader"), scope="read")
    client = signed_in(stack, key["key"])
    for path in ("/", "/canaries", "/events"):
        page = client.get(path)
        assert (
            page.status_code == 200
            and 'href="/admin"' not in page.text
            and "New canary" not in page.text
        )
    assert client.get("/admin").status_code == 403
    assert client.get("/canaries/new").status_code == 403
    csrf = csrf_of(client.get("/").text)
    assert client.post("/admin/keys", data={"csrf": csrf, "name": "nope"}).status_code == 403
    assert stack.admin().delete(f"/api/v1/admin/keys/{key['id']}").status_code == 200
    assert client.get("/").status_code == 303  # revoked: signed out


def test_an_ingest_key_cannot_sign_in(stack: Stack, ingest_key: str) -> None:
    client = httpx.Client(base_url=stack.url, follow_redirects=False)
    form = client.get("/login")
    assert (
        client.post("/login", data={"csrf": csrf_of(form.text), "token": ingest_key}).status_code
        == 401
    )


def test_the_forms_create_pause_resume_and_delete_a_canary_through_the_admin_api(
    stack: Stack,
) -> None:
    client = signed_in(stack, stack.settings.admin_token)
    csrf = csrf_of(client.get("/canaries/new").text)
    name = unique("ui-job")
    bad = client.post("/canaries", data={"csrf": csrf, "name": name, "interval": "soon"})
    assert bad.status_code == 400 and "interval" in bad.text
    created = client.post(
        "/canaries", data={"csrf": csrf, "name": name, "interval": "1h", "grace": "5m"}
    )
    assert created.status_code == 201
    assert "/checkin/" in created.text and "shown only this once" in created.text
    [canary] = [
        c
        for c in stack.admin().get("/api/v1/admin/canaries").json()["canaries"]
        if c["name"] == name
    ]
    assert canary["interval_seconds"] == 3600 and canary["grace_seconds"] == 300
    taken = client.post("/canaries", data={"csrf": csrf, "name": name, "interval": "1h"})
    assert taken.status_code == 409 and "exists already" in taken.text
    detail = client.get(f"/canaries/{canary['id']}")
    assert (
        detail.status_code == 200
        and "shown only this once" not in detail.text
        and "<token>" in detail.text.replace("&lt;token&gt;", "<token>")
    )
    for action, paused in (("pause", True), ("resume", False)):
        answer = client.post(f"/canaries/{canary['id']}/{action}", data={"csrf": csrf})
        assert answer.status_code == 303
        assert (
            stack.admin().get(f"/api/v1/admin/canaries/{canary['id']}").json()["paused"] is paused
        )
    assert (
        client.post(
            f"/canaries/{canary['id']}/snooze", data={"csrf": csrf, "minutes": "7"}
        ).status_code
        == 400
    )  # not one of the page's choices
    snoozed = client.post(f"/canaries/{canary['id']}/snooze", data={"csrf": csrf, "minutes": "30"})
    assert snoozed.status_code == 303
    [window] = [
        w
        for w in stack.admin().get("/api/v1/admin/windows").json()["windows"]
        if w["canaries"] == [canary["id"]]
    ]
    length = dt.datetime.fromisoformat(window["ends_at"]) - dt.datetime.fromisoformat(
        window["starts_at"]
    )
    assert (length, window["state"], window["comment"]) == (
        dt.timedelta(minutes=30),
        "open",
        "snoozed from the web UI",
    )
    page = client.get(f"/canaries/{canary['id']}").text
    assert 'action="/canaries/' + canary["id"] + '/snooze"' in page
    edited = client.post(
        f"/canaries/{canary['id']}/edit", data={"csrf": csrf, "name": name + "-x", "interval": "2h"}
    )
    assert edited.status_code == 303
    assert stack.admin().get(f"/api/v1/admin/canaries/{canary['id']}").json()["name"] == name + "-x"
    assert client.post(f"/canaries/{canary['id']}/delete", data={"csrf": csrf}).status_code == 303
    assert stack.admin().get(f"/api/v1/admin/canaries/{canary['id']}").status_code == 404
    assert client.get(f"/canaries/{canary['id']}").status_code == 404


def test_the_admin_forms_create_and_revoke_a_key_and_a_channel(stack: Stack) -> None:
    client = signed_in(stack, stack.settings.admin_token)
    csrf = csrf_of(client.get("/admin").text)
    name = unique("ui-key")
    page = client.post("/admin/keys", data={"csrf": csrf, "name": name, "scope": "ingest"})
    assert page.status_code == 200 and "shown only this once" in page.text
    [key] = [k for k in stack.admin().get("/api/v1/admin/keys").json()["keys"] if k["name"] == name]
    assert 'value="ch_live_' in page.text
    assert client.post(f"/admin/keys/{key['id']}/revoke", data={"csrf": csrf}).status_code == 303
    [key] = [k for k in stack.admin().get("/api/v1/admin/keys").json()["keys"] if k["name"] == name]
    assert key["revoked_at"] is not None
    channel_name = unique("ui-hook")
    made = client.post(
        "/admin/channels",
        data={
            "csrf": csrf,
            "name": channel_name,
            "kind": "webhook",
            "url": "http://127.0.0.1:9/hook",
        },
    )
    assert made.status_code == 200 and "signing secret" in made.text
    [channel] = [
        c
        for c in stack.admin().get("/api/v1/admin/channels").json()["channels"]
        if c["name"] == channel_name
    ]
    tested = client.post(f"/admin/channels/{channel['id']}/test", data={"csrf": csrf})
    assert tested.status_code == 200 and "failed" in tested.text  # nothing listens on port 9
    assert (
        client.post(f"/admin/channels/{channel['id']}/delete", data={"csrf": csrf}).status_code
        == 303
    )
    assert channel["id"] not in stack.admin().get("/api/v1/admin/channels").text


@pytest.mark.parametrize("hostile", HOSTILE_NAMES)
def test_every_page_escapes_hostile_names_messages_and_meta(
    stack: Stack, ingest_key: str, hostile: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    canary_name = (hostile + tag)[:200]
    event_name = (hostile + tag)[:NAME_MAX_CHARS]
    created = stack.admin().post(
        "/api/v1/admin/canaries", json={"name": canary_name, "interval_seconds": 3600}
    )
    assert created.status_code == 201, created.text
    checkin = httpx.get(
        f"{stack.url}/checkin/{created.json()['token']}", params={"message": hostile}
    )
    assert checkin.status_code == 200
    long_message = (hostile * (MESSAGE_MAX_CHARS // len(hostile) + 1))[:MESSAGE_MAX_CHARS]
    events = [
        {
            "type": kind,
            "name": event_name,
            "message": long_message,
            "value": 1.5,
            "meta": {hostile: hostile},
        }
        for kind in ("event", "error")
    ]
    sent = httpx.post(
        f"{stack.url}/api/v1/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {ingest_key}"},
    )
    assert sent.status_code == 202, sent.text
    stack.create_key(hostile[:100] + tag)
    client = signed_in(stack, stack.settings.admin_token)
    events_page = (
        f"/events?names={httpx.URL('', params={'x': event_name}).query.decode()[2:]}&range=1h"
    )
    wait_for(
        lambda: tag in client.get(events_page).text.split("Newest events")[-1],
        30,
        "the events stored",
    )
    canary_id = created.json()["id"]
    wait_for(
        lambda: (
            "never" not in client.get(f"/canaries/{canary_id}").text.split("Last check-in")[1][:80]
        ),
        30,
        "the check-in stored",
    )
    for path in (*PAGES, events_page, f"/canaries/{canary_id}", f"/canaries/{canary_id}/edit"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert_inert(page.text)
    assert stack.admin().delete(f"/api/v1/admin/canaries/{canary_id}").status_code == 200


def test_live_statuses_answer_json_for_a_session(stack: Stack) -> None:
    client = signed_in(stack, stack.settings.admin_token)
    created = (
        stack.admin()
        .post("/api/v1/admin/canaries", json={"name": unique("live"), "interval_seconds": 3600})
        .json()
    )
    state = client.get("/ui/live", params={"ids": f"{created['id']},can_nope"}).json()
    assert state["ok"] and state["canaries"][created["id"]]["status"] == "new"
    assert set(state["canaries"]) == {created["id"]}
    assert set(state["counts"]) >= {"down", "up", "new", "late", "paused"}
    stack.admin().delete(f"/api/v1/admin/canaries/{created['id']}")
