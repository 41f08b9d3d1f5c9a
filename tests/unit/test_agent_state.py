"""The notifier's and the digest timer's state, driven without Faust or a broker: what is
sent once, to which channels, and which digest periods are due."""

from __future__ import annotations

import datetime as dt

from processors.agents.digest_agent import DigestTimer
from processors.agents.notifier import Deliveries
from schemas.alerts import Digest, ErrorAlert
from schemas.canaries import ChannelDefined, DeliveryAttempt, Flip, WebhookConfig
from schemas.records import record_encoder
from schemas.routing import DigestSchedule, RouteDefined

DAILY = DigestSchedule()
DAY = 86400.0


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp()


def flip(channels: list[str]) -> bytes:
    return record_encoder.encode(
        Flip("flip:1", "can_1", "nightly", "down", "missed", 1.0, channels=channels)
    )


def test_it_sends_each_notice_to_each_channel_once() -> None:
    known = Deliveries()
    assert [channel for _, channel in known.flip_notices(flip(["chn_a", "chn_b"]))] == [
        "chn_a",
        "chn_b",
    ]
    assert known.claim("flip:1", "chn_a")
    assert not known.claim("flip:1", "chn_a")
    assert known.claim("flip:1", "chn_b")


def test_a_recorded_attempt_is_not_sent_again_after_a_restart() -> None:
    known = Deliveries()
    known.remember_attempt(
        record_encoder.encode(DeliveryAttempt("flip:1", "chn_a", "webhook", 1, 1.0, False))
    )
    assert not known.claim("flip:1", "chn_a")
    assert known.claim("flip:1", "chn_b")


def test_a_default_alert_goes_to_every_channel_there_is() -> None:
    known = Deliveries()
    for channel_id in ("chn_b", "chn_a"):
        known.control.apply_bytes(
            record_encoder.encode(
                ChannelDefined(channel_id, channel_id, WebhookConfig("http://127.0.0.1/"), 1.0)
            )
        )
    alert = ErrorAlert("alert:e1", "key_1", "error", "payment.failed", "boom", 1.0, "e1", 3600, [])
    notices = known.alert_notices(record_encoder.encode(alert))
    assert [channel for _, channel in notices] == ["chn_a", "chn_b"]
    assert {notice.id for notice, _ in notices} == {"alert:e1"}


def test_a_plan_seen_first_waits_for_its_next_period() -> None:
    timer = DigestTimer(DAILY)
    assert timer.due([], at("2026-12-07T10:00:00")) == []
    assert timer.due([], at("2026-12-07T20:00:00")) == []
    [(plan, start, end)] = timer.due([], at("2026-12-08T09:00:01"))
    assert (plan.key, start, end) == (
        "default",
        at("2026-12-07T09:00:00"),
        at("2026-12-08T09:00:00"),
    )
    timer.sent(plan, end)
    assert timer.due([], at("2026-12-08T12:00:00")) == []


def test_a_digest_read_back_at_start_is_not_sent_again_and_only_the_latest_missed_one_is() -> None:
    timer = DigestTimer(DAILY)
    end = at("2026-12-05T09:00:00")
    timer.remember(
        record_encoder.encode(
            Digest(f"digest:default:{end}", "default", [], "daily", "UTC", end - DAY, end, [], [])
        )
    )
    [(_, start, latest)] = timer.due([], at("2026-12-08T10:00:00"))
    assert (start, latest) == (at("2026-12-07T09:00:00"), at("2026-12-08T09:00:00"))


def test_each_digest_rule_has_its_own_plan() -> None:
    rule = RouteDefined(
        "rte_1", "any", "job.*", ["chn_x"], "digest", 1.0, 1.0,
        digest=DigestSchedule("hourly", "00:30", "UTC"),
    )  # fmt: skip
    timer = DigestTimer(DAILY)
    timer.due([rule], at("2026-12-07T10:00:00"))
    due = timer.due([rule], at("2026-12-07T11:45:00"))
    assert [(plan.key, end) for plan, _, end in due] == [("rte_1", at("2026-12-07T11:30:00"))]
