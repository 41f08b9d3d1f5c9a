#!/usr/bin/env python3
"""How closely two API processes hold one key to its token bucket.

    python bench/ratelimit_two_apis.py [--seconds 60] [--batch 5] [--threads 8]

Starts `coalmine up --api-workers 2` (two API processes on one port), creates a key with the
spec's defaults (60 events/minute, burst 120), hammers it from several threads with a new
connection per request (the kernel spreads connections over both processes) and prints what
was admitted against the bucket's ceiling: burst + rate x elapsed, overall and for the worst
window between any two admissions.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from coalmine.broker import free_port
from schemas.limits import DEFAULT_BURST, DEFAULT_RATE_PER_MINUTE


def call(url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def worst_window(admissions: list[tuple[float, int]], rate_per_s: float, burst: int) -> float:
    """max over windows [t_i, t_j] of admitted - (burst + rate x (t_j - t_i))."""
    worst = float("-inf")
    for i, (start, _) in enumerate(admissions):
        total = 0
        for end, n in admissions[i:]:
            total += n
            worst = max(worst, total - (burst + rate_per_s * (end - start)))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="coalmine-rl-"))
    port = free_port()
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coalmine",
            "up",
            "--api-workers",
            "2",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert up.stdout is not None
        deadline = time.monotonic() + 90
        for line in up.stdout:
            if "Coalmine is up" in line:
                break
            if time.monotonic() > deadline:
                raise SystemExit("coalmine up did not start")
        base = f"http://127.0.0.1:{port}"
        token = (data_dir / "admin-token").read_text().strip()
        status, key = call(
            f"{base}/api/v1/admin/keys",
            token,
            {
                "name": "hammered",
                "rate_per_minute": DEFAULT_RATE_PER_MINUTE,
                "burst": DEFAULT_BURST,
            },
        )
        assert status == 201, status
        admissions: list[tuple[float, int]] = []
        refused = 0
        lock = threading.Lock()
        body = {"events": [{"type": "event", "name": "hammer"}] * args.batch}
        started = time.monotonic()
        stop_at = started + args.seconds

        def hammer() -> None:
            nonlocal refused
            while time.monotonic() < stop_at:
                status, _ = call(f"{base}/api/v1/events", key["key"], body)
                with lock:
                    if status == 202:
                        admissions.append((time.monotonic() - started, args.batch))
                    else:
                        refused += 1

        threads = [threading.Thread(target=hammer) for _ in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        total = sum(n for _, n in admissions)
        rate_per_s = DEFAULT_RATE_PER_MINUTE / 60
        ceiling = DEFAULT_BURST + rate_per_s * elapsed
        worst = worst_window(sorted(admissions), rate_per_s, DEFAULT_BURST)
        print(
            f"two API processes, one key at {DEFAULT_RATE_PER_MINUTE}/min burst {DEFAULT_BURST}, batches of {args.batch}, {args.threads} threads"
        )
        print(
            f"elapsed {elapsed:.1f}s: admitted {total} events in {len(admissions)} requests, refused {refused} requests"
        )
        print(
            f"ceiling burst + rate x elapsed = {ceiling:.0f}; admitted - ceiling = {total - ceiling:+.0f}"
        )
        print(f"worst window overshoot: {worst:+.0f} events")
        return 0
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(60)


if __name__ == "__main__":
    sys.exit(main())
