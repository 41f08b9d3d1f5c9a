#!/usr/bin/env python3
"""Idle cost: the CPU that `coalmine up` burns while nothing is sent.

    python bench/idle.py [--seconds 30] [--settle 10] [--load-seconds 0] [--api-workers 1]

Starts `coalmine up` (bench/ingest.py's Service), waits --settle seconds, then samples the
CPU time of every process below it over --seconds and prints it per process and in total, as
a percentage of one core. With --load-seconds N it first sends N seconds of ingest batches and
check-ins (creating a canary that is then paused so it stays quiet), lets the service settle,
and samples again: a service that keeps working after a load has stopped shows it there.
Exits non-zero when the total is over --budget (2 % of a core by default).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import Service, cpu_seconds, machine  # noqa: E402


def sample(service: Service, seconds: float) -> tuple[dict[str, float], float]:
    """role -> % of one core over `seconds`, and the total (the launcher included)."""
    assert service.process is not None
    pids = {service.process.pid: "launcher", **service.find_descendants()}
    before = {pid: cpu_seconds(pid) for pid in pids}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    used: dict[str, float] = {}
    for pid, role in pids.items():
        first, last = before[pid], cpu_seconds(pid)
        if first is None or last is None:
            continue
        used[f"{role}[{pid}]"] = (last - first) / elapsed * 100
    return used, sum(used.values())


def show(label: str, used: dict[str, float], total: float) -> None:
    parts = "  ".join(f"{name} {pct:.2f}%" for name, pct in sorted(used.items()))
    print(f"{label}: total {total:.2f}% of a core  ({parts})", flush=True)


def load(base: str, token: str, seconds: float) -> None:
    """Ingest batches and check-ins as fast as one client goes, for `seconds`."""
    admin = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=30) as client:
        key = client.post(
            "/api/v1/admin/keys",
            headers=admin,
            json={"name": "idle-bench", "rate_per_minute": 1_000_000, "burst": 1_000_000},
        )
        key.raise_for_status()
        secret = key.json()["key"]
        canary = client.post(
            "/api/v1/admin/canaries",
            headers=admin,
            json={"name": "idle-bench", "interval_seconds": 60, "grace_seconds": 60},
        )
        canary.raise_for_status()
        body = canary.json()
        batch = {"events": [{"type": "event", "name": f"idle-{i % 5}"} for i in range(100)]}
        sent, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            client.post(
                "/api/v1/events", headers={"Authorization": f"Bearer {secret}"}, json=batch
            ).raise_for_status()
            client.post(body["checkin_path"]).raise_for_status()
            sent += 1
        client.patch(
            f"/api/v1/admin/canaries/{body['id']}", headers=admin, json={"paused": True}
        ).raise_for_status()
    print(f"load: {sent} batches of 100 events and {sent} check-ins in {seconds:.0f}s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--load-seconds", type=float, default=0.0)
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--budget", type=float, default=2.0, help="% of one core")
    args = parser.parse_args(argv)
    print(machine(), flush=True)
    service = Service(60.0, ["--api-workers", str(args.api_workers)])
    worst = 0.0
    try:
        token = service.start()
        time.sleep(args.settle)
        used, total = sample(service, args.seconds)
        show("idle after start", used, total)
        worst = total
        if args.load_seconds > 0:
            load(service.base, token, args.load_seconds)
            time.sleep(args.settle)
            used, total = sample(service, args.seconds)
            show("idle after load", used, total)
            worst = max(worst, total)
    finally:
        service.stop()
    print(f"worst idle total: {worst:.2f}% of a core (budget {args.budget}%)", flush=True)
    return 0 if worst <= args.budget else 1


if __name__ == "__main__":
    sys.exit(main())
