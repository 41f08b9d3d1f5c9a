#!/usr/bin/env python3
"""Revocation: how long after `DELETE /api/v1/admin/keys/<id>` answers does every API process
refuse the key?

    python bench/revocation.py [--rounds 20] [--api-workers 2] [--connections 16]

Starts `coalmine up` with several API processes on one port (bench/ingest.py's Service),
and per round: creates a key, holds --connections keep-alive connections (the kernel spreads
them over the processes) until each has had a 202 with it, revokes it through one more
connection, then polls every connection in turn until each answers 401. The figure for the
round is when the last connection first said 401. Prints p50/p99/max over the rounds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import Service, call, machine, percentile  # noqa: E402

BATCH = {"events": [{"type": "event", "name": "revocation.bench"}]}


def one_round(base: str, token: str, connections: int) -> float:
    status, key = call(base, "POST", "/api/v1/admin/keys", token, {"name": "revocation-bench"})
    assert status == 201, key
    auth = {"Authorization": f"Bearer {key['key']}"}
    clients = [httpx.Client(base_url=base, headers=auth, timeout=10) for _ in range(connections)]
    try:
        for client in clients:  # each connection has seen the key work (its process knows it)
            deadline = time.monotonic() + 10
            while client.post("/api/v1/events", json=BATCH).status_code != 202:
                assert time.monotonic() < deadline, "a new key never worked"
        status, _ = call(base, "DELETE", f"/api/v1/admin/keys/{key['id']}", token)
        assert status == 200
        revoked = time.monotonic()
        pending = set(range(connections))
        last = revoked
        while pending:
            for index in list(pending):
                if clients[index].post("/api/v1/events", json=BATCH).status_code == 401:
                    pending.discard(index)
                    last = time.monotonic()
            assert time.monotonic() - revoked < 30, "revocation never reached every process"
        return last - revoked
    finally:
        for client in clients:
            client.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    print(machine())
    service = Service(startup_timeout=90, extra_args=["--api-workers", str(args.api_workers)])
    try:
        token = service.start()
        times = sorted(one_round(service.base, token, args.connections) for _ in range(args.rounds))
        print(
            f"\n== revocation across {args.api_workers} API processes, {args.rounds} rounds ==\n"
            f"every process refuses the key after: p50 {percentile(times, 0.5) * 1000:.0f} ms,"
            f" p99 {percentile(times, 0.99) * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms"
        )
        return 0 if times[-1] <= 1.0 else 1
    finally:
        service.stop()


if __name__ == "__main__":
    sys.exit(main())
