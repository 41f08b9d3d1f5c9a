#!/usr/bin/env python3
"""Soak: mixed load for minutes, reporting throughput, p99, memory over time and every error.

    python bench/soak.py [--minutes 10] [--ingest-rate 200] [--checkin-rate 100]
                         [--query-rate 2] [--api-workers 2] [--sample-s 30]
                         [--rotate-mb MB] [--compare-minutes 5]

Starts `coalmine up` (bench/ingest.py's Service) unless --url is given, creates a key with
raised limits and --canaries canaries, then, from a separate process, sends at fixed rates
(open loop: a request is due at its time whether or not the previous one answered):
100-event ingest batches, check-ins spread over the canaries, and named queries (series and
top_names by turns). Every --sample-s it prints the RSS of the largest process of each role;
at the end, per window: requests/s and p99 per kind, non-2xx answers and transport errors;
p99, throughput and RSS of the first --compare-minutes against the last; and the rotations of
the embedded log (--rotate-mb small forces several). At the end it checks that ClickHouse
holds exactly the events that got a 202 and every acknowledged check-in, and exits non-zero
otherwise or on any 5xx.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import time
import urllib.parse
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import Service, call, machine, percentile, stored_counts  # noqa: E402

NAMES = [f"soak-{i}" for i in range(20)]
# The launcher's lines for a rotation's steps (coalmine.launcher.LogRotation.rotate), marked
# in the windows they fall in: a = appends move to the new generation, w = the new worker
# runs, d = the old generation is deleted.
ROTATION_STEPS = {
    "log rotation: appending to": "a",
    "log rotation: the worker runs on": "w",
    "log rotated to": "d",
}
KINDS = ("ingest", "checkin", "query")


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def _paced(rate: float, seconds: float, send: Any, limit: asyncio.Semaphore) -> int:
    """Call `send(i)` every 1/rate s for `seconds`; a call that cannot start because
    `limit` requests are already waiting is counted as dropped (the service is saturated)."""
    dropped, started, i = 0, time.monotonic(), 0
    tasks: set[asyncio.Task[None]] = set()

    async def one(n: int) -> None:
        async with limit:
            await send(n)

    while (due := started + i / rate) < started + seconds:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        if limit.locked():
            dropped += 1
        else:
            task = asyncio.create_task(one(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        i += 1
    await asyncio.gather(*tasks)
    return dropped


async def _load(conf: dict[str, Any], out: Any) -> None:
    base, seconds = conf["base"], conf["seconds"]
    started = time.monotonic()
    # (kind, second) -> latencies; (kind, second) -> status counts
    latencies: dict[tuple[str, int], list[float]] = defaultdict(list)
    statuses: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    acked_events: Counter[str] = Counter()
    acked_requests: list[int] = []  # the sequence numbers of the ingest requests with a 202
    acked_checkins: list[int] = [0] * len(conf["paths"])
    limits = httpx.Limits(
        max_connections=conf["connections"], max_keepalive_connections=conf["connections"]
    )
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def timed(kind: str, request: Any) -> httpx.Response | None:
            t0 = time.monotonic()
            second = int(t0 - started)
            try:
                response = await request
            except httpx.HTTPError as exc:
                statuses[(kind, second)][type(exc).__name__] += 1
                return None
            latencies[(kind, second)].append(time.monotonic() - t0)
            statuses[(kind, second)][str(response.status_code)] += 1
            return response

        ingest_headers = {"Authorization": f"Bearer {conf['key']}"}
        admin = {"Authorization": f"Bearer {conf['token']}"}

        async def ingest(i: int) -> None:
            name = NAMES[i % len(NAMES)]
            # The first event (the error) carries the request's sequence number: a shortfall
            # at the end names the requests it lost (_missing_requests).
            body = {
                "events": [
                    {"type": "error" if j == 0 else "event", "name": name, "value": j or i}
                    for j in range(100)
                ]
            }
            response = await timed(
                "ingest", http.post("/api/v1/events", json=body, headers=ingest_headers)
            )
            if response is not None and response.status_code == 202:
                acked_events[name] += 100
                acked_requests.append(i)

        async def checkin(i: int) -> None:
            n = i % len(conf["paths"])
            response = await timed("checkin", http.get(conf["paths"][n]))
            if response is not None and response.status_code == 200:
                acked_checkins[n] += 1

        async def query(i: int) -> None:
            if i % 2:
                params = {"name": NAMES[i % len(NAMES)], "from": "-1h", "interval": "1m"}
                path = "/api/v1/query/series?" + urllib.parse.urlencode(params)
            else:
                path = "/api/v1/query/top_names?from=-1h"
            await timed("query", http.get(path, headers=admin))

        limit = conf["connections"] // 3
        dropped = await asyncio.gather(
            _paced(conf["ingest_rate"], seconds, ingest, asyncio.Semaphore(limit)),
            _paced(conf["checkin_rate"], seconds, checkin, asyncio.Semaphore(limit)),
            _paced(conf["query_rate"], seconds, query, asyncio.Semaphore(4)),
        )
    out.send(
        {
            "latencies": dict(latencies),
            "statuses": {k: dict(v) for k, v in statuses.items()},
            "acked_events": dict(acked_events),
            "acked_requests": acked_requests,
            "acked_checkins": acked_checkins,
            "dropped": dict(zip(KINDS, dropped, strict=True)),
        }
    )


def _span(result: dict[str, Any], kind: str, start: int, end: int) -> tuple[float, float]:
    """(acknowledged per second, p99 latency in s) of one kind over seconds start..end."""
    lat: list[float] = []
    ok = 0
    for second in range(start, end):
        lat += result["latencies"].get((kind, second), [])
        ok += sum(
            n for st, n in result["statuses"].get((kind, second), {}).items() if st.startswith("2")
        )
    return ok * (100 if kind == "ingest" else 1) / max(1, end - start), percentile(
        sorted(lat), 0.99
    )


def _load_process(conf: dict[str, Any], out: Any) -> None:
    asyncio.run(_load(conf, out))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--ingest-rate", type=float, default=200.0, help="100-event batches per second"
    )
    parser.add_argument("--checkin-rate", type=float, default=100.0, help="check-ins per second")
    parser.add_argument("--query-rate", type=float, default=2.0, help="queries per second")
    parser.add_argument("--canaries", type=int, default=100)
    parser.add_argument("--connections", type=int, default=96)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--sample-s", type=float, default=30.0)
    parser.add_argument(
        "--rotate-mb",
        type=int,
        default=None,
        help="COALMINE_LOG_ROTATE_MB for the service (default: its own, 256); "
        "small values force rotations of the embedded log",
    )
    parser.add_argument(
        "--compare-minutes",
        type=float,
        default=5.0,
        help="the first and last spans whose p99, throughput and RSS are compared",
    )
    args = parser.parse_args()
    if args.rotate_mb is not None:
        os.environ["COALMINE_LOG_ROTATE_MB"] = str(args.rotate_mb)
    print(machine())
    seconds = args.minutes * 60
    service = Service(startup_timeout=90, extra_args=["--api-workers", str(args.api_workers)])
    failed = False
    try:
        token = service.start()
        base = service.base
        status, key = call(
            base,
            "POST",
            "/api/v1/admin/keys",
            token,
            {"name": "soak", "rate_per_minute": 1_000_000, "burst": 1_000_000},
        )
        assert status == 201, key
        canaries = []
        for i in range(args.canaries):
            status, canary = call(
                base,
                "POST",
                "/api/v1/admin/canaries",
                token,
                {"name": f"soak-{i}", "interval_seconds": 3600},
            )
            assert status == 201, canary
            canaries.append(canary)
        since = int(time.time()) - 60
        conf = {
            "base": base,
            "seconds": seconds,
            "key": key["key"],
            "token": token,
            "paths": [c["checkin_path"] for c in canaries],
            "connections": args.connections,
            "ingest_rate": args.ingest_rate,
            "checkin_rate": args.checkin_rate,
            "query_rate": args.query_rate,
        }
        parent, child = multiprocessing.Pipe()
        load = multiprocessing.Process(target=_load_process, args=(conf, child))
        load.start()
        roles = dict(service.descendants)
        print(
            f"\n== soak: {args.minutes:g} min; per second: {args.ingest_rate:g} ingest batches "
            f"({args.ingest_rate * 100:,.0f} events), {args.checkin_rate:g} check-ins, "
            f"{args.query_rate:g} queries; {args.api_workers} API processes =="
        )
        rss: list[tuple[float, dict[str, float]]] = []
        started = time.monotonic()
        next_sample = started
        # The rotation's steps as the launcher logs them, timed against the load: a window's
        # p99 is read beside the steps that fell in it.
        steps: list[tuple[float, str]] = []
        log_at = service.log_path.stat().st_size
        while not parent.poll(0.2):
            with service.log_path.open("rb") as log_file:
                log_file.seek(log_at)
                fresh = log_file.read()
            whole = fresh.rfind(b"\n") + 1
            log_at += whole
            for line in fresh[:whole].decode(errors="replace").splitlines():
                step = ROTATION_STEPS.get(line.split(" generation")[0])
                if step:
                    steps.append((time.monotonic() - started, step))
            if time.monotonic() >= next_sample:
                roles.update(service.find_descendants())  # restarted processes too
                sample: dict[str, float] = defaultdict(float)
                for pid, role in roles.items():
                    mb = rss_mb(pid)
                    if mb is not None:  # the largest process of each role (api: of N)
                        sample[role] = max(sample[role], mb)
                rss.append((time.monotonic() - started, dict(sample)))
                print(
                    f"  t={rss[-1][0]:5.0f}s RSS MB: "
                    + ", ".join(f"{r} {m:.0f}" for r, m in sorted(sample.items())),
                    flush=True,
                )
                next_sample += args.sample_s
        result = parent.recv()
        load.join()

        print(
            "\n   window   | ingest ev/s  p99 ms | check-ins/s  p99 ms | queries/s  p99 ms | not 2xx / errors"
        )
        window = int(args.sample_s)
        five_xx = 0
        for start in range(0, int(seconds), window):
            cells = []
            problems: Counter[str] = Counter()
            for kind in KINDS:
                lat: list[float] = []
                ok = 0
                for second in range(start, start + window):
                    lat += result["latencies"].get((kind, second), [])
                    for status, n in result["statuses"].get((kind, second), {}).items():
                        if status.startswith("2"):
                            ok += n
                        else:
                            problems[f"{kind} {status}"] += n
                            five_xx += n if status.startswith("5") else 0
                rate = ok * (100 if kind == "ingest" else 1) / window
                cells.append(f"{rate:>11,.0f} {percentile(sorted(lat), 0.99) * 1000:7.1f}")
            marks = "".join(step for t, step in steps if start <= t < start + window)
            print(
                f" {start:4d}-{start + window:<4d}s |"
                + " |".join(cells)
                + " | "
                + (", ".join(f"{k}: {v}" for k, v in sorted(problems.items())) or "none")
                + (f"  rotation: {marks}" if marks else "")
            )
        print(f"dropped at the generator (service saturated): {result['dropped']}")
        peak = {role: max(s.get(role, 0.0) for _, s in rss) for role in rss[0][1]} if rss else {}
        print("peak RSS MB: " + ", ".join(f"{r} {m:.0f}" for r, m in sorted(peak.items())))
        span = int(args.compare_minutes * 60)
        for kind in ("ingest", "checkin"):
            first, last = (
                _span(result, kind, 0, span),
                _span(result, kind, int(seconds) - span, int(seconds)),
            )
            print(
                f"{kind}: first {args.compare_minutes:g} min p99 {first[1] * 1000:.1f} ms, {first[0]:,.0f}/s;"
                f" last {args.compare_minutes:g} min p99 {last[1] * 1000:.1f} ms, {last[0]:,.0f}/s;"
                f" p99 ratio last/first {last[1] / first[1] if first[1] else float('nan'):.2f},"
                f" throughput ratio {last[0] / first[0] if first[0] else float('nan'):.2f}"
            )
        early = [s for t, s in rss if t <= span]
        late = [s for t, s in rss if t >= seconds - span]
        if early and late:
            print(
                "RSS MB, mean of the first / last span: "
                + ", ".join(
                    f"{r} {sum(x.get(r, 0) for x in early) / len(early):.0f} / {sum(x.get(r, 0) for x in late) / len(late):.0f}"
                    for r in sorted(early[-1])
                )
            )
        rotations = [
            line
            for line in service.log_path.read_text(errors="replace").splitlines()
            if line.startswith("log rotated to generation")
        ]
        print(f"log rotations: {len(rotations)}")
        for line in rotations:
            print(f"  {line}")

        acked = result["acked_events"]
        until = int(time.time()) + 60
        deadline = time.monotonic() + 180
        while True:
            stored = stored_counts(base, token, NAMES, since, until)
            if (
                all(stored.get(n, 0) == acked.get(n, 0) for n in NAMES)
                or time.monotonic() > deadline
            ):
                break
            time.sleep(1)
        exact = all(stored.get(n, 0) == acked.get(n, 0) for n in NAMES)
        print(
            f"events stored {sum(stored.values()):,} of {sum(acked.values()):,} acknowledged; exact: {exact}"
        )
        status, fresh = call(base, "GET", f"/api/v1/query/freshness?from={since}&to={until}", token)
        if status == 200 and fresh["events"]:
            print(
                f"freshness (accepted -> stored): p50 {fresh['p50_ms']:,.0f} ms, p99 {fresh['p99_ms']:,.0f} ms, max {fresh['max_ms']:,.0f} ms"
            )
        status, listed = call(base, "GET", "/api/v1/admin/canaries", token)
        by_id = {c["id"]: c for c in listed["canaries"]}
        up = sum(1 for c in canaries if by_id[c["id"]]["status"] == "up")
        print(f"canaries up: {up} of {len(canaries)}")
        failed = not exact or five_xx > 0
    finally:
        service.stop()
    if failed and not exact:
        _missing_requests(service, result["acked_requests"], args.ingest_rate)
    return 1 if failed else 0


def _missing_requests(service: Service, acked: list[int], rate: float) -> None:
    """Name the acknowledged requests missing from (or doubled in) ClickHouse, read from the
    stopped service's chDB, with when each was sent and where the log had put it."""
    code = (
        "import json, clickhouse_connect\n"
        f"c = clickhouse_connect.get_client(dsn='chdb://{service.data_dir / 'clickhouse'}')\n"
        "rows = c.query(\"SELECT toInt64(value), count() FROM events WHERE type = 'error'"
        ' GROUP BY 1").result_rows\n'
        "print(json.dumps([list(r) for r in rows]))\n"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"could not read the stored requests: {exc}")
        return
    stored = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    missing = sorted(set(acked) - set(stored))
    doubled = sorted(i for i, n in stored.items() if n > 1)
    print(f"acknowledged requests missing: {len(missing)}; stored more than once: {len(doubled)}")
    for i in missing[:20]:
        print(f"  missing: request {i}, sent about {i / rate:.1f} s into the load")
    for i in doubled[:20]:
        print(f"  doubled: request {i} ({stored[i]} times), sent about {i / rate:.1f} s in")
    print(f"the service's log is kept at {service.log_path}")


if __name__ == "__main__":
    sys.exit(main())
