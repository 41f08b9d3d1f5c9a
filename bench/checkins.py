#!/usr/bin/env python3
"""Check-in throughput and missed-heartbeat detection delay.

    python bench/checkins.py [--seconds 15] [--connections 256] [--canaries 500]
                             [--api-workers 2] [--delay-canaries 200] [--delay-interval 2]
                             [--delay-schedule "*/5 * * * * *"]

Starts `coalmine up` (see bench/ingest.py's Service), then:

1. throughput: creates --canaries canaries (interval 1 h) and sends `GET /checkin/<token>`
   over keep-alive connections from a separate process, counting only 200s;
2. detection delay: creates --delay-canaries canaries (interval --delay-interval, 2 s by
   default, grace 0) whose alerts go
   to a webhook on a local HTTP receiver in this process, checks each in once (spread over a
   second), and measures, per canary, from its deadline (carried in the alert's id) to the
   alert's arrival. Prints p50/p99/max. For comparison: Healthchecks polls every 2 s.
   With --delay-schedule, the delay canaries are cron canaries on that schedule instead
   (6 fields: seconds first), due at the first slot after their check-in; `{i60}` in it
   stands for the canary's number modulo 60 ("{i60} * * * * *" spreads them over a minute,
   "*/5 * * * * *" makes them all due at once).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import Service, call, cpu_seconds, machine, percentile  # noqa: E402


async def _get_load(
    host: str, port: int, paths: list[str], connections: int, seconds: float
) -> dict[str, Any]:
    requests = [
        f"GET {p} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: coalmine-bench\r\n\r\n".encode()
        for p in paths
    ]
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    acked = [0] * len(paths)  # 200s per canary, to check against what was stored
    per_second: dict[int, int] = {}
    start = time.monotonic()
    end = start + seconds

    async def worker(index: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        k = index
        while time.monotonic() < end:
            t0 = time.monotonic()
            which = k % len(requests)
            writer.write(requests[which])
            k += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            length = int(lower[at + 17 : lower.index(b"\r\n", at + 2)])
            await reader.readexactly(length)
            done = time.monotonic()
            latencies.append(done - t0)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                acked[which] += 1
                second = int(done - start)
                per_second[second] = per_second.get(second, 0) + 1
        writer.close()

    await asyncio.gather(*(worker(i) for i in range(connections)))
    return {"statuses": statuses, "latencies": latencies, "acked": acked, "per_second": per_second}


def _load_process(conf: dict[str, Any], out: Any) -> None:
    try:
        import uvloop

        out.send(uvloop.run(_get_load(**conf)))
    except ImportError:
        out.send(asyncio.run(_get_load(**conf)))


class Receiver:
    """A local webhook receiver: canary id -> arrival time of its first alert."""

    def __init__(self) -> None:
        self.arrivals: dict[str, tuple[float, dict[str, Any]]] = {}
        self.received = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as most receivers: with HTTP/1.0 every alert was a new connection
            # and a new thread here, which a burst of them paid for in this process.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.arrivals.setdefault(body["canary"]["id"], (time.time(), body))
                receiver.received += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # socketserver listens with a backlog of 5: a burst of alerts would then wait on
            # TCP SYN retries (1 s, 3 s...) and measure this receiver, not Coalmine.
            request_queue_size = 1024

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def stored_checkins(
    base: str, token: str, canaries: list[dict[str, Any]], acked: list[int]
) -> list[int]:
    """Check-ins stored per canary, once they match what was acknowledged (or after 60 s)."""
    stored = [-1] * len(canaries)
    deadline = time.monotonic() + 60
    while stored != acked and time.monotonic() < deadline:
        for i, canary in enumerate(canaries):
            if stored[i] != acked[i]:
                status, body = call(
                    base,
                    "GET",
                    f"/api/v1/query/canaries/{canary['id']}/history?limit=10000&from=-1h",
                    token,
                )
                stored[i] = len(body["checkins"]) if status == 200 else -1
        time.sleep(0.5)
    return stored


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    # Check-ins come from many independent jobs: 256 keep-alive connections stand for them.
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--canaries", type=int, default=500)
    parser.add_argument("--delay-canaries", type=int, default=200)
    # A longer interval leaves the service idle until the deadlines: the worker's fetches
    # must be hurried in time (runtime.kafka_client, "Pacing").
    parser.add_argument("--delay-interval", type=int, default=2)
    parser.add_argument("--delay-schedule", help='cron canaries instead, e.g. "*/5 * * * * *"')
    parser.add_argument("--api-workers", type=int, default=2)
    args = parser.parse_args()
    print(machine())
    service = Service(startup_timeout=90, extra_args=["--api-workers", str(args.api_workers)])
    try:
        token = service.start()
        base = service.base

        def create(
            name: str, interval: int, channels: list[str], schedule: str | None = None
        ) -> dict[str, Any]:
            every = {"schedule": schedule} if schedule else {"interval_seconds": interval}
            status, body = call(
                base,
                "POST",
                "/api/v1/admin/canaries",
                token,
                {"name": name, **every, "channels": channels},
            )
            assert status == 201, (status, body)
            return body

        loaded = [create(f"load-{i}", 3600, []) for i in range(args.canaries)]
        paths = [canary["checkin_path"] for canary in loaded]
        parent, child = multiprocessing.Pipe()
        conf = {
            "host": "127.0.0.1",
            "port": service.port,
            "paths": paths,
            "connections": args.connections,
            "seconds": args.seconds,
        }
        load = multiprocessing.Process(target=_load_process, args=(conf, child))
        load.start()
        servers = dict(service.descendants)
        cpu_before = {pid: cpu_seconds(pid) for pid in [*servers, load.pid]}
        started = time.monotonic()
        while not parent.poll(0.05):  # the load's CPU is read just before it exits
            load_cpu = cpu_seconds(load.pid)
        window = time.monotonic() - started
        cpu_after = {pid: cpu_seconds(pid) for pid in servers}
        cpu_after[load.pid] = load_cpu
        result = parent.recv()
        load.join()
        ok = result["statuses"].get(200, 0)
        lat = sorted(result["latencies"])
        print(
            f"\n== check-ins: GET /checkin/<token>, {args.connections} connections, "
            f"{args.canaries} canaries, {args.api_workers} API processes =="
        )
        print(
            f"{ok / args.seconds:,.0f} check-ins/s acknowledged (200) over {args.seconds:.0f}s; "
            f"statuses {result['statuses']}"
        )
        print(
            f"latency p50 {percentile(lat, 0.5) * 1000:.1f} ms, p99 {percentile(lat, 0.99) * 1000:.1f} ms"
        )
        seconds = range(int(args.seconds) + 1)
        print("200s by second: " + " ".join(str(result["per_second"].get(s, 0)) for s in seconds))
        roles = {**servers, load.pid: "load generator"}
        spent_by_role: dict[str, float] = {}  # API processes summed: one figure per role
        for pid, role in roles.items():
            if cpu_before.get(pid) is not None and cpu_after.get(pid) is not None:
                spent_by_role[role] = (
                    spent_by_role.get(role, 0.0) + cpu_after[pid] - cpu_before[pid]
                )
        used = list(spent_by_role.items())
        print(
            "CPU, % of one core (µs per check-in): "
            + ", ".join(
                f"{role} {spent / window * 100:.0f}% ({spent / max(ok, 1) * 1e6:.0f})"
                for role, spent in sorted(used)
            )
        )

        stored = stored_checkins(base, token, loaded, result["acked"])
        print(
            f"stored in ClickHouse: {sum(stored):,} check-ins of {sum(result['acked']):,} acknowledged; "
            f"every canary exact: {stored == result['acked']}"
        )

        receiver = Receiver()
        status, channel = call(
            base,
            "POST",
            "/api/v1/admin/channels",
            token,
            {"name": "bench", "kind": "webhook", "url": receiver.url},
        )
        assert status == 201, channel
        watched = []
        for i in range(args.delay_canaries):  # deadlines spread over the time this takes
            # "{i60}" in the schedule spreads the canaries over the seconds of a minute.
            schedule = (
                args.delay_schedule.replace("{i60}", str(i % 60)) if args.delay_schedule else None
            )
            canary = create(f"delay-{i}", args.delay_interval, [channel["id"]], schedule)
            call(base, "GET", canary["checkin_path"], token)
            watched.append(canary)
        deadline = time.monotonic() + 30 + args.delay_interval + (60 if args.delay_schedule else 0)
        while len(receiver.arrivals) < len(watched) and time.monotonic() < deadline:
            time.sleep(0.1)
        missed = [(a, b) for a, b in receiver.arrivals.values() if "due" in b["id"]]

        def due(body: dict[str, Any]) -> float:
            return int(body["id"].rsplit("due", 1)[1]) / 1000

        def decided(body: dict[str, Any]) -> float:
            return dt.datetime.fromisoformat(body["at"].replace("Z", "+00:00")).timestamp()

        delays = sorted(arrived - due(body) for arrived, body in missed)
        judged = sorted(decided(body) - due(body) for _, body in missed)
        delivered = sorted(arrived - decided(body) for arrived, body in missed)
        print(
            f"\n== detection delay: deadline -> webhook received, {len(delays)}/{len(watched)} canaries"
            f" ({receiver.received} alerts received) =="
        )
        if delays:
            print(
                f"p50 {percentile(delays, 0.5) * 1000:.0f} ms, p99 {percentile(delays, 0.99) * 1000:.0f} ms, "
                f"max {delays[-1] * 1000:.0f} ms (a 2 s polling loop averages 1,000 ms, up to 2,000)"
            )
            print(
                f"  deadline -> judged down (stream time): p50 {percentile(judged, 0.5) * 1000:.0f} ms,"
                f" p99 {percentile(judged, 0.99) * 1000:.0f} ms"
            )
            print(
                f"  judged -> webhook received: p50 {percentile(delivered, 0.5) * 1000:.0f} ms,"
                f" p99 {percentile(delivered, 0.99) * 1000:.0f} ms"
            )
        return 0 if len(delays) == len(watched) and stored == result["acked"] else 1
    finally:
        service.stop()


if __name__ == "__main__":
    sys.exit(main())
