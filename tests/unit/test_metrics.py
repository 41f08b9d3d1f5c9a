"""The API's metrics are counted in plain dicts and handed to prometheus-client by `flush`:
after a flush, the exposition must be what direct increments and observations would give."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram

from ingest_api import observed
from runtime import metrics


def samples(metric: Counter | Histogram, **labels: str) -> dict[str, float]:
    found = {}
    for family in metric.collect():
        for sample in family.samples:
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                key = sample.name + str(
                    sorted((k, v) for k, v in sample.labels.items() if k not in labels)
                )
                found[key] = sample.value
    return found


def test_it_gives_what_direct_observations_give() -> None:
    direct = Histogram(
        "direct_seconds",
        "",
        ["route", "method", "status_class"],
        buckets=metrics.LATENCY_BUCKETS,
        registry=CollectorRegistry(),
    )
    seconds = [0.0, 0.0004, 0.001, 0.0011, 0.0025, 0.003, 0.05, 0.7, 9.9, 10.0, 10.5, 300.0]
    for value in seconds:
        metrics.observe_request("/test/a", "POST", "2xx", value)
        direct.labels("/test/a", "POST", "2xx").observe(value)
    metrics.observe_request("/test/a", "GET", "4xx", 0.2)
    direct.labels("/test/a", "GET", "4xx").observe(0.2)
    assert not samples(metrics.REQUEST_SECONDS, route="/test/a")  # nothing before the flush
    metrics.flush()
    got = {
        re.sub("^coalmine_request_duration", "direct", k): v
        for k, v in samples(metrics.REQUEST_SECONDS, route="/test/a").items()
        if "_created" not in k
    }
    want = {k: v for k, v in samples(direct, route="/test/a").items() if "_created" not in k}
    assert got == want
    assert got["direct_seconds_count[('method', 'POST'), ('status_class', '2xx')]"] == len(seconds)


def test_it_counts_increments_once_per_flush() -> None:
    before = metrics.CHECKINS.labels("not_found")._value.get()
    for _ in range(5):
        metrics.count(metrics.CHECKINS, ("not_found",))
    metrics.count(metrics.EVENTS_REJECTED, ("invalid",), 100)
    rejected = metrics.EVENTS_REJECTED.labels("invalid")._value.get()
    assert metrics.CHECKINS.labels("not_found")._value.get() == before
    metrics.flush()
    metrics.flush()  # a second flush adds nothing
    assert metrics.CHECKINS.labels("not_found")._value.get() == before + 5
    assert metrics.EVENTS_REJECTED.labels("invalid")._value.get() == rejected + 100


def test_new_request_ids_are_plain_and_distinct() -> None:
    ids = [observed.new_request_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{16}", rid) for rid in ids)
