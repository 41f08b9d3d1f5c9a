"""With the log gone, ingest answers 503 within the append timeout, never 202."""

from __future__ import annotations

from tests.integration.harness import Stack


def test_it_answers_503_not_202_when_the_broker_is_down(own_stack: Stack) -> None:
    own_stack.start_all()
    key = own_stack.create_key("outage")["key"]
    client = own_stack.http(key, timeout=30)
    batch = {"events": [{"type": "event", "name": "during-outage"}]}
    assert client.post("/api/v1/events", json=batch).status_code == 202
    own_stack.kill_broker()
    for _ in range(3):
        response = client.post("/api/v1/events", json=batch)
        assert response.status_code == 503
        assert "error" in response.json()
