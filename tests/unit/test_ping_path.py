"""ingest_api.ping.PingPath: every Healthchecks ping URL form taken apart; anything else is
an answer (404, or 400 for an exit status over 255), never an exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_api.ping import PingPath

TOKEN = "A" * 32
UUID = "0f2c9a6e-5d1b-4c2a-9e8f-7a6b5c4d3e2f"
KEY = "k" * 22


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/ping/{TOKEN}", (TOKEN, "", "", "success", None)),
        (f"/ping/{UUID}/start", (UUID, "", "", "start", None)),
        (f"/ping/{UUID}/fail/", (UUID, "", "", "fail", None)),
        (f"/ping/{TOKEN}/log", (TOKEN, "", "", "log", None)),
        (f"/ping/{TOKEN}/0", (TOKEN, "", "", "success", 0)),
        (f"/ping/{TOKEN}/255", (TOKEN, "", "", "fail", 255)),
        (f"/ping/{KEY}/backup", ("", KEY, "backup", "success", None)),
        (f"/ping/{KEY}/backup/start", ("", KEY, "backup", "start", None)),
        (f"/ping/{KEY}/start", ("", KEY, "start", "success", None)),  # a slug named "start"
        (f"/ping/{KEY}/backup/7", ("", KEY, "backup", "fail", 7)),
    ],
)
def test_it_takes_every_form_apart(path: str, expected: tuple[object, ...]) -> None:
    ping = PingPath(path)
    assert ping.problem is None
    assert (ping.token, ping.key, ping.slug, ping.kind, ping.exit_status) == expected


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        (f"/ping/{TOKEN}/256", (400, "invalid url format")),
        (f"/ping/{TOKEN}/start/again", (404, "not found")),
        (f"/ping/{TOKEN}/nonsense", (404, "not found")),
        (f"/ping/{TOKEN}/-1", (404, "not found")),
        ("/ping/", (404, "not found")),
        (f"/ping/{KEY}", (404, "not found")),
    ],
)
def test_it_answers_what_is_not_a_ping_url(path: str, problem: tuple[int, str]) -> None:
    assert PingPath(path).problem == problem


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_no_path_raises(rest: str) -> None:
    ping = PingPath("/ping/" + rest)
    assert ping.problem is None or ping.problem[0] in (400, 404)
