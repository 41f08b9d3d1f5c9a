"""Signing in to the web UI with a plain HTTP client, as a browser does: the sign-in form's
CSRF token and pre-session cookie, then the session cookie."""

from __future__ import annotations

import re

import httpx

from tests.integration.harness import Stack

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found[1]


def signed_in(stack: Stack, token: str) -> httpx.Client:
    client = httpx.Client(base_url=stack.url, follow_redirects=False, timeout=30)
    form = client.get("/login")
    assert form.status_code == 200, form.text
    answer = client.post("/login", data={"csrf": csrf_of(form.text), "token": token})
    assert answer.status_code == 303, answer.text
    return client
