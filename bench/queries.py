#!/usr/bin/env python3
"""Latency of the named queries on embedded ClickHouse (chDB) with realistic volume.

    python bench/queries.py [--events 10000000] [--names 1000] [--days 30] [--runs 50]
                            [--data-dir DIR]

1. seeds a fresh chDB directory with --events events spread evenly over the --days before now,
   with --names names of skewed popularity (log-uniform: the top name has ~10 % of the events,
   half the names fewer than 0.1 % each), each name sent by one of five keys, 5 % errors, 70 %
   with a value, all by one INSERT ... SELECT FROM numbers() (deterministic hashes, no Python
   in the loop);
2. fills `rollups` from those events by INSERT ... SELECT ... GROUP BY per grain: the rows the
   rollups agent would have written, already merged (the agent's own cost is measured with
   the pipeline, not here);
3. times each query as the API runs it (queries.run_query on the same client, so everything
   but the HTTP hop), warm: three runs discarded, then --runs runs; prints median and p95, and
   the targets (series over 30 days from the rollups < 50 ms, top_names over 7 days < 200 ms).
   Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ingest import machine, percentile

from queries import run_query
from runtime.clickhouse_client import connect, migrate
from runtime.settings import load_settings

# Name k (0-based) is drawn log-uniformly: P(k) ~ 1/(k+1), like word frequencies.
SEED_SQL = """
INSERT INTO events (event_id, key_id, type, name, message, value, meta, ts, received_at, _partition, _offset)
SELECT
    generateUUIDv4(number) AS event_id,
    concat('key_', toString(name_index % 5)) AS key_id,
    if(sipHash64(number, 2) % 100 < 5, 'error', 'event') AS type,
    concat('name-', leftPad(toString(name_index), 4, '0')) AS name,
    if(type = 'error', concat('failure ', toString(sipHash64(number, 3) % 50)), '') AS message,
    if(sipHash64(number, 4) % 10 < 7, (sipHash64(number, 5) % 100000) / 100, NULL) AS value,
    if(number % 10 = 0, concat('{"n":', toString(number), '}'), '') AS meta,
    fromUnixTimestamp64Milli(
        toInt64({start_ms:Int64} + intDiv(number * {span_ms:UInt64}, {events:UInt64}))
    ) AS ts,
    ts AS received_at,
    number % 8 AS _partition,
    number AS _offset
FROM (
    SELECT
        number,
        least(
            toUInt32(floor(pow({names:UInt32} + 1, (sipHash64(number, 1) % 1000000) / 1000000))) - 1,
            {names:UInt32} - 1
        ) AS name_index
    FROM numbers({events:UInt64})
)
"""

ROLLUP_SQL = """
INSERT INTO rollups
SELECT '{grain}', name, type, key_id, {start_of}(ts) AS bucket,
       count(), count(value), ifNull(sum(value), 0), min(value), max(value),
       maxIf((toFloat64(toUnixTimestamp64Milli(ts)) / 1000, message), type = 'error')
