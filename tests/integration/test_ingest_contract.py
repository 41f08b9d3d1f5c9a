"""POST /api/v1/events against the running stack, case by case from specs/ingest-api.txt."""

from __future__ import annotations

import json
import socket
import uuid

import pytest

from schemas.limits import (
    MAX_BODY_BYTES,
    MAX_EVENTS_PER_BATCH,
    MESSAGE_MAX_CHARS,
    META_MAX_BYTES,
    NAME_MAX_CHARS,
)
from tests.conftest import wait_for
from tests.integration.harness import Stack

EVENTS = "/api/v1/events"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_it_accepts_the_spec_example_and_stores_every_event(stack: Stack, ingest_key: str) -> None:
    signup, payment, failure = unique("signup"), unique("payment"), unique("webhook failed")
    body = {
        "events": [
            {"type": "event", "name": signup},
            {"type": "event", "name": payment, "value": 29, "meta": {"plan": "pro"}},
            {"type": "error", "name": failure, "message": "timeout after 3 retries"},
        ]
    }
    response = stack.http(ingest_key).post(EVENTS, json=body)
    assert response.status_code == 202
    assert response.json() == {"accepted": 3}
    for name in (signup, payment, failure):
        wait_for(lambda name=name: stack.series_total(name) == 1, 30, f"{name} stored")


def test_it_stores_a_full_batch(stack: Stack, ingest_key: str) -> None:
    name = unique("full")
    events = [{"type": "event", "name": name, "value": i} for i in range(MAX_EVENTS_PER_BATCH)]
    response = stack.http(ingest_key).post(EVENTS, json={"events": events})
    assert response.status_code == 202
    assert response.json() == {"accepted": MAX_EVENTS_PER_BATCH}
    wait_for(lambda: stack.series_total(name) == MAX_EVENTS_PER_BATCH, 30, "the batch stored")


def _event(**fields: object) -> dict[str, object]:
    return {"type": "event", "name": "ok", **fields}


BAD_BATCHES = [
    pytest.param(b"{not json", "malformed JSON", id="malformed-json"),
    pytest.param(b"[]", "object", id="not-an-object"),
    pytest.param(b"{}", "events", id="missing-events"),
    pytest.param(b'{"events": []}', "$.events", id="empty-events"),
    pytest.param(
        json.dumps({"events": [_event()] * (MAX_EVENTS_PER_BATCH + 1)}).encode(),
        "$.events",
        id="too-many-events",
    ),
    pytest.param(
        json.dumps({"events": [_event(type="warning")]}).encode(), "$.events[0].type", id="bad-type"
    ),
    pytest.param(json.dumps({"events": [{"type": "event"}]}).encode(), "name", id="name-missing"),
    pytest.param(
        json.dumps({"events": [_event(name="")]}).encode(), "$.events[0].name", id="name-empty"
    ),
    pytest.param(
        json.dumps({"events": [_event(), _event(name="n" * (NAME_MAX_CHARS + 1))]}).encode(),
        "$.events[1].name",
        id="name-too-long",
    ),
    pytest.param(
        json.dumps({"events": [_event(message="m" * (MESSAGE_MAX_CHARS + 1))]}).encode(),
        "$.events[0].message",
        id="message-too-long",
    ),
    pytest.param(
        json.dumps({"events": [_event(value="12")]}).encode(),
        "$.events[0].value",
        id="value-string",
    ),
    pytest.param(
        b'{"events": [{"type": "event", "name": "a", "value": NaN}]}', "malformed", id="value-nan"
    ),
    pytest.param(
        b'{"events": [{"type": "event", "name": "a", "value": 1e400}]}',
        "$.events[0].value",
        id="value-inf",
    ),
    pytest.param(
        json.dumps({"events": [_event(meta=[1, 2])]}).encode(), "$.events[0].meta", id="meta-array"
    ),
    pytest.param(
        json.dumps({"events": [_event(meta={"k": "v" * META_MAX_BYTES})]}).encode(),
        "$.events[0].meta",
        id="meta-too-big",
    ),
    pytest.param(
        json.dumps({"events": [_event(ts="2026-07-02T10:00:00")]}).encode(),
        "$.events[0].ts",
        id="ts-naive",
    ),
    pytest.param(
        json.dumps({"events": [_event(ts="yesterday")]}).encode(), "$.events[0].ts", id="ts-garbage"
    ),
    pytest.param(
        json.dumps({"events": [_event()], "extra": 1}).encode(), "extra", id="unknown-top-field"
    ),
    pytest.param(
        json.dumps({"events": [_event(vaule=1)]}).encode(), "vaule", id="unknown-event-field"
    ),
    pytest.param(
        b'{"events": [{"type": "event", "name": "\xff\xfe"}]}', "UTF-8", id="invalid-utf8"
    ),
]


