#!/usr/bin/env python3
"""Freshness after a quiet spell: how long an event accepted after --quiet seconds of silence
takes to be visible in the query API (stored in ClickHouse).

    python bench/after_idle.py [--quiet 15] [--rounds 3]

Starts `coalmine up` (bench/ingest.py's Service). On the embedded default the store's readers
rest while the log is idle (docs/benchmarks.md, "Idle cost"); the first append after a quiet spell nudges
the store, and this shows that storage does not wait for a rest to run out.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import Service, machine  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quiet", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(machine(), flush=True)
    service = Service(60.0)
    try:
        token = service.start()
        admin = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=service.base, timeout=30) as client:
            key = client.post("/api/v1/admin/keys", headers=admin, json={"name": "after-idle"})
            ingest = {"Authorization": f"Bearer {key.json()['key']}"}
            took = []
            for round_ in range(args.rounds):
                time.sleep(args.quiet)
                name = f"after-idle-{round_}"
                started = time.monotonic()
                sent = client.post(
                    "/api/v1/events",
                    headers=ingest,
                    json={"events": [{"type": "event", "name": name}]},
                )
                assert sent.status_code == 202, sent.text
                params = {"name": name, "from": "-1h", "interval": "1h", "source": "events"}
                while True:
                    points = client.get("/api/v1/query/series", headers=admin, params=params).json()
                    if sum(point["count"] for point in points["points"]) == 1:
                        break
                    time.sleep(0.05)
                took.append(time.monotonic() - started)
        print(
            f"after {args.quiet:g} s of quiet, accepted -> visible in the query API: "
            + ", ".join(f"{t:.2f} s" for t in took),
            flush=True,
        )
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
