"""Routing end to end, on a stack of its own with the default rules and a clock file driving
the digests: an error alerts every channel at once, once per quiet window (a restarted worker
remembers it); later occurrences, and events, wait for the daily digest, which a real SMTP
server and HTTP receiver get as mail (plain text and HTML), Slack message and webhook; rules
send a name elsewhere or nowhere."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from domain.digest_plan import period_end_at_or_before
from schemas.routing import DigestSchedule
from tests.conftest import set_clock, wait_for
from tests.integration.harness import Stack
from tests.integration.receivers import HttpReceiver, ReceivedRequest, SmtpReceiver

DAY = 86_400


@pytest.fixture()
def receivers() -> Iterator[tuple[HttpReceiver, SmtpReceiver]]:
    with HttpReceiver() as http, SmtpReceiver() as smtp:
        yield http, smtp


def of(http: HttpReceiver, path: str, event: str) -> list[ReceivedRequest]:
    return [
        r for r in http.requests if r.path == path and r.headers.get("x-coalmine-event") == event
    ]


def test_errors_alert_at_once_then_wait_for_the_digest_with_the_events(
    tmp_path: Path, receivers: tuple[HttpReceiver, SmtpReceiver]
) -> None:
    http, smtp = receivers
    # The default digest: daily at 09:00 UTC. Events sent now fall in the period ending at
    # `end`; the clock stands just before it, and is moved past it once all is rolled up.
    end = period_end_at_or_before(DigestSchedule(), time.time()) + DAY
    clock = tmp_path / "clock"
    set_clock(clock, end - 120)
    stack = Stack(tmp_path, clock_file=str(clock))
    try:
        stack.start_all()
        admin = stack.admin()

        def channel(body: dict[str, Any]) -> str:
            response = admin.post("/api/v1/admin/channels", json={"name": body["kind"], **body})
            assert response.status_code == 201, response.text
            return response.json()["id"]

        hook = channel({"kind": "webhook", "url": http.url("/hook")})
        channel({"kind": "slack", "url": http.url("/slack")})
        channel(
            {
                "kind": "email",
                "to": ["ops@example.com"],
                "host": smtp.host,
                "port": smtp.port,
                "starttls": False,
            }
        )
        key = stack.create_key("routing")["key"]

        def send(*events: dict[str, Any]) -> None:
            response = stack.http(key).post("/api/v1/events", json={"events": list(events)})
            assert response.status_code == 202, response.text

        send({"type": "error", "name": "db.timeout", "message": "m1"})
        alert = wait_for(lambda: of(http, "/hook", "error.alert"), 30, "the error alert")[0].json()
        assert (alert["name"], alert["message"], alert["route_id"]) == ("db.timeout", "m1", None)
        wait_for(lambda: of(http, "/slack", "error.alert"), 30, "the error alert on Slack")
        mail = smtp.wait_for_mails(1, 30)[0]
        assert "db.timeout" in mail.message["Subject"] and "m1" in mail.part("text/plain")

        # Within the quiet window: no alert, even from a worker killed and restarted.
        send({"type": "error", "name": "db.timeout", "message": "m2"})
        stack.kill("worker")
        stack.start("worker")
        send({"type": "error", "name": "db.timeout", "message": "m3"})
        send({"type": "error", "name": "db.timeout", "message": "m4"})
        send(*[{"type": "event", "name": "page.view"}] * 5)

        # Rules: payment errors to the webhook only (no digest), noisy ones nowhere.
        for rule in (
            {"type": "error", "name": "payment.*", "mode": "immediate", "channels": [hook]},
            {"type": "any", "name": "noisy.*", "mode": "silent"},
        ):
            assert admin.post("/api/v1/admin/routes", json=rule).status_code == 201
        send({"type": "error", "name": "noisy.thing", "message": "ignore me"})
        send({"type": "error", "name": "payment.failed", "message": "card declined"})
        routed = wait_for(
            lambda: [
                r.json()
                for r in of(http, "/hook", "error.alert")
                if r.json()["name"] == "payment.failed"
            ],
            30,
            "the routed alert",
        )[0]
        assert routed["route_id"] is not None

        def rolled_up(name: str) -> int:
            params = {
                "name": name,
                "from": str(end - DAY),
                "to": str(end),
                "interval": "1h",
                "source": "rollups",
            }
            points = admin.get("/api/v1/query/series", params=params).json()["points"]
            return sum(p["count"] for p in points)

        expected = {"db.timeout": 4, "page.view": 5, "noisy.thing": 1, "payment.failed": 1}
        seen: dict[str, int] = {}

        def all_rolled_up() -> bool:
            seen.update({name: rolled_up(name) for name in expected})
            return seen == expected

        try:
            wait_for(all_rolled_up, 60, "the rollups")
        except AssertionError:
            raise AssertionError(f"rolled up {seen}, expected {expected}") from None

        set_clock(clock, end + 60)
        digest = wait_for(lambda: of(http, "/hook", "digest"), 60, "the digest")[0].json()
        names = {line["name"]: line for line in digest["names"]}
        assert set(names) == {"db.timeout", "page.view"}  # payment: immediate only; noisy: silent
        assert (names["db.timeout"]["count"], names["db.timeout"]["new"]) == (4, True)
        assert (names["page.view"]["type"], names["page.view"]["count"]) == ("event", 5)
        assert [(e["name"], e["count"], e["last_message"]) for e in digest["errors"]] == [
            ("db.timeout", 4, "m4")
        ]
        slack = wait_for(lambda: of(http, "/slack", "digest"), 30, "the Slack digest")[0].json()
        assert "Daily digest" in slack["text"] and "page.view" in str(slack["blocks"])
        mails = smtp.wait_for_mails(2, 30)
        digest_mail = mails[1]
        assert "Daily digest" in digest_mail.message["Subject"]
        assert "page.view" in digest_mail.part("text/plain") and "m4" in digest_mail.part(
            "text/plain"
        )
        assert "<table" in digest_mail.part("text/html")

        # Once each: one alert per window, one digest per period, nothing for the silenced.
        assert [r.json()["name"] for r in of(http, "/hook", "error.alert")] == [
            "db.timeout",
            "payment.failed",
        ]
        assert len(of(http, "/slack", "error.alert")) == 1  # payment went to the webhook only
        assert len(smtp.mails) == 2
        assert not any("noisy" in r.body.decode() for r in http.requests)
    finally:
        stack.stop()
