#!/usr/bin/env python3
"""Admin requests: how long does each take, now that every one first reads the keys' and
canaries' topics to the log's end (runtime/catch_up.py)?

    python bench/admin.py [--requests 50] [--api-workers 1]

Starts `coalmine up` (bench/ingest.py's Service) and sends, one after the other, each on a
new connection (the kernel spreads them over the API processes): key creations, key lists,
canary creations, canary changes, and "a key created, then used at once" (the creation plus
the first ingest with it, which must be a 202 whichever process answers). Prints p50/p99/max
per operation.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import Service, call, machine, percentile  # noqa: E402

BATCH = {"events": [{"type": "event", "name": "admin.bench"}]}


def timed(requests: int, one: Callable[[int], None]) -> list[float]:
    times = []
    for i in range(requests):
        started = time.perf_counter()
        one(i)
        times.append(time.perf_counter() - started)
    return sorted(times)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--api-workers", type=int, default=1)
    args = parser.parse_args()
    print(machine())
    service = Service(startup_timeout=90, extra_args=["--api-workers", str(args.api_workers)])
    try:
        token = service.start()
        base = service.base
        canaries: list[str] = []

        def expect(status: int, body: object, wanted: int) -> None:
            assert status == wanted, (status, body)

        def create_key(i: int) -> None:
            expect(*call(base, "POST", "/api/v1/admin/keys", token, {"name": f"b{i}"}), 201)

        def list_keys(i: int) -> None:
            expect(*call(base, "GET", "/api/v1/admin/keys", token), 200)

        def create_canary(i: int) -> None:
            status, body = call(
                base,
                "POST",
                "/api/v1/admin/canaries",
                token,
                {"name": f"b{i}", "interval_seconds": 60},
            )
            expect(status, body, 201)
            canaries.append(body["id"])

        def change_canary(i: int) -> None:
            path = f"/api/v1/admin/canaries/{canaries[i]}"
            status, body = call(base, "PATCH", path, token, {"interval_seconds": 120})
            expect(status, body, 200)

        def key_used_at_once(i: int) -> None:
            status, key = call(base, "POST", "/api/v1/admin/keys", token, {"name": f"u{i}"})
            expect(status, key, 201)
            status, body = call(base, "POST", "/api/v1/events", key["key"], BATCH)
            expect(status, body, 202)

        operations = {
            "create a key": create_key,
            "list keys": list_keys,
            "create a canary": create_canary,
            "change a canary": change_canary,
            "create a key + ingest with it": key_used_at_once,
        }
        print(f"\n== admin requests, {args.requests} each, {args.api_workers} API process(es) ==")
        for what, one in operations.items():
            times = timed(args.requests, one)
            print(
                f"{what:32} p50 {percentile(times, 0.5) * 1000:6.1f} ms,"
                f" p99 {percentile(times, 0.99) * 1000:6.1f} ms, max {times[-1] * 1000:6.1f} ms"
            )
        return 0
    finally:
        service.stop()


if __name__ == "__main__":
    sys.exit(main())
