"""The two lanes of events share one admission path (ingest_api.admission): a body that does
not arrive in time (408) and one that cannot be decoded (400) are counted the same way on
both, per key and reason, in the rejections table; events the log took count as accepted on
both. On a stack of its own, whose bulk lane waits 1 s for a body instead of 120 s."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.integration.harness import Stack
from tests.integration.test_operability import metric

EVENTS, BULK = "/api/v1/events", "/api/v1/events/bulk"


@pytest.fixture(scope="module")
def lanes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(Path(tmp_path_factory.mktemp("admission")), bulk_body_timeout_s=1.0)
    try:
        stack.start_broker()
        for role in ("store", "api"):  # no worker: nothing here needs the agents
            stack.start(role)
        yield stack
    finally:
        stack.stop()


def stalled(stack: Stack, path: str, key: str) -> bytes:
    """The answer to a request whose body stops half way: its status line and headers."""
    with socket.create_connection(("127.0.0.1", stack.settings.port), timeout=30) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            "Content-Length: 1000\r\n\r\n".encode()
            + b'{"events":['
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            assert chunk, "closed without an answer"
            answer += chunk
    return answer


def rejections(stack: Stack, key_id: str) -> dict[str, tuple[int, int]]:
    rows = (
        stack.admin()
        .get("/api/v1/query/rejections", params={"from": "-1h", "key_id": key_id})
        .json()["rejections"]
    )
    return {row["reason"]: (row["requests"], row["events"]) for row in rows}


def test_both_lanes_count_a_408_and_a_400_as_invalid_requests(lanes: Stack) -> None:
    normal, backfill = lanes.create_key("normal"), lanes.create_key("backfill")
    assert stalled(lanes, EVENTS, normal["key"]).startswith(b"HTTP/1.1 408")
    assert stalled(lanes, BULK, backfill["key"]).startswith(b"HTTP/1.1 408")
    assert lanes.http(normal["key"]).post(EVENTS, content=b"{nope").status_code == 400
    not_gzip = lanes.http(backfill["key"]).post(
        BULK, content=b'{"type":"event","name":"a"}\n', headers={"Content-Encoding": "gzip"}
    )
    assert not_gzip.status_code == 400
    for key in (normal, backfill):
        found = wait_for(
            lambda key=key: rejections(lanes, key["id"]).get("invalid") == (2, 0),
            30,
            "two invalid requests counted",
        )
        assert found
        assert rejections(lanes, key["id"]) == {"invalid": (2, 0)}


def test_events_the_log_took_count_as_accepted_on_both_lanes(lanes: Stack) -> None:
    key = lanes.create_key("accepted")["key"]

    def accepted() -> float:
        return metric(lanes.http().get("/metrics").text, "coalmine_events_accepted_total")

    before = accepted()
    sent = lanes.http(key).post(EVENTS, json={"events": [{"type": "event", "name": "a"}] * 2})
    assert sent.status_code == 202
    lines = b'{"type":"event","name":"b"}\n' * 3 + b"{nope\n"
    backfilled = lanes.http(key).post(BULK, content=lines)
    assert backfilled.status_code == 202 and backfilled.json()["accepted"] == 3
    # Counts reach /metrics at the API's next flush (runtime.metrics).
    wait_for(lambda: accepted() == before + 5, 10, "5 events counted as accepted")
    assert accepted() == before + 5
