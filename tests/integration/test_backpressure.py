"""Back-pressure end to end: with the store stopped, the sink's lag grows and the API answers
503 with Retry-After instead of piling up; once the store is back and has caught up, 202s
again, and every event that got a 202 is stored exactly once."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import wait_for
from tests.integration.harness import Stack

NAME = "backpressure.probe"


def test_the_api_sheds_while_the_sink_is_behind_and_takes_again_after(tmp_path: Path) -> None:
    stack = Stack(tmp_path, shed_lag_records=20)
    try:
        stack.start_all()
        key = stack.create_key("bp")["key"]
        client = stack.http(key)
        accepted = 0

        def send() -> int:
            nonlocal accepted
            response = client.post(
                "/api/v1/events", json={"events": [{"type": "event", "name": NAME}] * 10}
            )
            if response.status_code == 202:
                accepted += 10
            else:
                assert response.status_code == 503, response.text
                assert 1 <= int(response.headers["retry-after"]) <= 30
                assert "behind" in response.json()["error"]
            return response.status_code

        assert send() == 202
        stack.kill("store")
        wait_for(lambda: send() == 503, 60, "the API to shed load")
        shed_at = accepted
        assert shed_at >= 200  # it took batches until the lag passed 20
        stack.start("store")
        wait_for(lambda: send() == 202, 60, "the API to take batches again")
        wait_for(lambda: stack.series_total(NAME) == accepted, 60, "every accepted event stored")
        rejected = stack.admin().get("/api/v1/query/rejections", params={"from": "-1h"}).json()
        assert "overloaded" in str(rejected)
    finally:
        stack.stop()