FROM events
GROUP BY name, type, key_id, bucket
"""
STARTS = {"minute": "toStartOfMinute", "hour": "toStartOfHour", "day": "toStartOfDay"}

TARGETS_MS = {"series": 50.0, "top_names": 200.0}
WARM_UP_RUNS = 3


def seed(client: Any, events: int, names: int, days: int, now: dt.datetime) -> None:
    span_ms = days * 86_400_000
    start_ms = int(now.timestamp() * 1000) - span_ms
    t0 = time.perf_counter()
    client.command(
        SEED_SQL,
        parameters={"start_ms": start_ms, "span_ms": span_ms, "events": events, "names": names},
    )
    print(f"seeded {events:,} events in {time.perf_counter() - t0:.1f} s")
    for grain, start_of in STARTS.items():
        t0 = time.perf_counter()
        # The grain and function names are this script's constants.
        client.command(ROLLUP_SQL.format(grain=grain, start_of=start_of))
        rows = client.query(
            "SELECT count() FROM rollups WHERE grain = {grain:String}", parameters={"grain": grain}
        ).result_rows[0][0]
        print(f"rollups: {rows:,} {grain} rows in {time.perf_counter() - t0:.1f} s")


def settle(client: Any, timeout_s: float = 300.0) -> None:
    """Wait for ClickHouse's background merges of the seeded parts to finish: they would
    compete with the queries for the two cores, a state a running service leaves quickly."""
    t0 = time.perf_counter()
    while client.query("SELECT count() FROM system.merges").result_rows[0][0]:
        if time.perf_counter() - t0 > timeout_s:
            print(f"merges still running after {timeout_s:.0f} s; measuring anyway")
            return
        time.sleep(0.5)
    parts = client.query(
        "SELECT table, count() FROM system.parts WHERE active AND table IN ('events', 'rollups')"
        " GROUP BY table ORDER BY table"
    ).result_rows
    print(
        f"merges settled after {time.perf_counter() - t0:.1f} s; active parts: "
        + ", ".join(f"{table} {count}" for table, count in parts)
    )


def measure(
    client: Any, query: str, params: dict[str, str], now: dt.datetime, runs: int
) -> dict[str, Any]:
    for _ in range(WARM_UP_RUNS):  # the first runs load marks and columns into caches
        result = run_query(client, query, params, now)
    timings = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run_query(client, query, params, now)
        timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    return {
        "median": statistics.median(timings),
        "p95": percentile(timings, 0.95),
        "result": result,
    }


def cases(
    names: list[str], now: dt.datetime
) -> list[tuple[str, str, dict[str, str], float | None]]:
    """(label, query, parameters, target in ms or None)."""
    top, middle = names[0], names[len(names) // 2]
    month = {"from": "-30d", "to": "now"}
    week = {"from": "-7d", "to": "now"}
    hour = now.replace(minute=0, second=0, microsecond=0)
    whole_hours = {"from": (hour - dt.timedelta(days=7)).isoformat(), "to": hour.isoformat()}
    return [
        (f"series {top} (top name), 30 d, 1h", "series", {"name": top, "interval": "1h", **month}, TARGETS_MS["series"]),
        (f"series {top}, 30 d, 1d", "series", {"name": top, "interval": "1d", **month}, TARGETS_MS["series"]),
        (f"series {top}, 30 d, 15m", "series", {"name": top, "interval": "15m", **month}, TARGETS_MS["series"]),
        (f"series {middle} (median name), 30 d, 1h", "series", {"name": middle, "interval": "1h", **month}, TARGETS_MS["series"]),
        (f"  same as raw events: {top}, 30 d, 1h", "series", {"name": top, "interval": "1h", "source": "events", **month}, None),
        ("top_names, 7 d vs previous 7 d", "top_names", week, TARGETS_MS["top_names"]),
        ("top_names, 7 d, type=error", "top_names", {"type": "error", **week}, TARGETS_MS["top_names"]),
        ("top_names, 7 d on whole hours", "top_names", whole_hours, TARGETS_MS["top_names"]),
        ("top_names, 30 d, limit 1000", "top_names", {"limit": "1000", **month}, None),
        ("  same as raw events: top_names, 7 d", "top_names", {"source": "events", **week}, None),
        ("errors, 7 d", "errors", week, None),
        (f"percentiles {top}, 30 d", "percentiles", {"name": top, **month}, None),
        (f"percentiles {middle}, 30 d", "percentiles", {"name": middle, **month}, None),
        (f"events {top}, first page of 100", "events", {"name": top, **month}, None),
    ]  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--names", type=int, default=1000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--data-dir", help="chDB directory to seed (default: a fresh temporary one)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(machine())
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="coalmine-bench-queries-"))
    client = connect(load_settings({}, data_dir=str(data_dir)))
    try:
        migrate(client)
        if client.query("SELECT count() FROM events").result_rows[0][0]:
            print(f"{data_dir} already holds events: give an empty --data-dir", file=sys.stderr)
            return 2
        now = dt.datetime.now(dt.UTC)
        seed(client, args.events, args.names, args.days, now)
        settle(client)
        ranked = run_query(client, "top_names", {"from": f"-{args.days}d", "limit": "1000"}, now)
        names = [row["name"] for row in ranked["names"]]
        print(
            f"names: {len(names)}; top {names[0]} has {ranked['names'][0]['count']:,} events, "
            f"median {names[len(names) // 2]} has {ranked['names'][len(names) // 2]['count']:,}"
        )
        print(f"\n{'query':48} {'median':>9} {'p95':>9}  target  source")
        missed = []
        for label, query, params, target in cases(names, now):
            figures = measure(client, query, params, now, args.runs)
            verdict = ""
            if target is not None:
                met = figures["p95"] < target
                verdict = f"<{target:.0f} ms {'met' if met else 'MISSED'}"
                if not met:
                    missed.append(label)
            source = figures["result"].get("source", "events")
            print(
                f"{label:48} {figures['median']:7.1f}ms {figures['p95']:7.1f}ms  {verdict:14} {source}"
            )
        print("\nall targets met (p95)" if not missed else f"\nMISSED: {', '.join(missed)}")
        return 1 if missed else 0
    finally:
        client.close()
        if not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
