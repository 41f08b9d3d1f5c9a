"""The agents' state, driven without Faust or a broker: what the notifier sends once and to
which channels, which digest periods are due, which errors open a quiet window (and stay
quiet after a restart), what a ratelimit flush debits, and when each key was last used."""

from __future__ import annotations

import datetime as dt

from processors.agents.digest_agent import DigestTimer
from processors.agents.error_router import RouterState
from processors.agents.key_usage import UsageFold
from processors.agents.notifier import Deliveries
from processors.agents.ratelimit_agent import KeyLevel, fold_flush
from schemas.alerts import Digest, ErrorAlert
from schemas.canaries import ChannelDefined, DeliveryAttempt, Flip, WebhookConfig
from schemas.records import EventBatch, KeyUsed, record_encoder
from schemas.rollups import RollupBatch, RollupEvent
from schemas.routing import DigestSchedule, RouteDefined
from schemas.wire import Event

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


def errors(name: str, at: float, n: int = 1, batch_id: str = "b1") -> RollupBatch:
    return RollupBatch(batch_id, "key_1", at, [RollupEvent("error", name, "boom")] * n)


def test_an_error_alerts_once_per_window_and_only_once_sent() -> None:
    state = RouterState(DAILY)
    rules = state.rules()
    [alert] = state.due(errors("db.timeout", 1000.0, n=3), rules)
    # Not sent yet (the log did not take it): the batch read again raises it again.
    assert [a.id for a in state.due(errors("db.timeout", 1000.0, n=3), rules)] == [alert.id]
    state.sent(alert)
    assert state.due(errors("db.timeout", 1010.0, batch_id="b2"), rules) == []
    later = 1000.0 + alert.quiet_window_s + 1
    assert len(state.due(errors("db.timeout", later, batch_id="b3"), rules)) == 1


def test_a_restarted_router_stays_quiet_for_the_alerts_on_the_log() -> None:
    first = RouterState(DAILY)
    [alert] = first.due(errors("db.timeout", 1000.0), first.rules())
    restarted = RouterState(DAILY)
    restarted.remember(record_encoder.encode(alert))
    restarted.remember(b"not a record")  # skipped, not raised
    assert restarted.due(errors("db.timeout", 1010.0, batch_id="b2"), restarted.rules()) == []


def usage(key_id: str, n: int, at: float, historical: bool = False) -> bytes:
    events = [Event("event", "a")] * n
    return record_encoder.encode(
        EventBatch("b", key_id, at, events, "api-1", 60, 100, historical=historical)
    )


def test_a_ratelimit_flush_debits_each_key_once_per_record_from_its_stored_level() -> None:
    asked: list[str] = []

    def stored(key_id: str) -> KeyLevel | None:
        asked.append(key_id)
        return None

    records = [
        (usage("key_1", 10, 1000.0), 0, 5),
        (usage("key_2", 1, 1000.0), 1, 7),
        (b"unreadable", 0, 6),
        (usage("key_1", 500, 1000.0, historical=True), 0, 8),  # the bulk budget paid
        (usage("key_1", 20, 1000.0), 0, 9),
    ]
    touched = fold_flush(records, stored)
    assert sorted(asked) == ["key_1", "key_2"]
    assert (touched["key_1"].bucket.level, touched["key_1"].offset) == (70.0, 9)
    assert touched["key_2"].bucket.level == 99.0
    # Replayed after a crash (at least once): the level already folded debits nothing twice.
    again = fold_flush(records, lambda key_id: touched[key_id])
    assert again["key_1"].bucket.level == 70.0


def test_key_usage_reads_the_events_log_and_publishes_each_use_once() -> None:
    fold = UsageFold()
    fold.read(usage("key_1", 1, 1000.0))
    fold.read(usage("key_1", 1, 900.0))
    fold.read(b"unreadable")
    assert fold.drain() == [KeyUsed("key_1", 1000.0)]
    assert fold.drain() == []
