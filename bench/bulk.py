#!/usr/bin/env python3
"""Bulk backfill: how fast POST /api/v1/events/bulk takes 100,000-event NDJSON files (gzip),
and whether ClickHouse then holds exactly what was accepted.

    python bench/bulk.py [--requests 5] [--events 100000] [--names 20]

Starts `coalmine up` (bench/ingest.py's Service), creates a key, builds one gzip'd NDJSON
body per request (events spread over --names names tagged with the run, timestamps over the
past 30 days: a backfill), sends them one after the other, then waits until the events
query counts every accepted event.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import secrets
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import Service, call, machine, stored_counts  # noqa: E402


def body(names: list[str], events: int, seed: int) -> bytes:
    now = time.time()
    lines = []
    for i in range(events):
        ts = (
            dt.datetime.fromtimestamp(now - (i * 7919 + seed) % (30 * 86400), dt.UTC)
            .isoformat()
            .replace("+00:00", "Z")
        )
        lines.append(
            json.dumps(
                {
                    "type": "error" if i % 20 == 0 else "event",
                    "name": names[i % len(names)],
                    "value": i % 1000,
                    "ts": ts,
                }
            )
        )
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=5)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--names", type=int, default=20)
    args = parser.parse_args()
    print(machine())
    tag = secrets.token_hex(3)
    names = [f"bulk-{tag}/{i}" for i in range(args.names)]
    bodies = [body(names, args.events, seed) for seed in range(args.requests)]
    print(
        f"{args.requests} requests of {args.events:,} events, gzip {sum(map(len, bodies)) / len(bodies) / 1e6:.1f} MB each"
    )
    service = Service(startup_timeout=90)
    try:
        token = service.start()
        status, key = call(
            service.base, "POST", "/api/v1/admin/keys", token, {"name": "bulk-bench"}
        )
        assert status == 201, key
        accepted, started = 0, time.monotonic()
        for payload in bodies:
            request = urllib.request.Request(
                service.base + "/api/v1/events/bulk", data=payload, method="POST"
            )
            request.add_header("Authorization", f"Bearer {key['key']}")
            request.add_header("Content-Encoding", "gzip")
            t0 = time.monotonic()
            with urllib.request.urlopen(request, timeout=600) as response:
                answer = json.loads(response.read())
            accepted += answer["accepted"]
            print(f"  {answer['accepted']:,} accepted in {time.monotonic() - t0:.2f}s")
        took = time.monotonic() - started
        print(
            f"\n== bulk ==\naccepted {accepted:,} events in {took:.1f}s: {accepted / took:,.0f} events/s"
        )
        since, until = int(time.time()) - 31 * 86400, int(time.time()) + 3600
        deadline = time.monotonic() + 300
        while True:
            stored = sum(stored_counts(service.base, token, names, since, until).values())
            if stored >= accepted or time.monotonic() > deadline:
                break
            time.sleep(1)
        end_to_end = time.monotonic() - started
        exact = stored == accepted
        print(
            f"stored {stored:,} of {accepted:,} ({'exact' if exact else 'MISMATCH'}); all queryable after {end_to_end:.1f}s ({accepted / end_to_end:,.0f} events/s end to end)"
        )
        return 0 if exact else 1
    finally:
        service.stop()


if __name__ == "__main__":
    sys.exit(main())
