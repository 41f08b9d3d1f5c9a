"""With the log gone, ingest answers 503 within the append timeout, never 202."""

from __future__ import annotations

from tests.conftest import wait_for
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


def test_a_new_log_not_yet_restored_answers_503_not_401_or_404(own_stack: Stack) -> None:
    # A new, empty log (the embedded broker restarted): until the store has written keys and
    # canaries back from ClickHouse, an unknown key or token may be one it is about to restore.
    own_stack.start_broker()
    own_stack.start("api")
    client = own_stack.http("ch_live_" + "x" * 43)
    batch = {"events": [{"type": "event", "name": "while-restoring"}]}
    refused = client.post("/api/v1/events", json=batch)
    assert refused.status_code == 503, refused.text
    assert "restored" in refused.json()["error"]
    assert refused.headers["retry-after"] == "1"
    token = "t" * 32
    assert client.get(f"/checkin/{token}").status_code == 503
    assert client.get(f"/ping/{token}").status_code == 503

    own_stack.start("store")  # writes back (nothing here) and marks the log as restored
    wait_for(
        lambda: client.post("/api/v1/events", json=batch).status_code == 401,
        30,
        "the unknown key refused once the log is restored",
    )
    assert client.get(f"/checkin/{token}").status_code == 404
    assert client.get(f"/ping/{token}").status_code == 404