@pytest.mark.parametrize(("body", "named"), BAD_BATCHES)
def test_it_refuses_an_invalid_batch_naming_the_problem(
    stack: Stack, ingest_key: str, body: bytes, named: str
) -> None:
    response = stack.http(ingest_key).post(
        EVENTS, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert named in response.json()["error"]


def test_it_stores_nothing_of_a_batch_with_one_bad_event(stack: Stack, ingest_key: str) -> None:
    name = unique("half")
    body = {"events": [_event(name=name), _event(name=name, type="bogus")]}
    assert stack.http(ingest_key).post(EVENTS, json=body).status_code == 400
    marker = unique("marker")  # a later good batch proves the sink has moved past this point
    assert (
        stack.http(ingest_key).post(EVENTS, json={"events": [_event(name=marker)]}).status_code
        == 202
    )
    wait_for(lambda: stack.series_total(marker) == 1, 30, "the marker stored")
    assert stack.series_total(name) == 0


def test_it_accepts_meta_exactly_at_the_limit_and_null_meta(stack: Stack, ingest_key: str) -> None:
    meta = '{"k":"' + "v" * (META_MAX_BYTES - 8) + '"}'
    assert len(meta) == META_MAX_BYTES
    body = (
        '{"events":[{"type":"event","name":"m","meta":%s},{"type":"event","name":"m","meta":null}]}'
        % meta
    )
    response = stack.http(ingest_key).post(EVENTS, content=body.encode())
    assert response.status_code == 202


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-key",
        "Bearer ch_live_short",
        "Bearer ch_live_" + "A" * 43,  # well formed, unknown
    ],
    ids=["missing", "other-scheme", "malformed", "too-short", "unknown"],
)
def test_it_refuses_a_missing_malformed_or_unknown_key(
    stack: Stack, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = stack.http().post(EVENTS, json={"events": [_event()]}, headers=headers)
    assert response.status_code == 401
    assert "error" in response.json()


def test_it_refuses_a_read_key_for_ingest(stack: Stack) -> None:
    read_key = stack.create_key("reader", scope="read")["key"]
    response = stack.http(read_key).post(EVENTS, json={"events": [_event()]})
    assert response.status_code == 401


def _raw_request(stack: Stack, head: bytes, body_chunks: list[bytes]) -> bytes:
    """Send a request by hand and return the raw response (the server may answer early)."""
    with socket.create_connection((stack.settings.host, stack.settings.port), timeout=15) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        return sock.recv(65536)


def test_it_refuses_a_declared_oversized_body_before_reading_it(
    stack: Stack, ingest_key: str
) -> None:
    head = (
        f"POST {EVENTS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ingest_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    ).encode()
    # No body is sent at all: a server that tried to read it would never answer.
    response = _raw_request(stack, head, [])
    assert response.startswith(b"HTTP/1.1 413")


def test_it_cuts_off_a_chunked_body_at_the_cap(stack: Stack, ingest_key: str) -> None:
    head = (
        f"POST {EVENTS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ingest_key}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"x" * 65536
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    # Twice the cap is offered; the answer must come without the terminating chunk.
    response = _raw_request(stack, head, [framed] * (2 * MAX_BODY_BYTES // len(chunk)))
    assert response.startswith(b"HTTP/1.1 413")


def test_it_accepts_a_body_just_under_the_cap(stack: Stack, ingest_key: str) -> None:
    name = unique("big")
    message = "m" * MESSAGE_MAX_CHARS
    events = [_event(name=name, message=message) for _ in range(MAX_EVENTS_PER_BATCH)]
    body = json.dumps({"events": events}).encode()
    assert len(body) < MAX_BODY_BYTES
    assert stack.http(ingest_key).post(EVENTS, content=body).status_code == 202
