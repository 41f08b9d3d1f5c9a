"""Operability: /healthz and /readyz, Prometheus metrics at /metrics summed over every process
of the service, JSON logs whose lines carry the request id the response returned."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import get_args

from schemas.records import RejectReason
from tests.conftest import wait_for
from tests.integration.harness import Stack
from tests.integration.receivers import HttpReceiver


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total, found = 0.0, False
    for line in text.splitlines():
        match = re.match(r"^(\w+)(\{.*\})? (\S+)$", line)
        if not match or match[1] != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', match[2] or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total, found = total + float(match[3]), True
    assert found, f"no {name} {labels} in the metrics"
    return total


def test_health_readiness_metrics_and_logs(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    try:
        stack.start_broker()
        stack.start("store")
        stack.start("worker")
        stack.start("api", "api-1")
        stack.start("api", "api-2")
        http = stack.http()
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert (ready.status_code, ready.json()) == (
            200,
            {"status": "ready", "broker": "ok", "clickhouse": "ok"},
        )

        key = stack.create_key("ops")["key"]
        batch = {"events": [{"type": "event", "name": "ops.metric"}] * 10}
        for _ in range(20):  # spread over both API processes by the kernel
            assert stack.http(key).post("/api/v1/events", json=batch).status_code == 202
        assert stack.http(key).post("/api/v1/events", content=b"{nope").status_code == 400
        assert (
            stack.http("ch_live_" + "0" * 40).post("/api/v1/events", json=batch).status_code == 401
        )

        with HttpReceiver() as receiver:
            hook = (
                stack.admin()
                .post(
                    "/api/v1/admin/channels",
                    json={"name": "h", "kind": "webhook", "url": receiver.url("/h")},
                )
                .json()
            )
            canary = (
                stack.admin()
                .post(
                    "/api/v1/admin/canaries",
                    json={"name": "ops", "interval_seconds": 3600, "channels": [hook["id"]]},
                )
                .json()
            )
            assert http.get(f"/checkin/{canary['token']}/fail").status_code == 200
            receiver.wait_for_requests(1, 30)

            def counted(text: str) -> None:
                metric(text, "coalmine_notifications_total", channel_kind="webhook", result="sent")
                # API processes hand their counts over once a second (runtime.metrics.flush).
                assert metric(text, "coalmine_events_accepted_total") == 200
                assert metric(text, "coalmine_requests_rejected_total", reason="invalid") == 1
                assert metric(text, "coalmine_requests_rejected_total", reason="unauthorized") == 1
                assert (
                    metric(
                        text,
                        "coalmine_request_duration_seconds_count",
                        route="/api/v1/events",
                        method="POST",
                        status_class="2xx",
                    )
                    == 20
                )
                assert (
                    metric(
                        text, "coalmine_request_duration_seconds_count", route="/checkin/{token}"
                    )
                    == 1
                )
                assert metric(text, "coalmine_checkins_total", result="accepted") == 1

            def scraped() -> str | None:
                text = http.get("/metrics").text
                try:
                    counted(text)
                except AssertionError:
                    return None
                return text

            text = wait_for(scraped, 30, "the worker's notification and the API's requests counted")
        counted(text)
        wait_for(
            lambda: "coalmine_consumer_lag{" in http.get("/metrics").text, 30, "the consumer lag"
        )
        assert canary["token"] not in text  # templates, never tokens
        # Every rejection reason is exposed from the start, at 0 if nothing was refused for it.
        for reason in get_args(RejectReason):
            metric(text, "coalmine_requests_rejected_total", reason=reason)
            metric(text, "coalmine_events_rejected_total", reason=reason)

        # A second worker joining takes partitions, and the first one says which it gave up;
        # when it leaves, the first takes them back and says so.
        def worker_lines(name: str, what: str) -> list[dict]:
            lines = (tmp_path / f"{name}.log").read_text().splitlines()
            return [
                j
                for line in lines
                if line.startswith("{") and what in (j := json.loads(line))["msg"]
            ]

        before = len(worker_lines("worker", "partitions assigned"))
        stack.start("worker", "worker-2")
        joined = wait_for(
            lambda: worker_lines("worker-2", "partitions assigned"), 60, "worker-2's assignment"
        )
        assert joined[-1]["level"] == "info" and "coalmine.checkins[" in joined[-1]["msg"]
        revoked = wait_for(
            lambda: worker_lines("worker", "partitions revoked"), 60, "worker 1's revocation"
        )
        assert revoked[-1]["level"] == "info"
        stack.kill("worker-2", signal.SIGTERM)
        wait_for(
            lambda: any(
                "new here: none" not in j["msg"]
                for j in worker_lines("worker", "partitions assigned")[before:]
            ),
            60,
            "worker 1 taking partitions back",
        )

        # A request id: the client's when plain, else a new one; in the log lines of its request.
        assert (
            http.get("/healthz", headers={"X-Request-Id": "trace-42"}).headers["x-request-id"]
            == "trace-42"
        )
        assert re.fullmatch(
            r"[0-9a-f]{16}",
            http.get("/healthz", headers={"X-Request-Id": "bad id!"}).headers["x-request-id"],
        )

        stack.kill_broker()
        not_ready = wait_for(
            lambda: (r := http.get("/readyz")).status_code == 503 and r, 30, "readiness to fail"
        )
        assert not_ready.json()["broker"] != "ok" and not_ready.json()["clickhouse"] == "ok"
        failed = stack.http(key, timeout=30).post("/api/v1/events", json=batch)
        assert failed.status_code == 503
        rid = failed.headers["x-request-id"]

        def logged() -> dict | None:
            for name in ("api-1", "api-2"):
                for line in (tmp_path / f"{name}.log").read_text().splitlines():
                    if line.startswith("{") and rid in line:
                        return json.loads(line)
            return None

        line = wait_for(logged, 30, "the 503 logged with its request id")
        assert line["request_id"] == rid and line["level"] == "warning" and line["role"] == "api"
        logs = "".join(
            (tmp_path / f"{n}.log").read_text() for n in ("api-1", "api-2", "store", "worker")
        )
        assert (
            key not in logs
            and canary["token"] not in logs
            and stack.settings.admin_token not in logs
        )
    finally:
        stack.stop()
