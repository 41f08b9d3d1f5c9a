"""Hostile requests against the running service: each gets the contract's 4xx (never a 5xx
nor a hang), and the service goes on answering good requests (a 202 after each)."""

from __future__ import annotations

import socket
import time

import pytest

from ingest_api.checkin import CHECKIN_RAW_BODY_MAX_BYTES
from schemas.canaries import CHECKIN_MESSAGE_MAX_CHARS
from tests.conftest import wait_for
from tests.integration.harness import Stack


def good_batch(stack: Stack, key: str) -> None:
    response = stack.http(key).post(
        "/api/v1/events", json={"events": [{"type": "event", "name": "still.serving"}]}
    )
    assert response.status_code == 202, response.text


DEEP = 10_000
HOSTILE_BODIES = [
    pytest.param(
        b'{"events":[{"type":"event","name":"a","meta":'
        + b'{"a":' * DEEP
        + b"1"
        + b"}" * DEEP
        + b"}]}",
        id="meta-10000-deep",
    ),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="array-100000-deep"),
    pytest.param(
        b'{"events":[{"type":"event","name":"a","value":1' + b"0" * 400 + b"}]}",
        id="integer-400-digits",
    ),
    pytest.param(
        b'{"events":[{"type":"event","name":"a","value":-1e400}]}', id="float-beyond-range"
    ),
    pytest.param(
        b'{"events":[{"type":"event","name":"a","ts":"99999-01-01T00:00:00Z"}]}', id="year-99999"
    ),
    pytest.param(b'{"events":[{"type":"event","name":"\xed\xa0\x80"}]}', id="utf8-surrogate"),
    pytest.param(
        b'{"events":[{"type":"event","name":"a","message":"\\ud800"}]}', id="lone-surrogate-escape"
    ),
    pytest.param(b"\xef\xbb\xbf" + b'{"events":[{"type":"event","name":"a"}]}', id="utf8-bom"),
    pytest.param(b'{"events":[{"type":"event","name":"a"}]}' + b"\x00", id="trailing-nul"),
    pytest.param(
        b'{"events":[{"type":"event","name":"a","meta":{"k":"\xc3"}}]}', id="meta-bad-utf8"
    ),
]


@pytest.mark.parametrize("body", HOSTILE_BODIES)
def test_a_hostile_body_gets_a_400_and_the_service_goes_on(
    stack: Stack, ingest_key: str, body: bytes
) -> None:
    response = stack.http(ingest_key).post(
        "/api/v1/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"}
    good_batch(stack, ingest_key)


def test_a_repeated_key_keeps_its_last_value(stack: Stack, ingest_key: str) -> None:
    name = f"dup-{time.monotonic_ns()}"
    body = b'{"events":[{"type":"event","name":"ignored","name":"%s"}]}' % name.encode()
    assert stack.http(ingest_key).post("/api/v1/events", content=body).status_code == 202
    wait_for(lambda: stack.series_total(name) == 1, 30, "the event under its last name")


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        (
            "/checkin/{token}",
            b'{"message": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
            "application/json",
        ),
        ("/checkin/{token}", b'{"message": 1e400}', "application/json"),
        ("/checkin/{token}", b"x" * (CHECKIN_RAW_BODY_MAX_BYTES + 1), "text/plain"),
        (
            "/checkin/{token}",
            b"x" * (CHECKIN_RAW_BODY_MAX_BYTES + 1),
            "application/x-www-form-urlencoded",
        ),
    ],
)
def test_a_hostile_checkin_gets_a_400_in_the_checkin_shape(
    stack: Stack, path: str, body: bytes, content_type: str
) -> None:
    canary = (
        stack.admin()
        .post(
            "/api/v1/admin/canaries",
            json={"name": f"hostile-{time.monotonic_ns()}", "interval_seconds": 3600},
        )
        .json()
    )
    response = stack.http().post(
        path.format(token=canary["token"]), content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 400, response.text
    assert response.json()["status"] == "error"
    assert stack.http().get(f"/checkin/{canary['token']}").status_code == 200


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"\xff\xfe\xfd", "text/plain", "\ufffd\ufffd\ufffd"),
        (b"x" * 20_000, "application/x-www-form-urlencoded", "x" * CHECKIN_MESSAGE_MAX_CHARS),
    ],
)
def test_a_raw_checkin_body_is_its_message_read_leniently(
    stack: Stack, body: bytes, content_type: str, message: str
) -> None:
    canary = (
        stack.admin()
        .post(
            "/api/v1/admin/canaries",
            json={"name": f"hostile-{time.monotonic_ns()}", "interval_seconds": 3600},
        )
        .json()
    )
    response = stack.http().post(
        f"/checkin/{canary['token']}", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 200 and response.json()["received_message"] == message


def test_percent_encoded_bytes_that_are_not_utf8_become_replacement_characters(
    stack: Stack,
) -> None:
    """As browsers and parse_qs read them: the check-in counts, its message shows U+FFFD."""
    canary = (
        stack.admin()
        .post(
            "/api/v1/admin/canaries",
            json={"name": f"hostile-{time.monotonic_ns()}", "interval_seconds": 3600},
        )
        .json()
    )
    body = b"message=ok%ff%fe"
    response = stack.http().post(
        f"/checkin/{canary['token']}",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200 and response.json()["received_message"] == "ok\ufffd\ufffd"


def _raw(stack: Stack) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", stack.settings.port), timeout=30)
    return sock


def test_a_stalled_body_is_cut_off_with_408_while_others_are_served(
    stack: Stack, ingest_key: str
) -> None:
    stalled = [_raw(stack) for _ in range(20)]
    for sock in stalled:
        sock.sendall(
            b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ingest_key.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + b'{"events":['
        )  # fmt: skip
    good_batch(stack, ingest_key)  # twenty stalled uploads do not block anyone
    for sock in stalled:
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            assert chunk, "closed without an answer"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
        sock.close()
    good_batch(stack, ingest_key)


def test_garbage_on_the_wire_does_not_take_the_server_down(stack: Stack, ingest_key: str) -> None:
    for junk in (
        b"\x16\x03\x01\x02\x00" + b"\x00" * 100,
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /api/v1/events HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"\r\n" * 1000,
    ):
        sock = _raw(stack)
        sock.sendall(junk)
        sock.settimeout(10)
        try:
            sock.recv(4096)
        except (TimeoutError, ConnectionResetError):
            pass
        sock.close()
    good_batch(stack, ingest_key)
