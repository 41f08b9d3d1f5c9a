"""Prometheus metrics, request timing and request ids.

Every process of `coalmine up` (API processes, worker) writes its metrics into files of one
directory (prometheus-client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`, set by the CLI
to `<data dir>/metrics` and emptied by `coalmine up` at start), so `GET /metrics` on any API
process answers for all of them. Labels never hold a key id, a token or a raw path: routes
are templates (`/checkin/{token}`).

The hot paths pay once per request, not per event: a counter increment by the batch size
and one histogram observation.
"""

from __future__ import annotations

import os
import re
import time
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

from coalmine.logs import request_id
from ingest_api import asgi
from schemas.canaries import CanaryStatus
from schemas.ids import new_batch_id

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

EVENTS_ACCEPTED = Counter("coalmine_events_accepted", "Events accepted (202) by the ingest API")
REQUESTS_REJECTED = Counter(
    "coalmine_requests_rejected", "Ingest requests refused, by reason", ["reason"]
)
EVENTS_REJECTED = Counter(
    "coalmine_events_rejected",
    "Events in refused ingest requests, by reason (0 when the body was never read: 401, 413)",
    ["reason"],
)
CHECKINS = Counter("coalmine_checkins", "Check-ins, by result", ["result"])
REQUEST_SECONDS = Histogram(
    "coalmine_request_duration_seconds",
    "HTTP request latency, by route template, method and status class",
    ["route", "method", "status_class"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CONSUMER_LAG = Gauge(
    "coalmine_consumer_lag",
    "Records of a topic a consumer group has not committed yet",
    ["group", "topic"],
    multiprocess_mode="mostrecent",
)
NOTIFICATIONS = Counter(
    "coalmine_notifications", "Notification deliveries, by channel kind and result", ["channel_kind", "result"]
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
            each.add_metric([canary["id"], canary["name"], status], float(canary["status"] == status))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families([counts, each]))  # type: ignore[arg-type]
    return generate_latest(registry)


_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def metrics_text() -> tuple[bytes, str]:
    """The exposition of every process's metrics (or of this one alone, outside `coalmine`)."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def incoming_request_id(scope: asgi.Scope) -> str:
    """The client's X-Request-Id when it is short and plain, else a new one."""
    given = asgi.header(scope, b"x-request-id")
    if given is not None and _SAFE_ID.match(given):
        return given
    return new_batch_id()[:16]


class Observed:
    """An ASGI app wrapped with a request id (in the log context and the response's
    X-Request-Id header) and a latency observation per request. `route_of(scope)` names the
    route template once the request is handled."""

    def __init__(self, app: Any, route_of: Any) -> None:
        self.app, self.route_of = app, route_of

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        rid = incoming_request_id(scope)
        token = request_id.set(rid)
        status = 500
        header = (b"x-request-id", rid.encode())

        async def tagged(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            REQUEST_SECONDS.labels(self.route_of(scope), scope["method"], f"{status // 100}xx").observe(
                time.perf_counter() - started
            )
            request_id.reset(token)
