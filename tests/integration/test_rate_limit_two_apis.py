"""One key hammered through two API processes on one port: the admitted events stay within
burst + rate x window, plus the tolerance of processes that learn of each other's spending
one snapshot late (measured by bench/ratelimit_two_apis.py; see docs/rate-limits.md)."""

from __future__ import annotations

import threading
import time

import httpx

from tests.conftest import wait_for
from tests.integration.harness import Stack, latest_snapshot

RATE_PER_MINUTE = 300  # 5/s: a short test still sees refills dominate the burst
BURST = 120
WINDOW_S = 20.0
BATCH = 5
CONNECTIONS = 8
# Measured (bench/ratelimit_two_apis.py, docs/rate-limits.md): over 60 s the two processes stayed under
# the ceiling; the worst single window exceeded it by 52 events. The test allows half a burst.
TOLERANCE = BURST // 2


def test_it_keeps_two_api_processes_within_the_bucket(own_stack: Stack) -> None:
    own_stack.settings = own_stack.settings.replace(api_workers=2)
    own_stack.start_all()
    own_stack.start("api", name="api-2")
    key = own_stack.create_key("hammered", rate_per_minute=RATE_PER_MINUTE, burst=BURST)
    admitted: list[int] = []
    deadline = time.monotonic() + WINDOW_S

    def hammer() -> None:
        body = {"events": [{"type": "event", "name": "hammer"}] * BATCH}
        while time.monotonic() < deadline:
            # A new connection per request: the kernel spreads them over both processes.
            with httpx.Client(base_url=own_stack.url, timeout=10) as client:
                response = client.post(
                    "/api/v1/events", json=body, headers={"Authorization": f"Bearer {key['key']}"}
                )
            if response.status_code == 202:
                admitted.append(BATCH)

    threads = [threading.Thread(target=hammer) for _ in range(CONNECTIONS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    total = sum(admitted)
    ceiling = BURST + RATE_PER_MINUTE / 60 * elapsed
    print(f"admitted {total} events in {elapsed:.1f}s; bucket ceiling {ceiling:.0f}")
    assert total <= ceiling + TOLERANCE
    assert total >= BURST  # the limit did not starve the key either
    snapshot = wait_for(lambda: latest_snapshot(own_stack, key["id"]), 30, "a snapshot")
    assert snapshot.sharers == 2, "both API processes admitted for the key"
