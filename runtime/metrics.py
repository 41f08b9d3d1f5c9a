"""Prometheus metrics of every process, and the per-request timings the API hands them.

Every process of `coalmine up` (API processes, worker) writes its metrics into files of one
directory (prometheus-client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`, set by the CLI
to `<data dir>/metrics` and emptied by `coalmine up` at start), so `GET /metrics` on any API
process answers for all of them. Labels never hold a key id, a token or a raw path: routes
are templates (`/checkin/{token}`).

The hot paths pay a few dict operations per request and no lock, syscall or file write:
`count` and `observe_request` (ingest_api.observed) add to plain dicts in this process, and `flush` (every FLUSH_EVERY_S
from the API's lifespan, before each exposition and at shutdown) hands the sums to
prometheus-client, whose multiprocess values take a lock, a getpid() and an mmap write per
increment (three per request before: ~10 % of a check-in's API CPU). So another process's
/metrics may show this one's requests up to FLUSH_EVERY_S late.
"""

from __future__ import annotations

import asyncio
import bisect
import os
from typing import Any, get_args

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from schemas.canaries import CanaryStatus

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

EVENTS_ACCEPTED = Counter(
    "coalmine_events_accepted", "Events the log acknowledged for the ingest API (both lanes)"
)
REQUESTS_REJECTED = Counter(
    "coalmine_requests_rejected", "Ingest requests refused, by reason", ["reason"]
)
EVENTS_REJECTED = Counter(
    "coalmine_events_rejected",
    "Events in refused ingest requests, by reason (0 when the body was never read: 401, 413)",
    ["reason"],
)
CHECKINS = Counter("coalmine_checkins", "Check-ins, by result", ["result"])
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_SECONDS = Histogram(
    "coalmine_request_duration_seconds",
    "HTTP request latency, by route template, method and status class",
    ["route", "method", "status_class"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "coalmine_consumer_lag",
    "Records of a topic a consumer group has not committed yet",
    ["group", "topic"],
    multiprocess_mode="mostrecent",
)
NOTIFICATIONS = Counter(
    "coalmine_notifications",
    "Notification deliveries, by channel kind and result",
    ["channel_kind", "result"],
)

CANARY_STATUSES = get_args(CanaryStatus)


class _Families:
    """A collector of metric families computed for one scrape (no multiprocess files)."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self.families


def canary_metrics_text(canaries: list[dict[str, Any]]) -> bytes:
    """Canary status gauges from the admin API's views of the canaries: how many are in each
    status, and each canary's status (1 for the one it has, 0 for the others, so that a
    change is a change of value, not a series appearing). Computed at scrape time from the
    same state `coalmine canaries list` shows; canary ids and names are not secrets."""
    counts = GaugeMetricFamily("coalmine_canaries", "Canaries by status", labels=["status"])
    for status in CANARY_STATUSES:
        counts.add_metric([status], sum(1 for c in canaries if c["status"] == status))
    each = GaugeMetricFamily(
        "coalmine_canary_status",
        "A canary's status: 1 for the status it has, 0 for the others",
        labels=["canary_id", "name", "status"],
    )
    for canary in canaries:
        for status in CANARY_STATUSES:
            each.add_metric(
                [canary["id"], canary["name"], status], float(canary["status"] == status)
            )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families([counts, each]))  # type: ignore[arg-type]
    return generate_latest(registry)


FLUSH_EVERY_S = 1.0
# Increments and observations not yet handed to prometheus-client.
_counts: dict[tuple[Counter, tuple[str, ...]], float] = {}
_BOUNDS = (*LATENCY_BUCKETS, float("inf"))
# (route, method, status class) -> [observations per bucket..., sum of the seconds]
_latencies: dict[tuple[str, str, str], list[float]] = {}


def count(counter: Counter, labels: tuple[str, ...] = (), amount: float = 1) -> None:
    """`counter.labels(*labels).inc(amount)`, at the next `flush`."""
    key = (counter, labels)
    _counts[key] = _counts.get(key, 0) + amount


def observe_request(route: str, method: str, status_class: str, seconds: float) -> None:
    """One REQUEST_SECONDS observation, at the next `flush`."""
    key = (route, method, status_class)
    sums = _latencies.get(key)
    if sums is None:
        sums = _latencies[key] = [0.0] * (len(_BOUNDS) + 1)
    # The first bucket whose bound is >= seconds: Histogram.observe's choice.
    sums[bisect.bisect_left(_BOUNDS, seconds)] += 1
    sums[-1] += seconds


def flush() -> None:
    """Hand what was counted since the last flush to prometheus-client."""
    global _counts, _latencies
    counts, latencies = _counts, _latencies
    _counts, _latencies = {}, {}
    for (counter, labels), amount in counts.items():
        (counter.labels(*labels) if labels else counter).inc(amount)
    for labels, sums in latencies.items():
        child = REQUEST_SECONDS.labels(*labels)
        # Histogram.observe, many at once: one increment per bucket that got any.
        for bucket, n in zip(child._buckets, sums[:-1], strict=True):
            if n:
                bucket.inc(n)
        child._sum.inc(sums[-1])


async def flush_every(seconds: float = FLUSH_EVERY_S) -> None:
    """The API's background task; the last flush happens when it is cancelled."""
    try:
        while True:
            await asyncio.sleep(seconds)
            flush()
    finally:
        flush()


def metrics_text() -> tuple[bytes, str]:
    """The exposition of every process's metrics (or of this one alone, outside `coalmine`)."""
    flush()
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
